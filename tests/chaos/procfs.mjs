// What /proc tells of the proxy's processes: descriptors, memory, CPU time, and which
// process holds which loopback TCP connection.
import fs from 'node:fs';

export function descriptors(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return null; }
}

export function rssKiB(pid) {
  try {
    const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return match ? Number(match[1]) : null;
  } catch { return null; }
}

// utime + stime in clock ticks (USER_HZ, 100 a second).
export function cpuTicks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch { return null; }
}

// Every TCP connection of this network namespace: { localPort, remotePort, inode }.
function tcpConnections() {
  const out = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = [];
    try { lines = fs.readFileSync(table, 'utf8').split('\n').slice(1); } catch { continue; }
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const port = (address) => parseInt(address.split(':').pop(), 16);
      out.push({ localPort: port(fields[1]), remotePort: port(fields[2]), inode: fields[9] });
    }
  }
  return out;
}

function socketInodes(pid) {
  const inodes = new Set();
  let fds = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return inodes; }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {}
  }
  return inodes;
}

// Which of `pids` holds the connection from `localPort` to `remotePort` (null: none).
export function holderOf(pids, localPort, remotePort) {
  const connection = tcpConnections().find((c) => c.localPort === localPort && c.remotePort === remotePort);
  if (!connection) return null;
  return pids.find((pid) => socketInodes(pid).has(connection.inode)) ?? null;
}

// Whether `pid` holds a connection to `remotePort`.
export function connectedTo(pid, remotePort) {
  const inodes = socketInodes(pid);
  return tcpConnections().some((c) => c.remotePort === remotePort && inodes.has(c.inode));
}

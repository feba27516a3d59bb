// The container image test's parts (container-image.test.mjs): running the image's root
// filesystem as a container runtime would (bwrap), its HEALTHCHECK, and a realtime client.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

import WebSocket from 'ws';

import { ROOT, freePort, isRunning, request, sleep, startChild, waitFor } from './harness.mjs';

// Runs a command to its end without blocking the event loop; throws with its output's tail.
export function run(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', [command, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code) => (code === 0 ? resolve(output.trim())
      : reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output.slice(-4000)}`))));
  });
}

// The image as a container runtime would start it: its root filesystem read-only, /tmp and
// /dev/shm as tmpfs (as `--read-only --tmpfs /tmp`), its Env, WorkingDir and User, its
// Entrypoint as PID 1 of a new PID namespace. bwrap writes the host PID of that PID 1 to fd 3.
// `cgroup`: a directory shown as /sys/fs/cgroup (the container's own cgroup, as Docker shows it).
// `mounts`: [host directory, path in the image] pairs, bound read-only (as `-v dir:path:ro`).
export function sandbox(rootfs, config, env, { command = [...config.Entrypoint, ...(config.Cmd || [])], cgroup, mounts = [] } = {}) {
  const [uid, gid = uid] = config.User.split(':');
  const args = ['--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev',
    '--perms', '1777', '--tmpfs', '/tmp', '--perms', '1777', '--tmpfs', '/dev/shm',
    ...(cgroup ? ['--tmpfs', '/sys', '--perms', '0755', '--dir', '/sys/fs', '--ro-bind', cgroup, '/sys/fs/cgroup'] : []),
    ...mounts.flatMap(([from, to]) => ['--ro-bind', from, to]),
    '--unshare-pid', '--as-pid-1', '--die-with-parent', '--info-fd', '3', '--clearenv', '--chdir', config.WorkingDir];
  const environment = Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  for (const [name, value] of Object.entries({ ...environment, ...env })) args.push('--setenv', name, value);
  // setpriv execs the entrypoint in the same process: PID 1 stays PID 1, as the image's user.
  args.push('/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...command);
  const box = startChild('bwrap', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  box.pid1 = new Promise((resolve, reject) => {
    let info = '';
    box.child.stdio[3].on('data', (d) => { info += d; });
    box.child.stdio[3].on('end', () => {
      try { resolve(JSON.parse(info)['child-pid']); } catch { reject(new Error(`bwrap info: ${info}`)); }
    });
  });
  return box;
}

// Stops a sandbox: its PID 1 first (SIGTERM, then SIGKILL, which ends every process of its PID
// namespace), then bwrap. Killing bwrap alone leaves the image's processes running.
export async function stopSandbox(box) {
  const pid1 = await Promise.race([box.pid1.catch(() => null), sleep(1000).then(() => null)]);
  if (pid1 && isRunning(pid1)) {
    try { process.kill(pid1, 'SIGTERM'); } catch {}
    await waitFor(() => !isRunning(pid1), 'the image to stop', 3000).catch(() => {
      try { process.kill(pid1, 'SIGKILL'); } catch {}
    });
  }
  await box.stop('SIGKILL', 1000);
}

export function statusField(pid, field) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line.slice(field.length + 1).trim().split(/\s+/);
}

export const PROXY = '/usr/local/bin/azure-openai-proxy';
export const COMPANION = '/usr/local/bin/azure-openai-proxy-realtime';
export const programOf = (pid) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]; } catch { return ''; } };

// The image run as `docker run` runs it, on a free loopback port (the tests' rule), once it
// serves /healthz: { box, url, pid1, served: ms from start to serving }.
export async function serveImage(rootfs, config, env, options) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const box = sandbox(rootfs, config, { ...env, AZURE_OPENAI_PROXY_ADDRESS: `127.0.0.1:${port}` }, options);
  try {
    await waitFor(async () => box.exited || (await request(`${url}/healthz`).catch(() => ({}))).status === 200,
      'the image to serve /healthz', 10000);
    if (box.exited) throw new Error(`the image's entrypoint exited: ${box.output}`);
    return { box, url, served: Date.now() - started, pid1: await box.pid1 };
  } catch (error) {
    await stopSandbox(box);
    throw error;
  }
}

// The image's HEALTHCHECK command, run in the image beside it (as `docker exec` runs it, with
// the container's environment): { code, output }.
export async function healthcheck(rootfs, config, url, env = {}) {
  const check = sandbox(rootfs, config, { AZURE_OPENAI_PROXY_ADDRESS: new URL(url).host, ...env },
    { command: config.Healthcheck.Test.slice(1) });
  return { code: (await check.exitPromise).code, output: check.output };
}

// A realtime session as a server-side voice agent opens one (the `ws` package: the SDK
// insists on wss:, and the image serves plain HTTP), its key in the subprotocol as the SDKs
// send it. `opened`: { status: 101 } or the refusal's { status, body }.
export function realtimeSession(url, urlPath, key) {
  const ws = new WebSocket(`${url.replace(/^http:/, 'ws:')}${urlPath}`, ['realtime', `openai-insecure-api-key.${key}`]);
  const events = [];
  ws.on('message', (data) => events.push(JSON.parse(data.toString())));
  const opened = new Promise((resolve) => {
    ws.on('open', () => resolve({ status: 101 }));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', (error) => resolve({ error }));
  });
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  const next = async (type) => {
    await waitFor(() => events.some((e) => e.type === type), `the event ${type}`);
    return events.find((e) => e.type === type);
  };
  return { ws, events, opened, closed, next, send: (event) => ws.send(JSON.stringify(event)) };
}

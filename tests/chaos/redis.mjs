// The Redis side of the fault run: a real redis-server on a loopback port, and the
// impostor that takes its port for a while and answers garbage.
import net from 'node:net';

import { canConnect, startChild, tempDir, waitFor } from '../integration/harness.mjs';
import { takeCommands } from '../upstream/resp.mjs';

// Debian ships the server in redis-tools as redis-check-rdb, which runs as the server
// when called by that name (redis-server's own package only adds a system service).
const REDIS_SERVER = '/usr/bin/redis-check-rdb';

// A real Redis on `port` (the same port every time: the proxy keeps its URL).
export async function startRedis(port) {
  const redis = startChild(REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tempDir('chaos-redis')],
    { argv0: 'redis-server' });
  await waitFor(async () => redis.exited || canConnect({ host: '127.0.0.1', port }), 'redis', 10000);
  if (redis.exited) throw new Error(`redis exited at start: ${redis.output}`);
  return redis;
}

// How the impostor answers, one way per appearance (taken in turn):
//   noise       random bytes, then it hangs up
//   silent      accepts and never answers
//   lying       well-formed replies with absurd values: every count and cooldown is
//               9223372036854775807 (a cooldown 292 million years long, counts that overflow)
//   huge-array  announces an array of 2,147,483,647 replies, then sends them slowly
export const GARBAGE_MODES = ['noise', 'silent', 'lying', 'huge-array'];

const HUGE = '9223372036854775807';


function lyingReply([name, ...args]) {
  switch ((name || '').toUpperCase()) {
    case 'MGET': return `*${args.length}\r\n` + args.map(() => `$${HUGE.length}\r\n${HUGE}\r\n`).join('');
    case 'INCRBY': return `:${HUGE}\r\n`;
    case 'EXPIRE': return ':1\r\n';
    default: return '+OK\r\n';
  }
}

function serveGarbage(socket, mode, timers) {
  socket.on('error', () => {});
  if (mode === 'noise') {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    socket.end(bytes);
  } else if (mode === 'huge-array') {
    socket.write('*2147483647\r\n');
    const timer = setInterval(() => socket.write(':1\r\n'), 10);
    timers.add(timer);
    socket.on('close', () => { clearInterval(timer); timers.delete(timer); });
  } else if (mode === 'lying') {
    const state = { buffer: Buffer.alloc(0) };
    socket.on('data', (data) => {
      state.buffer = Buffer.concat([state.buffer, data]);
      for (const command of takeCommands(state)) socket.write(lyingReply(command));
    });
  }
  // silent: nothing at all
}

// Listens on Redis's port until stop(); `mode` is one of GARBAGE_MODES.
export function startFakeRedis(port, mode) {
  const sockets = new Set(), timers = new Set();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveGarbage(socket, mode, timers);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      mode,
      accepted: () => accepted,  // connections the proxy's workers made to it
      // No connection accepted once it stops: close first, then drop every connection.
      stop: () => new Promise((done) => {
        server.close(() => done());
        for (const timer of timers) clearInterval(timer);
        for (const socket of sockets) socket.destroy();
      }),
    }));
  });
}

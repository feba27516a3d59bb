// What bench/callgrind-small.mjs and bench/syscalls-small.mjs share: the small chat
// completion they send (bench/chat.lua's body and headers), the load of kept connections
// behind lighttpd, the stand-in upstream, and the FastCGI floor's answer.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { ROOT, canConnect, freePort, startChild, waitFor } from '../tests/integration/harness.mjs';

// The command line both read: --requests, --warmup, flags; BENCH_PROXY names the program.
export const argv = process.argv.slice(2);
export const option = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
export const REQUESTS = Number(option('--requests', '2000'));
export const WARMUP = Number(option('--warmup', '200'));
export const PROXY = process.env.BENCH_PROXY || path.join(ROOT, 'build/azure-openai-proxy');

export const CONNECTIONS = 8;
export const KEY = 'bench-key';
export const BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":32}';
export const UPSTREAM_PATH = '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21';

// `count` requests over `connections` kept connections; throws on any answer but 200.
export async function load(url, count, connections = CONNECTIONS) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  let next = 0;
  const one = () => new Promise((resolve, reject) => {
    const req = http.request({
      agent, host: target.hostname, port: target.port, method: 'POST', path: target.pathname,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, 'api-key': KEY, 'Content-Length': Buffer.byteLength(BODY) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`answer ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(BODY);
  });
  const worker = async () => { while (next < count) { next += 1; await one(); } };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
}

// The tests' stand-in upstream (tests/upstream/azure-mock.mjs), a process of its own.
export async function startStandIn() {
  const port = await freePort();
  const mock = startChild(process.execPath, [path.join(ROOT, 'tests/upstream/azure-mock.mjs'), '--port', String(port), '--api-key', KEY]);
  await waitFor(() => canConnect({ host: '127.0.0.1', port }), 'the upstream stand-in');
  mock.port = port;
  return mock;
}

// The stand-in's answer to the request the load sends, as the FastCGI floor answers it.
export function standInAnswer(mockPort) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: mockPort, method: 'POST', path: UPSTREAM_PATH,
      headers: { 'Content-Type': 'application/json', 'api-key': KEY, 'Content-Length': Buffer.byteLength(BODY) },
    }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`the stand-in answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

// spawn-fcgi runs its program by path, not looked up in PATH.
export function onPath(name) {
  const found = process.env.PATH.split(':').map((d) => path.join(d, name)).find((f) => fs.existsSync(f));
  if (!found) throw new Error(`${name} is not on PATH`);
  return found;
}

// Starts and stops the real pieces for integration tests: the proxy (the sanitizer
// build), lighttpd and the local Azure-like upstream. Every child is tracked by PID and
// stopped when the test ends, and killed if the test process exits early.

import { spawn } from 'node:child_process';
import { after, afterEach, before } from 'node:test';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PROXY_BIN = process.env.PROXY_BIN || path.join(ROOT, 'build/asan/azure-openai-proxy');

const children = new Set();
const madeDirs = [];
// The processes a test file started are stopped when it ends, whatever happened; the
// directories it made go too, unless something failed (they hold the logs to read then)
// or AOP_KEEP_TEST_DIRS is set.
process.on('exit', (code) => {
  for (const child of children) {
    try { process.kill(child.detached ? -child.pid : child.pid, 'SIGKILL'); } catch {}
  }
  if (code !== 0 || process.exitCode || process.env.AOP_KEEP_TEST_DIRS) return;
  for (const dir of madeDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch {}
  }
});

export function tempDir(name = 'aoai') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  madeDirs.push(dir);
  return dir;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Per-minute limits count wall-clock minutes, the previous minute's share fading: across
// a minute's edge a key may send one more. A test that counts requests against such a
// limit starts with at least `ms` left in the current minute.
export async function clearOfMinuteEdge(ms) {
  const left = 60000 - (Date.now() % 60000);
  if (left < ms) await sleep(left + 50);
}

// Every process below `pid`, found through /proc (children of children included).
export function descendants(pid) {
  const parents = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {}
  }
  const found = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift();
    for (const [child, ppid] of parents) if (ppid === parent) { found.push(child); queue.push(child); }
  }
  return found;
}

export function isRunning(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

// Live processes whose command line mentions `text` (a path private to one test).
export function processesMentioning(text) {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)
    .filter((pid) => pid !== process.pid && isRunning(pid) && commandOf(pid).includes(text));
}

export function commandOf(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return ''; }
}

export async function waitFor(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function canConnect(options) {
  return new Promise((resolve) => {
    const socket = net.connect(options);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

// Spawns a tracked child; its stderr and stdout are kept for assertions, and watched for
// sanitizer reports (below). `log`: a function returning more of what it writes (a log
// file: Apache's ErrorLog, where the proxies it starts write their stderr).
export function startChild(command, args, { log, ...options } = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.detached = Boolean(options.detached);
  children.add(child);
  const state = { child, pid: child.pid, output: '', exited: null };
  child.stdout.on('data', (d) => { state.output += d; });
  child.stderr.on('data', (d) => { state.output += d; });
  const closed = new Promise((resolve) => child.on('close', resolve));
  const name = `${path.basename(command)} (pid ${child.pid})`;
  // An exited child's last output, unless what it started still holds its pipes.
  const settled = () => (state.exited ? Promise.race([closed, sleep(1000)]) : null);
  watchForSanitizerReports(name, () => state.output, settled);
  if (log) watchForSanitizerReports(`${name}, its log`, log, settled);
  state.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      state.exited = { code, signal };
      resolve(state.exited);
    });
  });
  // Stops the child by its PID; SIGKILL if it outlives `graceMs`. Resolves with how it
  // ended and how long that took.
  // A child started with { detached: true } leads its own process group and is
  // stopped with the group (make -> sh -> lighttpd -> proxy).
  // The group is stopped even when its leader has already gone: what it started may not.
  const target = options.detached ? -child.pid : child.pid;
  const groupAlive = () => { try { process.kill(-child.pid, 0); return true; } catch { return false; } };
  state.stop = async (signal = 'SIGTERM', graceMs = 5000) => {
    const started = Date.now();
    if (!state.exited || (options.detached && groupAlive())) {
      try { process.kill(target, signal); } catch {}
      const timer = setTimeout(() => { try { process.kill(target, 'SIGKILL'); } catch {} }, graceMs);
      await state.exitPromise;
      if (options.detached) await waitFor(() => !groupAlive(), 'the process group to end', graceMs + 1000).catch(() => {});
      clearTimeout(timer);
    }
    return { ...state.exited, ms: Date.now() - started };
  };
  return state;
}

// Environment for the proxy: only what the test gives, plus sanitizer settings.
export function proxyEnv(env) {
  return {
    PATH: process.env.PATH,
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0',
    UBSAN_OPTIONS: 'print_stacktrace=1',
    AZURE_OPENAI_PROXY_THREADS: '4',
    ...env,
  };
}

// `uid`: the proxy runs as that user and group id (setpriv), in a `dir` it may write to.
export async function startProxy(env, { dir = tempDir('proxy'), uid } = {}) {
  const socket = path.join(dir, 'proxy.sock');
  const asUser = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const [command, ...args] = [...asUser, PROXY_BIN, '--listen', socket];
  const proxy = startChild(command, args, { env: proxyEnv(env) });
  proxy.socket = socket;
  await waitFor(async () => proxy.exited || (fs.existsSync(socket) && await canConnect({ path: socket })),
    'the proxy socket');
  if (proxy.exited) throw new Error(`proxy exited at start: ${proxy.output}`);
  proxy.logs = () => proxy.output;
  // The access-log line follows the answer: wait for it rather than race it.
  proxy.waitForLog = async (pattern) => {
    let found;
    await waitFor(() => (found = proxy.output.split('\n').find((line) => pattern.test(line))), `log line ${pattern}`, 5000);
    return found;
  };
  return proxy;
}

// Sanitizer reports mean a memory or UB bug even when the answer looked right.
export function sanitizerReports(output) {
  return output.split('\n').filter((line) => /AddressSanitizer|LeakSanitizer|runtime error:/.test(line));
}

// What every started child writes (the proxy itself, or the web server or spawn-fcgi that
// passes its stderr on, or their log files) is read after each test: a sanitizer report
// fails the test during which it was written, or, written while suites stopped what they
// started, the file. One place for every way a test starts the proxy.
const watched = [];

function watchForSanitizerReports(name, text, settled) {
  watched.push({ name, text, settled, seen: 0 });
}

async function failOnSanitizerReports() {
  await Promise.all(watched.map((w) => w.settled()));
  const found = [];
  for (const w of watched) {
    const text = w.text();
    const end = text.lastIndexOf('\n') + 1;  // whole lines only; the rest is read next time
    if (end <= w.seen) continue;
    found.push(...sanitizerReports(text.slice(w.seen, end)).map((line) => `${w.name}: ${line}`));
    w.seen = end;
  }
  if (found.length) throw new Error(`sanitizer reports:\n${found.join('\n')}`);
}

// Only under the test runner (soak and bench import this file too).
if (process.env.NODE_TEST_CONTEXT) {
  afterEach(failOnSanitizerReports);
  after(failOnSanitizerReports);
}

export function lighttpdConfig({ port, socket, mount = '/', dir, extra = '' }) {
  const root = mount === '/';
  return `
server.modules += ("mod_fastcgi")
server.document-root = "${dir}"
server.bind = "127.0.0.1"
server.port = ${port}
server.stream-response-body = 2
server.stream-request-body = 0
server.max-request-size = 65536
fastcgi.server = ( "${mount}" => ((
  "socket" => "${socket}",
  "check-local" => "disable",
  ${root ? '"fix-root-scriptname" => "enable",' : ''}
)))
${extra}
`;
}

export async function startLighttpd({ socket, mount = '/', configText, env = {} } = {}) {
  const dir = tempDir('lighttpd');
  const port = await freePort();
  const config = path.join(dir, 'lighttpd.conf');
  fs.writeFileSync(config, configText ? configText({ port, dir }) : lighttpdConfig({ port, socket, mount, dir }));
  const server = startChild('lighttpd', ['-D', '-f', config], { env: { PATH: process.env.PATH, ...env } });
  await waitFor(async () => server.exited || canConnect({ host: '127.0.0.1', port }), 'lighttpd');
  if (server.exited) throw new Error(`lighttpd exited at start: ${server.output}`);
  server.port = port;
  server.url = `http://127.0.0.1:${port}`;
  server.dir = dir;
  return server;
}

// The web servers a host stands behind: how each is started in front of the proxy's
// socket (its `url` and `stop`), and what the proxy needs for it (hosts.mjs: NGINX, whose
// workers run as www-data and reach the socket only when it is theirs).
export const LIGHTTPD = { name: 'lighttpd', proxyEnv: {}, start: (socket) => startLighttpd({ socket }) };

// `web` (LIGHTTPD, or hosts.mjs's NGINX) in front of a proxy of `workers` processes
// sharing a state file of their own (`stateFile`, else a new one), with `env`; stop()
// fails on an unclean proxy exit.
export async function startHostBehind(web, { env, workers = 1, stateFile = path.join(tempDir('host'), 'state') }) {
  const dir = tempDir('proxy');
  fs.chmodSync(dir, 0o755);  // a web server's workers that are not root reach the socket in it
  const proxy = await startProxy({
    AZURE_OPENAI_PROXY_WORKERS: String(workers), AZURE_OPENAI_PROXY_THREADS: '2',
    AZURE_OPENAI_PROXY_STATE_FILE: stateFile, ...web.proxyEnv, ...env,
  }, { dir });
  const server = await web.start(proxy.socket);
  return {
    proxy, web: server, url: server.url, stateFile, logs: () => proxy.logs(),
    stop: async () => {
      await server.stop();
      const stopped = await proxy.stop();
      if (stopped.code !== 0) throw new Error(`the proxy exited with ${JSON.stringify(stopped)}`);
    },
  };
}

export const startHostBehindLighttpd = (options) => startHostBehind(LIGHTTPD, options);

// A suite's upstream stand-in and the host in front of it: `createMock()` is listening and
// `start(mock)` has started the host before the suite's tests, and both stop after them.
// The object returned holds them then: { mock, stack, client } (`clientFor(stack.url)`).
export function suiteHost(createMock, start, clientFor = () => null) {
  const suite = {};
  before(async () => {
    suite.mock = createMock();
    await suite.mock.listen();
    suite.stack = await start(suite.mock);
    suite.client = clientFor(suite.stack.url);
  });
  after(async () => {
    await suite.stack?.stop();
    await suite.mock?.close();
  });
  return suite;
}

// The usual chain: lighttpd -> proxy -> the local upstream (created by `createMock`).
// stop() stops all three and fails on an unclean proxy exit.
export async function startStack(createMock, env) {
  const mock = createMock();
  await mock.listen();
  const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...env });
  const web = await startLighttpd({ socket: proxy.socket });
  const stop = async () => {
    await web.stop();
    const stopped = await proxy.stop();
    await mock.close();
    if (stopped.code !== 0) throw new Error(`the proxy exited with ${JSON.stringify(stopped)}`);
  };
  return { mock, proxy, web, url: web.url, stop };
}

// A plain HTTP request; resolves with status, headers and the body as a Buffer.
export function request(url, { method = 'GET', headers = {}, body, path: rawPath } = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = http.request({
      host: target.hostname, port: target.port, method, headers,
      path: rawPath || target.pathname + target.search,
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let json;
        try { json = JSON.parse(raw.toString('utf8')); } catch {}
        resolve({ status: res.statusCode, headers: res.headers, body: raw, text: raw.toString('utf8'), json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A POST answered with a body too large to keep (a 100 MiB one): its status and length,
// counted as it streams.
export function answerLength(port, { headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => { bytes += chunk.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// How far a process's resident memory rose above where it was while `work` ran (sampled
// every 20 ms): what a big answer passing through it costs.
export async function rssRiseKiB(pid, work) {
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const start = rss();
  let peak = start;
  const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 20);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return peak - start;
}

export function postJson(url, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return request(url, {
    method: 'POST', body: text,
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-key', ...headers },
  });
}

// Opens a streaming request and reports each complete SSE event as it arrives.
export function openStream(url, body, headers = {}) {
  const target = new URL(url);
  const stream = { events: [], heartbeats: 0, raw: '', status: 0, headers: {}, waiters: [], ended: false };
  stream.done = new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname, port: target.port, method: 'POST', path: target.pathname,
      headers: { 'content-type': 'application/json', authorization: 'Bearer test-key', ...headers },
    }, (res) => {
      stream.status = res.statusCode;
      stream.headers = res.headers;
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        stream.raw += chunk;
        pending += chunk;
        let at;
        while ((at = pending.indexOf('\n\n')) >= 0) {
          const event = pending.slice(0, at);
          pending = pending.slice(at + 2);
          if (event.startsWith(':')) stream.heartbeats++;  // an SSE comment, not an event
          else stream.events.push(event);
        }
        stream.waiters = stream.waiters.filter((w) => (stream.events.length >= w.count ? (w.resolve(), false) : true));
      });
      res.on('end', () => { stream.ended = true; resolve(stream); });
      res.on('error', reject);
    });
    req.on('error', reject);
    stream.req = req;
    req.end(JSON.stringify(body));
  });
  // A dropped connection is what some tests cause on purpose; those that await
  // stream.done still see the rejection.
  stream.done.catch(() => {});
  // Leaves mid-stream, as a client that closes its tab: the connection is dropped.
  stream.abort = () => stream.req.destroy();
  // Resolves once `count` events have arrived; rejects after `timeoutMs`.
  stream.waitForEvents = (count, timeoutMs = 5000) => new Promise((resolve, reject) => {
    if (stream.events.length >= count) return resolve();
    const timer = setTimeout(() => reject(new Error(`event ${count} did not arrive within ${timeoutMs} ms (got ${stream.events.length})`)), timeoutMs);
    stream.waiters.push({ count, resolve: () => { clearTimeout(timer); resolve(); } });
  });
  return stream;
}

// Runs the curl command line tool without blocking the event loop (the local upstream
// runs in this process and must keep answering).
export function curl(args) {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '--max-time', '20', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// Streams a chat completion in lockstep: the upstream sends event i only once the client
// has received event i-1. Any buffering on the way stalls it; each stall is returned in
// `late` (empty when every event arrived before the next was sent).
export async function streamInLockstep(mock, url, body, headers = {}) {
  let stream;
  const late = [];
  mock.pace = async (index) => {
    if (index === 0) return;
    try { await stream.waitForEvents(index, 5000); } catch (error) { late.push(error.message); }
  };
  stream = openStream(url, body, { ...headers, 'x-mock-scenario': 'paced' });
  try {
    await stream.done;
  } finally {
    mock.pace = async () => {};
  }
  return { stream, late };
}

// FastCGI records as a web server writes them: BEGIN_REQUEST, PARAMS, an empty PARAMS,
// STDIN in records of at most 64 KiB, an empty STDIN (request id 1). `body` may be null
// for a request whose body is still to come (or never comes). `keep`: FCGI_KEEP_CONN,
// the web server means to send more requests on the connection.
export function fastcgiRequest(params, body = '', { keep = false } = {}) {
  const record = (type, content) => {
    const padding = (8 - (content.length % 8)) % 8;
    const header = Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 0xff, padding, 0]);
    return Buffer.concat([header, content, Buffer.alloc(padding)]);
  };
  const length = (n) => (n < 128 ? Buffer.from([n]) : Buffer.from([0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]));
  const pairs = Buffer.concat(Object.entries(params).map(([name, value]) => {
    const n = Buffer.from(name), v = Buffer.from(value);
    return Buffer.concat([length(n.length), length(v.length), n, v]);
  }));
  const records = [record(1, Buffer.from([0, 1, keep ? 1 : 0, 0, 0, 0, 0, 0]))];
  for (let at = 0; at < pairs.length; at += 65528) records.push(record(4, pairs.subarray(at, at + 65528)));
  records.push(record(4, Buffer.alloc(0)));
  if (body !== null) {
    const data = Buffer.from(body);
    for (let at = 0; at < data.length; at += 65528) records.push(record(5, data.subarray(at, at + 65528)));
    records.push(record(5, Buffer.alloc(0)));
  }
  return Buffer.concat(records);
}

// The records of one FastCGI answer: its CGI head and body (STDOUT), whether it ended
// with END_REQUEST, and each record's type and length.
function fastcgiAnswer(received) {
  let stdout = Buffer.alloc(0);
  const records = [];
  for (let at = 0; at + 8 <= received.length;) {
    const type = received[at + 1], length = received.readUInt16BE(at + 4), padding = received[at + 6];
    const content = received.subarray(at + 8, at + 8 + length);
    records.push({ type, length });
    if (type === 6) stdout = Buffer.concat([stdout, content]);
    at += 8 + length + padding;
  }
  const ended = records.some((r) => r.type === 3);
  const split = stdout.indexOf('\r\n\r\n');
  const head = split < 0 ? stdout.toString() : stdout.subarray(0, split).toString();
  const body = split < 0 ? Buffer.alloc(0) : stdout.subarray(split + 4);
  const status = Number((/^Status: (\d+)/m.exec(head) || [])[1] || 0);
  let json;
  try { json = JSON.parse(body.toString()); } catch {}
  return { status, head, body, text: body.toString(), json, ended, records };
}

// One FastCGI connection a test sends request after request on, as a web server that
// keeps its connections does. ask(bytes) resolves with the answer once END_REQUEST
// arrives (or the connection closes); `closed` resolves when the proxy closes it.
export function fastcgiConnection(socketPath, { timeoutMs = 10000 } = {}) {
  const socket = net.connect(socketPath);
  let received = Buffer.alloc(0), waiting = null, isClosed = false;
  const settle = () => {
    if (!waiting) return;
    const end = endRequestEnd(received);
    if (end < 0 && !isClosed) return;
    const answer = fastcgiAnswer(end < 0 ? received : received.subarray(0, end));
    received = end < 0 ? Buffer.alloc(0) : received.subarray(end);
    clearTimeout(waiting.timer);
    const { resolve } = waiting;
    waiting = null;
    resolve(answer);
  };
  const closed = new Promise((resolve) => socket.on('close', () => { isClosed = true; settle(); resolve(); }));
  socket.on('data', (d) => { received = Buffer.concat([received, d]); settle(); });
  socket.on('error', () => {});
  return {
    closed,
    isClosed: () => isClosed,
    ask: (bytes) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { waiting = null; reject(new Error('no FastCGI answer in time')); }, timeoutMs);
      waiting = { resolve, timer };
      socket.write(bytes);
    }),
    close: () => socket.end(),
  };
}

// Where the first END_REQUEST record ends, or -1.
function endRequestEnd(received) {
  for (let at = 0; at + 8 <= received.length;) {
    const length = received.readUInt16BE(at + 4), padding = received[at + 6];
    const next = at + 8 + length + padding;
    if (next > received.length) return -1;
    if (received[at + 1] === 3) return next;
    at = next;
  }
  return -1;
}

// Sends raw FastCGI bytes to the proxy's socket (its path, or net.connect options) and
// reads its answer: the CGI head and body from the STDOUT records, and whether the request
// ended with END_REQUEST (a request the proxy cut has none).
export function fastcgiExchange(socketPath, bytes, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.write(bytes));
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no FastCGI answer in time')); }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      resolve(fastcgiAnswer(received));
    };
    socket.on('data', (d) => { received = Buffer.concat([received, d]); });
    socket.on('end', finish);
    socket.on('error', (error) => (error.code === 'ECONNRESET' ? finish() : (clearTimeout(timer), reject(error))));
  });
}

// Sends exactly these bytes as an HTTP/1.1 request and reads the whole answer (chunked
// bodies decoded). Node's own client refuses most of what these cases need to send.
export function rawHttp(port, { method = 'POST', path = '/v1/chat/completions', headers = {}, body, chunked = false, timeoutMs = 20000 }) {
  const data = body === undefined ? null : Buffer.from(body);
  let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  if (data && chunked) head += 'Transfer-Encoding: chunked\r\n';
  else if (data) head += `Content-Length: ${data.length}\r\n`;
  const parts = [Buffer.from(head + '\r\n', 'latin1')];
  if (data && chunked) parts.push(Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n0\r\n\r\n'));
  else if (data) parts.push(data);
  return new Promise((resolve, reject) => {
    // No half-close: nginx takes a client's FIN for a client that left.
    const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat(parts)));
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no whole answer within ${timeoutMs} ms`)));
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const headText = raw.subarray(0, split < 0 ? raw.length : split).toString('latin1');
      let body = split < 0 ? Buffer.alloc(0) : raw.subarray(split + 4);
      const headersOut = {};
      for (const line of headText.split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headersOut[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      // Complete: the last chunk arrived, or as many bytes as Content-Length said.
      let complete = true;
      if (/chunked/i.test(headersOut['transfer-encoding'] || '')) ({ body, complete } = dechunk(body));
      else if (headersOut['content-length'] !== undefined) complete = body.length === Number(headersOut['content-length']);
      let json;
      try { json = JSON.parse(body.toString('utf8')); } catch {}
      resolve({ status: Number(headText.split(' ')[1]), headers: headersOut, body, json, raw, complete });
    });
  });
}

function dechunk(body) {
  const out = [];
  let complete = false;
  for (let at = 0; at < body.length;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(body.subarray(at, eol).toString(), 16);
    if (size === 0) { complete = true; break; }
    if (!size) break;
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 4 + size;
  }
  return { body: Buffer.concat(out), complete };
}


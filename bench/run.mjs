// `make bench`: the proxy's speed, cost and capacity, measured side by side in one run
// against the upstream itself and against nginx as a plain reverse proxy. See
// bench/README.md for what each number means. `--smoke` runs every phase briefly (what
// `make test` does: it checks the benchmark works, never how fast anything is).
//
// Usage: node bench/run.mjs [--smoke] [--out DIR] [--phases small,streams,realtime,instructions]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  CURL_FLOORS, GO_PROXY, GO_PROXY_NAME, GO_PROXY_NOT_RUN, STREAM_FLOORS, curlFloor, floorRatios, floorTable, goProxy,
  streamFloor, streamFloorTable,
} from './floors.mjs';
import { HANDSHAKE_LOG_FORMAT, countHandshakes, handshakeLines } from './handshakes.mjs';
import { instructionsFailures, instructionsPhase, instructionsTable } from './instructions.mjs';
import { realtimeFailures, realtimePhase, realtimeTable } from './realtime.mjs';
import { smallTargetsTable } from './small-targets.mjs';
import {
  ROOT, canConnect, descendants, freePort, sleep, startChild, tempDir, waitFor,
} from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const SMOKE = argv.includes('--smoke');
const OUT = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(ROOT, 'bench/results');
// --phases small,streams,realtime: only those (small requests, large transfers and SSE delay
// are "small"; many concurrent streams are "streams"; the WebSocket companion is "realtime";
// callgrind's count of a small request's instructions, the proxy's and its floors', is
// "instructions").
const ALL_PHASES = ['small', 'streams', 'realtime', 'instructions'];
const PHASES = argv.includes('--phases') ? argv[argv.indexOf('--phases') + 1].split(',') : ALL_PHASES;
const REALTIME = process.env.BENCH_REALTIME || path.join(ROOT, 'build/azure-openai-proxy-realtime');
const PROXY = process.env.BENCH_PROXY || path.join(ROOT, 'build/azure-openai-proxy');
const FLOOR = path.join(ROOT, 'build/bench-floor');
const NODE = process.execPath;

const S = SMOKE ? {
  warmupS: 1, wrkS: 1, connections: [16], straceS: 1,
  streams: [20], streamS: 2, eventMs: 250, delayStreams: 2, delayEvents: 20, promptBytes: 16384,
  bigMiB: 4, uploadMiB: 2, realtimeSessions: 50, realtimeHoldS: 1, realtimeChunks: 10,
} : {
  warmupS: 2, wrkS: 8, connections: [16, 64, 256], straceS: 3,
  streams: [1000, 2000], streamS: 30, eventMs: 250, delayStreams: 20, delayEvents: 250, promptBytes: 16384,
  bigMiB: 100, uploadMiB: 25, realtimeSessions: 1000, realtimeHoldS: 5, realtimeChunks: 100,
};
// BENCH_REALTIME_SESSIONS=500: the realtime phase's idle sessions.
if (process.env.BENCH_REALTIME_SESSIONS) S.realtimeSessions = Number(process.env.BENCH_REALTIME_SESSIONS);
// For quick experiments: BENCH_STREAMS=500 BENCH_STREAM_S=10 (counts and length of the streams phase),
// BENCH_TARGETS=proxy-behind-lighttpd-tls (only these paths' streams).
const chosen = (key) => !process.env.BENCH_TARGETS || process.env.BENCH_TARGETS.split(',').includes(key);
if (process.env.BENCH_STREAMS) S.streams = process.env.BENCH_STREAMS.split(',').map(Number);
if (process.env.BENCH_STREAM_S) S.streamS = Number(process.env.BENCH_STREAM_S);
const EVENT_BYTES = 128;
// The upstream's response head (about 500 bytes) and the first event go out at once;
// nginx's rate limit counts the head too.
const HEAD_ALLOWANCE = 640;
const TICK_US = 1e6 / 100;  // /proc/PID/stat counts CPU time in clock ticks (USER_HZ = 100)

// ---- /proc readings --------------------------------------------------------------------

function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]);  // utime + stime
    } catch {}
  }
  return total;
}

function statusKiB(pids, field) {
  let total = 0;
  for (const pid of pids) {
    try {
      const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
      if (match) total += Number(match[1]);
    } catch {}
  }
  return total;
}
const rssKiB = (pids) => statusKiB(pids, 'VmRSS');
const peakKiB = (pids) => statusKiB(pids, 'VmHWM');
// Writing 5 to clear_refs starts a new peak (VmHWM) from the current RSS.
function resetPeak(pids) {
  for (const pid of pids) try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch {}
}

// ---- child processes -------------------------------------------------------------------

function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function listening(child, port, what) {
  await waitFor(async () => child.exited || canConnect({ host: '127.0.0.1', port }), what, 15000);
  if (child.exited) throw new Error(`${what} exited at start: ${child.output}`);
}

function sharedDir(name) {
  const dir = tempDir(`bench-${name}`);
  fs.chmodSync(dir, 0o755);
  return dir;
}

// ---- the upstream: nginx serving Azure-shaped answers ------------------------------------

const CHAT_ANSWER = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-2024-11-20',
  choices: [{
    index: 0, finish_reason: 'stop', logprobs: null,
    message: { role: 'assistant', content: 'Hello there, how are you?', refusal: null },
    content_filter_results: Object.fromEntries(['hate', 'self_harm', 'sexual', 'violence'].map((k) => [k, { filtered: false, severity: 'safe' }])),
  }],
  prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
  system_fingerprint: 'fp_bench', usage: { prompt_tokens: 14, completion_tokens: 7, total_tokens: 21 },
});

// One event per EVENT_BYTES bytes, so nginx's rate limit releases one event at a time.
function streamFile(events) {
  const pad = (text) => `${text.padEnd(EVENT_BYTES - 2)}\n\n`;
  let out = pad('data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0}]}');
  for (let i = 1; i < events - 1; i++)
    out += pad(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t${i}"}}]}`);
  return out + pad('data: [DONE]');
}

function upstreamConfig({ dir, port, tlsPort, tlsStreamPort, stampPort, rate }) {
  // The file is read an event at a time (no sendfile): with sendfile, nginx sends a rate-limited
  // file in page-sized bursts (32 events at once, then 8 s of silence), not as a model streams.
  const sse = `default_type text/event-stream; limit_rate ${rate}; limit_rate_after ${HEAD_ALLOWANCE}; sendfile off; output_buffers 1 ${EVENT_BYTES};`;
  const headers = ['x-request-id', 'apim-request-id', 'x-ms-region', 'x-ratelimit-remaining-requests',
    'x-ratelimit-remaining-tokens', 'azureml-model-session', 'x-ms-rai-invoked', 'x-content-type-options']
    .map((h) => `add_header ${h} bench-value-0123456789 always;`).join(' ');
  // A POST to a static file is answered 405; error_page turns that into the file (as a GET).
  const answers = `
    root ${dir}/files;
    client_max_body_size 128m;
    ${headers}
    location ~ ^/openai/deployments/bench-stream/ { error_page 405 =200 /stream.sse; try_files /stream.sse =404; }
    location = /stream.sse { internal; ${sse} }
    location ~ ^/openai/deployments/bench-big/ { error_page 405 =200 /big.bin; try_files /big.bin =404; }
    location = /big.bin { internal; default_type application/octet-stream; }
    location ~ ^/openai/deployments/bench-stamp/ {
      proxy_pass http://127.0.0.1:${stampPort}; proxy_buffering off; proxy_http_version 1.1;
    }
    # What the proxy's Chat→Responses bridge sends: the stamp upstream's Responses stream.
    location ~ ^/openai/(v1/)?responses {
      proxy_pass http://127.0.0.1:${stampPort}; proxy_buffering off; proxy_http_version 1.1;
    }
    location ~ /audio/transcriptions$ { default_type application/json; return 200 '{"text":"bench"}'; }
    location / { default_type application/json; return 200 '${CHAT_ANSWER}'; }`;
  return `
worker_processes auto;
worker_rlimit_nofile 65536;
daemon off;
pid ${dir}/upstream.pid;
error_log ${dir}/upstream-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  ${HANDSHAKE_LOG_FORMAT}
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/upstream-body;
  # TLS as Azure serves it: the same answers on a port offering HTTP/2 and HTTP/1.1 (ALPN).
  ssl_certificate ${dir}/cert.pem;
  ssl_certificate_key ${dir}/key.pem;
  ssl_session_cache shared:bench:10m;
  ssl_protocols TLSv1.2 TLSv1.3;  # nginx before 1.23.4 offers no TLS 1.3 unless told
  server {
    listen 127.0.0.1:${port} backlog=4096;
    listen 127.0.0.1:${tlsPort} ssl http2 backlog=4096;${answers}
  }
  # For the streams phase: each event its own TLS record, as Azure sends them. nginx's
  # default 16 KiB buffer holds a rate-limited file's events back until it fills; a small
  # one everywhere would cut small answers into several records, as Azure does not.
  server {
    listen 127.0.0.1:${tlsStreamPort} ssl http2 backlog=4096;
    ssl_buffer_size ${EVENT_BYTES};${answers}
    access_log ${dir}/tls-stream-handshakes.log handshakes;  # full or resumed (handshakes.mjs)
  }
}
`;
}

async function startUpstream() {
  const dir = sharedDir('upstream');
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  const events = Math.round((S.streamS * 1000) / S.eventMs);
  fs.writeFileSync(path.join(files, 'stream.sse'), streamFile(events));
  const big = fs.openSync(path.join(files, 'big.bin'), 'w');
  fs.ftruncateSync(big, S.bigMiB << 20);
  fs.closeSync(big);
  fs.writeFileSync(path.join(dir, 'upload.bin'), Buffer.alloc(S.uploadMiB << 20, 'a'));
  const port = await freePort();
  const tlsPort = await freePort();
  const tlsStreamPort = await freePort();
  const stampPort = await freePort();
  // A certificate no system CA signed, for 127.0.0.1: the proxy is told to trust it
  // (AZURE_OPENAI_PROXY_CA_BUNDLE), as a corporate CA bundle is. RSA 2048, as Azure's.
  const made = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]);
  if (made.status !== 0) throw new Error(`openssl could not make the upstream's certificate: ${made.stderr}`);
  // Trusted as Azure's is: among the system's CA certificates (about 145), whose parsing
  // is part of what a new TLS connection may cost.
  const system = '/etc/ssl/certs/ca-certificates.crt';
  fs.writeFileSync(path.join(dir, 'ca-bundle.pem'),
    Buffer.concat([fs.existsSync(system) ? fs.readFileSync(system) : Buffer.alloc(0), fs.readFileSync(path.join(dir, 'cert.pem'))]));
  const stamp = startChild(NODE, [path.join(ROOT, 'bench/stamp-upstream.mjs'), String(stampPort), '20', String(S.delayEvents)]);
  await listening(stamp, stampPort, 'stamp upstream');
  const rate = Math.round((EVENT_BYTES * 1000) / S.eventMs);
  fs.writeFileSync(path.join(dir, 'upstream.conf'), upstreamConfig({ dir, port, tlsPort, tlsStreamPort, stampPort, rate }));
  const nginx = startChild('nginx', ['-c', path.join(dir, 'upstream.conf'), '-p', dir]);
  await listening(nginx, port, 'upstream nginx');
  return {
    url: `http://127.0.0.1:${port}`, tlsUrl: `https://127.0.0.1:${tlsPort}`, tlsStreamUrl: `https://127.0.0.1:${tlsStreamPort}`,
    ca: path.join(dir, 'ca-bundle.pem'), dir, events, handshakesLog: path.join(dir, 'tls-stream-handshakes.log'), upload: path.join(dir, 'upload.bin'),
    stop: async () => { await nginx.stop(); await stamp.stop(); },
  };
}

// ---- the paths under test --------------------------------------------------------------

const AZURE_PATH = (deployment, operation = 'chat/completions') =>
  `/openai/deployments/${deployment}/${operation}?api-version=2024-10-21`;

// The shipped lighttpd.conf on a free port, starting `program` (with `env`) itself.
async function behindLighttpd(program, env) {
  const dir = sharedDir(path.basename(program));
  const port = await freePort();
  const lighttpd = startChild('lighttpd', ['-D', '-f', path.join(ROOT, 'deploy/lighttpd/lighttpd.conf')], {
    env: {
      PATH: process.env.PATH, AOP_HTTP_HOST: '127.0.0.1', AOP_HTTP_PORT: String(port), AOP_RUN_DIR: dir,
      AOP_PROGRAM: program, AOP_PROCS: '1', ...env,
    },
  });
  await listening(lighttpd, port, `lighttpd starting ${path.basename(program)}`);
  const base = `http://127.0.0.1:${port}`;
  return {
    url: () => `${base}/v1/chat/completions`, uploadUrl: `${base}/v1/audio/transcriptions`,
    web: () => [lighttpd.pid], proxy: () => descendants(lighttpd.pid), stop: () => lighttpd.stop(),
    logs: () => lighttpd.output,
  };
}

// nginx as a plain reverse proxy to `to` (http:// or https://): kept connections, no
// buffering; over TLS, the certificate checked and sessions reused, as a careful operator
// would set it.
async function nginxReverseProxy(upstream, to) {
  const dir = sharedDir('nginx-rp');
  const port = await freePort();
  const tls = to.startsWith('https://');
  const tlsSettings = tls ? `proxy_ssl_trusted_certificate ${upstream.ca}; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_session_reuse on;` : '';
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes auto;
worker_rlimit_nofile 65536;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  client_max_body_size 128m;
  upstream azure { server ${to.replace(/^https?:\/\//, '')}; keepalive 256; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass ${tls ? 'https' : 'http'}://azure; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; ${tlsSettings}
    }
  }
}
`);
  const nginx = startChild('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
  await listening(nginx, port, 'nginx reverse proxy');
  const base = `http://127.0.0.1:${port}`;
  return {
    name: `nginx as a plain reverse proxy${tls ? ', TLS upstream (HTTP/1.1)' : ''}`, url: (model) => base + AZURE_PATH(model),
    uploadUrl: base + AZURE_PATH('whisper-1', 'audio/transcriptions'),
    web: () => [nginx.pid, ...descendants(nginx.pid)], proxy: () => [], stop: () => nginx.stop(),
  };
}

// Every path: `url(model)` and `uploadUrl` say where a client sends; `web()` and `proxy()`
// list the processes whose CPU and memory are the path's cost.
const TARGETS = {
  direct: async (upstream) => ({
    name: 'upstream directly', url: (model) => upstream.url + AZURE_PATH(model),
    uploadUrl: upstream.url + AZURE_PATH('whisper-1', 'audio/transcriptions'),
    web: () => [], proxy: () => [], stop: async () => {},
  }),

  'nginx-reverse-proxy': (upstream) => nginxReverseProxy(upstream, upstream.url),
  // The same with the TLS upstream (HTTP/1.1: nginx speaks no HTTP/2 to an upstream).
  'nginx-reverse-proxy-tls': (upstream) => nginxReverseProxy(upstream, upstream.tlsUrl),

  // The floor: the shipped lighttpd.conf starting a FastCGI program that answers the
  // upstream's chat answer itself (bench/floor.c). No FastCGI program behind lighttpd costs
  // less per request; small requests only.
  'floor-behind-lighttpd': async () => ({
    ...await behindLighttpd(FLOOR, { BENCH_FLOOR_BODY: CHAT_ANSWER }),
    name: 'the floor: a FastCGI program answering by itself, behind lighttpd', smallOnly: true,
  }),

  // As `make run` serves it: the shipped lighttpd.conf, which starts the proxy itself.
  'proxy-behind-lighttpd': async (upstream) => ({
    ...await behindLighttpd(PROXY, { AZURE_OPENAI_ENDPOINT: upstream.url }),
    name: 'the proxy behind lighttpd',
  }),
  // The same over TLS, as users reach Azure: HTTP/1.1 (the default), and HTTP/2 asked for
  // (AZURE_OPENAI_PROXY_UPSTREAM_HTTP=2).
  'proxy-behind-lighttpd-tls': async (upstream) => ({
    ...await behindLighttpd(PROXY, { AZURE_OPENAI_ENDPOINT: upstream.tlsUrl, AZURE_OPENAI_PROXY_CA_BUNDLE: upstream.ca }),
    name: 'the proxy behind lighttpd, TLS upstream (HTTP/1.1, the default)',
  }),
  'proxy-behind-lighttpd-tls-h2': async (upstream) => ({
    ...await behindLighttpd(PROXY, {
      AZURE_OPENAI_ENDPOINT: upstream.tlsUrl, AZURE_OPENAI_PROXY_CA_BUNDLE: upstream.ca, AZURE_OPENAI_PROXY_UPSTREAM_HTTP: '2',
    }),
    name: 'the proxy behind lighttpd, TLS upstream (HTTP/2)',
  }),

  // The Go program this project descends from, when BENCH_GO_PROXY names a build of it.
  ...(GO_PROXY ? { 'go-proxy': (upstream) => goProxy(upstream, false), 'go-proxy-tls': (upstream) => goProxy(upstream, true) } : {}),

  // The shipped nginx main configuration and site, the proxy on its own socket.
  'proxy-behind-nginx': async (upstream) => {
    const dir = sharedDir('nginx');
    const port = await freePort();
    const socket = path.join(dir, 'proxy.sock');
    const proxy = startChild(PROXY, ['--listen', socket], {
      env: { PATH: process.env.PATH, AZURE_OPENAI_ENDPOINT: upstream.url, AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: 'www-data:www-data' },
    });
    await waitFor(async () => proxy.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'proxy', 15000);
    const site = fs.readFileSync(path.join(ROOT, 'deploy/nginx/azure-openai-proxy.conf'), 'utf8')
      .replace('listen 80 default_server', `listen 127.0.0.1:${port} default_server`)
      .replaceAll('unix:/run/azure-openai-proxy/proxy.sock', `unix:${socket}`);
    fs.writeFileSync(path.join(dir, 'site.conf'), site);
    fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxMainConfig(dir, path.join(dir, 'site.conf')));
    const nginx = startChild('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
    await listening(nginx, port, 'nginx');
    const base = `http://127.0.0.1:${port}`;
    return {
      name: 'the proxy behind nginx', url: () => `${base}/v1/chat/completions`,
      uploadUrl: `${base}/v1/audio/transcriptions`,
      web: () => [nginx.pid, ...descendants(nginx.pid)], proxy: () => [proxy.pid, ...descendants(proxy.pid)],
      stop: async () => { await nginx.stop(); await proxy.stop(); },
    };
  },
};

// deploy/nginx/nginx.conf when it exists (the main configuration shipped for capacity),
// else Debian's defaults, with paths for a private run.
function nginxMainConfig(dir, site) {
  const shipped = path.join(ROOT, 'deploy/nginx/nginx.conf');
  let text = fs.existsSync(shipped) ? fs.readFileSync(shipped, 'utf8')
    : 'user www-data;\nworker_processes auto;\nevents { worker_connections 768; }\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n';
  text = text.replace(/^\s*include \/etc\/nginx\/sites-enabled\/\*;/m, `    include ${site};`)
    .replace(/^\s*(pid|error_log|access_log)\s[^;]*;\s*$/mg, '')
    .replace(/^\s*include \/etc\/nginx\/modules-enabled\/\*\.conf;\s*$/m, '');
  return `daemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n` +
    text.replace(/http\s*\{/, `http {\n    access_log off;\n    client_body_temp_path ${dir}/body;`);
}

// ---- phases ----------------------------------------------------------------------------

function parseWrk(text) {
  const number = (re) => { const m = text.match(re); return m ? Number(m[1]) : 0; };
  const ms = (label) => {
    const m = text.match(new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm'));
    if (!m) return null;
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  };
  return {
    requests: number(/(\d+) requests in/),
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50: ms('50'), p99: ms('99'),
    errors: number(/Non-2xx or 3xx responses: (\d+)/) +
      (text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)?.slice(1).reduce((a, b) => a + Number(b), 0) || 0),
  };
}

function wrk(url, connections, seconds, model = 'gpt-4o') {
  const target = new URL(url);
  return run('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', path.join(ROOT, 'bench/chat.lua'), target.origin],
    { BENCH_PATH: target.pathname + target.search, BENCH_MODEL: model });
}

// strace -c over the given processes while wrk runs: syscalls per request.
async function syscallsPerRequest(pids, url) {
  if (!pids.length) return null;
  const file = path.join(tempDir('bench-strace'), 'strace.txt');
  const tracer = startChild('strace', ['-c', '-f', '-o', file, ...pids.flatMap((p) => ['-p', String(p)])]);
  await sleep(500);
  const load = parseWrk((await wrk(url, 16, S.straceS)).stdout);
  await tracer.stop('SIGINT', 5000);
  const total = fs.readFileSync(file, 'utf8').match(/^\s*100\.00\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?total/m);
  return total && load.requests ? Number(total[1]) / load.requests : null;
}

async function smallRequests(target) {
  const url = target.url('gpt-4o');
  await wrk(url, 16, S.warmupS);
  const pids = () => [...target.web(), ...target.proxy()];
  resetPeak(pids());
  const rows = {};
  for (const connections of S.connections) {
    const before = { web: cpuTicks(target.web()), proxy: cpuTicks(target.proxy()) };
    const result = parseWrk((await wrk(url, connections, S.wrkS)).stdout);
    const us = (side) => (result.requests ? ((cpuTicks(target[side]()) - before[side]) * TICK_US) / result.requests : null);
    const split = { web: us('web'), proxy: us('proxy') };
    rows[connections] = { ...result, cpuUs: split, cpuUsPerRequest: pids().length && result.requests ? split.web + split.proxy : null };
  }
  const peak = peakKiB(pids());
  return {
    rows, peakRssKiB: peak || null,
    syscalls: { web: await syscallsPerRequest(target.web(), url), proxy: await syscallsPerRequest(target.proxy(), url) },
  };
}

async function streamsClient(url, model, count, expectEvents, timeoutS, stamps = false, promptBytes = 0) {
  const result = await run(NODE, [path.join(ROOT, 'bench/streams.mjs'), url, model, String(count),
    String(expectEvents), String(timeoutS), ...(stamps ? ['--stamps'] : [])], { PROMPT_BYTES: String(promptBytes) });
  try { return JSON.parse(result.stdout.trim().split('\n').pop()); } catch {
    return { streams: count, completed: 0, errors: { client: result.stderr.slice(0, 200) } };
  }
}

async function manyStreams(target, count, upstream, promptBytes = 0) {
  const pids = () => [...target.web(), ...target.proxy()];
  await sleep(500);
  const idle = rssKiB(pids());
  const idleSplit = { web: rssKiB(target.web()), proxy: rssKiB(target.proxy()) };
  resetPeak(pids());
  const before = { web: cpuTicks(target.web()), proxy: cpuTicks(target.proxy()) };
  const result = await streamsClient(target.url('bench-stream'), 'bench-stream', count, upstream.events - 1, S.streamS + 60, false, promptBytes);
  if (result.completed !== result.streams && target.logs) keepFailureLog(target, count, target.logs());
  const cpu = { web: (cpuTicks(target.web()) - before.web) / 100, proxy: (cpuTicks(target.proxy()) - before.proxy) / 100 };
  const peak = peakKiB(pids());
  const kib = { web: (peakKiB(target.web()) - idleSplit.web) / count, proxy: (peakKiB(target.proxy()) - idleSplit.proxy) / count };
  return { ...result, promptBytes, events: upstream.events, idleRssKiB: idle, kibPerStream: (peak - idle) / count, kib, cpuSeconds: cpu.web + cpu.proxy, cpu };
}

// A run that lost streams: the path's log lines other than its successful access lines, kept
// beside the results (the run's directories go when it ends) to say why.
function keepFailureLog(target, count, output) {
  const lines = output.split('\n').filter((line) => line && !/status=200 |"status":200/.test(line));
  const file = path.join(OUT, `failed-${target.key}-${count}.log`);
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(file, lines.slice(-2000).join('\n') + '\n');
  process.stderr.write(`bench: ${target.key}: ${lines.length} log lines of the failed run kept in ${file}\n`);
}

// One large transfer through the path: MB/s, and how much the proxy's and the web
// server's memory grew (peak during the transfer minus RSS before it).
async function bigTransfer(target, args) {
  const growth = {};
  const before = { web: rssKiB(target.web()), proxy: rssKiB(target.proxy()) };
  resetPeak([...target.web(), ...target.proxy()]);
  const result = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{size_upload} %{time_total}',
    '-H', 'Authorization: Bearer bench-key', '-H', 'api-key: bench-key', ...args]);
  const [status, down, up, seconds] = result.stdout.trim().split(' ').map(Number);
  for (const side of ['web', 'proxy']) {
    const pids = target[side]();
    growth[side] = pids.length ? peakKiB(pids) - before[side] : null;
  }
  return { status, mbPerS: (Math.max(down, up) / 1e6) / seconds, rssGrowthKiB: growth };
}

async function largeTransfers(target) {
  const big = await bigTransfer(target, ['-X', 'POST', '-H', 'Content-Type: application/json',
    '-d', '{"model":"bench-big","messages":[{"role":"user","content":"everything"}]}', target.url('bench-big')]);
  // A path without a transcription route (the Go program) has no upload to measure.
  const upload = target.uploadUrl ? await bigTransfer(target, ['-F', 'model=whisper-1', '-F', `file=@${target.uploadFile};type=audio/wav`, target.uploadUrl])
    : { status: null, mbPerS: null, rssGrowthKiB: { web: null, proxy: null } };
  return { big, upload };
}

// ---- report ----------------------------------------------------------------------------

const f = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));

function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown CPU';
  return `${os.cpus().length} cores (${cpu.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`;
}

function report(results) {
  const lines = [];
  // Rows with a FastCGI program: CPU as web server + program.
  const behindWebServer = (key) => key.startsWith('proxy-') || key.startsWith('floor-');
  const direct = results.small.direct?.rows || {};
  lines.push(`Measured ${results.date} on ${results.machine}; proxy at ${results.commit}${SMOKE ? ' (smoke run: numbers mean nothing)' : ''}.`, '');
  lines.push('**Small chat completions** (wrk, 2 threads; requests/s and the ratio to the upstream served directly; latency p50/p99 in ms; CPU µs per request of the whole path, and for a proxy path its split web server + proxy):', '');
  lines.push(`| path | ${S.connections.map((c) => `${c} conns: req/s (ratio) · p50/p99 · CPU µs`).join(' | ')} | syscalls/req web + proxy | peak RSS MiB |`);
  lines.push(`|---|${S.connections.map(() => '---').join('|')}|---|---|`);
  for (const [key, small] of Object.entries(results.small)) {
    const cells = S.connections.map((c) => {
      const r = small.rows[c];
      const ratio = direct[c]?.rps ? r.rps / direct[c].rps : null;
      const cpu = r.cpuUsPerRequest === null ? '–' : `${f(r.cpuUsPerRequest)}${behindWebServer(key) ? ` (${f(r.cpuUs.web)}+${f(r.cpuUs.proxy)})` : ''}`;
      return `${f(r.rps)} (${f(ratio, 2)}) · ${f(r.p50, 2)}/${f(r.p99, 2)} · ${cpu}${r.errors ? ` · ${r.errors} errors` : ''}`;
    });
    const sys = small.syscalls;
    lines.push(`| ${results.names[key]} | ${cells.join(' | ')} | ${f(sys.web, 1)} + ${f(sys.proxy, 1)} | ${f(small.peakRssKiB / 1024, 1)} |`);
  }
  if (!GO_PROXY) lines.push(`| ${GO_PROXY_NAME} | ${S.connections.map(() => GO_PROXY_NOT_RUN).join(' | ')} | – | – |`);
  lines.push(...smallTargetsTable(results, S.connections, f));
  lines.push(...floorTable(results, S.connections, f));
  lines.push(...instructionsTable(results.instructions, f));
  lines.push('', `**Delay each SSE event gains** (${S.delayStreams} streams, an event every 20 ms, stamped when written upstream; ms from write to arrival, and what the path adds to the upstream's own):`, '');
  lines.push('| path | p50 | p99 | added p50 | added p99 |', '|---|---|---|---|---|');
  const base = results.delay.direct?.delayMs || {};
  for (const [key, d] of Object.entries(results.delay)) {
    const ms = d.delayMs || {};
    lines.push(`| ${results.names[key]} | ${f(ms.p50, 3)} | ${f(ms.p99, 3)} | ${key === 'direct' ? '–' : f(ms.p50 - base.p50, 3)} | ${key === 'direct' ? '–' : f(ms.p99 - base.p99, 3)} |`);
  }
  const relayed = results.delay[BRIDGED_BESIDE]?.delayMs, bridged = results.delay[BRIDGED]?.delayMs;
  if (relayed && bridged)
    lines.push('', `Through the bridge (a Responses stream translated event by event) an event gains ${f(bridged.p50 - relayed.p50, 3)} ms (p50) and ${f(bridged.p99 - relayed.p99, 3)} ms (p99) more than through the plain relay of the same proxy.`);
  lines.push('', `**Concurrent ${S.streamS}-s streams** (an event of ${EVENT_BYTES} bytes every ${S.eventMs} ms; errors, memory per open stream, CPU seconds for the whole run (web server + proxy) and per event relayed, µs; time to first byte p50/p99 ms):`, '');
  lines.push('| path | streams | errors | KiB per stream | idle RSS MiB | CPU s | CPU µs per event | first byte p50/p99 |', '|---|---|---|---|---|---|---|---|');
  for (const [key, runs] of Object.entries(results.streams)) {
    for (const r of runs) {
      const errors = Object.entries(r.errors || {}).map(([k, v]) => `${v} ${k}`).join(', ') || '0';
      const cpu = `${f(r.cpuSeconds, 2)}${behindWebServer(key) ? ` (${f(r.cpu.web, 2)}+${f(r.cpu.proxy, 2)})` : ''}`;
      const kib = `${f(r.kibPerStream, 1)}${behindWebServer(key) ? ` (${f(r.kib.web, 1)}+${f(r.kib.proxy, 1)})` : ''}`;
      const name = `${results.names[key]}${r.promptBytes ? `, ${r.promptBytes / 1024} KiB prompts` : ''}`;
      const perEvent = r.completed && r.events ? (r.cpuSeconds * 1e6) / (r.completed * r.events) : null;
      lines.push(`| ${name} | ${r.streams} | ${errors} | ${kib} | ${f(r.idleRssKiB / 1024, 1)} | ${cpu} | ${f(perEvent, 1)} | ${f(r.firstByteMs?.p50, 1)}/${f(r.firstByteMs?.p99, 1)} |`);
    }
  }
  lines.push(...streamFloorTable(results, f), ...handshakeLines(results));
  lines.push('', `**Large transfers** (a ${S.bigMiB} MiB streamed answer, a ${S.uploadMiB} MiB upload; MB/s and RSS growth KiB, web server / proxy):`, '');
  lines.push('| path | answer MB/s | answer RSS growth | upload MB/s | upload RSS growth |', '|---|---|---|---|---|');
  for (const [key, t] of Object.entries(results.large)) {
    const g = (x) => `${f(x.rssGrowthKiB.web)} / ${f(x.rssGrowthKiB.proxy)}`;
    lines.push(`| ${results.names[key]} | ${f(t.big.mbPerS)}${t.big.status !== 200 ? ` (status ${t.big.status})` : ''} | ${g(t.big)} | ${f(t.upload.mbPerS)}${t.upload.status !== 200 && t.upload.status !== null ? ` (status ${t.upload.status})` : ''} | ${g(t.upload)} |`);
  }
  if (results.realtime) lines.push(...realtimeTable(results.realtime, f));
  return lines.join('\n') + '\n';
}

// ---- main ------------------------------------------------------------------------------

// The delay phase's row through the Chat→Responses bridge, measured on this path's proxy.
const BRIDGED_BESIDE = 'proxy-behind-lighttpd';
const BRIDGED = `${BRIDGED_BESIDE}-bridged`;

// The paths the concurrent streams run through: plain HTTP the reference, TLS what users have.
const STREAM_TARGETS = ['nginx-reverse-proxy', 'nginx-reverse-proxy-tls', 'proxy-behind-lighttpd',
  'proxy-behind-lighttpd-tls', 'proxy-behind-lighttpd-tls-h2', 'proxy-behind-nginx', ...(GO_PROXY ? ['go-proxy', 'go-proxy-tls'] : [])];

async function withTarget(key, upstream, names, work) {
  const target = await TARGETS[key](upstream);
  target.key = key;
  target.uploadFile = upstream.upload;
  names[key] = target.name;
  try { return await work(target); } finally { await target.stop(); }
}

async function main() {
  const commit = (await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
  const results = {
    date: new Date().toISOString().slice(0, 10), machine: machine(), commit, smoke: SMOKE, settings: S,
    names: {}, small: {}, delay: {}, streams: {}, large: {}, curlFloor: {}, floorRatios: {},
    goProxy: GO_PROXY ? 'run' : GO_PROXY_NOT_RUN,
  };
  // The realtime and instructions phases bring their own upstreams.
  const upstream = PHASES.some((p) => p !== 'realtime' && p !== 'instructions') ? await startUpstream() : null;
  const log = (text) => process.stderr.write(`bench: ${text}\n`);
  // The libcurl floor of a proxy row, right after that row's small requests: on a shared
  // machine the load changes within minutes, and the CPU a request costs with it.
  const curlFloorsOf = async (proxyRow) => {
    for (const [key, floor] of Object.entries(CURL_FLOORS)) {
      if (floor.proxyRow !== proxyRow) continue;
      log(`small transfers of the libcurl floor: ${key}`);
      results.curlFloor[key] = await curlFloor(key, upstream, (base) => base + AZURE_PATH('gpt-4o'), S, results.small, run);
      results.names[key] = `the libcurl floor, ${results.curlFloor[key].name}`;
    }
  };
  try {
    for (const key of PHASES.includes('small') ? Object.keys(TARGETS) : []) {
      log(`small requests and large transfers: ${key}`);
      await withTarget(key, upstream, results.names, async (target) => {
        results.small[key] = await smallRequests(target);
        await curlFloorsOf(key);
        if (target.smallOnly) return;
        results.large[key] = await largeTransfers(target);
        const stampUrl = key === 'direct' || key.startsWith('nginx-reverse-proxy') ? target.url('bench-stamp') : target.url();
        results.delay[key] = await streamsClient(stampUrl, 'bench-stamp', S.delayStreams, S.delayEvents, 60, true);
        if (key !== BRIDGED_BESIDE) return;
        // The same proxy, a Responses-only deployment (a name with "codex"): each event
        // through the Chat→Responses bridge, beside the plain relay's row.
        results.names[BRIDGED] = `${target.name}, through the Chat→Responses bridge`;
        results.delay[BRIDGED] = await streamsClient(target.url(), 'bench-stamp-codex', S.delayStreams, S.delayEvents, 60, true);
      });
    }
    results.floorRatios = floorRatios(results);
    // The floor of the streams at a count, over the same upstream ports as the proxy's rows.
    const floorRun = async (key, count) => {
      log(`${count} concurrent streams: ${key}`);
      results.names[key] = STREAM_FLOORS[key].name;
      (results.streams[key] ||= []).push(await countHandshakes(upstream.handshakesLog,
        () => streamFloor(key, upstream, (base) => base + AZURE_PATH('bench-stream'), count, S.streamS, run)));
    };
    const floorsRun = [];
    for (const key of PHASES.includes('streams') ? STREAM_TARGETS.filter(chosen) : []) {
      results.streams[key] = [];
      // Behind lighttpd also with prompts as a conversation with history sends them: a
      // stream must not hold its prompt while it waits.
      const runs = S.streams.map((count) => [count, 0]);
      if (key === 'proxy-behind-lighttpd') runs.push([S.streams[0], S.promptBytes]);
      // Each floor right after its proxy row at the same count: on a shared machine the
      // load changes within minutes. With the floor at the phase's end the TLS row read
      // 1.96x its floor (2026-12-06); four runs with the floor right after it, 1.01-1.21x.
      const floors = Object.keys(STREAM_FLOORS).filter((floor) => chosen(floor) && STREAM_FLOORS[floor].proxyRow === key);
      for (const [count, promptBytes] of runs) {
        log(`${count} concurrent streams${promptBytes ? ` with ${promptBytes}-byte prompts` : ''}: ${key}`);
        // A fresh path for each run, so its idle memory is measured clean.
        const streaming = { ...upstream, tlsUrl: upstream.tlsStreamUrl };
        results.streams[key].push(await countHandshakes(upstream.handshakesLog,
          () => withTarget(key, streaming, results.names, (t) => manyStreams(t, count, streaming, promptBytes))));
        if (!promptBytes) for (const floor of floors) await floorRun(floor, count);
      }
      floorsRun.push(...floors);
    }
    // A floor whose proxy row was not chosen (BENCH_TARGETS) runs on its own.
    for (const key of PHASES.includes('streams') ? Object.keys(STREAM_FLOORS).filter((k) => chosen(k) && !floorsRun.includes(k)) : [])
      for (const count of S.streams) await floorRun(key, count);
    if (PHASES.includes('realtime')) {
      results.realtime = await realtimePhase({
        companionBin: REALTIME, sessions: S.realtimeSessions, holdS: S.realtimeHoldS, chunks: S.realtimeChunks, log,
      });
    }
    if (PHASES.includes('instructions')) results.instructions = await instructionsPhase({ smoke: SMOKE, run, node: NODE, log });
  } finally {
    await upstream?.stop();
  }
  const table = report(results);
  fs.mkdirSync(OUT, { recursive: true });
  const name = SMOKE ? 'smoke' : 'latest';
  fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(OUT, `${name}.md`), table);
  process.stdout.write(table);
  // Only a full run of this tree's proxy into bench/results speaks for the README.
  if (!SMOKE && PHASES.length === ALL_PHASES.length && !argv.includes('--out') && !process.env.BENCH_PROXY) showInReadme(table);
  const problems = failures(results);
  if (problems.length) {
    process.stderr.write(`bench: the run went wrong:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

// The README's performance section shows the latest full run, between two markers.
function showInReadme(table) {
  const readme = path.join(ROOT, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const begin = '<!-- bench:begin -->', end = '<!-- bench:end -->';
  const from = text.indexOf(begin), to = text.indexOf(end);
  if (from < 0 || to < from) return;
  fs.writeFileSync(readme, `${text.slice(0, from + begin.length)}\n${table}${text.slice(to)}`);
}

// What makes a run worthless whatever its speed: errors, missing answers, lost events.
// (The smoke run in `make test` fails on these; it never judges speed.)
function failures(results) {
  const problems = [...(results.realtime ? realtimeFailures(results.realtime) : []), ...instructionsFailures(results.instructions)];
  for (const [key, small] of Object.entries(results.small))
    for (const [connections, row] of Object.entries(small.rows))
      if (!row.requests || row.errors) problems.push(`${key} at ${connections} connections: ${row.requests} requests, ${row.errors} errors`);
  for (const [key, floor] of Object.entries(results.curlFloor))
    for (const [inFlight, row] of [...Object.entries(floor.rows), ...Object.entries(floor.paced)])
      if (!row.transfers || row.errors) problems.push(`${key} at ${inFlight} in flight: ${row.transfers} transfers, ${row.errors} errors (${row.firstError})`);
  for (const [key, runs] of Object.entries(results.streams))
    for (const r of runs)
      if (r.completed !== r.streams) problems.push(`${key}: ${r.completed} of ${r.streams} streams completed (${JSON.stringify(r.errors)})`);
  for (const [key, d] of Object.entries(results.delay))
    if (d.completed !== d.streams) problems.push(`${key}: stamped streams ${d.completed} of ${d.streams} (${JSON.stringify(d.errors)})`);
  for (const [key, t] of Object.entries(results.large)) {
    if (t.big.status !== 200) problems.push(`${key}: large answer status ${t.big.status}`);
    if (t.upload.status !== 200 && t.upload.status !== null) problems.push(`${key}: upload status ${t.upload.status}`);
  }
  return problems;
}

await main();

// `make soak`: many mixed requests through lighttpd to the proxy and the local upstream
// -- small answers, streams read whole, streams abandoned, hostile requests, upstream
// faults, uploads -- then checks that the proxy's memory, threads and descriptors came
// back to where they were after the warm-up. Prints one summary line; exits 1 on a leak,
// an unexpected answer or a sanitizer report.
//
// SOAK_REQUESTS (default 50000), SOAK_CONCURRENCY (32); PROXY_BIN picks the program
// (harness.mjs reads it at import: `make soak` sets the release build).
import fs from 'node:fs';
import http from 'node:http';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { sanitizerReports, sleep, startLighttpd, startProxy } from '../integration/harness.mjs';

const TOTAL = Number(process.env.SOAK_REQUESTS || 50000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY || 32);
const WARMUP = Math.min(2000, Math.floor(TOTAL / 10));
const KEY = 'sk-soak-client-key';
const SERVER_KEY = 'soak-azure-key';

const chat = (extra = {}) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'soak' }], ...extra });
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const upload = () => {
  const body = `--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n${'w'.repeat(20000)}\r\n--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--\r\n`;
  return { path: '/v1/audio/transcriptions', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'multipart/form-data; boundary=b' }, body };
};

// Each kind of request: what to send, what status to expect, how to read the answer.
const KINDS = [
  [50, 'small', () => ({ body: chat() }), [200]],
  [15, 'stream', () => ({ body: chat({ stream: true }) }), [200]],
  [10, 'abandoned stream', () => ({ body: chat({ stream: true }), headers: { ...auth, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '50' }, abandon: true }), [200]],
  [3, 'no key', () => ({ body: chat(), headers: { 'content-type': 'application/json' } }), [401]],
  [2, 'bad json', () => ({ body: '{"model":"gpt-4o",' }), [400]],
  [2, 'duplicate model', () => ({ body: '{"model":"gpt-4o","model":"x"}' }), [400]],
  [1, 'method', () => ({ method: 'PUT', path: '/v1/files/x', body: 'x' }), [405]],
  [1, 'path', () => ({ method: 'GET', path: '/v1/files/a%2fb' }), [400]],
  [2, 'rate limited', () => ({ body: chat(), headers: { ...auth, 'x-mock-scenario': 'rate-limit' } }), [429]],
  [2, 'broken stream', () => ({ body: chat({ stream: true }), headers: { ...auth, 'x-mock-scenario': 'reset-mid-stream' } }), [200]],
  [7, 'upload', upload, [200]],
  [5, 'models', () => ({ method: 'GET', path: '/v1/models' }), [200]],
];
const WHEEL = KINDS.flatMap(([weight, , make, statuses], index) => Array(weight).fill([index, make, statuses]));

function send(port, agent, { method = 'POST', path: target = '/v1/chat/completions', headers = auth, body, abandon }) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent }, (res) => {
      if (abandon) {
        res.once('data', () => { req.destroy(); resolve(res.statusCode); });
        return;
      }
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(res.statusCode));  // a cut stream: its status counts
      res.on('aborted', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function sample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)[1]);
  return { rssKiB: field('VmRSS'), threads: field('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

const mock = createAzureMock({ apiKey: SERVER_KEY });
await mock.listen();
const proxy = await startProxy({
  AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: SERVER_KEY,
  AZURE_OPENAI_PROXY_API_KEYS: `soak:${KEY}`, AZURE_OPENAI_PROXY_THREADS: '2',
});
const web = await startLighttpd({ socket: proxy.socket });
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const counts = KINDS.map(() => 0);
const wrong = [];
let next = 0, baseline = null;
const started = Date.now();
try {
  const worker = async () => {
    while (next < TOTAL) {
      const n = next++;
      if (n === WARMUP) { await sleep(500); baseline = sample(proxy.pid); }
      const [index, make, statuses] = WHEEL[(n * 7919) % WHEEL.length];
      const status = await send(web.port, agent, make());
      counts[index]++;
      if (!statuses.includes(status) && wrong.length < 20) wrong.push(`${KINDS[index][1]}: ${status}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
  await sleep(2000);  // abandoned streams noticed, idle connections settled
  const end = sample(proxy.pid);
  baseline ||= end;
  const seconds = (Date.now() - started) / 1000;
  const problems = [...wrong];
  if (end.threads > baseline.threads) problems.push(`threads ${baseline.threads} -> ${end.threads}`);
  if (end.fds > baseline.fds + 4) problems.push(`descriptors ${baseline.fds} -> ${end.fds}`);
  if (end.rssKiB - baseline.rssKiB > 16 * 1024) problems.push(`RSS ${baseline.rssKiB} -> ${end.rssKiB} KiB`);
  const reports = sanitizerReports(proxy.logs());
  if (reports.length) problems.push(...reports.slice(0, 5));
  console.log(`soak: ${TOTAL} requests in ${seconds.toFixed(0)} s (${KINDS.map(([, name], i) => `${counts[i]} ${name}`).join(', ')}); ` +
    `proxy after warm-up -> end: RSS ${baseline.rssKiB} -> ${end.rssKiB} KiB, threads ${baseline.threads} -> ${end.threads}, descriptors ${baseline.fds} -> ${end.fds}`);
  if (problems.length) {
    console.log(`soak: FAILED\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  }
} finally {
  await web.stop();
  await proxy.stop();
  await mock.close();
}

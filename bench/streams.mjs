// The many-streams client of `make bench`: opens COUNT streamed chat completions at once
// (in batches of 100 every 50 ms), reads each to its end and prints one JSON line:
// { streams, completed, errors, firstByteMs: {p50, p99}, delayMs: {p50, p99} | null }.
//
// A stream counts as an error when its status is not 200, it ends with fewer than
// EXPECT_EVENTS events, the connection fails, or it is not over within TIMEOUT_S.
// With --stamps, each event carries the time it was written upstream ({"t":ms}, or through
// the Chat→Responses bridge a chunk whose content is "@ms") and the client reports how long
// events took to arrive.
//
// Usage: [PROMPT_BYTES=N] node streams.mjs URL MODEL COUNT EXPECT_EVENTS TIMEOUT_S [--stamps]
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const [url, model, countText, expectText, timeoutText, mode] = process.argv.slice(2);
const count = Number(countText);
const expectEvents = Number(expectText);
const timeoutMs = Number(timeoutText) * 1000;
const stamps = mode === '--stamps';
const now = () => performance.timeOrigin + performance.now();
const target = new URL(url);
// PROMPT_BYTES (environment): a longer prompt, as a conversation with history sends.
const prompt = 'Tell me a story.'.padEnd(Number(process.env.PROMPT_BYTES || 0), ' Once upon a time.');
const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: prompt }] });

const firstBytes = [];
const delays = [];
let completed = 0;
const errors = {};
const fail = (why) => { errors[why] = (errors[why] || 0) + 1; };

// The time an event was written upstream, or 0: {"t":ms} as the stamp upstream writes it,
// or a chat chunk whose content the bridge made of a Responses delta "@ms".
function stampOf(event) {
  if (event.startsWith('data: {"t":')) return JSON.parse(event.slice(6)).t;
  const bridged = /"content":"@([\d.]+)"/.exec(event);
  return bridged ? Number(bridged[1]) : 0;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function openStream() {
  return new Promise((resolve) => {
    const started = now();
    let events = 0;
    let pending = '';
    let settled = false;
    const settle = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (why) fail(why);
      else completed++;
      resolve();
    };
    const req = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent: false,
      headers: {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
        authorization: 'Bearer bench-key', 'api-key': 'bench-key',
      },
    }, (res) => {
      if (res.statusCode !== 200) { res.resume(); settle(`status ${res.statusCode}`); return; }
      res.setEncoding('utf8');
      res.once('data', () => firstBytes.push(now() - started));
      res.on('data', (chunk) => {
        const arrived = now();
        pending += chunk;
        let at;
        while ((at = pending.indexOf('\n\n')) >= 0) {
          const event = pending.slice(0, at);
          pending = pending.slice(at + 2);
          if (!event.startsWith('data:')) continue;  // SSE comments (heartbeats)
          events++;
          const stamp = stamps && stampOf(event);
          if (stamp) delays.push(arrived - stamp);
        }
      });
      res.on('end', () => settle(events >= expectEvents ? null : `ended after ${events < 10 ? events : '10+'} events`));
      res.on('error', () => settle('response error'));
    });
    const timer = setTimeout(() => { req.destroy(); settle('timeout'); }, timeoutMs);
    req.on('error', (error) => settle(`connection ${error.code || error.message}`));
    req.end(body);
  });
}

const running = [];
for (let i = 0; i < count; i += 100) {
  for (let j = i; j < Math.min(count, i + 100); j++) running.push(openStream());
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await Promise.all(running);
firstBytes.sort((a, b) => a - b);
delays.sort((a, b) => a - b);
const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
console.log(JSON.stringify({
  streams: count, completed, errors,
  firstByteMs: { p50: round(percentile(firstBytes, 50)), p99: round(percentile(firstBytes, 99)) },
  delayMs: stamps ? { p50: round(percentile(delays, 50)), p99: round(percentile(delays, 99)), samples: delays.length } : null,
}));

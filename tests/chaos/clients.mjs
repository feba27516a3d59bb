// The clients of the fault run: a few loops that keep sending chat requests, streams and
// embeddings through lighttpd with their keys, each answer judged whole, and the ledger
// that keeps every request's outcome with its start and end.
import http from 'node:http';

// Client keys, with limits high enough never to refuse these clients: they are there so
// that every request takes and gives back a key's slots in the shared state.
export const KEYS = {
  alice: 'sk-chaos-alice-0123456789',
  bob: 'sk-chaos-bob-0123456789',
  carol: 'sk-chaos-carol-0123456789',
};
export const KEY_LIMITS = {
  alice: { requests_per_minute: 1000000, tokens_per_minute: 100000000, concurrent: 64 },
  bob: { requests_per_minute: 1000000, concurrent: 64, models: ['gpt-4o-mini', 'text-embedding-3-small'] },
  carol: { tokens_per_minute: 100000000, concurrent: 64 },
};

// The models the routing file serves, the kinds of request each takes, and the keys that
// may use it. gpt-trial has one target, whose circuit the trial fault opens.
export const MODELS = {
  'gpt-4o': { kinds: ['chat', 'stream'], keys: ['alice', 'carol'] },
  'gpt-4o-mini': { kinds: ['chat', 'stream'], keys: ['alice', 'bob', 'carol'] },
  'text-embedding-3-small': { kinds: ['embeddings'], keys: ['alice', 'bob', 'carol'] },
  'gpt-trial': { kinds: ['chat'], keys: ['alice', 'carol'] },
};

// The loops that run while faults arrive: each sends one request at a time, then pauses.
export const LOOPS = [
  { key: 'alice', model: 'gpt-4o', kind: 'chat', pauseMs: 30 },
  { key: 'bob', model: 'gpt-4o-mini', kind: 'chat', pauseMs: 30 },
  { key: 'carol', model: 'gpt-4o', kind: 'stream', pauseMs: 30 },
  { key: 'bob', model: 'gpt-4o-mini', kind: 'stream', pauseMs: 30 },
  { key: 'carol', model: 'text-embedding-3-small', kind: 'embeddings', pauseMs: 30 },
  { key: 'alice', model: 'gpt-trial', kind: 'chat', pauseMs: 250 },
];

const STREAM_EVENT_DELAY_MS = 20;  // the upstream's pace: a stream lasts about a quarter second

function requestFor({ key, model, kind }) {
  const headers = { authorization: `Bearer ${KEYS[key]}`, 'content-type': 'application/json' };
  if (kind === 'embeddings')
    return { path: '/v1/embeddings', headers, body: JSON.stringify({ model, input: ['chaos', 'run'] }) };
  const body = { model, messages: [{ role: 'user', content: 'chaos run' }] };
  if (kind === 'stream') {
    body.stream = true;
    headers['x-mock-delay-ms'] = String(STREAM_EVENT_DELAY_MS);
  }
  return { path: '/v1/chat/completions', headers, body: JSON.stringify(body) };
}

// An error answer in a few words: its code and message when it has OpenAI's shape.
function errorOf(text) {
  try {
    const { error } = JSON.parse(text);
    if (error?.message) return `${error.code || error.type || ''}: ${error.message}`;
  } catch {}
  return text.slice(0, 160);
}

// Whether an answer is whole: a 200 with the body its kind promises; a stream that ended
// with [DONE], carried no error event and was not cut.
function judge(kind, status, text, cut) {
  if (status !== 200) return `status ${status} ${errorOf(text)}`;
  if (cut) return `cut after ${text.length} bytes`;
  if (kind === 'stream') {
    if (/^event: error/m.test(text)) return 'error event in the stream';
    return text.includes('data: [DONE]') ? null : 'stream ended without [DONE]';
  }
  let json;
  try { json = JSON.parse(text); } catch { return `not JSON: ${text.slice(0, 80)}`; }
  const whole = kind === 'embeddings' ? json.data?.[0]?.embedding : json.choices?.[0]?.message;
  return whole ? null : `no ${kind === 'embeddings' ? 'embedding' : 'message'} in the answer`;
}

// Sends one request and resolves (never rejects) with its outcome.
export function send(base, what, { agent, timeoutMs }) {
  const target = new URL(base);
  const { path, headers, body } = requestFor(what);
  const start = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status, text, why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...what, start, end: Date.now(), status, ok: !why, why });
    };
    const req = http.request({ host: target.hostname, port: target.port, method: 'POST', path, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => finish(res.statusCode, text, judge(what.kind, res.statusCode, text, !res.complete)));
      res.on('aborted', () => finish(res.statusCode, text, judge(what.kind, res.statusCode, text, true)));
      res.on('error', () => finish(res.statusCode, text, judge(what.kind, res.statusCode, text, true)));
    });
    const timer = setTimeout(() => { req.destroy(); finish(0, '', `no whole answer within ${timeoutMs} ms`); }, timeoutMs);
    req.on('error', (error) => finish(0, '', `connection: ${error.code || error.message}`));
    req.end(body);
  });
}

// Every request's outcome, by phase; failures kept whole, successes counted.
export function createLedger() {
  const ledger = {
    phase: 'warm-up',
    counts: {},    // phase -> { sent, failed }
    failures: [],  // { phase, key, model, kind, start, end, status, why }
    record(outcome, phase = ledger.phase) {
      const count = (ledger.counts[phase] ||= { sent: 0, failed: 0 });
      count.sent++;
      if (outcome.ok) return;
      count.failed++;
      ledger.failures.push({ phase, ...outcome });
    },
  };
  return ledger;
}

// Starts every loop of LOOPS; stop() resolves once each has finished its request.
export function startClients(base, ledger, { timeoutMs }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOOPS.length });
  let running = true;
  const loops = LOOPS.map(async (loop) => {
    while (running) {
      ledger.record(await send(base, loop, { agent, timeoutMs }));
      await new Promise((resolve) => setTimeout(resolve, loop.pauseMs * (0.5 + Math.random())));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

// Every model with every key that may use it and every kind it takes, `rounds` times
// (so that each worker is likely asked): the outcomes, in order.
export async function sweep(base, { rounds, timeoutMs }) {
  const agent = new http.Agent({ keepAlive: false });
  const outcomes = [];
  for (let round = 0; round < rounds; round++)
    for (const [model, { kinds, keys }] of Object.entries(MODELS))
      for (const key of keys)
        for (const kind of kinds) outcomes.push(await send(base, { key, model, kind }, { agent, timeoutMs }));
  return outcomes;
}

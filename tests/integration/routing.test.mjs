// A model spread over several upstreams (AZURE_OPENAI_PROXY_CONFIG), across 4 worker
// processes behind lighttpd: failover on a 429 and on a refused connection, cooldowns that
// expire on time and are shared by every process, priority spill-over only when the first
// group is full, no retry once a stream reached the client, per-key limits that hold
// across processes, token usage, /healthz, and /metrics read with a Prometheus parser.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  PROXY_BIN, clearOfMinuteEdge, fastcgiExchange, fastcgiRequest, freePort, proxyEnv, rawHttp, sleep, startLighttpd, startProxy,
  startStack, tempDir, waitFor,
} from './harness.mjs';

const UPSTREAM_KEY = 'upstream-key';
const KEYS = {
  main: 'sk-main-0123456789', alice: 'sk-alice-0123456789', bob: 'sk-bob-0123456789', carol: 'sk-carol-0123456789',
  old: 'sk-old-0123456789', tina: 'sk-tina-0123456789', admin: 'sk-admin-0123456789',
};
const chat = (model, extra = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi there' }], ...extra });
const as = (key, extra = {}) => ({ authorization: `Bearer ${KEYS[key]}`, 'content-type': 'application/json', ...extra });

function routingFile(dir, { limited, healthy, spare, downPort }) {
  const keyFile = path.join(dir, 'healthy.key');
  fs.writeFileSync(keyFile, `${UPSTREAM_KEY}\n`);
  const config = {
    endpoints: {
      limited: { url: limited.url, key: 'env:UPSTREAM_KEY' },
      down: { url: `http://127.0.0.1:${downPort}`, key: 'env:UPSTREAM_KEY' },
      healthy: { url: healthy.url, key: `file:${keyFile}` },
      spare: { url: spare.url, key: 'env:UPSTREAM_KEY', priority: 1 },
      oai: { url: healthy.url, key: 'sk-test-openai', mode: 'openai' },
    },
    models: {
      'gpt-4o': ['limited', 'down', 'healthy', 'spare'],
      'gpt-4o-mini': [{ endpoint: 'healthy', deployment: 'gpt-4o-mini' }, 'spare/gpt-4o-mini'],
      'whisper-1': ['limited', { endpoint: 'healthy', priority: 1 }],
      'gpt-5-at-openai': ['oai/gpt-5'],
    },
    keys: {
      main: { key: 'env:KEY_MAIN' },
      alice: { key: 'env:KEY_ALICE', requests_per_minute: 5 },
      bob: { key: 'env:KEY_BOB', concurrent: 1 },
      carol: { key: 'env:KEY_CAROL', models: ['gpt-4o-mini'] },
      old: { key: 'env:KEY_OLD', expires: '2020-01-01' },
      tina: { key: 'env:KEY_TINA', tokens_per_minute: 30 },
    },
    retry: { max_tries: 4, circuit_failures: 1, circuit_open_seconds: 30, cooldown_cap_seconds: 60 },
  };
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const KEY_ENV = {
  UPSTREAM_KEY, KEY_MAIN: KEYS.main, KEY_ALICE: KEYS.alice, KEY_BOB: KEYS.bob, KEY_CAROL: KEYS.carol, KEY_OLD: KEYS.old,
  KEY_TINA: KEYS.tina,
};

// Parsed by the Prometheus Python client's parser (it throws on a malformed page).
// value(): a sample's value summed over the series whose labels match; a histogram's by
// its _count.
function metricsOf(text) {
  const families = JSON.parse(execFileSync('/usr/bin/python3', [path.join(import.meta.dirname, 'parse-metrics.py')], { input: text }));
  const value = (name, labels = {}) => {
    const family = families.find((f) => f.name === name);
    if (!family) return 0;
    const sampleName = family.type === 'histogram' ? `${name}_count` : family.type === 'counter' ? `${name}_total` : name;
    return family.samples
      .filter((s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  };
  return { families, value, text };
}

describe('routing, failover and limits across 4 processes', () => {
  let limited, healthy, spare, proxy, web, dir, stateFile, downPort;
  const sent = { ok: 0 };
  before(async () => {
    dir = tempDir('routing');
    [limited, healthy, spare] = [0, 1, 2].map(() => createAzureMock({ apiKey: UPSTREAM_KEY }));
    for (const mock of [limited, healthy, spare]) await mock.listen();
    limited.scenario = 'rate-limit';
    limited.retryAfterMs = 3000;
    downPort = await freePort();
    stateFile = path.join(dir, 'state');
    const config = routingFile(dir, { limited, healthy, spare, downPort });
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: config,
      AZURE_OPENAI_PROXY_WORKERS: '4', AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_STATE_FILE: stateFile,
      AZURE_OPENAI_PROXY_ADMIN_KEYS: `ops:${KEYS.admin}`, AZURE_OPENAI_PROXY_CONNECT_TIMEOUT: '2', ...KEY_ENV,
    });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    const stopped = await proxy?.stop();
    for (const mock of [limited, healthy, spare]) await mock?.close();
    assert.equal(stopped?.code, 0, proxy?.logs());
    assert.ok(!fs.existsSync(stateFile), 'the last worker to stop removed the state file');
  });

  const post = (model, key = 'main', extra = {}, body = chat(model)) => rawHttp(web.port, { headers: as(key, extra), body });
  const metrics = async () => metricsOf((await rawHttp(web.port, { method: 'GET', path: '/metrics' })).body.toString());

  it('answers every request through the healthy target: the 429 and the refused one are each tried once', async () => {
    for (let i = 0; i < 24; i++) {
      const res = await post('gpt-4o');
      assert.equal(res.status, 200, res.body.toString());
      assert.equal(JSON.parse(res.body).model, 'gpt-4o');
      sent.ok++;
    }
    assert.equal(healthy.requests.length, 24);
    // A 429 cools the target down for every process: one request saw it, not one per worker.
    assert.equal(limited.requests.length, 1);
    assert.equal(spare.requests.length, 0, 'the second priority group is not used while the first has room');
    const m = await metrics();
    assert.equal(m.value('aop_upstream_tries', { target: 'down/gpt-4o', result: 'failed' }), 1);
    assert.equal(m.value('aop_upstream_tries', { target: 'limited/gpt-4o', result: 'rate_limited' }), 1);
    assert.equal(m.value('aop_target_circuit_open', { target: 'down/gpt-4o' }), 1);
    assert.ok(m.value('aop_target_cooldown_seconds', { target: 'limited/gpt-4o' }) > 0);
    assert.equal(m.value('aop_target_ratelimit_remaining_requests', { target: 'limited/gpt-4o' }), 0);
    const line = await proxy.waitForLog(/target=healthy\/gpt-4o tries=\d/);
    assert.match(line, /status=200/);
  });

  it('tries the cooled-down target again once its retry-after has passed, not before', async () => {
    const since = limited.requests.length;
    const firstSeen = limited.requests[0] ? Date.now() : 0;
    await waitFor(async () => (await metrics()).value('aop_target_cooldown_seconds', { target: 'limited/gpt-4o' }) === 0,
      'the cooldown to expire', 5000);
    assert.ok(firstSeen);
    for (let i = 0; i < 30 && limited.requests.length === since; i++) {
      assert.equal((await post('gpt-4o')).status, 200);
      sent.ok++;
    }
    assert.equal(limited.requests.length, since + 1, 'tried again after its cooldown');
  });

  it('spills over to the next priority group only when the first is full, then answers 429 with the shortest wait', async () => {
    healthy.scenario = 'rate-limit';
    healthy.retryAfterMs = 2000;
    try {
      const res = await post('gpt-4o');
      assert.equal(res.status, 200, res.body.toString());
      sent.ok++;
      assert.equal(spare.requests.length, 1, 'the spare group took it');
      spare.scenario = 'rate-limit';
      spare.retryAfterMs = 60000;
      const refused = await post('gpt-4o');
      assert.equal(refused.status, 429, refused.body.toString());
      const error = JSON.parse(refused.body).error;
      assert.equal(error.code, 'rate_limit_exceeded');
      assert.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 3,
        `the shortest cooldown left: ${refused.headers['retry-after']}`);
      // Every target cooling: the next request is answered at once, no upstream asked.
      const before = [limited, healthy, spare].map((m) => m.requests.length);
      const again = await post('gpt-4o');
      assert.equal(again.status, 429);
      assert.deepEqual([limited, healthy, spare].map((m) => m.requests.length), before);
    } finally {
      healthy.scenario = '';
      spare.scenario = '';
    }
  });

  it('never retries a stream whose first byte reached the client', async () => {
    await waitFor(async () => (await metrics()).value('aop_target_cooldown_seconds', { target: 'healthy/gpt-4o-mini' }) === 0
      && (await metrics()).value('aop_target_cooldown_seconds', { target: 'healthy/gpt-4o' }) === 0, 'cooldowns', 5000);
    const spareBefore = spare.requests.length;
    const res = await post('gpt-4o-mini', 'main', { 'x-mock-scenario': 'reset-mid-stream' }, chat('gpt-4o-mini', { stream: true }));
    assert.match(res.body.toString(), /event: error/);
    assert.equal(res.complete, false, 'the client sees the stream cut');
    assert.equal(spare.requests.length, spareBefore, 'the spare target was not asked');
    sent.ok++;  // its head said 200
  });

  it('holds a key to its requests per minute across the processes', async () => {
    await clearOfMinuteEdge(10000);
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await post('gpt-4o-mini', 'alice'));
    const codes = results.map((r) => r.status);
    assert.deepEqual(codes.filter((c) => c === 200).length, 5, codes.join(','));
    const refused = results.find((r) => r.status === 429);
    assert.equal(JSON.parse(refused.body).error.code, 'rate_limit_exceeded');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal(refused.headers['x-ratelimit-limit-requests'], '5');
    assert.equal(refused.headers['x-ratelimit-remaining-requests'], '0');
    assert.equal(results[0].headers['x-ratelimit-remaining-requests'], '4');
    sent.ok += 5;
  });

  it('holds a key to its concurrent requests', async () => {
    const stream = rawHttp(web.port, { headers: as('bob', { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '400' }), body: chat('gpt-4o-mini', { stream: true }) });
    // (healthy/gpt-4o-mini's circuit is open since the broken stream: spare takes it)
    await waitFor(() => [healthy, spare].some((m) => m.requests.some((r) => r.headers['x-mock-delay-ms'] === '400')), 'the stream to start');
    const second = await post('gpt-4o-mini', 'bob');
    assert.equal(second.status, 429);
    assert.equal(JSON.parse(second.body).error.code, 'concurrency_limit_exceeded');
    assert.equal((await stream).status, 200);
    await sleep(100);
    assert.equal((await post('gpt-4o-mini', 'bob')).status, 200);
    sent.ok += 2;
  });

  it('holds a key to its tokens per minute, settled with what the answer used', async () => {
    await clearOfMinuteEdge(5000);
    const first = await post('gpt-4o-mini', 'tina');
    assert.equal(first.status, 200);
    const used = JSON.parse(first.body).usage.total_tokens;
    assert.ok(used > 12, `the answer used ${used} tokens`);
    const second = await post('gpt-4o-mini', 'tina');
    assert.equal(second.status, 429, second.body.toString());
    assert.equal(JSON.parse(second.body).error.code, 'tokens_limit_exceeded');
    assert.equal(second.headers['x-ratelimit-limit-tokens'], '30');
    assert.ok(Number(second.headers['retry-after']) >= 1);
    sent.ok++;
  });

  it('keeps a key to its models, and refuses an expired key', async () => {
    const refused = await post('gpt-4o', 'carol');
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.body).error.code, 'model_not_allowed');
    assert.equal((await post('gpt-4o-mini', 'carol')).status, 200);
    const expired = await post('gpt-4o-mini', 'old');
    assert.equal(expired.status, 401);
    assert.equal(JSON.parse(expired.body).error.code, 'expired_api_key');
    sent.ok++;
  });

  it('takes token usage from answers and streams into the log and the metrics', async () => {
    const plain = await post('gpt-4o-mini');
    assert.equal(plain.status, 200);
    const usage = JSON.parse(plain.body).usage;
    await proxy.waitForLog(new RegExp(`tokens=${usage.prompt_tokens}\\+${usage.completion_tokens}`));
    const streamed = await post('gpt-4o-mini', 'main', {}, chat('gpt-4o-mini', { stream: true, stream_options: { include_usage: true } }));
    assert.equal(streamed.status, 200);
    sent.ok += 2;
    const m = await metrics();
    assert.ok(m.value('aop_tokens', { model: 'gpt-4o-mini', key: 'main', kind: 'prompt' }) >= 2 * usage.prompt_tokens);
    assert.ok(m.value('aop_time_to_first_token_seconds', { model: 'gpt-4o-mini' }) >= 1, `a streamed request observed: ${JSON.stringify(m.families.find((f) => f.name === 'aop_time_to_first_token_seconds'))}`);
  });

  it('/healthz answers without a key or an upstream call; /metrics counts exactly what happened', async () => {
    const before = healthy.requests.length;
    const health = await rawHttp(web.port, { method: 'GET', path: '/healthz' });
    assert.equal(health.status, 200);
    assert.equal(healthy.requests.length, before);
    const m = await metrics();
    assert.equal(m.value('aop_requests', { status: '200', route: 'chat/completions' }), sent.ok, m.text);
    assert.equal(m.value('aop_requests', { status: '429', key: 'alice' }), 3);
    assert.equal(m.value('aop_key_limited', { key: 'alice', limit: 'rate_limit_exceeded' }), 3);
    assert.equal(m.value('aop_requests_in_flight'), 1, 'only the /metrics request itself');
    assert.equal(m.value('aop_active_streams'), 0);
  });

  it('shows /metrics to an admin key from elsewhere, and to no one else', async () => {
    const params = (extra) => ({
      REQUEST_METHOD: 'GET', REQUEST_URI: '/metrics', SCRIPT_NAME: '/metrics', REMOTE_ADDR: '192.0.2.7', SERVER_SOFTWARE: 'test', ...extra,
    });
    const refused = await fastcgiExchange(proxy.socket, fastcgiRequest(params({})));
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.code, 'metrics_forbidden');
    const allowed = await fastcgiExchange(proxy.socket, fastcgiRequest(params({ HTTP_AUTHORIZATION: `Bearer ${KEYS.admin}` })));
    assert.equal(allowed.status, 200);
    assert.match(allowed.text, /aop_requests_total\{/);
  });

  it('reads the file again on SIGHUP, every worker, without dropping a request in flight; keeps it when the new one is wrong', async () => {
    const file = path.join(dir, 'config.json');
    const original = fs.readFileSync(file, 'utf8');
    const config = JSON.parse(original);
    config.models['o4-mini'] = ['healthy'];
    config.keys.dave = { key: 'sk-dave-0123456789' };
    const stream = rawHttp(web.port, { headers: as('main', { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '150' }), body: chat('gpt-4o-mini', { stream: true }) });
    await sleep(200);
    fs.writeFileSync(file, JSON.stringify(config));
    process.kill(proxy.pid, 'SIGHUP');
    await waitFor(() => proxy.logs().split('\n').filter((l) => /SIGHUP: .*config\.json in force: 5 endpoints, 5 models, 7 keys/.test(l)).length === 5,
      'the supervisor and 4 workers to take the new file');
    for (let i = 0; i < 8; i++) {
      const res = await rawHttp(web.port, { headers: { authorization: 'Bearer sk-dave-0123456789', 'content-type': 'application/json' }, body: chat('o4-mini') });
      assert.equal(res.status, 200, res.body.toString());
    }
    await proxy.waitForLog(/model=o4-mini deployment=o4-mini .*key=dave target=healthy\/o4-mini tries=1/);
    const streamed = await stream;
    assert.equal(streamed.status, 200);
    assert.equal(streamed.complete, true, 'the stream in flight ran to its end');
    assert.match(streamed.body.toString(), /\[DONE\]/);
    sent.ok += 9;

    fs.writeFileSync(file, '{"endpoints": {"x": {"url": "nope"}}}');
    process.kill(proxy.pid, 'SIGHUP');
    await proxy.waitForLog(/SIGHUP: .*config\.json refused, the routing in force stays/);
    await proxy.waitForLog(/config\.json: endpoints\.x\.url: 'nope' is not an http\(s\) URL/);
    assert.equal((await rawHttp(web.port, { headers: { authorization: 'Bearer sk-dave-0123456789', 'content-type': 'application/json' }, body: chat('o4-mini') })).status, 200);
    sent.ok++;
    fs.writeFileSync(file, original);
  });

  it('sends a model to OpenAI itself when its target says so (openai mode per target)', async () => {
    const res = await post('gpt-5-at-openai');
    assert.equal(res.status, 200, res.body.toString());
    const received = healthy.lastRequest();
    assert.equal(received.path, '/v1/chat/completions');
    assert.equal(received.headers.authorization, 'Bearer sk-test-openai');
    assert.equal(received.headers['api-key'], undefined);
    assert.equal(JSON.parse(received.body).model, 'gpt-5');
    await proxy.waitForLog(/model=gpt-5-at-openai deployment=gpt-5 .*target=oai\/gpt-5 tries=1/);
  });

  it('sends an upload again, whole, to the next target', async () => {
    const boundary = 'aop-boundary-7';
    const audio = Buffer.alloc(200000, 7);
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--${boundary}\r\n` +
        'Content-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
      audio, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const limitedBefore = limited.requests.length;
    await waitFor(async () => (await metrics()).value('aop_target_cooldown_seconds', { target: 'limited/whisper-1' }) === 0, 'no cooldown', 5000);
    const res = await rawHttp(web.port, { path: '/v1/audio/transcriptions', headers: { authorization: `Bearer ${KEYS.main}`, 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(limited.requests.length, limitedBefore + 1, 'the limited target answered 429 first');
    const received = healthy.requests.filter((r) => r.path.includes('/deployments/whisper-1/audio/transcriptions')).at(-1);
    assert.equal(received.body.length, body.length);
    assert.ok(received.body.equals(body), 'the same bytes, sent again');
    sent.upload = 1;
  });

  it('--check-config prints the resolved routing table, never a key', () => {
    const out = execFileSync(PROXY_BIN, ['--check-config'], {
      env: proxyEnv({ AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: path.join(dir, 'config.json'), ...KEY_ENV }),
    }).toString();
    assert.match(out, /endpoint healthy: http:\/\/127\.0\.0\.1:\d+ \(azure, api-version [^)]+\), key file:/);
    assert.match(out, /model gpt-4o -> spare\/gpt-4o \(priority 1, weight 1\)/);
    assert.match(out, /key alice: 5 requests\/min;/);
    assert.match(out, /endpoint oai: http:\/\/127\.0\.0\.1:\d+ \(openai\), key inline/);
    for (const key of [UPSTREAM_KEY, 'sk-test-openai', ...Object.values(KEYS)]) assert.ok(!out.includes(key), `the key ${key} is not printed`);
  });
});

describe('usage asked of every chat stream (AZURE_OPENAI_PROXY_STREAM_USAGE=on)', () => {
  let stack;
  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: UPSTREAM_KEY }), {
      AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_STREAM_USAGE: 'on',
    });
  });
  after(async () => { await stack?.stop(); });
  const stream = (extra) => rawHttp(stack.web.port, { headers: { 'content-type': 'application/json' }, body: chat('gpt-4o', { stream: true, ...extra }) });

  it('counts the tokens of a stream whose client did not ask, and leaves the usage chunk out of it', async () => {
    const res = await stream({});
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(stack.mock.lastRequest().body).stream_options.include_usage, true, 'asked of Azure');
    const text = res.body.toString();
    assert.doesNotMatch(text, /"usage":\{/);
    assert.match(text, /"content":"/);
    assert.match(text, /data: \[DONE\]\n\n$/);
    await stack.proxy.waitForLog(/POST \/v1\/chat\/completions model=gpt-4o .*tokens=9\+\d+/);
  });

  it('relays the usage chunk to a client that asked for it', async () => {
    const res = await stream({ stream_options: { include_usage: true } });
    assert.match(res.body.toString(), /"choices":\[\],.*"usage":\{"prompt_tokens":9/);
  });
});

describe('a configuration file with mistakes', () => {
  it('is refused at start with one line per mistake, naming the file and the key path', () => {
    const dir = tempDir('badconfig');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { east: { url: 'ftp://x', key: 'env:NOT_SET_ANYWHERE' }, west: { url: 'https://w.example', key: 'k', wieght: 2 } },
      models: { 'gpt-4o': ['east', 'north'], 'o3': [] },
      keys: { alice: { key: 'short', requests_per_minute: -1 } },
    }));
    let failure;
    try {
      execFileSync(PROXY_BIN, ['--check-config', '--config', file], {
        env: proxyEnv({ AZURE_OPENAI_ENDPOINT: 'https://x.example', AZURE_OPENAI_TOKEN: 'k'.repeat(10) }), stdio: 'pipe',
      });
    } catch (error) {
      failure = error;
    }
    assert.equal(failure?.status, 2);
    const lines = failure.stderr.toString().trim().split('\n');
    const expected = [
      /config\.json: endpoints\.east\.url: 'ftp:\/\/x' is not an http\(s\) URL/,
      /config\.json: endpoints\.west\.wieght: is not a known setting/,
      /config\.json: models\.gpt-4o\[0\]: the endpoint 'east' is not defined/,
      /config\.json: models\.gpt-4o\[1\]: the endpoint 'north' is not defined/,
      /config\.json: models\.o3: must be a non-empty list of targets/,
      /config\.json: keys\.alice\.requests_per_minute: must be a whole number from 1/,
    ];
    for (const pattern of expected) assert.ok(lines.some((l) => pattern.test(l)), `${pattern} in:\n${lines.join('\n')}`);
  });
});

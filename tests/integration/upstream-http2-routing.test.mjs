// Everything that holds on HTTP/1.1 holds on HTTP/2 (issue 22), continued from
// upstream-http2.test.mjs: failover and cooldowns between endpoints that speak HTTP/2, a
// 25 MiB upload and a 100 MiB answer through one HTTP/2 connection in bounded memory, and
// the first-byte and upstream deadlines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { answerLength, rawHttp, rssRiseKiB, startLighttpd, startProxy, tempDir, waitFor } from './harness.mjs';
import { AUTH, KEY, chat, h2Upstream, makeCertificate } from './upstream-http2-parts.mjs';

const ASAN_OPTIONS = 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=1';
const status = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const peakKiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(status(pid))[1]);

let tls;
before(() => { tls = makeCertificate(); });

async function startChain(env) {
  const proxy = await startProxy({
    AZURE_OPENAI_PROXY_CA_BUNDLE: tls.certFile, AZURE_OPENAI_PROXY_UPSTREAM_HTTP: '2',
    AZURE_OPENAI_PROXY_THREADS: '1', ASAN_OPTIONS, ...env,
  });
  const web = await startLighttpd({ socket: proxy.socket });
  const stop = async () => {
    await web.stop();
    const stopped = await proxy.stop();
    assert.equal(stopped.code, 0, proxy.logs());
  };
  return { proxy, web, port: web.port, stop };
}

// Mirrors routing.test.mjs 'answers every request through the healthy target: the 429 and
// the refused one are each tried once', with every endpoint speaking HTTP/2, and one whose
// streams are reset before any byte (on HTTP/1.1: reset-before-headers).
describe('failover and cooldown between HTTP/2 endpoints', () => {
  const upstreams = {};
  let chain;
  before(async () => {
    const behaviours = {
      limited: (mock) => { mock.scenario = 'rate-limit'; mock.retryAfterMs = 30000; },
      failing: (mock) => { mock.scenario = 'server-error'; },
      broken: () => {},
      healthy: () => {},
    };
    const resetEveryStream = (req, res) => { req.resume(); req.on('end', () => res.stream.destroy(new Error('reset before any byte'))); return true; };
    for (const [name, behave] of Object.entries(behaviours)) {
      const mock = createAzureMock({ apiKey: KEY });
      behave(mock);
      upstreams[name] = await h2Upstream(mock, tls, name === 'broken' ? resetEveryStream : undefined);
    }
    const file = path.join(tempDir('h2-routing'), 'routing.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: Object.fromEntries(Object.entries(upstreams).map(([name, u]) => [name, { url: u.url, key: 'env:UPSTREAM_KEY' }])),
      models: { 'gpt-4o': ['limited', 'failing', 'broken', 'healthy'], 'gpt-4o-mini': ['broken', { endpoint: 'healthy', priority: 1 }] },
      retry: { max_tries: 4, circuit_failures: 1, circuit_open_seconds: 30, cooldown_cap_seconds: 60 },
    }));
    chain = await startChain({
      AZURE_OPENAI_ENDPOINT: upstreams.healthy.url, AZURE_OPENAI_TOKEN: KEY, UPSTREAM_KEY: KEY,
      AZURE_OPENAI_PROXY_CONFIG: file, AZURE_OPENAI_PROXY_STATE_FILE: path.join(path.dirname(file), 'state'),
    });
  });
  after(async () => {
    await chain?.stop();
    for (const upstream of Object.values(upstreams)) await upstream.close();
  });

  it('answers every request through the healthy endpoint: the 429, the 500 and the reset stream each tried once', async () => {
    for (let i = 0; i < 24; i++) {
      const res = await rawHttp(chain.port, { headers: AUTH, body: chat() });
      assert.equal(res.status, 200, `request ${i + 1}: ${res.body}`);
    }
    const count = (name) => upstreams[name].records.length;
    assert.equal(count('healthy'), 24);
    assert.equal(count('limited'), 1, 'the 429 cooled its endpoint down');
    assert.equal(count('failing'), 1, 'the 500 opened its circuit');
    assert.equal(count('broken'), 1, 'the reset stream opened its circuit');
    for (const upstream of Object.values(upstreams)) for (const r of upstream.records) assert.equal(r.version, '2.0');
    assert.equal(upstreams.broken.records[0].rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    assert.equal(new Set(upstreams.healthy.records.map((r) => r.connection)).size, 1, 'one HTTP/2 connection to the healthy endpoint');
    await chain.proxy.waitForLog(/status=200 .*target=healthy\/gpt-4o tries=[234] .*error="HTTP\/2 stream \d+ was not closed cleanly/);
    const tries = () => chain.proxy.logs().split('\n').map((line) => /status=200 .*target=healthy\/gpt-4o tries=(\d)/.exec(line)).filter(Boolean);
    await waitFor(() => tries().length === 24, 'an access-log line for each request', 5000);
    assert.equal(tries().reduce((sum, match) => sum + Number(match[1]), 0), 24 + 3, 'the three failing endpoints tried once in all');
  });

  // Mirrors routing.test.mjs's failover of a stream before its first byte: the reset
  // stream's endpoint comes first for this model (priority), the healthy one takes it.
  it('a stream whose first try is reset before any byte fails over and completes', async () => {
    const since = upstreams.broken.records.length;
    const res = await rawHttp(chain.port, { headers: AUTH, body: chat({ model: 'gpt-4o-mini', stream: true }) });
    assert.equal(res.status, 200, res.body.toString());
    assert.match(res.body.toString(), /data: \[DONE\]/);
    assert.equal(res.complete, true);
    assert.equal(upstreams.broken.records.length, since + 1, 'the reset endpoint was tried first');
    await chain.proxy.waitForLog(/status=200 .*target=healthy\/gpt-4o-mini tries=2 .*error="HTTP\/2 stream \d+ was not closed cleanly/);
  });
});

// Mirrors sdk.test.mjs 'audio: a 25 MiB transcription upload with bounded memory' and
// upstream-faults.test.mjs 'a 100 MiB answer and a 100 MiB error body pass in bounded memory'.
describe('big bodies over one HTTP/2 connection', () => {
  let upstream, chain;
  before(async () => {
    upstream = await h2Upstream(createAzureMock({ apiKey: KEY }), tls);
    chain = await startChain({ AZURE_OPENAI_ENDPOINT: upstream.url });
  });
  after(async () => {
    await chain?.stop();
    await upstream?.close();
  });

  const upload = (bytes) => {
    const boundary = 'h2-upload-boundary-0f3c9a';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--${boundary}\r\n` +
        'Content-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
      bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const headers = { authorization: AUTH.authorization, 'content-type': `multipart/form-data; boundary=${boundary}` };
    return { body, sent: rawHttp(chain.port, { path: '/v1/audio/transcriptions', headers, body, timeoutMs: 60000 }) };
  };

  it('a 25 MiB upload reaches the upstream byte for byte, the proxy\'s peak memory bounded', async () => {
    assert.equal((await upload(crypto.randomBytes(4000)).sent).status, 200);
    const before = peakKiB(chain.proxy.pid);
    const audio = crypto.randomBytes(25 * 1024 * 1024);
    const { body, sent } = upload(audio);
    const res = await sent;
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.json.text, `Transcribed ${audio.length} bytes of big.wav`);
    const arrived = upstream.records.at(-1);
    assert.equal(arrived.version, '2.0');
    assert.equal(upstream.mock.lastRequest().path, '/openai/deployments/whisper-1/audio/transcriptions');
    assert.equal(upstream.mock.lastRequest().sha256, crypto.createHash('sha256').update(body).digest('hex'), 'byte for byte');
    const grewKiB = peakKiB(chain.proxy.pid) - before;
    assert.ok(grewKiB < 8 * 1024, `peak memory grew by ${grewKiB} KiB for a 25 MiB upload`);
  });

  it('a 100 MiB answer and a 100 MiB error body pass in bounded memory', async () => {
    const rise = await rssRiseKiB(chain.proxy.pid, async () => {
      for (const [scenario, code] of [['big', 200], ['big-error', 500]]) {
        const got = await answerLength(chain.port, { headers: { ...AUTH, 'x-mock-scenario': scenario }, body: chat() });
        assert.deepEqual(got, { status: code, bytes: 100 * 1024 * 1024 });
      }
    });
    assert.ok(rise < 16 * 1024, `the proxy grew by ${rise} KiB`);
    assert.equal(new Set(upstream.records.map((r) => r.connection)).size, 1, 'every request on one HTTP/2 connection');
  });
});

// Mirrors upstream-faults.test.mjs 'a stall before the headers (first-byte timeout)' and 'a
// stream broken by silence past the upstream timeout', on HTTP/2: the deadlines fire as on
// HTTP/1.1, and the stream they end stops upstream at once (its connection closed), not
// when the connection is next used.
describe('the first-byte and upstream deadlines over HTTP/2', () => {
  let upstream, chain;
  before(async () => {
    upstream = await h2Upstream(createAzureMock({ apiKey: KEY }), tls);
    chain = await startChain({
      AZURE_OPENAI_ENDPOINT: upstream.url, AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT: '1', AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT: '1',
    });
  });
  after(async () => {
    await chain?.stop();
    await upstream?.close();
  });

  it('no answer within the first-byte timeout: 504 upstream_timeout, and the stream ends upstream at once', async () => {
    const res = await rawHttp(chain.port, { headers: { ...AUTH, 'x-mock-scenario': 'hang', 'x-test-id': 'hang' }, body: chat() });
    assert.equal(res.status, 504, res.body.toString());
    assert.equal(res.json.error.code, 'upstream_timeout');
    await waitFor(() => upstream.record('hang')?.closed, 'the hanging stream to end upstream', 2000);
    await chain.proxy.waitForLog(/status=504 .*outcome=upstream-timeout/);
  });

  it('silence past the upstream timeout mid-stream: an SSE error event, no clean end, the stream ended upstream', async () => {
    const res = await rawHttp(chain.port, {
      headers: { ...AUTH, 'x-mock-scenario': 'stall-mid-stream', 'x-test-id': 'stall' }, body: chat({ stream: true }),
    });
    assert.equal(res.status, 200);
    const text = res.body.toString();
    assert.equal(text.split('\n\n').filter((e) => e.startsWith('data: {')).length, 1, text);
    assert.match(text, /"code":"upstream_timeout"/);
    assert.equal(res.complete, false, 'the stream did not end cleanly');
    await waitFor(() => upstream.record('stall')?.closed, 'the silent stream to end upstream', 2000);
  });

  it('after both, the next request is answered', async () => {
    const res = await rawHttp(chain.port, { headers: AUTH, body: chat() });
    assert.equal(res.status, 200, res.body.toString());
  });
});

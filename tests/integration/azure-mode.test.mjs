// azure mode, end to end: client -> lighttpd -> proxy (FastCGI) -> local Azure-like upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  curl, fastcgiRequest, openStream, postJson, request, startLighttpd, startProxy, startStack, streamInLockstep,
} from './harness.mjs';

const KEY = 'test-key';
const chatBody = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

describe('azure mode through lighttpd', () => {
  let stack, mock, proxy, url;

  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: KEY }), {
      AZURE_OPENAI_MODEL_MAPPER: 'my-model=custom-deployment',
      AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT: '1',
      AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT: '1',
      AZURE_OPENAI_PROXY_MAX_BODY_BYTES: '20000',
      AZURE_OPENAI_PROXY_THREADS: '8',
    });
    ({ mock, proxy, url } = stack);
  });

  after(async () => { await stack?.stop(); });

  it('sends a chat completion to the mapped deployment with api-key and the body unchanged', async () => {
    const body = JSON.stringify(chatBody('gpt-3.5-turbo', { temperature: 0.5 })) + '  \n';
    const res = await postJson(`${url}/v1/chat/completions`, body);
    assert.equal(res.status, 200);
    assert.equal(res.json.object, 'chat.completion');
    assert.match(res.json.choices[0].message.content, /You said: hi/);
    const up = mock.lastRequest();
    assert.equal(up.path, '/openai/deployments/gpt-35-turbo/chat/completions');
    assert.equal(up.query.get('api-version'), '2024-10-21');
    assert.equal(up.headers['api-key'], KEY);
    assert.equal(up.headers.authorization, undefined, 'Authorization is not forwarded');
    assert.equal(up.sha256, sha256(body), 'the body reaches Azure byte for byte');
  });

  it('routes completions and embeddings, mapping models by the seed rules', async () => {
    let res = await postJson(`${url}/v1/completions`, { model: 'my-model', prompt: 'Say hi' });
    assert.equal(res.status, 200);
    assert.equal(res.json.object, 'text_completion');
    assert.equal(mock.lastRequest().path, '/openai/deployments/custom-deployment/completions');

    res = await postJson(`${url}/v1/embeddings`, { model: 'text-embedding-3-small', input: ['a', 'b'] });
    assert.equal(res.status, 200);
    assert.equal(res.json.data.length, 2);
    assert.equal(mock.lastRequest().path, '/openai/deployments/text-embedding-3-small/embeddings');

    res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4.1-mini'));
    assert.equal(res.status, 200);
    assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-41-mini/chat/completions');
  });

  it('returns the upstream headers, minus hop-by-hop ones, and CORS on every answer', async () => {
    const res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'));
    for (const name of ['apim-request-id', 'x-request-id', 'x-ms-region', 'x-ratelimit-remaining-requests', 'x-ratelimit-remaining-tokens'])
      assert.ok(res.headers[name], `${name} is relayed`);
    assert.equal(res.headers['keep-alive'], undefined);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['content-type'], 'application/json');
  });

  it('passes Azure error bodies through with their status', async () => {
    let res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'), { authorization: 'Bearer wrong' });
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, '401');

    res = await postJson(`${url}/v1/chat/completions`, chatBody('no-such-model'));
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'DeploymentNotFound');

    res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'), { 'x-mock-scenario': 'rate-limit' });
    assert.equal(res.status, 429);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.headers['retry-after-ms'], '1000');
    assert.equal(res.headers['x-ratelimit-remaining-requests'], '0');
    assert.equal(res.json.error.code, '429');
    assert.equal(res.headers['access-control-allow-origin'], '*');

    res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'), { 'x-mock-scenario': 'content-filter' });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'content_filter');
    assert.equal(res.json.error.innererror.code, 'ResponsibleAIPolicyViolation');
    assert.equal(res.json.error.innererror.content_filter_result.jailbreak.filtered, true);
  });

  it('streams the event stream unchanged, empty-choices first frame included, plus the closing blank line', async () => {
    const stream = openStream(`${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true, stream_options: { include_usage: true } }));
    await stream.done;
    assert.equal(stream.status, 200);
    assert.match(stream.headers['content-type'], /^text\/event-stream/);
    const sent = mock.streams[mock.streams.length - 1];
    assert.ok(sent.complete);
    assert.ok(sent.text.endsWith('data: [DONE]\n') && !sent.text.endsWith('\n\n'));
    assert.equal(stream.raw, sent.text + '\n', 'every byte as sent, then the blank line Azure omits');
    const first = JSON.parse(stream.events[0].slice('data: '.length));
    assert.deepEqual(first.choices, []);
    assert.ok(first.prompt_filter_results);
    assert.equal(stream.events[stream.events.length - 1], 'data: [DONE]');
  });

  it('delivers each event before the upstream sends the next (no buffering)', async () => {
    const { stream, late } = await streamInLockstep(mock, `${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true }));
    assert.deepEqual(late, []);
    assert.ok(stream.events.length >= 5);
  });

  it('serves many streams at once on several threads', async () => {
    const count = 6;
    const streams = [];
    const late = [];
    // Each upstream stream holds its second event until every client has its first:
    // only a proxy that serves all of them at once can get there.
    mock.pace = async (index) => {
      if (index !== 1) return;
      try { await Promise.all(streams.map((s) => s.waitForEvents(1, 8000))); } catch (error) { late.push(error.message); }
    };
    for (let i = 0; i < count; i++)
      streams.push(openStream(`${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true }), { 'x-mock-scenario': 'paced' }));
    await Promise.all(streams.map((s) => s.done));
    mock.pace = async () => {};
    assert.deepEqual(late, []);
    for (const s of streams) assert.equal(s.events[s.events.length - 1], 'data: [DONE]');
  });

  it('keeps memory bounded on a long stream', async () => {
    const peak = () => Number(fs.readFileSync(`/proc/${proxy.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);
    const warm = openStream(`${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true }), { 'x-mock-scenario': 'long', 'x-mock-events': '2000' });
    await warm.done;
    const before = peak();
    const stream = openStream(`${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true }), { 'x-mock-scenario': 'long', 'x-mock-events': '150000' });
    await stream.done;
    assert.ok(stream.raw.length > 20e6, `streamed ${stream.raw.length} bytes: ${stream.raw.slice(0, 200)}`);
    const grewKiB = peak() - before;
    assert.ok(grewKiB < 8 * 1024, `peak memory grew by ${grewKiB} KiB for a ${Math.round(stream.raw.length / 1e6)} MB stream`);
  });

  it('reuses upstream connections across requests (keep-alive)', async () => {
    const before = mock.requests.length;
    for (let i = 0; i < 12; i++) await postJson(`${url}/v1/embeddings`, { model: 'text-embedding-3-small', input: 'x' });
    const used = new Set(mock.requests.slice(before).map((r) => r.connection));
    assert.ok(used.size <= 8, `12 requests used ${used.size} connections; each of the 8 threads keeps one`);
  });

  it('answers GET /v1/models inline with the mapper models and the documented list', async () => {
    const before = mock.requests.length;
    const res = await request(`${url}/v1/models`);
    assert.equal(res.status, 200);
    assert.equal(res.json.object, 'list');
    const ids = res.json.data.map((m) => m.id);
    for (const id of ['my-model', 'gpt-3.5-turbo', 'gpt-4o', 'text-embedding-3-small']) assert.ok(ids.includes(id), id);
    for (const model of res.json.data) assert.equal(model.object, 'model');
    const one = await request(`${url}/v1/models/gpt-4o`);
    assert.equal(one.json.id, 'gpt-4o');
    assert.equal((await request(`${url}/v1/models/nope`)).status, 404);
    assert.equal(mock.requests.length, before, 'the upstream is not asked');
  });

  it('answers CORS preflights inline, echoing the requested headers', async () => {
    const before = mock.requests.length;
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example', 'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os, x-stainless-lang',
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['access-control-allow-methods'], 'POST');
    assert.equal(res.headers['access-control-allow-headers'], 'authorization, content-type, x-stainless-os, x-stainless-lang');
    assert.equal(mock.requests.length, before);
  });

  it('answers an unknown route with an OpenAI-shaped 404 naming it', async () => {
    const res = await request(`${url}/api/not-a-route`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
    assert.match(res.json.error.message, /POST \/api\/not-a-route/);
    assert.equal(res.json.error.type, 'invalid_request_error');
    assert.ok('param' in res.json.error && 'code' in res.json.error);
    assert.equal(res.headers['access-control-allow-origin'], '*');
  });

  it('refuses malformed JSON, a missing model and unsafe model names with 400, without calling Azure', async () => {
    const before = mock.requests.length;
    let res = await postJson(`${url}/v1/chat/completions`, '{"model": "gpt-4o", ');
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'invalid_json');
    res = await postJson(`${url}/v1/chat/completions`, { messages: [] });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.param, 'model');
    res = await postJson(`${url}/v1/chat/completions`, { model: 42 });
    assert.equal(res.status, 400);
    for (const model of ['../x', '../../admin', 'a/b', 'a?b=c', 'a#b', 'a b', 'a\u0001b', 'a%2Fb', '']) {
      res = await postJson(`${url}/v1/chat/completions`, chatBody(model));
      assert.equal(res.status, 400, `model ${JSON.stringify(model)}`);
      assert.equal(res.json.error.param, 'model');
    }
    assert.equal(mock.requests.length, before);
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await postJson(`${url}/v1/embeddings`, { model: 'text-embedding-3-small', input: 'x'.repeat(30000) });
    assert.equal(res.status, 413);
    assert.equal(res.json.error.code, 'request_too_large');
    await proxy.waitForLog(/POST \/v1\/embeddings model=- deployment=- status=413 upstream=- bytes=\d+ ms=\d+ outcome=request_too_large/);
  });

  it('answers 504 when the upstream sends nothing within the first-byte timeout', async () => {
    const res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'), { 'x-mock-scenario': 'hang' });
    assert.equal(res.status, 504);
    assert.equal(res.json.error.code, 'upstream_timeout');
  });

  it('works as a forward proxy: absolute-form request lines route on their path', async () => {
    const res = await request(url, {
      method: 'POST', path: 'http://api.openai.com/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, host: 'api.openai.com' },
      body: JSON.stringify(chatBody('gpt-4o')),
    });
    assert.equal(res.status, 200);
    assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-4o/chat/completions');

    const viaCurl = await curl(['-x', url, 'http://api.openai.com/v1/embeddings', '-H', `Authorization: Bearer ${KEY}`,
      '-H', 'Content-Type: application/json', '-d', '{"model":"text-embedding-3-small","input":"hi"}']);
    assert.equal(viaCurl.status, 0, viaCurl.stderr);
    assert.equal(JSON.parse(viaCurl.stdout).object, 'list');
  });

  it('accepts a chunked request body', async () => {
    const body = JSON.stringify({ model: 'text-embedding-3-small', input: 'chunked' });
    const res = await curl([`${url}/v1/embeddings`, '-H', `Authorization: Bearer ${KEY}`, '-H', 'Transfer-Encoding: chunked',
      '-H', 'Content-Type: application/json', '--data-binary', body]);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).object, 'list');
    assert.equal(mock.lastRequest().sha256, sha256(body));
  });

  it('logs one line per request with model, deployment, status, bytes and time, and never a key', async () => {
    await postJson(`${url}/v1/chat/completions`, chatBody('my-model'), { authorization: 'Bearer sk-client-secret-1' });
    await proxy.waitForLog(/POST \/v1\/chat\/completions model=my-model deployment=custom-deployment status=401 upstream=401 bytes=\d+ ms=\d+ outcome=ok/);
    assert.ok(!proxy.logs().includes('sk-client-secret-1'));
    assert.ok(!proxy.logs().includes(KEY));
  });
});

// For a describe: one local upstream (key 'server-key'), and `through(env)` starting a
// proxy behind lighttpd; all stopped after it.
function upstreamAndProxies() {
  const started = [];
  const ctx = {
    async through(env) {
      const proxy = await startProxy(env);
      const web = await startLighttpd({ socket: proxy.socket });
      started.push(proxy, web);
      return { proxy, url: web.url };
    },
  };
  before(async () => {
    ctx.mock = createAzureMock({ apiKey: 'server-key' });
    await ctx.mock.listen();
  });
  after(async () => {
    for (const p of started.reverse()) await p.stop();
    await ctx.mock.close();
  });
  return ctx;
}

describe('server-side key and failures', () => {
  const ctx = upstreamAndProxies();
  const through = (env) => ctx.through(env);

  it('AZURE_OPENAI_TOKEN replaces whatever key the client sends', async () => {
    const { url, proxy } = await through({ AZURE_OPENAI_ENDPOINT: ctx.mock.url, AZURE_OPENAI_TOKEN: 'server-key' });
    const res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'), { authorization: 'Bearer client-key' });
    assert.equal(res.status, 200);
    assert.equal(ctx.mock.lastRequest().headers['api-key'], 'server-key');
    assert.equal(ctx.mock.lastRequest().headers.authorization, undefined);
    await proxy.waitForLog(/POST \/v1\/chat\/completions model=gpt-4o .*status=200/);
    assert.ok(!proxy.logs().includes('server-key'));
  });

  it('answers 502 when the upstream cannot be reached', async () => {
    const { url } = await through({ AZURE_OPENAI_ENDPOINT: 'http://127.0.0.1:9' });
    const res = await postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o'));
    assert.equal(res.status, 502);
    assert.equal(res.json.error.code, 'upstream_unreachable');
  });

  it('stops within 2 s on SIGTERM, even with a stream open', async () => {
    const { url, proxy } = await through({ AZURE_OPENAI_ENDPOINT: ctx.mock.url, AZURE_OPENAI_TOKEN: 'server-key' });
    const stream = openStream(`${url}/v1/chat/completions`, chatBody('gpt-4o', { stream: true }), { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '10000' });
    await stream.waitForEvents(1);
    const stopped = await proxy.stop('SIGTERM', 5000);
    assert.equal(stopped.signal, null, 'it exits by itself, not killed');
    assert.ok(stopped.ms < 2000, `stopped after ${stopped.ms} ms`);
    // The stream it cut is not made to look complete: an error event, then no clean end.
    await assert.rejects(stream.done);
    assert.match(stream.raw, /event: error\ndata: \{"error":\{[^\n]*"code":"proxy_stopping"/);
  });
});

// One event loop holds every request: a client that stops reading must pause only its own
// transfer, never the loop, and its answer must not pile up in the proxy.
describe('a client that stops reading (one event loop)', () => {
  it('leaves others served at once and the proxy in bounded memory', async () => {
    const stack = await startStack(() => createAzureMock({ apiKey: KEY }), { AZURE_OPENAI_PROXY_THREADS: '1' });
    const { mock, proxy, url } = stack;
    let stalled;
    try {
      const peak = () => Number(fs.readFileSync(`/proc/${proxy.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);
      const before = peak();
      const target = new URL(`${url}/v1/chat/completions`);
      let received = 0;
      stalled = http.request({
        host: target.hostname, port: target.port, method: 'POST', path: target.pathname,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'x-mock-scenario': 'long', 'x-mock-events': '150000' },
      }, (res) => {
        res.once('data', (chunk) => { received += chunk.length; res.pause(); });
      });
      stalled.on('error', () => {});
      stalled.end(JSON.stringify(chatBody('gpt-4o', { stream: true })));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const res = await Promise.race([
          postJson(`${url}/v1/chat/completions`, chatBody('gpt-4o')),
          new Promise((resolve) => setTimeout(() => resolve({ status: 'no answer within 3 s' }), 3000)),
        ]);
        assert.equal(res.status, 200);
        assert.ok(Date.now() - started < 1000, `a request took ${Date.now() - started} ms beside the stalled one`);
      }
      assert.ok(received > 0, 'the stalled client got the start of its answer');
      // The stand-in's record of that stream: what the proxy has taken of it so far.
      const upstream = mock.streams.find((s) => s.headers['x-mock-events'] === '150000');
      assert.ok(upstream, 'the stalled request reached the upstream as a stream');
      assert.ok(!upstream.complete, `the upstream was held back, not drained into the proxy (${upstream.text.length} bytes sent)`);
      const grewKiB = peak() - before;
      assert.ok(grewKiB < 8 * 1024, `peak memory grew by ${grewKiB} KiB while a client did not read`);
    } finally {
      stalled?.destroy();
      await stack.stop();
    }
  });
});

describe('a request its web server gave up on before the proxy read it', () => {
  it('is logged as client-gone and never sent upstream', async () => {
    const mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_THREADS: '1' });
    try {
      const body = JSON.stringify(chatBody('abandoned-model'));
      const bytes = fastcgiRequest({
        REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(body.length), HTTP_AUTHORIZATION: `Bearer ${KEY}`,
      }, body);
      // The whole request, then the end of the connection (as nginx closes it when its
      // client leaves), both there before the proxy looks: it is stopped meanwhile.
      process.kill(proxy.pid, 'SIGSTOP');
      let socket;
      try {
        await new Promise((resolve, reject) => {
          socket = net.connect(proxy.socket, () => socket.end(bytes, resolve));
          socket.on('error', reject);
        });
      } finally {
        process.kill(proxy.pid, 'SIGCONT');
      }
      socket.resume();
      const line = await proxy.waitForLog(/POST \/v1\/chat\/completions /);
      assert.match(line, /status=0 upstream=- .*outcome=client-gone/);
      assert.ok(!mock.requests.some((r) => r.body.includes('abandoned-model')), 'it never reached the upstream');
    } finally {
      await proxy.stop();
      await mock.close();
    }
  });
});

// A key's `models` and AZURE_OPENAI_PROXY_ALLOWED_MODELS hold on every route that names a
// model: fine-tuning jobs by their base model; batches, whose models are inside an
// uploaded file the proxy does not read, are refused while either list applies.
describe('model lists on fine-tuning jobs and batches', () => {
  const ctx = upstreamAndProxies();
  const CAROL = 'sk-carol-0123456789', MAIN = 'sk-main-0123456789';
  const through = async (env) =>
    (await ctx.through({ AZURE_OPENAI_ENDPOINT: ctx.mock.url, AZURE_OPENAI_TOKEN: 'server-key', ...env })).url;
  const as = (key) => ({ authorization: `Bearer ${key}` });
  const job = (model) => ({ model, training_file: 'file-abc' });
  const batch = { input_file_id: 'file-none', endpoint: '/v1/chat/completions', completion_window: '24h' };

  // Refused with 403 before the upstream; `pattern` names why.
  async function refused(url, path, body, key, pattern) {
    const before = ctx.mock.requests.length;
    const res = await postJson(`${url}${path}`, body, as(key));
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.error.code, 'model_not_allowed');
    assert.match(res.json.error.message, pattern);
    assert.equal(ctx.mock.requests.length, before, 'the upstream was not asked');
  }

  it("holds fine-tuning jobs and batches to a key's models", async () => {
    const dir = fs.mkdtempSync(`${os.tmpdir()}/model-lists-`);
    const file = `${dir}/config.json`;
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { azure: { url: ctx.mock.url, key: 'server-key' } },
      models: {},
      keys: { carol: { key: CAROL, models: ['gpt-4o-mini'] }, main: { key: MAIN } },
    }));
    const url = await through({ AZURE_OPENAI_PROXY_CONFIG: file });
    await refused(url, '/v1/fine_tuning/jobs', job('gpt-4o-2024-08-06'), CAROL, /'gpt-4o-2024-08-06' is not available/);
    let res = await postJson(`${url}/v1/fine_tuning/jobs`, job('gpt-4o-mini'), as(CAROL));
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(ctx.mock.lastRequest().body).model, 'gpt-4o-mini', 'a base model goes as it is');
    await refused(url, '/v1/batches', batch, CAROL, /batch.*models.*key/i);
    // Reading batches, and a key without a list, as before.
    res = await request(`${url}/v1/batches`, { headers: as(CAROL) });
    assert.equal(res.status, 200, res.text);
    res = await postJson(`${url}/v1/batches`, batch, as(MAIN));
    assert.equal(res.status, 400, 'the upstream answered: no such file');
    assert.equal(ctx.mock.lastRequest().path, '/openai/batches');
    res = await postJson(`${url}/v1/fine_tuning/jobs`, job('gpt-4o-2024-08-06'), as(MAIN));
    assert.equal(res.status, 200, res.text);
  });

  it('holds fine-tuning jobs and batches to AZURE_OPENAI_PROXY_ALLOWED_MODELS', async () => {
    const url = await through({ AZURE_OPENAI_PROXY_ALLOWED_MODELS: 'gpt-4o-mini', AZURE_OPENAI_PROXY_API_KEYS: MAIN });
    await refused(url, '/v1/fine_tuning/jobs', job('gpt-4o-2024-08-06'), MAIN, /'gpt-4o-2024-08-06' is not available/);
    await refused(url, '/v1/fine_tuning/jobs/', job('gpt-4o-2024-08-06'), MAIN, /not available/);
    await refused(url, '/v1/batches', batch, MAIN, /batch.*AZURE_OPENAI_PROXY_ALLOWED_MODELS/i);
    const res = await postJson(`${url}/v1/fine_tuning/jobs`, job('gpt-4o-mini'), as(MAIN));
    assert.equal(res.status, 200, res.text);
  });
});

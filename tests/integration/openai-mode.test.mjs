// openai mode: every request passes through to the upstream base URL unchanged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { curl, openStream, request, startStack } from './harness.mjs';

const OPENAI_KEY = 'sk-test-openai';
const auth = { authorization: `Bearer ${OPENAI_KEY}` };

describe('openai mode through lighttpd', () => {
  let stack, mock, url;

  before(async () => {
    stack = await startStack(() => createAzureMock({ openaiKey: OPENAI_KEY }), { AZURE_OPENAI_PROXY_MODE: 'openai' });
    ({ mock, url } = stack);
  });

  after(async () => { await stack?.stop(); });

  it('passes method, path, query, Authorization and body through', async () => {
    const body = crypto.randomBytes(3000);
    const res = await request(`${url}/v1/files?purpose=batch&limit=2`, {
      method: 'POST', body, headers: { ...auth, 'content-type': 'application/octet-stream', 'openai-organization': 'org-1' },
    });
    assert.equal(res.status, 200);
    const up = mock.lastRequest();
    assert.equal(up.method, 'POST');
    assert.equal(up.path, '/v1/files');
    assert.equal(up.url, '/v1/files?purpose=batch&limit=2');
    assert.equal(up.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.equal(up.headers['openai-organization'], 'org-1');
    assert.equal(up.headers['api-key'], undefined);
    assert.ok(up.body.equals(body), 'the body arrives byte for byte');
  });

  it('refuses methods the API does not have, before the upstream', async () => {
    const before = mock.requests.length;
    for (const method of ['PUT', 'PATCH', 'TRACE', 'PROPFIND']) {
      const res = await request(`${url}/v1/files`, { method, headers: auth });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, POST, DELETE, HEAD, OPTIONS');
      assert.equal(res.json.error.code, 'method_not_allowed');
    }
    assert.equal(mock.requests.length, before);
  });

  it('passes GET and DELETE without a body', async () => {
    let res = await request(`${url}/v1/models`, { headers: auth });
    assert.equal(res.json.echo.method, 'GET');
    assert.equal(mock.lastRequest().body.length, 0);
    res = await request(`${url}/v1/files/file-abc`, { method: 'DELETE', headers: auth });
    assert.equal(res.json.echo.method, 'DELETE');
    assert.equal(res.json.echo.path, '/v1/files/file-abc');
  });

  it('relays upstream errors with their status and headers', async () => {
    let res = await request(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer wrong' }, body: '{}' });
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'invalid_api_key');
    res = await request(`${url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'x-mock-scenario': 'rate-limit' }, body: '{}' });
    assert.equal(res.status, 429);
    assert.equal(res.headers['retry-after'], '1');
  });

  it('streams chat completions as they come', async () => {
    const stream = openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hey' }] }, auth);
    await stream.done;
    assert.equal(stream.status, 200);
    assert.equal(stream.raw, mock.streams[mock.streams.length - 1].text + '\n');
  });

  it('passes a chunked body through', async () => {
    const body = 'x'.repeat(10000);
    const res = await curl([`${url}/v1/uploads`, '-H', `Authorization: Bearer ${OPENAI_KEY}`, '-H', 'Transfer-Encoding: chunked', '--data-binary', body]);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).echo.bodyBytes, 10000);
  });

  it('works as a forward proxy for api.openai.com', async () => {
    const res = await curl(['-x', url, 'http://api.openai.com/v1/models?x=1', '-H', `Authorization: Bearer ${OPENAI_KEY}`]);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).echo.query, '?x=1');
  });
});

describe('openai mode with a server-side key', () => {
  it('AZURE_OPENAI_TOKEN replaces the client key as a Bearer token', async () => {
    const stack = await startStack(() => createAzureMock({ openaiKey: 'sk-server' }),
      { AZURE_OPENAI_PROXY_MODE: 'openai', AZURE_OPENAI_TOKEN: 'sk-server' });
    try {
      const res = await request(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer sk-client' } });
      assert.equal(res.status, 200);
      assert.equal(stack.mock.lastRequest().headers.authorization, 'Bearer sk-server');
    } finally {
      await stack.stop();
    }
  });
});

// AZURE_OPENAI_PROXY_ALLOWED_MODELS holds in openai mode too: a JSON body's model, an
// upload's form field `model`, checked before the upstream and relayed unchanged; batches
// (their models in a file the proxy does not read) refused.
describe('openai mode with allowed models', () => {
  let stack;
  const CLIENT = 'sk-client-0123456789';
  before(async () => {
    stack = await startStack(() => createAzureMock({ openaiKey: 'sk-server' }), {
      AZURE_OPENAI_PROXY_MODE: 'openai', AZURE_OPENAI_TOKEN: 'sk-server',
      AZURE_OPENAI_PROXY_API_KEYS: CLIENT, AZURE_OPENAI_PROXY_ALLOWED_MODELS: 'gpt-4o,whisper-1',
    });
  });
  after(async () => { await stack?.stop(); });

  const post = (path, body, type = 'application/json') => request(`${stack.url}${path}`, {
    method: 'POST', body, headers: { authorization: `Bearer ${CLIENT}`, 'content-type': type },
  });
  const upload = (model) => {
    const b = 'b0undary';
    return [`--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n`
      + `--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n--${b}--\r\n`, `multipart/form-data; boundary=${b}`];
  };

  it('refuses a model not allowed before the upstream, and relays an allowed one as it was', async () => {
    const { mock } = stack;
    const before = mock.requests.length;
    for (const [path, body, type] of [
      ['/v1/chat/completions', JSON.stringify({ model: 'gpt-5', messages: [] })],
      ['/v1/fine_tuning/jobs', JSON.stringify({ model: 'gpt-5-mini', training_file: 'file-1' })],
      ['/v1/audio/transcriptions', ...upload('whisper-9')],
      ['/v1/batches', JSON.stringify({ input_file_id: 'file-1', endpoint: '/v1/chat/completions', completion_window: '24h' })],
    ]) {
      const res = await post(path, body, type);
      assert.equal(res.status, 403, `${path}: ${res.text}`);
      assert.equal(res.json.error.code, 'model_not_allowed');
    }
    assert.equal(mock.requests.length, before, 'the upstream was not asked');
    const chat = ` {"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}\n`;
    let res = await post('/v1/chat/completions', chat);
    assert.equal(res.status, 200, res.text);
    assert.equal(mock.lastRequest().body.toString(), chat, 'byte for byte');
    const [body, type] = upload('whisper-1');
    res = await post('/v1/audio/transcriptions', body, type);
    assert.equal(res.status, 200, res.text);
    assert.equal(mock.lastRequest().body.toString(), body, 'byte for byte');
    res = await post('/v1/files', 'not json, no model', 'application/octet-stream');
    assert.equal(res.status, 200, res.text);
  });

  it('refuses an upload whose form names a second model after an allowed one', async () => {
    const { mock } = stack;
    const before = mock.requests.length;
    const [allowed, type] = upload('whisper-1');
    const b = 'b0undary';
    const smuggled = allowed.replace(`--${b}--\r\n`, `--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-5-audio\r\n--${b}--\r\n`);
    const res = await post('/v1/audio/transcriptions', smuggled, type);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'invalid_model');
    assert.match(res.json.error.message, /more than one field 'model'/);
    assert.equal(mock.requests.length, before, 'the upstream was not asked');
  });
});

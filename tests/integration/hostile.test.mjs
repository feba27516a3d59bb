// The catalogue of hostile requests: each case is sent through lighttpd and through nginx
// (both as shipped) to a proxy that asks clients for keys, and must get its status and
// error, reach the upstream only where it should, and leave the proxy serving the next
// normal request. FastCGI-level cases are written straight to the proxy's socket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  PROXY_BIN, canConnect, fastcgiConnection, fastcgiExchange, fastcgiRequest, freePort, proxyEnv, sleep, rawHttp,
  request, startChild, startLighttpd, startProxy, waitFor,
} from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const SERVER_KEY = 'azure-server-key-0123';
const ALICE = 'sk-client-alice-0001';
const MAX_BODY = 65536;
const ENV = {
  AZURE_OPENAI_TOKEN: SERVER_KEY,
  AZURE_OPENAI_PROXY_API_KEYS: `alice:${ALICE},bob:sk-client-bob-00002`,
  AZURE_OPENAI_PROXY_MAX_BODY_BYTES: String(MAX_BODY),
};
const JSON_TYPE = { 'content-type': 'application/json' };
const AUTH = { authorization: `Bearer ${ALICE}`, ...JSON_TYPE };
const chat = (model = 'gpt-4o', extra = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

const NO_KEY = JSON_TYPE;
const deep = '['.repeat(100000) + ']'.repeat(100000);

// name, request, expected status (or any of several: a web server may refuse first),
// expected error code from the proxy, and whether the upstream may see it.
const CASES = [
  // -- client keys --------------------------------------------------------------------------
  ['no key', { headers: NO_KEY, body: chat() }, 401, 'invalid_api_key'],
  ['a wrong Bearer key', { headers: { ...JSON_TYPE, authorization: 'Bearer sk-client-mallory-1' }, body: chat() }, 401, 'invalid_api_key'],
  ['a wrong api-key', { headers: { ...JSON_TYPE, 'api-key': 'sk-client-mallory-1' }, body: chat() }, 401, 'invalid_api_key'],
  ['a key with one byte more', { headers: { ...JSON_TYPE, authorization: `Bearer ${ALICE}x` }, body: chat() }, 401, 'invalid_api_key'],
  ['a key with one byte less', { headers: { ...JSON_TYPE, authorization: `Bearer ${ALICE.slice(0, -1)}` }, body: chat() }, 401, 'invalid_api_key'],
  ['the key as Basic credentials', { headers: { ...JSON_TYPE, authorization: `Basic ${Buffer.from(`${ALICE}:`).toString('base64')}` }, body: chat() }, 401, 'invalid_api_key'],
  ['an empty Bearer', { headers: { ...JSON_TYPE, authorization: 'Bearer ' }, body: chat() }, 401, 'invalid_api_key'],
  ['the Azure key itself', { headers: { ...JSON_TYPE, 'api-key': SERVER_KEY }, body: chat() }, 401, 'invalid_api_key'],
  ['a key in the query string', { path: `/v1/chat/completions?api-key=${ALICE}`, headers: NO_KEY, body: chat() }, 401, 'invalid_api_key'],
  ['the models list without a key', { method: 'GET', path: '/v1/models', headers: {} }, 401, 'invalid_api_key'],
  ['an unknown route without a key', { method: 'GET', path: '/v1/secret-admin', headers: {} }, 401, 'invalid_api_key'],
  ['a file upload without a key', { path: '/v1/files', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: '--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n' }, 401, 'invalid_api_key'],
  ['a large body without a key', { headers: NO_KEY, body: chat('gpt-4o', { pad: 'x'.repeat(60000) }) }, 401, 'invalid_api_key'],
  ['realtime without a key', { method: 'GET', path: '/v1/realtime', headers: {} }, 401, 'invalid_api_key'],
  // -- model names: short quoted errors, never forwarded ------------------------------------------
  ['a 60 KB model name', { body: chat('m'.repeat(60000)) }, 400, 'invalid_model', { maxBytes: 1024 }],
  ['a model with broken UTF-8', { body: Buffer.concat([Buffer.from('{"model":"gpt'), Buffer.from([0xff]), Buffer.from('"}')]) }, 400, 'invalid_json'],
  ['a model that climbs out: ../admin', { body: chat('../admin') }, 400, 'invalid_model'],
  ['a model with a slash', { body: chat('a/b') }, 400, 'invalid_model'],
  ['a model with a query', { body: chat('a?api-version=x') }, 400, 'invalid_model'],
  ['a model with spaces', { body: chat('gpt 4o') }, 400, 'invalid_model'],
  ['a model with CR LF', { body: chat('gpt\r\nX-Injected: 1') }, 400, 'invalid_model'],
  ['a model with an escaped NUL', { body: '{"model":"gpt-4o\\u0000../x"}' }, 400, 'invalid_model'],
  ['a model that is a number', { body: '{"model":4}' }, 400, 'invalid_model'],
  ['a model that is an array', { body: '{"model":["gpt-4o"]}' }, 400, 'invalid_model'],
  ['a model that is an object', { body: '{"model":{"a":1}}' }, 400, 'invalid_model'],
  ['a null model', { body: '{"model":null}' }, 400, 'missing_model'],
  ['no model', { body: '{"messages":[]}' }, 400, 'missing_model'],
  ['the model named twice', { body: '{"model":"gpt-4o","model":"../../x"}' }, 400, 'invalid_model'],
  ['the model key spelled with escapes', { body: '{"mod\\u0065l":"gpt-4o"}' }, 400, 'invalid_model'],
  ['a control byte after the key', { body: '{"model"\x01:"gpt-4o"}' }, 400, 'invalid_json'],
  ['a raw control byte in a string', { body: '{"model":"gpt-4o","x":"a\x02b"}' }, 400, 'invalid_json'],
  ['broken UTF-8 elsewhere', { body: Buffer.concat([Buffer.from('{"model":"gpt-4o","x":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]) }, 400, 'invalid_json'],
  ['bytes after the object', { body: '{"model":"gpt-4o"} {"model":"x"}' }, 400, 'invalid_json'],
  ['nesting 100,000 deep', { body: `{"model":"gpt-4o","x":${deep}}` }, [400, 413], null],
  ['a body that is not JSON', { body: 'model=gpt-4o' }, 400, 'invalid_json'],
  ['an empty body', { body: '' }, 400, 'invalid_json'],
  ['a JSON array', { body: '[{"model":"gpt-4o"}]' }, 400, 'invalid_json'],
  ['a byte-order mark', { body: '\ufeff{"model":"gpt-4o"}' }, 400, 'invalid_json'],
  ['single quotes', { body: "{'model':'gpt-4o'}" }, 400, 'invalid_json'],
  ['NaN', { body: '{"model":"gpt-4o","temperature":NaN}' }, 400, 'invalid_json'],
  ['a comment', { body: '{"model":"gpt-4o" /* hi */}' }, 400, 'invalid_json'],
  ['a model in disguise for responses', { path: '/v1/responses', body: '{"model":"gpt-4o","model":"../x"}' }, 400, 'invalid_model'],
  ['a legacy engine with an encoded slash', { path: '/v1/engines/a%2Fb/chat/completions', body: chat() }, 400, 'invalid_path'],
  ['a legacy deployment that climbs out', { path: '/v1/deployments/..%2F..%2Fadmin/chat/completions', body: chat() }, [400, 404], null],
  ['a model of 300 bytes', { path: '/v1/embeddings', body: JSON.stringify({ model: 'a'.repeat(300), input: 'x' }) }, 400, 'invalid_model'],
  ['a model with a right-to-left override', { body: chat('gpt-4o\u202e') }, 400, 'invalid_model'],
  ['a responses body with a control byte', { path: '/v1/responses', body: '{"model":"gpt-4o","input":"a\u0001"}' }, 400, 'invalid_json'],
  ['a multipart type without a boundary', { path: '/v1/audio/transcriptions', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'multipart/form-data' }, body: 'x' }, 400, 'invalid_json'],
  ['an upload without a model field', { path: '/v1/audio/transcriptions', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'multipart/form-data; boundary=b' }, body: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n--b--\r\n' }, 400, 'missing_model'],
  ['an upload whose model climbs out', { path: '/v1/images/edits', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'multipart/form-data; boundary=b' }, body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n../x\r\n--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nPNG\r\n--b--\r\n' }, 400, 'invalid_model'],
  ['a legacy engine that is a dot segment', { path: '/v1/engines/%2e%2e/chat/completions', body: chat() }, [400, 404], null],
  // -- methods ----------------------------------------------------------------------------------
  ['TRACE', { method: 'TRACE', path: '/v1/models', headers: AUTH }, [405, 501], null],
  ['PUT', { method: 'PUT', path: '/v1/files/file-1', body: 'x' }, 405, 'method_not_allowed'],
  ['PATCH', { method: 'PATCH', path: '/v1/files/file-1', body: '{}' }, 405, 'method_not_allowed'],
  ['PROPFIND', { method: 'PROPFIND', path: '/v1/files' }, [405, 501], null],
  ['a made-up method', { method: 'FETCHKEY', path: '/v1/files' }, [405, 501], null],
  ['GET with a body', { method: 'GET', path: '/v1/files', body: '{"x":1}' }, 400, null],  // lighttpd refuses it first
  ['HEAD with a body', { method: 'HEAD', path: '/v1/files', body: 'x' }, 400, null],
  ['DELETE with a body over the limit', { method: 'DELETE', path: '/v1/files/file-1', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(MAX_BODY + 1) }, 413, null],
  ['a preflight without a key stays open and local', { method: 'OPTIONS', path: '/v1/chat/completions', headers: { origin: 'https://x.example', 'access-control-request-method': 'POST' } }, 204, null],
  ['DELETE of a path that climbs out', { method: 'DELETE', path: '/v1/files/%2e%2e' }, 400, 'invalid_path'],
  // -- paths --------------------------------------------------------------------------------------
  ['an encoded slash in a segment', { method: 'GET', path: '/v1/files/a%2Fb' }, 400, 'invalid_path'],
  ['an encoded backslash', { method: 'GET', path: '/v1/files/a%5Cb' }, 400, 'invalid_path'],
  ['a raw backslash', { method: 'GET', path: '/v1/files/a\\b' }, [400, 404], null],
  ['an encoded dot-dot', { method: 'GET', path: '/v1/files/%2e%2e/admin' }, [400, 404], null],
  ['dot-dot then an encoded slash', { method: 'GET', path: '/v1/files/..%2Fadmin' }, 400, 'invalid_path'],
  ['an encoded NUL', { method: 'GET', path: '/v1/files/a%00b' }, 400, null],
  ['encoded CR LF', { method: 'GET', path: '/v1/files/a%0d%0aApi-Key:%20x' }, 400, null],  // lighttpd refuses it first
  ['a dot segment', { method: 'GET', path: '/v1/./files' }, [400, 404], null],
  ['a path 6 KB long', { method: 'GET', path: `/v1/files/${'a'.repeat(6000)}` }, [404, 414, 400], null, { upstream: true }],
  ['a model id that climbs out', { method: 'GET', path: '/v1/models/..%2f..%2fsecret' }, [400, 404], null],  // nginx resolves it first
  ['two Bearer keys in one header', { headers: { ...JSON_TYPE, authorization: `Bearer sk-wrong-key-000, Bearer ${ALICE}` }, body: chat() }, 401, 'invalid_api_key'],
  ['an unknown route', { method: 'GET', path: '/v2/chat/completions' }, 404, null],  // nginx serves only /v1/
  ['an unknown route under /v1', { method: 'GET', path: '/v1/realtimex/../../v2' }, [400, 404], null],
  ['the Realtime API', { method: 'GET', path: '/v1/realtime?model=gpt-4o' }, 501, 'realtime_not_supported'],
  // -- sizes ---------------------------------------------------------------------------------------
  ['a body over the limit', { body: chat('gpt-4o', { pad: 'x'.repeat(MAX_BODY) }) }, 413, null],
  ['a chunked body over the limit', { body: chat('gpt-4o', { pad: 'x'.repeat(MAX_BODY) }), chunked: true }, [411, 413], null],
  ['a file over the limit', { path: '/v1/files', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(MAX_BODY + 1) }, 413, null],
];

const HOSTILE_HOSTS = {
  lighttpd: async (mock) => {
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...ENV });
    const web = await startLighttpd({ socket: proxy.socket });
    return { port: web.port, logs: () => proxy.logs(), stop: async () => { await web.stop(); return proxy.stop(); } };
  },
  nginx: async (mock) => {
    const host = await HOSTS.nginx(mock, ENV);
    return { port: Number(new URL(host.rootUrl).port), logs: host.logs, stop: host.stop };
  },
};

for (const [server, start] of Object.entries(HOSTILE_HOSTS)) {
  describe(`hostile requests through ${server}`, () => {
    let mock, host;
    before(async () => {
      mock = createAzureMock({ apiKey: SERVER_KEY });
      await mock.listen();
      host = await start(mock);
    });
    after(async () => {
      await host?.stop();
      await mock?.close();
    });

    for (const [name, req, status, code, options = {}] of CASES) {
      it(name, async () => {
        const before = mock.requests.length;
        const res = await rawHttp(host.port, { headers: AUTH, ...req });
        const statuses = [].concat(status);
        assert.ok(statuses.includes(res.status), `status ${res.status}, expected ${statuses.join(' or ')}: ${res.body.toString().slice(0, 200)}`);
        if (code) assert.equal(res.json?.error?.code, code, res.body.toString().slice(0, 300));
        if (res.json) {
          assert.ok(res.body.length <= (options.maxBytes || 2048), `a short error (${res.body.length} bytes)`);
          assert.ok(Buffer.from(res.body.toString('utf8'), 'utf8').equals(res.body), 'the error is valid UTF-8');
          assert.ok(!res.body.includes(ALICE) && !res.body.includes(SERVER_KEY), 'no key in the answer');
        }
        if (!options.upstream) assert.equal(mock.requests.length, before, 'nothing reached the upstream');
        const next = await request(`http://127.0.0.1:${host.port}/v1/chat/completions`, {
          method: 'POST', headers: AUTH, body: chat(),
        });
        assert.equal(next.status, 200, 'the next normal request is served');
        assert.equal(mock.lastRequest().headers['api-key'], SERVER_KEY, 'the proxy sent its own key upstream');
        assert.equal(mock.lastRequest().headers.authorization, undefined, 'and not the client key');
      });
    }

    it('never writes a key to the log', () => {
      const logs = host.logs();
      assert.ok(!logs.includes(ALICE) && !logs.includes(SERVER_KEY), 'no key in the logs');
      assert.match(logs, /status=200 .* key=alice/);
    });
  });
}

describe('client keys, origins and allowed models', () => {
  let mock, proxy, web;
  before(async () => {
    mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: mock.url, ...ENV,
      AZURE_OPENAI_PROXY_CORS_ORIGINS: 'https://chat.example.com',
      AZURE_OPENAI_PROXY_ALLOWED_MODELS: 'gpt-4o,gpt-4.1',
    });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    await proxy?.stop();
    await mock?.close();
  });

  it('accepts a key as Bearer or api-key and logs its name', async () => {
    let res = await request(`${web.url}/v1/chat/completions`, { method: 'POST', headers: AUTH, body: chat() });
    assert.equal(res.status, 200);
    res = await request(`${web.url}/v1/chat/completions`, { method: 'POST', headers: { ...JSON_TYPE, 'api-key': 'sk-client-bob-00002' }, body: chat() });
    assert.equal(res.status, 200);
    assert.equal(mock.lastRequest().headers['api-key'], SERVER_KEY);
    await proxy.waitForLog(/status=200 .*key=bob/);
  });

  it('keeps the preflight open', async () => {
    const res = await request(`${web.url}/v1/chat/completions`, {
      method: 'OPTIONS', headers: { origin: 'https://chat.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], 'https://chat.example.com');
  });

  it('allows only the listed origins', async () => {
    let res = await request(`${web.url}/v1/models`, { headers: { ...AUTH, origin: 'https://evil.example.com' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers.vary, 'Origin');
    res = await request(`${web.url}/v1/models`, { headers: { ...AUTH, origin: 'https://chat.example.com' } });
    assert.equal(res.headers['access-control-allow-origin'], 'https://chat.example.com');
  });

  it('lists and serves only the allowed models (403 before the upstream)', async () => {
    const list = await request(`${web.url}/v1/models`, { headers: AUTH });
    assert.deepEqual(list.json.data.map((m) => m.id).sort(), ['gpt-4.1', 'gpt-4o']);
    const before = mock.requests.length;
    let res = await request(`${web.url}/v1/chat/completions`, { method: 'POST', headers: AUTH, body: chat('gpt-5') });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'model_not_allowed');
    res = await request(`${web.url}/v1/deployments/gpt-5/chat/completions`, { method: 'POST', headers: AUTH, body: chat('gpt-4o') });
    assert.equal(res.status, 403);
    assert.equal(mock.requests.length, before);
    res = await request(`${web.url}/v1/chat/completions`, { method: 'POST', headers: AUTH, body: chat('gpt-4.1') });
    assert.equal(res.status, 200);
    assert.match(mock.lastRequest().path, /deployments\/gpt-41\//);
  });
});

describe('a JSON access log (AZURE_OPENAI_PROXY_LOG_FORMAT=json)', () => {
  it('writes one valid JSON object a line, naming the key and never showing it', async () => {
    const mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...ENV, AZURE_OPENAI_PROXY_LOG_FORMAT: 'json' });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      await request(`${web.url}/v1/chat/completions`, { method: 'POST', headers: AUTH, body: chat() });
      await rawHttp(web.port, { headers: AUTH, body: chat('m\u00ff'.repeat(100)) });
      const lines = [await proxy.waitForLog(/"status":200/), await proxy.waitForLog(/"status":400/)].map((line) => JSON.parse(line));
      assert.deepEqual(
        { method: lines[0].method, path: lines[0].path, model: lines[0].model, upstream_status: lines[0].upstream_status, outcome: lines[0].outcome, key: lines[0].key, error: lines[0].error },
        { method: 'POST', path: '/v1/chat/completions', model: 'gpt-4o', upstream_status: 200, outcome: 'ok', key: 'alice', error: null });
      assert.equal(lines[1].outcome, 'invalid_model');
      assert.match(lines[1].model, /^[\x20-\x7e]+$/, 'client values as plain ASCII');
      assert.ok(!proxy.logs().includes(ALICE));
    } finally {
      await web.stop();
      await proxy.stop();
      await mock.close();
    }
  });
});

describe('an open relay', () => {
  it('is warned of once at start', async () => {
    const mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: SERVER_KEY, AZURE_OPENAI_PROXY_WORKERS: '2' });
    try {
      await proxy.waitForLog(/open relay/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(proxy.logs().split('\n').filter((line) => /open relay/.test(line)).length, 1);
    } finally {
      await proxy.stop();
      await mock.close();
    }
  });
});

describe('FastCGI-level hostile requests', () => {
  let mock, proxy;
  before(async () => {
    mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...ENV });
  });
  after(async () => {
    await proxy?.stop();
    await mock?.close();
  });

  const base = (extra = {}) => ({
    REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
    HTTP_AUTHORIZATION: `Bearer ${ALICE}`, ...extra,
  });
  const FASTCGI_CASES = [
    ['CR LF in a header becomes no new header', base({ HTTP_X_TRACE: '1\r\nApi-Key: stolen' }), chat(), 400, 'invalid_request'],
    ['a NUL inside a header value', base({ HTTP_X_TRACE: 'ok\0Api-Key: x' }), chat(), 400, 'invalid_request'],
    ['LF in the method', base({ REQUEST_METHOD: 'POST\nX: 1' }), chat(), 400, 'invalid_request'],
    ['CR LF in the URI', base({ REQUEST_URI: '/v1/chat/completions HTTP/1.1\r\nX: 1' }), chat(), 400, 'invalid_request'],
    ['a chunked body without CONTENT_LENGTH over the limit', base({ HTTP_TRANSFER_ENCODING: 'chunked' }), chat('gpt-4o', { pad: 'x'.repeat(MAX_BODY) }), 413, 'request_too_large'],
    ['a CONTENT_LENGTH that is not a number', base({ CONTENT_LENGTH: '-1' }), chat(), 400, 'invalid_request'],
  ];
  // An answer as the FastCGI specification has it: STDOUT records, the empty one that ends
  // the stream, one END_REQUEST; never a STDERR record (the proxy logs, it does not send).
  const assertWellFramed = (res) => {
    const types = res.records.map((r) => r.type);
    assert.ok(!types.includes(7), `no FCGI_STDERR record: ${types}`);
    assert.equal(types.filter((t) => t === 3).length, 1, `one END_REQUEST: ${types}`);
    assert.deepEqual(res.records.slice(-2).map((r) => [r.type, r.length]), [[6, 0], [3, 8]]);
  };
  for (const [name, params, body, status, code] of FASTCGI_CASES) {
    it(name, async () => {
      const before = mock.requests.length;
      const bytes = fastcgiRequest({ ...params, ...(params.CONTENT_LENGTH || params.HTTP_TRANSFER_ENCODING ? {} : { CONTENT_LENGTH: String(Buffer.byteLength(body)) }) }, body);
      const res = await fastcgiExchange(proxy.socket, bytes);
      assert.equal(res.status, status, res.head + res.text);
      if (code) assert.equal(res.json?.error?.code, code);
      assert.equal(mock.requests.length, before, 'nothing reached the upstream');
      assert.ok(res.ended, 'the request ended normally');
      assertWellFramed(res);
    });
  }

  it('a kept connection (FCGI_KEEP_CONN) serves request after request, and closes after one without it', async () => {
    const body = chat();
    const ask = (keep, extra = {}) => fastcgiRequest(base({ CONTENT_LENGTH: String(body.length), ...extra }), body, { keep });
    const connection = fastcgiConnection(proxy.socket);
    const before = mock.requests.length;
    for (let i = 0; i < 3; i++) {
      const res = await connection.ask(ask(true, { HTTP_X_REQUEST_NUMBER: String(i) }));
      assert.equal(res.status, 200, res.head + res.text);
      assert.ok(res.ended);
      assertWellFramed(res);
      assert.ok(!connection.isClosed(), `still open after request ${i}`);
    }
    // A stream, on the same connection.
    const streamed = await connection.ask(fastcgiRequest(base({ CONTENT_LENGTH: String(chat('gpt-4o', { stream: true }).length) }),
      chat('gpt-4o', { stream: true }), { keep: true }));
    assert.equal(streamed.status, 200);
    assert.match(streamed.text, /data: \[DONE\]/);
    assertWellFramed(streamed);
    const last = await connection.ask(ask(false));
    assert.equal(last.status, 200);
    await connection.closed;
    assert.equal(mock.requests.length - before, 5);
    assert.deepEqual(mock.requests.slice(before, before + 3).map((r) => r.headers['x-request-number']), ['0', '1', '2']);
  });

  it('a kept connection drops the unread rest of a refused body and serves on; past 1 MiB it closes', async () => {
    const refusedWith = (size) => {
      const big = chat('gpt-4o', { pad: 'x'.repeat(size) });
      return fastcgiRequest({ ...base({ CONTENT_LENGTH: String(big.length) }), HTTP_AUTHORIZATION: '' }, big, { keep: true });
    };
    const ok = () => fastcgiRequest(base({ CONTENT_LENGTH: String(chat().length) }), chat(), { keep: true });
    // Refused before its body is read (no key): the rest is read and dropped, the next request served.
    const kept = fastcgiConnection(proxy.socket);
    assert.equal((await kept.ask(refusedWith(100000))).status, 401);
    assert.equal((await kept.ask(ok())).status, 200);
    assert.ok(!kept.isClosed());
    kept.close();
    // Too much to drop: the connection closes once the answer is out.
    const closed = fastcgiConnection(proxy.socket);
    assert.equal((await closed.ask(refusedWith(3 << 20))).status, 401);
    await closed.closed;
  });

  it('requests sent back to back on a kept connection: the first is answered, then it closes (none left waiting)', async () => {
    const one = fastcgiRequest(base({ CONTENT_LENGTH: String(chat().length) }), chat(), { keep: true });
    const connection = fastcgiConnection(proxy.socket);
    const first = await connection.ask(Buffer.concat([one, one, one]));
    assert.equal(first.status, 200);
    await Promise.race([connection.closed, sleep(5000)]);
    assert.ok(connection.isClosed(), 'the connection closed rather than leave two requests waiting');
  });

  it('a kept connection its web server closes goes unlogged', async () => {
    const idle = fastcgiConnection(proxy.socket);
    const ok = await idle.ask(fastcgiRequest(base({ CONTENT_LENGTH: String(chat().length) }), chat(), { keep: true }));
    assert.equal(ok.status, 200);
    await sleep(100);  // the access log goes out within 50 ms
    const lines = proxy.logs().split('\n').length;
    idle.close();
    await idle.closed;
    await sleep(200);
    assert.equal(proxy.logs().split('\n').length, lines, proxy.logs().split('\n').slice(lines - 1).join('\n'));
  });

  it('malformed records close the connection and the next request is served', async () => {
    const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(10));
    const res = await fastcgiExchange(proxy.socket, garbage);
    assert.equal(res.status, 0);
    const ok = await fastcgiExchange(proxy.socket, fastcgiRequest(base({ CONTENT_LENGTH: String(chat().length) }), chat()));
    assert.equal(ok.status, 200);
  });
});

// FCGI_WEB_SERVER_ADDRS on a TCP socket: only the named web servers are served. The whole
// of 127.0.0.0/8 is loopback, so a client bound to 127.0.0.2 is another web server.
describe('FCGI_WEB_SERVER_ADDRS on a TCP FastCGI socket', () => {
  let mock, proxy, port;
  before(async () => {
    mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    port = await freePort();
    proxy = startChild(PROXY_BIN, ['--listen', `127.0.0.1:${port}`],
      { env: proxyEnv({ AZURE_OPENAI_ENDPOINT: mock.url, ...ENV, FCGI_WEB_SERVER_ADDRS: '127.0.0.2, ::1' }) });
    await waitFor(() => proxy.exited || canConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }), 'the proxy on TCP');
    assert.ok(!proxy.exited, proxy.output);
  });
  after(async () => {
    await proxy?.stop();
    await mock?.close();
  });
  const ask = (localAddress) => {
    const body = chat();
    const bytes = fastcgiRequest({
      REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
      HTTP_AUTHORIZATION: `Bearer ${ALICE}`, CONTENT_LENGTH: String(body.length),
    }, body);
    return fastcgiExchange({ host: '127.0.0.1', port, localAddress }, bytes);
  };

  it('a web server the list names is served; any other address is closed unanswered, counted and logged once', async () => {
    const before = mock.requests.length;
    assert.equal((await ask('127.0.0.2')).status, 200);
    for (let i = 0; i < 3; i++) {
      const refused = await ask('127.0.0.1');
      assert.equal(refused.status, 0, 'no answer');
      assert.equal(refused.records.length, 0, 'not a byte');
    }
    assert.equal(mock.requests.length - before, 1, 'only the allowed request reached Azure');
    assert.equal((await ask('127.0.0.2')).status, 200, 'still serving');
    const said = proxy.output.split('\n').filter((line) => /FCGI_WEB_SERVER_ADDRS does not name/.test(line));
    assert.equal(said.length, 1, proxy.output);
    assert.match(said[0], /the last from 127\.0\.0\.1\)/);
    const metrics = await fastcgiExchange({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, fastcgiRequest({
      REQUEST_METHOD: 'GET', REQUEST_URI: '/metrics', REMOTE_ADDR: '127.0.0.1',
    }));
    assert.match(metrics.text, /^aop_fastcgi_connections_refused_total 3$/m);
  });

  it('an entry that is no address stops the start with one line naming it', async () => {
    const child = startChild(PROXY_BIN, ['--listen', `127.0.0.1:${await freePort()}`],
      { env: proxyEnv({ AZURE_OPENAI_ENDPOINT: mock.url, ...ENV, FCGI_WEB_SERVER_ADDRS: '127.0.0.1,web1.internal' }) });
    const ended = await child.exitPromise;
    assert.notEqual(ended.code, 0);
    assert.match(child.output, /FCGI_WEB_SERVER_ADDRS: 'web1\.internal' is not an IP address/);
  });
});

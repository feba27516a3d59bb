// What a client gets when the upstream or the network fails: before the answer, an error
// naming the cause class; after it started, never a clean end (an SSE error event, then
// the connection cut). And nothing left behind in the proxy: descriptors, threads, memory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

import OpenAI from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { answerLength, freePort, rawHttp, rssRiseKiB, sanitizerReports, startLighttpd, startProxy, startStack, tempDir, waitFor } from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const KEY = 'test-key';
const AUTH = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const chat = (extra = {}) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...extra });
const fault = (scenario, extra = {}) => ({ headers: { ...AUTH, 'x-mock-scenario': scenario, ...extra }, body: chat() });
const streamFault = (scenario) => ({ headers: { ...AUTH, 'x-mock-scenario': scenario }, body: chat({ stream: true }) });

const status = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const threads = (pid) => Number(/Threads:\s+(\d+)/.exec(status(pid))[1]);
const descriptors = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

// The SSE `error` event the proxy adds when a stream breaks, parsed.
function errorEvent(body) {
  const match = /event: error\ndata: (.*)\n\n/.exec(body.toString());
  return match && JSON.parse(match[1]);
}

describe('upstream faults through lighttpd', () => {
  let stack, port, baseline;
  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: KEY }), {
      AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT: '1', AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT: '1',
      AZURE_OPENAI_PROXY_THREADS: '1',
      // The sanitizer's quarantine would hold on to every freed buffer of a 100 MiB answer.
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=1',
    });
    port = stack.web.port;
    await rawHttp(port, { headers: AUTH, body: chat() });
    baseline = { fds: descriptors(stack.proxy.pid), threads: threads(stack.proxy.pid) };
  });
  after(async () => { await stack?.stop(); });

  const BEFORE_THE_ANSWER = [
    ['a reset before the headers', 'reset-before-headers', 502, 'upstream_protocol_error', 'upstream-protocol'],
    ['bytes that are not HTTP', 'garbage', 502, 'upstream_protocol_error', 'upstream-protocol'],
    ['a stall before the headers (first-byte timeout)', 'hang', 504, 'upstream_timeout', 'upstream-timeout'],
    ['one 300 KB header', 'huge-header', 502, null, 'upstream-'],
  ];
  for (const [name, scenario, code, errorCode, outcome] of BEFORE_THE_ANSWER) {
    it(`${name}: ${code} naming the cause, the log carrying libcurl's words`, async () => {
      const res = await rawHttp(port, fault(scenario));
      assert.equal(res.status, code, res.body.toString());
      if (errorCode) assert.equal(res.json.error.code, errorCode);
      assert.equal(res.json.error.type, 'api_error');
      const line = await stack.proxy.waitForLog(new RegExp(`status=${code} .*outcome=${outcome}`));
      assert.match(line, / error="[^"]+"/);
    });
  }

  it('a JSON answer reset mid-body: the client sees it cut, not complete', async () => {
    const res = await rawHttp(port, fault('reset-mid-body'));
    assert.equal(res.status, 200);
    assert.equal(res.complete, false, 'the body is incomplete');
    await stack.proxy.waitForLog(/status=200 upstream=200 .*outcome=upstream-protocol error=/);
  });

  for (const [name, scenario, events, code] of [
    ['reset after three events', 'reset-mid-stream', 3, 'upstream_protocol_error'],
    ['a malformed chunk', 'bad-chunk', 1, 'upstream_protocol_error'],
    ['silence past the upstream timeout', 'stall-mid-stream', 1, 'upstream_timeout'],
  ]) {
    it(`a stream broken by ${name}: an SSE error event, then no final chunk`, async () => {
      const res = await rawHttp(port, streamFault(scenario));
      assert.equal(res.status, 200);
      const text = res.body.toString();
      assert.equal(text.split('\n\n').filter((e) => e.startsWith('data: {')).length, events, text);
      assert.equal(errorEvent(res.body)?.error?.code, code, text);
      assert.equal(res.complete, false, 'the stream did not end cleanly');
    });
  }

  it('the openai SDK raises on a broken stream instead of returning a truncated answer', async () => {
    const client = new OpenAI({
      baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0,
      defaultHeaders: { 'x-mock-scenario': 'reset-mid-stream' },
    });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let parts = 0;
    await assert.rejects(async () => { for await (const chunk of stream) parts += chunk.choices.length; });
    assert.equal(parts, 3);
  });

  it('an endless stream stops costing when its client leaves', async () => {
    const before = stack.mock.openConnections;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { ...AUTH, 'x-mock-scenario': 'endless' } });
    req.end(chat({ stream: true }));
    const res = await new Promise((resolve) => req.on('response', resolve));
    await new Promise((resolve) => res.once('data', resolve));
    req.destroy();
    await waitFor(() => stack.mock.openConnections <= before, 'the upstream connection to close', 5000);
  });

  it('a 100 MiB answer and a 100 MiB error body pass in bounded memory', async () => {
    const rise = await rssRiseKiB(stack.proxy.pid, async () => {
      for (const [scenario, code] of [['big', 200], ['big-error', 500]])
        assert.deepEqual(await answerLength(port, fault(scenario)), { status: code, bytes: 100 * 1024 * 1024 });
    });
    assert.ok(rise < 16 * 1024, `the proxy grew by ${rise} KiB`);
  });

  it('1,000 upstream headers are relayed', async () => {
    const res = await rawHttp(port, fault('many-headers'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-mock-header-999'], 'value-999');
  });

  // RFC 9110 §5.5: CR, LF and NUL in a field value are replaced with SP (or the message refused).
  it('header values with a bare CR or a control byte reach the client as spaces; names that are not tokens not at all', async () => {
    const res = await rawHttp(port, fault('bare-cr-header'));
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.json.choices[0].message.content, 'clean answer');
    assert.equal(res.complete, true);
    const head = res.raw.subarray(0, res.raw.indexOf('\r\n\r\n')).toString('latin1');
    assert.doesNotMatch(head.replaceAll('\r\n', ''), /[\x00-\x08\x0a-\x1f\x7f]/, 'no control byte but the CRLF that ends each line');
    assert.equal(res.headers['x-bare-cr'], 'before after');
    assert.equal(res.headers['x-hidden'], 'one Set-Cookie: injected=1');
    assert.equal(res.headers['set-cookie'], undefined, 'no field smuggled behind a CR');
    assert.equal(res.headers['x-control'], 'a b\tc');
    assert.doesNotMatch(head, /^(X Spaced|X\(Paren\)):/im, 'names that are not tokens are dropped');
    assert.equal(res.headers['x-after'], 'intact', 'the fields after them are kept');
  });

  it('a NUL in an upstream header value: a 502 naming a malformed answer, none of its fields relayed', async () => {
    const res = await rawHttp(port, fault('nul-header'));
    assert.equal(res.status, 502, res.body.toString());
    assert.equal(res.json.error.code, 'upstream_protocol_error');
    assert.equal(res.headers['x-nul'], undefined);
    assert.equal(res.headers['x-after'], undefined);
    await stack.proxy.waitForLog(/status=502 .*outcome=upstream-protocol error="Nul byte in header"/);
  });

  it('leaves no descriptor or thread behind', async () => {
    await waitFor(() => descriptors(stack.proxy.pid) <= baseline.fds + 2, `descriptors back to ${baseline.fds} (now ${descriptors(stack.proxy.pid)})`, 5000);
    assert.equal(threads(stack.proxy.pid), baseline.threads);
  });
});

// Each web server, told by a FastCGI request that ends without END_REQUEST, must not end
// the client's answer cleanly.
for (const name of ['nginx', 'apache mod_proxy_fcgi']) {
  describe(`a broken stream behind ${name}`, () => {
    let mock, host;
    before(async () => {
      mock = createAzureMock({ apiKey: KEY });
      await mock.listen();
      host = await HOSTS[name](mock);
    });
    after(async () => { await host?.stop(); await mock?.close(); });

    it('reaches the client as an error event and a cut connection', async () => {
      const res = await rawHttp(Number(new URL(host.rootUrl).port), streamFault('reset-mid-stream'));
      assert.equal(res.status, 200);
      assert.equal(errorEvent(res.body)?.error?.code, 'upstream_protocol_error', res.body.toString());
      assert.equal(res.complete, false, 'no final chunk');
    });
  });
}

describe('upstream connection failures', () => {
  it('a refused connection is a 502 that says so', async () => {
    const closed = await freePort();
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: `http://127.0.0.1:${closed}` });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      const res = await rawHttp(web.port, { headers: AUTH, body: chat() });
      assert.equal(res.status, 502);
      assert.equal(res.json.error.code, 'upstream_unreachable');
      assert.match(res.json.error.message, /refused/);
      await proxy.waitForLog(/outcome=upstream-connect error="[^"]*(onnect|refused)/);
    } finally {
      await web.stop();
      await proxy.stop();
    }
  });

  it('a name that does not resolve is a 502 naming DNS', async () => {
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: 'http://no-such-host.invalid', RES_OPTIONS: 'timeout:1 attempts:1' });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      const res = await rawHttp(web.port, { headers: AUTH, body: chat() });
      assert.equal(res.status, 502);
      assert.match(res.json.error.message, /DNS/);
      await proxy.waitForLog(/outcome=upstream-dns error="[^"]*resolve/);
    } finally {
      await web.stop();
      await proxy.stop();
    }
  });
});

// A failed transfer leaves its libcurl handle in a state of its own (libcurl 7.88 keeps the
// receive buffer of a transfer whose name did not resolve, and refuses the next
// CURLOPT_BUFFERSIZE): one DNS failure must cost its own request, never the ones after it.
describe('a name that does not resolve costs one request, never the ones after it', () => {
  let dir, mock;
  before(async () => {
    dir = tempDir('dns');
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
  });
  after(async () => { await mock?.close(); });

  const routing = (file, endpoints, models, retry = {}) => fs.writeFileSync(file, JSON.stringify({
    endpoints: Object.fromEntries(Object.entries(endpoints).map(([name, url]) => [name, { url, key: 'env:UPSTREAM_KEY' }])),
    models,
    retry: { max_tries: 2, circuit_failures: 1000, circuit_open_seconds: 30, ...retry },
  }));
  // One worker, one loop: every request reuses the same pool of libcurl handles.
  const start = async (file) => {
    const proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: KEY, AZURE_OPENAI_PROXY_CONFIG: file, UPSTREAM_KEY: KEY,
      AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_STATE_FILE: 'none', RES_OPTIONS: 'timeout:1 attempts:1',
    });
    const web = await startLighttpd({ socket: proxy.socket });
    const stop = async () => {
      await web.stop();
      const stopped = await proxy.stop();
      assert.deepEqual(sanitizerReports(proxy.logs()), []);
      assert.equal(stopped.code, 0, proxy.logs());
    };
    return { proxy, web, stop };
  };
  const ask = (web, model = 'gpt-4o') => rawHttp(web.port, { headers: AUTH, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) });

  it('an unresolvable target first, a healthy one second: every request fails over and succeeds', async () => {
    const file = path.join(dir, 'failover.json');
    routing(file, { dns: 'http://nonexistent.invalid', healthy: mock.url },
      { 'gpt-4o': ['dns', { endpoint: 'healthy', priority: 1 }] });
    const { proxy, web, stop } = await start(file);
    const since = mock.requests.length;
    try {
      for (let i = 0; i < 20; i++) {
        const res = await ask(web);
        assert.equal(res.status, 200, `request ${i + 1}: ${res.body}`);
      }
      assert.equal(mock.requests.length - since, 20, 'each request reached the healthy target once');
      // Each request tried the unresolvable target first (the log line follows the answer).
      const failedOver = () => proxy.logs().split('\n').filter((line) => /model=gpt-4o .*status=200 .*target=healthy\/gpt-4o tries=2 .*error="Could not resolve host/.test(line)).length;
      await waitFor(() => failedOver() === 20, 'an access-log line per request, each after a DNS failure', 5000);
      assert.doesNotMatch(proxy.logs(), /libcurl refused/);
    } finally {
      await stop();
    }
  });

  it('a model whose only target does not resolve, then another model: the other one is answered', async () => {
    const file = path.join(dir, 'two-models.json');
    routing(file, { dns: 'http://nonexistent.invalid', healthy: mock.url },
      { 'gpt-4o': ['dns'], 'gpt-4o-mini': ['healthy'] }, { max_tries: 1 });
    const { web, stop } = await start(file);
    try {
      for (let i = 0; i < 5; i++) {
        const failed = await ask(web, 'gpt-4o');
        assert.equal(failed.status, 502, failed.body.toString());
        assert.match(failed.json.error.message, /DNS/);
        const answered = await ask(web, 'gpt-4o-mini');
        assert.equal(answered.status, 200, `after DNS failure ${i + 1}: ${answered.body}`);
      }
    } finally {
      await stop();
    }
  });

  it('an endpoint that did not resolve, then corrected by a reload (SIGHUP): the next request is answered', async () => {
    const file = path.join(dir, 'reload.json');
    routing(file, { only: 'http://nonexistent.invalid' }, { 'gpt-4o': ['only'] });
    const { proxy, web, stop } = await start(file);
    try {
      const failed = await ask(web);
      assert.equal(failed.status, 502, failed.body.toString());
      assert.match(failed.json.error.message, /DNS/);
      routing(file, { only: mock.url }, { 'gpt-4o': ['only'] });
      process.kill(proxy.pid, 'SIGHUP');
      await proxy.waitForLog(/SIGHUP: .*reload\.json in force/);
      for (let i = 0; i < 5; i++) {
        const res = await ask(web);
        assert.equal(res.status, 200, `request ${i + 1} after the reload: ${res.body}`);
      }
    } finally {
      await stop();
    }
  });
});

describe('upstream TLS and an outbound proxy', () => {
  let dir, tls, mock, cert;
  before(async () => {
    dir = tempDir('tls');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = path.join(dir, 'cert.pem');
    mock = createAzureMock({ apiKey: KEY });
    // The mock's handler behind TLS, with a certificate no system CA signed.
    tls = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(cert) }, (req, res) => mock.server.emit('request', req, res));
    tls.on('secureConnection', (socket) => { socket.mockId = 0; socket.entries = []; });  // what the mock keeps per connection
    await new Promise((resolve) => tls.listen(0, '127.0.0.1', resolve));
  });
  after(async () => { tls?.closeAllConnections(); await new Promise((resolve) => tls?.close(resolve)); });

  const through = async (env, check) => {
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: `https://127.0.0.1:${tls.address().port}`, ...env });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      await check(await rawHttp(web.port, { headers: AUTH, body: chat() }), proxy);
    } finally {
      await web.stop();
      await proxy.stop();
    }
  };

  it('an unknown certificate is refused: 502 upstream_tls_error', () => through({}, async (res, proxy) => {
    assert.equal(res.status, 502);
    assert.equal(res.json.error.code, 'upstream_tls_error');
    await proxy.waitForLog(/outcome=upstream-tls error="[^"]*certificate/);
  }));

  it('AZURE_OPENAI_PROXY_CA_BUNDLE trusts it', () => through({ AZURE_OPENAI_PROXY_CA_BUNDLE: cert }, async (res) => {
    assert.equal(res.status, 200, res.body.toString());
  }));

  // The bundle is read once per loop, not per connection (upstream_transfer.cpp: with the
  // system's bundle, a new connection cost about 10 ms of CPU parsing it). Seen from outside:
  // a bundle replaced on disk is not read again for the next connection.
  it('AZURE_OPENAI_PROXY_CA_BUNDLE is read once, and kept for the connections after the first', async () => {
    const bundle = path.join(dir, 'kept-bundle.pem');
    fs.copyFileSync(cert, bundle);
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(cert) },
      (req, res) => mock.server.emit('request', req, res));
    server.on('secureConnection', (socket) => { socket.mockId = 0; socket.entries = []; });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: `https://127.0.0.1:${server.address().port}`, AZURE_OPENAI_PROXY_CA_BUNDLE: bundle,
      AZURE_OPENAI_PROXY_THREADS: '1',
    });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      assert.equal((await rawHttp(web.port, { headers: AUTH, body: chat() })).status, 200);
      // Another certificate in its place, the kept connection gone and the session tickets
      // void: the next request makes a new connection with a full handshake, and the
      // upstream's certificate is checked again.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=other',
        '-keyout', path.join(dir, 'other-key.pem'), '-out', bundle], { stdio: 'ignore' });
      server.setTicketKeys(crypto.randomBytes(48));
      server.closeAllConnections();
      const res = await rawHttp(web.port, { headers: AUTH, body: chat() });
      assert.equal(res.status, 200, `checked against the bundle read at the first connection: ${res.body}`);
    } finally {
      await web.stop();
      await proxy.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  // libcurl 7.88 keeps the receive buffer of a transfer that ends while another one still
  // uses its HTTP/2 connection, and refuses CURLOPT_BUFFERSIZE on that handle afterwards:
  // the handle must not serve the next request as it is.
  it('an HTTP/2 upstream: requests that end while a stream shares their connection do not fail the ones after them', async () => {
    const h2 = http2.createSecureServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(cert) },
      (req, res) => mock.server.emit('request', req, res));
    let connections = 0;
    h2.on('secureConnection', (socket) => { socket.mockId = ++connections; socket.entries = []; });
    await new Promise((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: `https://127.0.0.1:${h2.address().port}`, AZURE_OPENAI_PROXY_CA_BUNDLE: cert,
      AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_UPSTREAM_HTTP: '2',
    });
    const web = await startLighttpd({ socket: proxy.socket });
    try {
      assert.equal((await rawHttp(web.port, { headers: AUTH, body: chat() })).status, 200);  // the connection, HTTP/2
      const since = mock.requests.length;
      const stream = rawHttp(web.port, { headers: { ...AUTH, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '150' }, body: chat({ stream: true }) });
      await waitFor(() => mock.requests.length > since, 'the stream to start');
      for (let i = 0; i < 6; i++) {
        const res = await rawHttp(web.port, { headers: AUTH, body: chat() });
        assert.equal(res.status, 200, `request ${i + 1} beside the stream: ${res.body}`);
      }
      const streamed = await stream;
      assert.equal(streamed.status, 200);
      assert.match(streamed.body.toString(), /\[DONE\]/);
      assert.equal(new Set(mock.requests.slice(since).map((r) => r.connection)).size, 2, 'the stream on its own HTTP/2 connection, the requests beside it on one other');
    } finally {
      await web.stop();
      await proxy.stop();
      await new Promise((resolve) => h2.close(resolve));
    }
  });

  // HTTP/2 only when asked (config.h says why): on HTTP/1.1 by default, even where the upstream
  // busy HTTP/2 connection (issue 22), so an upstream that offers both gets HTTP/1.1.
  it('AZURE_OPENAI_PROXY_UPSTREAM_HTTP: 1.1 by default where the upstream offers HTTP/2 too; 2 when set', async () => {
    const versions = [];
    const both = http2.createSecureServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(cert), allowHTTP1: true },
      (req, res) => { versions.push(req.httpVersion); mock.server.emit('request', req, res); });
    both.on('secureConnection', (socket) => { socket.mockId = 0; socket.entries = []; });
    await new Promise((resolve) => both.listen(0, '127.0.0.1', resolve));
    try {
      for (const [setting, expected] of [[undefined, '1.1'], ['1.1', '1.1'], ['2', '2.0']]) {
        const proxy = await startProxy({
          AZURE_OPENAI_ENDPOINT: `https://127.0.0.1:${both.address().port}`, AZURE_OPENAI_PROXY_CA_BUNDLE: cert,
          ...(setting ? { AZURE_OPENAI_PROXY_UPSTREAM_HTTP: setting } : {}),
        });
        const web = await startLighttpd({ socket: proxy.socket });
        try {
          const res = await rawHttp(web.port, { headers: AUTH, body: chat() });
          assert.equal(res.status, 200, res.body.toString());
          assert.equal(versions.at(-1), expected, `setting ${setting}`);
        } finally {
          await web.stop();
          await proxy.stop();
        }
      }
    } finally {
      await new Promise((resolve) => both.close(resolve));
    }
  });

  it('AZURE_OPENAI_PROXY_UPSTREAM_PROXY carries the connection (CONNECT)', async () => {
    const tunnels = [];
    const forward = http.createServer();
    forward.on('connect', (req, client, head) => {
      tunnels.push(req.url);
      const [host, port] = req.url.split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise((resolve) => forward.listen(0, '127.0.0.1', resolve));
    try {
      await through({ AZURE_OPENAI_PROXY_CA_BUNDLE: cert, AZURE_OPENAI_PROXY_UPSTREAM_PROXY: `http://127.0.0.1:${forward.address().port}` }, async (res) => {
        assert.equal(res.status, 200, res.body.toString());
      });
      assert.deepEqual(tunnels, [`127.0.0.1:${tls.address().port}`]);
    } finally {
      forward.closeAllConnections();
      await new Promise((resolve) => forward.close(resolve));
    }
  });
});

// Everything that holds on HTTP/1.1 holds on HTTP/2 (issue 22): with
// AZURE_OPENAI_PROXY_UPSTREAM_HTTP=2, what one stream does (a client that stops reading or
// leaves, a reset, the upstream's GOAWAY) must stay that stream's own. libcurl 7.88 cannot
// pause one stream of a shared connection without stopping the others, so the proxy gives
// each transfer in flight its own connection (kept alive for the next ones): the tests
// check that transfers in flight together did not share one, and that one after another
// did. The stand-in is the mock's handler behind node:http2 with a certificate made for
// the run; one event loop (THREADS=1). Failover and big bodies are in
// upstream-http2-routing.test.mjs.
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { rawHttp, sleep, startLighttpd, startProxy, tempDir, waitFor } from './harness.mjs';
import { AUTH, KEY, chat, errorEvent, h2Upstream, makeCertificate } from './upstream-http2-parts.mjs';

const peakKiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const dataEvents = (text) => text.split('\n\n').filter((e) => e.startsWith('data: {')).length;
const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;
const sseHead = { ':status': 200, 'content-type': 'text/event-stream; charset=utf-8' };
const sseEvent = (i) => `data: ${JSON.stringify({ id: 'chatcmpl-h2', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `part${i} ` }, finish_reason: null }] })}\n\n`;

// What the tests make the upstream do to one stream, picked by `x-mock-scenario` as the
// mock's own faults are (the mock's reset-* faults reset the whole TCP connection, which on
// HTTP/2 is every stream at once: these act on the stream only). A stream is reset with
// destroy(error): RST_STREAM(INTERNAL_ERROR) at once; stream.close(code) would first end
// it cleanly (END_STREAM), which a client rightly takes for a whole answer.
function streamFaults(req, res) {
  const stream = res.stream;
  switch (req.headers['x-mock-scenario']) {
    case 'h2-reset-before-headers':
      req.resume();
      req.on('end', () => stream.destroy(new Error('reset before any byte')));
      return true;
    case 'h2-reset-mid-stream':
      stream.respond(sseHead);
      for (let i = 0; i < 3; i++) stream.write(sseEvent(i));
      setTimeout(() => stream.destroy(new Error('reset mid-answer')), 100);
      return true;
    case 'h2-goaway-mid-stream':  // graceful: this stream is the last the upstream serves
      stream.respond(sseHead);
      for (let i = 0; i < 3; i++) stream.write(sseEvent(i));
      setTimeout(() => {
        stream.session.goaway(NGHTTP2_NO_ERROR, stream.id);
        setTimeout(() => { for (let i = 3; i < 6; i++) stream.write(sseEvent(i)); stream.end('data: [DONE]\n'); }, 300);
      }, 100);
      return true;
    case 'h2-goaway-error-mid-stream':  // the upstream gives up on the connection
      stream.respond(sseHead);
      for (let i = 0; i < 3; i++) stream.write(sseEvent(i));
      setTimeout(() => stream.session.destroy(new Error('going away'), NGHTTP2_INTERNAL_ERROR), 100);
      return true;
    default:
      return false;
  }
}

// A client that sends a request and does not read its answer until resume() (its socket
// paused: the kernel's buffers fill, then lighttpd's, then the proxy must hold back).
function stalledClient(port, headers, body) {
  let head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n';
  for (const [name, value] of Object.entries({ ...headers, 'content-length': Buffer.byteLength(body) })) head += `${name}: ${value}\r\n`;
  const socket = net.connect(port, '127.0.0.1', () => { socket.write(`${head}\r\n${body}`); socket.pause(); });
  socket.on('error', () => {});
  const chunks = [];
  const closed = new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))));
  return { socket, closed, resume: () => { socket.on('data', (d) => chunks.push(d)); socket.resume(); return closed; } };
}

describe('an HTTP/2 upstream: one stream\'s trouble stays its own', () => {
  let tls, mock, upstream, proxy, web, port;
  before(async () => {
    tls = makeCertificate();
    mock = createAzureMock({ apiKey: KEY });
    upstream = await h2Upstream(mock, tls, streamFaults);
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: upstream.url, AZURE_OPENAI_PROXY_CA_BUNDLE: tls.certFile,
      AZURE_OPENAI_PROXY_UPSTREAM_HTTP: '2', AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_WRITE_TIMEOUT: '6',
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=1',
    });
    web = await startLighttpd({ socket: proxy.socket });
    port = web.port;
  });
  after(async () => {
    await web?.stop();
    const stopped = await proxy?.stop();
    await upstream?.close();
    assert.equal(stopped?.code, 0, proxy?.logs());
  });

  // The connection every transfer of a test is to share: made by a first request (libcurl
  // is not told to wait for a connection's protocol, so streams started before one exists
  // may each open their own).
  const connect = async () => {
    const res = await rawHttp(port, { headers: AUTH, body: chat() });
    assert.equal(res.status, 200, res.body.toString());
    return upstream.records.at(-1);
  };
  const slowStream = (id, delayMs = 100) => rawHttp(port, {
    headers: { ...AUTH, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': String(delayMs), 'x-test-id': id }, body: chat({ stream: true }),
  });
  // Whether the proxy's TCP connection that carried a stream is open (the kernel's view).
  const connectionOpen = (id) => execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${upstream.record(id).clientPort} )`])
    .toString().trim() !== '';
  const writeTimeouts = () => (proxy.logs().match(/outcome=write-timeout/g) || []).length;
  const clientsGone = () => (proxy.logs().match(/outcome=client-gone/g) || []).length;
  // A client that asks for a stream, takes its first bytes and leaves.
  const leaveAfterFirstBytes = async (scenario, id) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { ...AUTH, 'x-mock-scenario': scenario, 'x-test-id': id } });
    req.on('error', () => {});
    req.end(chat({ stream: true }));
    const res = await new Promise((resolve) => req.on('response', resolve));
    await new Promise((resolve) => res.once('data', resolve));
    req.destroy();
  };
  const sameConnection = (ids, connection) => {
    for (const id of ids) assert.equal(upstream.record(id)?.connection, connection, `${id} on connection ${connection}`);
    assert.equal(upstream.record(ids[0]).version, '2.0');
  };
  // Transfers in flight at once: each on its own HTTP/2 connection.
  const ownConnections = (ids) => {
    const connections = ids.map((id) => upstream.record(id)?.connection);
    assert.equal(new Set(connections).size, ids.length, `${ids} on connections ${connections}`);
    for (const id of ids) assert.equal(upstream.record(id).version, '2.0');
  };

  // The body of a chunked HTTP/1.1 answer, its chunks joined: where the upstream's last
  // pieces fell into chunks is the web server's affair, not the proxy's.
  const chunksJoined = (raw) => {
    let at = raw.indexOf('\r\n\r\n') + 4;
    let body = '';
    for (;;) {
      const lineEnd = raw.indexOf('\r\n', at);
      const size = parseInt(raw.slice(at, lineEnd), 16);
      if (!(size > 0)) return body;
      body += raw.slice(lineEnd + 2, lineEnd + 2 + size);
      at = lineEnd + 2 + size + 2;
    }
  };

  // Mirrors azure-mode.test.mjs 'a client that stops reading (one event loop)': others
  // served at once, the stalled answer held back upstream, memory bounded; and, within the
  // write timeout, the stalled client gets its whole answer when it reads again.
  it('a client that stops reading pauses only its own stream; it completes when the client reads again', async () => {
    const { connection } = await connect();
    const before = peakKiB(proxy.pid);
    const stalled = stalledClient(port, { ...AUTH, 'x-mock-scenario': 'long', 'x-mock-events': '150000', 'x-test-id': 'stalled' }, chat({ stream: true }));
    try {
      await waitFor(() => upstream.record('stalled'), 'the stalled stream to reach the upstream');
      await sleep(1500);
      const upstreamStream = mock.streams.find((s) => s.headers['x-test-id'] === 'stalled');
      const started = Date.now();
      const other = await slowStream('beside');  // about 1 s of events
      assert.equal(other.status, 200);
      assert.match(other.body.toString(), /data: \[DONE\]/);
      assert.equal(other.complete, true, 'the stream beside it completed');
      assert.ok(Date.now() - started < 3000, `the stream beside the stalled one took ${Date.now() - started} ms`);
      for (let i = 0; i < 3; i++) {
        const asked = Date.now();
        const res = await rawHttp(port, { headers: { ...AUTH, 'x-test-id': `small-${i}` }, body: chat(), timeoutMs: 3000 });
        assert.equal(res.status, 200);
        assert.ok(Date.now() - asked < 1000, `a request took ${Date.now() - asked} ms beside the stalled one`);
      }
      sameConnection(['stalled'], connection);  // the idle connection, taken again
      ownConnections(['stalled', 'beside']);
      sameConnection(['small-0', 'small-1', 'small-2'], upstream.record('beside').connection);
      assert.ok(!upstreamStream.complete, `the upstream was held back (${upstreamStream.text.length} bytes sent)`);
      const grewKiB = peakKiB(proxy.pid) - before;
      assert.ok(grewKiB < 8 * 1024, `peak memory grew by ${grewKiB} KiB while a client did not read`);

      const raw = await stalled.resume();
      assert.match(raw, /^HTTP\/1\.1 200/);
      assert.ok(raw.includes('word149999 '), 'the last word arrived');
      assert.ok(raw.endsWith('\r\n0\r\n\r\n'), `a last chunk: ${JSON.stringify(raw.slice(-60))}`);
      assert.ok(chunksJoined(raw).endsWith('data: [DONE]\n\n'), `a clean end: ${JSON.stringify(raw.slice(-60))}`);
      assert.ok(upstreamStream.complete);
    } finally {
      stalled.socket.destroy();
    }
  });

  // Mirrors slow-clients.test.mjs 'clients that never read their answer are cut after the
  // write timeout': cut, logged write-timeout, its upstream transfer closed -- here with its
  // connection, as on HTTP/1.1 (libcurl 7.88 would send the stream's RST_STREAM only when
  // the connection is next used: the upstream would go on generating meanwhile).
  it('a client that never reads is cut after the write timeout: its stream closed at once with its connection', async () => {
    const { connection } = await connect();
    const cutsBefore = writeTimeouts();
    const started = Date.now();
    const stalled = stalledClient(port, { ...AUTH, 'x-mock-scenario': 'long', 'x-mock-events': '150000', 'x-test-id': 'never-reads' }, chat({ stream: true }));
    await waitFor(() => upstream.record('never-reads'), 'the stream to reach the upstream');
    try {
      assert.ok(connectionOpen('never-reads'), 'its connection open until the cut');
      await waitFor(() => writeTimeouts() > cutsBefore, 'the write timeout', 15000);
      assert.ok(Date.now() - started >= 5000, `cut after ${Date.now() - started} ms, not before the 6 s write timeout`);
      // The upstream's side is not asked here: node stops reading a connection whose only
      // stream waits for the client's window, and sees it reset only when it next writes.
      await waitFor(() => !connectionOpen('never-reads'), 'the cut stream\'s connection to close', 3000);
      const next = await slowStream('after-cut', 20);
      assert.match(next.body.toString(), /data: \[DONE\]/);
      sameConnection(['never-reads'], connection);
      assert.notEqual(upstream.record('after-cut').connection, connection, 'the cut stream\'s connection was closed');
    } finally {
      stalled.socket.destroy();
    }
  });

  // Mirrors upstream-faults.test.mjs 'an endless stream stops costing when its client leaves'.
  it('a client that leaves cancels only its own stream; the other in flight goes on to [DONE]', async () => {
    const { connection } = await connect();
    const other = slowStream('stays', 150);
    await leaveAfterFirstBytes('endless', 'leaves');
    await waitFor(() => upstream.record('leaves').closed, 'the upstream stream of the client that left to close', 5000);
    const left = upstream.record('leaves');
    assert.notEqual(left.rstCode, 0, 'the upstream saw the stream reset');
    assert.equal(upstream.record('stays').closed, false, 'the other stream still runs');
    const stayed = await other;
    assert.equal(stayed.status, 200);
    assert.match(stayed.body.toString(), /data: \[DONE\]/);
    assert.equal(stayed.complete, true);
    ownConnections(['leaves', 'stays']);
    assert.ok([upstream.record('leaves').connection, upstream.record('stays').connection].includes(connection));
    await proxy.waitForLog(/outcome=client-gone/);
  });

  // The same when nothing else moves on the connection: the upstream stream has gone
  // silent (a model thinking), and only the proxy can tell the upstream to stop.
  it('a client that leaves a silent stream: the upstream sees its stream end at once', async () => {
    await connect();
    const gone = clientsGone();  // counted before the client leaves: its line may come at once
    await leaveAfterFirstBytes('stall-mid-stream', 'leaves-silent');
    await waitFor(() => clientsGone() > gone, 'the proxy to see the client gone', 5000);
    await waitFor(() => upstream.record('leaves-silent').closed, 'the upstream stream to be reset', 5000);
    assert.notEqual(upstream.record('leaves-silent').rstCode, 0);
  });

  // Mirrors upstream-faults.test.mjs 'a stream broken by reset after three events'.
  it('a stream the upstream resets mid-answer: an SSE error event, no clean end, logged; the stream beside it completes', async () => {
    const { connection } = await connect();
    const other = slowStream('beside-reset', 100);
    const res = await rawHttp(port, { headers: { ...AUTH, 'x-mock-scenario': 'h2-reset-mid-stream', 'x-test-id': 'reset' }, body: chat({ stream: true }) });
    assert.equal(res.status, 200);
    const text = res.body.toString();
    assert.equal(dataEvents(text), 3, text);
    assert.equal(errorEvent(text)?.error?.code, 'upstream_protocol_error', text);
    assert.doesNotMatch(text, /\[DONE\]/);
    assert.equal(res.complete, false, 'the stream did not end cleanly');
    await proxy.waitForLog(/status=200 .*outcome=upstream-protocol error="[^"]+"/);
    const beside = await other;
    assert.match(beside.body.toString(), /data: \[DONE\]/);
    assert.equal(beside.complete, true);
    ownConnections(['reset', 'beside-reset']);
    assert.ok([upstream.record('reset').connection, upstream.record('beside-reset').connection].includes(connection));
  });

  // Mirrors upstream-faults.test.mjs 'a reset before the headers': one endpoint, no routing
  // file, so no other target to try: 502 naming the cause.
  it('a stream the upstream resets before any byte: 502 upstream_protocol_error, logged with libcurl\'s words', async () => {
    await connect();
    const res = await rawHttp(port, { headers: { ...AUTH, 'x-mock-scenario': 'h2-reset-before-headers' }, body: chat() });
    assert.equal(res.status, 502, res.body.toString());
    assert.equal(res.json.error.code, 'upstream_protocol_error');
    assert.equal(res.json.error.type, 'api_error');
    const line = await proxy.waitForLog(/status=502 .*outcome=upstream-protocol/);
    assert.match(line, / error="[^"]+"/);
    assert.equal((await rawHttp(port, { headers: AUTH, body: chat() })).status, 200, 'the next request is answered');
  });

  it('a graceful GOAWAY mid-answer: the stream in flight completes; new requests go on a new connection', async () => {
    const { connection } = await connect();
    const res = await rawHttp(port, { headers: { ...AUTH, 'x-mock-scenario': 'h2-goaway-mid-stream', 'x-test-id': 'goaway' }, body: chat({ stream: true }) });
    assert.equal(res.status, 200);
    const text = res.body.toString();
    assert.equal(dataEvents(text), 6, text);
    assert.match(text, /data: \[DONE\]/);
    assert.equal(errorEvent(text), null);
    assert.equal(res.complete, true);
    assert.equal(upstream.record('goaway').connection, connection);
    for (let i = 0; i < 3; i++) {
      const next = await rawHttp(port, { headers: { ...AUTH, 'x-test-id': `after-goaway-${i}` }, body: chat() });
      assert.equal(next.status, 200, next.body.toString());
      assert.notEqual(upstream.record(`after-goaway-${i}`).connection, connection, 'not on the connection that went away');
    }
  });

  // The README: an answer that breaks after it started is never made to look whole.
  it('a GOAWAY with an error mid-answer (the connection torn down): the stream is cut with its error event; new requests succeed', async () => {
    const { connection } = await connect();
    const res = await rawHttp(port, { headers: { ...AUTH, 'x-mock-scenario': 'h2-goaway-error-mid-stream', 'x-test-id': 'torn' }, body: chat({ stream: true }) });
    assert.equal(res.status, 200);
    const text = res.body.toString();
    assert.equal(dataEvents(text), 3, text);
    assert.equal(errorEvent(text)?.error?.code, 'upstream_protocol_error', text);
    assert.equal(res.complete, false);
    assert.equal(upstream.record('torn').connection, connection);
    const next = await rawHttp(port, { headers: { ...AUTH, 'x-test-id': 'after-torn' }, body: chat() });
    assert.equal(next.status, 200, next.body.toString());
    assert.notEqual(upstream.record('after-torn').connection, connection);
  });
});

// The proxy refuses an answer's head to try the next target (a 500 here): libcurl aborts
// the transfer from inside its own callback, and the stream must end upstream at once too,
// though the 500's body never ends (an upstream that would go on generating it).
describe('an HTTP/2 answer head the proxy refuses for failover', () => {
  let failing, healthy, proxy, web;
  before(async () => {
    const tls = makeCertificate();
    const endless500 = (req, res) => {
      req.resume();
      res.stream.respond({ ':status': 500, 'content-type': 'application/json' });
      res.stream.write('{"error": {"code": "InternalServerError", "message": "');
      return true;
    };
    failing = await h2Upstream(createAzureMock({ apiKey: KEY }), tls, endless500);
    healthy = await h2Upstream(createAzureMock({ apiKey: KEY }), tls);
    const file = path.join(tempDir('h2-refused'), 'routing.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { failing: { url: failing.url, key: 'env:UPSTREAM_KEY' }, healthy: { url: healthy.url, key: 'env:UPSTREAM_KEY' } },
      models: { 'gpt-4o': ['failing', { endpoint: 'healthy', priority: 1 }] },
      retry: { max_tries: 2 },
    }));
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_TOKEN: KEY, UPSTREAM_KEY: KEY, AZURE_OPENAI_PROXY_CONFIG: file,
      AZURE_OPENAI_PROXY_STATE_FILE: path.join(path.dirname(file), 'state'), AZURE_OPENAI_PROXY_CA_BUNDLE: tls.certFile,
      AZURE_OPENAI_PROXY_UPSTREAM_HTTP: '2', AZURE_OPENAI_PROXY_THREADS: '1',
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=1',
    });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    const stopped = await proxy?.stop();
    await failing?.close();
    await healthy?.close();
    assert.equal(stopped?.code, 0, proxy?.logs());
  });

  it('the next target answers, and the refused stream ends upstream at once', async () => {
    const res = await rawHttp(web.port, { headers: { ...AUTH, 'x-test-id': 'refused' }, body: chat() });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(failing.records.length, 1, 'the failing endpoint was tried first');
    assert.equal(failing.records[0].version, '2.0');
    await waitFor(() => failing.records[0].closed, 'the refused stream to end upstream', 3000);
  });
});

// The realtime companion (azure-openai-proxy-realtime, issue 25) against hostile or broken
// peers, with raw `ws` and net clients, straight to its TCP socket and through lighttpd
// (the shipped snippet) to its unix socket: a fragmented ping (1002), a flood of pings
// (answered one pong each at most, nothing amplified, another session unaffected), a client
// that resets or goes silent (half-open: the session ends by the ping deadline, Azure's side
// closed), Azure vanishing (the client gets 1011 or 1001 at once), upgrades without the
// WebSocket headers (400, 426, before anything reaches Azure), and SIGTERM (1001 to both
// sides of every open session, exit 0).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import WebSocket from 'ws';

import { startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import { ROOT, canConnect, freePort, proxyEnv, startChild, tempDir, waitFor } from './harness.mjs';
import { startLighttpdRealtimeFront } from './hosts.mjs';
import { makeCertificate } from './upstream-http2-parts.mjs';

const REALTIME_BIN = process.env.REALTIME_BIN || path.join(ROOT, 'build/asan/azure-openai-proxy-realtime');
const AZURE_KEY = 'azure-resource-key';
const CLIENT_KEY = 'alice-key-123';
const PROTOCOLS = ['realtime', `openai-insecure-api-key.${CLIENT_KEY}`];
const SESSION_PATH = '/v1/realtime?model=gpt-realtime';

// The companion on `listen` (host:port or a unix socket path), with short deadlines: a
// silent peer is pinged after 2 s and cut after 4 s; a close handshake waits 2 s at most.
async function startCompanion(standIn, certificate, listen, env = {}) {
  const companion = startChild(REALTIME_BIN, ['--listen', listen], {
    env: proxyEnv({
      AZURE_OPENAI_ENDPOINT: standIn.url, AZURE_OPENAI_TOKEN: AZURE_KEY,
      AZURE_OPENAI_PROXY_API_KEYS: `alice:${CLIENT_KEY}`, AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile,
      AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT: '4', AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT: '2',
      ...env,
    }),
  });
  const where = listen.startsWith('/') ? { path: listen } : { host: '127.0.0.1', port: Number(listen.split(':')[1]) };
  await waitFor(async () => companion.exited || await canConnect(where), 'the companion');
  if (companion.exited) throw new Error(`the companion exited at start: ${companion.output}`);
  // The first session line matching `pattern`, in what it wrote from offset `from` on.
  companion.logLine = async (pattern, from = 0) => {
    let found;
    await waitFor(() => (found = companion.output.slice(from).split('\n').find((l) => /^\S+ realtime session /.test(l) && pattern.test(l))),
      `a log line ${pattern} in ${JSON.stringify(companion.output.slice(from))}`);
    return found;
  };
  return companion;
}

// An open session of the `ws` client, with its close code and reason once it closes.
async function openSession(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${SESSION_PATH}`, PROTOCOLS);
  ws.on('error', () => {});
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const events = [];
  ws.on('message', (data) => events.push(JSON.parse(data.toString())));
  ws.next = async (type) => {
    await waitFor(() => events.some((e) => e.type === type), `the event ${type}`);
    return events.find((e) => e.type === type);
  };
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('close', () => reject(new Error('refused'))); });
  await ws.next('session.created');
  return ws;
}

// One message's round trip through a session: session.update answered by session.updated.
async function roundTrip(ws, instructions) {
  ws.send(JSON.stringify({ type: 'session.update', session: { instructions } }));
  const updated = await new Promise((resolve) => {
    const seen = (data) => {
      const event = JSON.parse(data.toString());
      if (event.type === 'session.updated' && event.session.instructions === instructions) {
        ws.off('message', seen);
        resolve(event);
      }
    };
    ws.on('message', seen);
  });
  return updated.session.instructions;
}

// A masked client frame (RFC 6455 5.2) with the FIN bit and opcode given, a short payload.
function clientFrame({ fin, opcode, payload }) {
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  const masked = Buffer.from(payload).map((byte, i) => byte ^ mask[i % 4]);
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | masked.length]), mask, masked]);
}

// The companion's HTTP answer to a raw request on its TCP socket: status, headers, body.
function rawAnswer(port, head) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (d) => { text += d; });
    socket.on('error', reject);
    socket.on('close', () => {
      const [headers, body] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
      resolve({ status: Number(headers.split(' ')[1]), headers, body });
    });
    socket.write(head);
  });
}

describe('the realtime companion against hostile and vanishing peers', () => {
  let certificate, standIn, direct, unixCompanion, front;
  const routes = {};
  before(async () => {
    certificate = makeCertificate();
    standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: AZURE_KEY });
    const directPort = await freePort();
    direct = await startCompanion(standIn, certificate, `127.0.0.1:${directPort}`);
    const socket = path.join(tempDir('realtime-hostile'), 'realtime.sock');
    unixCompanion = await startCompanion(standIn, certificate, socket);
    front = await startLighttpdRealtimeFront(socket);
    routes.direct = { port: directPort, companion: direct };
    routes.lighttpd = { port: front.port, companion: unixCompanion };
  });
  after(async () => {
    await front?.server.stop();
    const stopped = [await direct?.stop(), await unixCompanion?.stop()];
    await standIn?.close();
    for (const s of stopped) assert.equal(s?.code, 0, `the companion stopped cleanly: ${JSON.stringify(s)}`);
  });

  for (const route of ['direct', 'lighttpd']) {
    it(`closes a fragmented ping with 1002 and Azure's side with 1001 (${route})`, { timeout: 20000 }, async () => {
      const ws = await openSession(routes[route].port);
      const upstream = standIn.sessions.at(-1);
      ws._socket.write(clientFrame({ fin: false, opcode: 0x9, payload: 'ping' }));
      assert.equal((await ws.closed).code, 1002);
      assert.equal((await upstream.closedPromise).code, 1001);
      await routes[route].companion.logLine(/outcome="client sent what WebSocket forbids \(The WebSocket control frame was fragmented\)"/);
    });

    it(`answers a flood of pings with one pong each at most, and another session goes on (${route})`, { timeout: 30000 }, async () => {
      const flooder = await openSession(routes[route].port);
      const other = await openSession(routes[route].port);
      let pongs = 0, pongBytes = 0;
      flooder.on('pong', (data) => { pongs++; pongBytes += data.length; });
      const PINGS = 10000;
      const payload = Buffer.alloc(125, 0x70);
      let sent = 0;
      const flood = (async () => {
        while (sent < PINGS) {
          for (let i = 0; i < 250 && sent < PINGS; i++, sent++) flooder.ping(payload);
          // A message now and then: pings alone would let the session's idle deadline (4 s) end it.
          flooder.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      // Messages of another session make their round trip while the pings pour in.
      for (let i = 0; i < 3; i++) assert.equal(await roundTrip(other, `during the flood ${i}`), `during the flood ${i}`);
      assert.ok(sent < PINGS || pongs < PINGS, 'the round trips finished while the flood was still being answered');
      await flood;
      await waitFor(() => pongs === PINGS || flooder.readyState !== WebSocket.OPEN, 'the pongs or the close', 20000);
      assert.ok(pongs <= PINGS, `${pongs} pongs for ${PINGS} pings`);
      assert.ok(pongBytes <= PINGS * payload.length, 'no pong carried more than its ping');
      if (flooder.readyState !== WebSocket.OPEN) assert.equal((await flooder.closed).code, 1008);
      assert.equal(await roundTrip(other, 'after the flood'), 'after the flood');
      flooder.close(1000);
      other.close(1000);
      await Promise.all([flooder.closed, other.closed]);
    });
  }

  it('ends the session of a client whose connection is reset, Azure\'s side closed with 1001', { timeout: 20000 }, async () => {
    const ws = await openSession(routes.direct.port);
    const upstream = standIn.sessions.at(-1);
    ws._socket.resetAndDestroy();
    assert.equal((await upstream.closedPromise).code, 1001);
    await direct.logLine(/outcome="client vanished \(/);
  });

  it('ends the session of a half-open client by the ping deadline, Azure\'s side closed with 1001', { timeout: 20000 }, async () => {
    const from = direct.output.length;
    const ws = await openSession(routes.direct.port);
    const upstream = standIn.sessions.at(-1);
    ws._socket.pause();  // reads nothing, answers no ping: a peer whose host went away
    await waitFor(() => upstream.closed, 'Azure\'s side closed', 12000);
    assert.equal(upstream.closed.code, 1001);
    // The session's line, once both ends are done: by the idle deadline, or Beast's ping deadline.
    await direct.logLine(/outcome="(idle|client vanished \(.*\))"/, from);
    ws.terminate();
  });

  for (const route of ['direct', 'lighttpd']) {
    it(`gives the client 1011 or 1001 at once when Azure vanishes mid-session (${route})`, { timeout: 20000 }, async () => {
      const ws = await openSession(routes[route].port);
      standIn.sessions.at(-1).ws._socket.destroy();  // no close frame, no TLS close_notify
      // Well inside the 4 s ping deadline: the companion noticed the broken connection itself.
      const closed = await Promise.race([ws.closed, new Promise((resolve) => setTimeout(() => resolve(null), 3000))]);
      assert.ok(closed, 'the client heard before the ping deadline');
      assert.ok([1011, 1001].includes(closed.code), `close code ${closed.code}`);
      await routes[route].companion.logLine(/outcome="upstream vanished \(/);
    });
  }

  it('answers an upgrade without the WebSocket headers with 400 or 426, before anything reaches Azure', { timeout: 20000 }, async () => {
    const upgrades = standIn.upgrades.length;
    const head = (extra) => `GET ${SESSION_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `api-key: ${CLIENT_KEY}\r\n${extra}\r\n`;
    const noKey = await rawAnswer(routes.direct.port, head('Sec-WebSocket-Version: 13\r\n'));
    assert.equal(noKey.status, 400);
    assert.equal(JSON.parse(noKey.body).error.code, 'bad_websocket_handshake');
    const oldVersion = await rawAnswer(routes.direct.port, head('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n'));
    assert.equal(oldVersion.status, 426);
    assert.match(oldVersion.headers, /^Sec-WebSocket-Version: 13$/im);
    const badKey = await rawAnswer(routes.direct.port, head('Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'));
    assert.equal(badKey.status, 400);
    const noUpgrade = await rawAnswer(routes.direct.port,
      `GET ${SESSION_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: ${CLIENT_KEY}\r\n\r\n`);
    assert.equal(noUpgrade.status, 426);
    assert.equal(standIn.upgrades.length, upgrades, 'no handshake reached Azure');
  });
});

describe('the realtime companion stopped with SIGTERM', () => {
  let certificate, standIn;
  before(async () => {
    certificate = makeCertificate();
    standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: AZURE_KEY });
  });
  after(async () => { await standIn?.close(); });

  it('stops accepting, sends 1001 to both sides of every session, cuts what has not closed by the drain time, exits 0', { timeout: 30000 }, async () => {
    const port = await freePort();
    // The drain time (2 s) shorter than a close handshake's wait (10 s): the paused client is cut.
    const companion = await startCompanion(standIn, certificate, `127.0.0.1:${port}`, {
      AZURE_OPENAI_PROXY_REALTIME_DRAIN_TIMEOUT: '2', AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT: '10',
      AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT: '60',
    });
    const first = await openSession(port);
    const second = await openSession(port);
    const paused = await openSession(port);
    const upstreams = standIn.sessions.slice(-3);
    paused._socket.pause();  // reads nothing: never answers the close
    const stopped = companion.stop('SIGTERM', 15000);
    assert.deepEqual([(await first.closed).code, (await second.closed).code], [1001, 1001]);
    assert.equal(await canConnect({ host: '127.0.0.1', port }), false, 'no new connection while it drains');
    const codes = await Promise.all(upstreams.map((u) => u.closedPromise));
    assert.deepEqual(codes.map((c) => c.code), [1001, 1001, 1001], 'Azure\'s side of every session heard 1001');
    assert.equal((await stopped).code, 0);
    assert.match(companion.output, /1 sessions still open at the drain deadline: cut/);
    const lines = companion.output.split('\n').filter((l) => /^\S+ realtime session /.test(l) && /outcome="proxy stopping"/.test(l));
    assert.equal(lines.length, 3, companion.output);
    paused.terminate();
  });
});

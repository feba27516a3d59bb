// Realtime WebSocket sessions through the companion, azure-openai-proxy-realtime (issue
// 25): the official `openai` client's realtime WebSocket class, through lighttpd, nginx and Apache
// (TLS, as the client insists on wss:) with the snippets shipped in deploy/, to a stand-in
// of Azure's GA realtime socket (tests/upstream/azure-realtime-socket.mjs) over TLS. A full
// conversation; each side's close code reaching the other; refusals before any upstream
// byte (a wrong key, no model, not an upgrade) and Azure's own (an unknown deployment)
// as HTTP errors, never a 101; a message over the limit (1009) and invalid UTF-8 (1007).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import { OpenAIRealtimeWebSocket } from 'openai/realtime/websocket';

import { AUDIO_CHUNK_BYTES } from '../upstream/azure-realtime-socket.mjs';
import { waitFor } from './harness.mjs';
import {
  AZURE_KEY, CLIENT_KEY, MAX_MESSAGE, rawSession, startApacheFront, startLighttpdFront, startNginxFront, suiteRealtimeHost,
} from './realtime-fronts.mjs';

// The SDK's session, with what it received kept in order; `opened` once the 101 came.
function sdkSession(port, key = CLIENT_KEY) {
  const client = new OpenAI({ apiKey: key, baseURL: `https://127.0.0.1:${port}/v1` });
  const rt = new OpenAIRealtimeWebSocket({ model: 'gpt-realtime' }, client);
  const events = [];
  const errors = [];
  rt.on('event', (event) => events.push(event));
  rt.on('error', (error) => errors.push(error));
  const opened = new Promise((resolve, reject) => {
    rt.socket.addEventListener('open', resolve);
    rt.socket.addEventListener('error', reject);
  });
  const closed = new Promise((resolve) => rt.socket.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  const next = async (type) => {
    const find = () => events.find((e) => e.type === type);
    await waitFor(find, `the event ${type}`, 10000);
    return find();
  };
  return { rt, events, errors, opened, closed, next };
}

const closeOf = (ws) => new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));

const FRONTS = { lighttpd: startLighttpdFront, nginx: startNginxFront, apache: startApacheFront };

for (const [name, startFront] of Object.entries(FRONTS)) {
  describe(`realtime WebSocket sessions through ${name}`, () => {
    const host = suiteRealtimeHost(startFront);

    it('carries a whole conversation, and the client\'s close code reaches Azure', { timeout: 30000 }, async () => {
      const session = sdkSession(host.front.port);
      await session.opened;
      assert.equal(session.rt.socket.protocol, 'realtime', 'the answer names realtime, never the key');
      assert.equal((await session.next('session.created')).session.model, 'gpt-realtime');
      session.rt.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Answer briefly.' } });
      assert.equal((await session.next('session.updated')).session.instructions, 'Answer briefly.');
      const audio = Buffer.alloc(AUDIO_CHUNK_BYTES, 7).toString('base64');
      for (let i = 0; i < 10; i++) session.rt.send({ type: 'input_audio_buffer.append', audio });
      session.rt.send({ type: 'input_audio_buffer.commit' });
      await session.next('input_audio_buffer.committed');
      session.rt.send({ type: 'response.create' });
      const done = await session.next('response.done');
      assert.equal(done.response.status, 'completed');
      const deltas = session.events.filter((e) => e.type === 'response.output_audio.delta');
      assert.equal(deltas.length, 5);
      assert.equal(Buffer.from(deltas[0].delta, 'base64').length, AUDIO_CHUNK_BYTES);
      const transcript = session.events.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e) => e.delta).join('');
      assert.equal(transcript, 'word0 word1 word2 word3 word4 ');
      session.rt.send({ type: 'no.such.event' });
      await waitFor(() => session.errors.length, 'the error event');
      assert.equal(session.errors[0].error?.code, 'invalid_event');

      const upstream = host.standIn.sessions.at(-1);
      assert.equal(upstream.audioBytes, 10 * AUDIO_CHUNK_BYTES, 'every audio chunk arrived whole');
      assert.equal(upstream.deployment, 'gpt-realtime');
      session.rt.close({ code: 4001, reason: 'done here' });
      assert.equal((await upstream.closedPromise).code, 4001, 'Azure got the client\'s code');
      assert.equal((await session.closed).code, 4001);
      const line = await host.companion.logLine(/client_close=4001/);
      assert.match(line, /key=alice model=gpt-realtime deployment=gpt-realtime /);
      assert.match(line, /upstream_close=4001 outcome="client closed"/);
      assert.match(line, /client_messages=14 /);  // update, 10 appends, commit, create, the bad one
      assert.doesNotMatch(host.companion.output, new RegExp(`${CLIENT_KEY}|${AZURE_KEY}`), 'no key in any line');
    });

    it('passes Azure\'s close code on to the client', { timeout: 30000 }, async () => {
      const session = sdkSession(host.front.port);
      await session.opened;
      await session.next('session.created');
      const upstream = host.standIn.sessions.at(-1);
      upstream.ws.close(4002, 'going');
      assert.equal((await session.closed).code, 4002);
      assert.equal((await upstream.closedPromise).code, 4002, 'the close handshake completed');
      await host.companion.logLine(/upstream_close=4002 .*outcome="upstream closed"/);
    });

    it('refuses a wrong key, a missing model and a plain GET before anything reaches Azure', { timeout: 30000 }, async () => {
      const upgrades = host.standIn.upgrades.length;
      const wrong = await rawSession(host.front.port, '/v1/realtime?model=gpt-realtime',
        { protocols: ['realtime', 'openai-insecure-api-key.wrong-key-0'], ca: host.certificate.cert });
      assert.equal(wrong.status, 401);
      assert.equal(JSON.parse(wrong.body).error.code, 'invalid_api_key');
      const none = await rawSession(host.front.port, '/v1/realtime?model=gpt-realtime', { protocols: ['realtime'], ca: host.certificate.cert });
      assert.equal(none.status, 401);
      const noModel = await rawSession(host.front.port, '/v1/realtime', { ca: host.certificate.cert });
      assert.equal(noModel.status, 400);
      assert.equal(JSON.parse(noModel.body).error.code, 'missing_model');
      const plain = await fetch(`https://127.0.0.1:${host.front.port}/v1/realtime?model=gpt-realtime`, { headers: { 'api-key': CLIENT_KEY } });
      assert.equal(plain.status, 426);
      assert.equal((await plain.json()).error.code, 'upgrade_required');
      assert.equal(host.standIn.upgrades.length, upgrades, 'no handshake reached Azure');
      await host.companion.logLine(/outcome="refused 401"/);
    });

    it('answers Azure\'s refusal with Azure\'s status, never a 101', { timeout: 30000 }, async () => {
      const refused = await rawSession(host.front.port, '/v1/realtime?model=gpt-4o-transcribe', { ca: host.certificate.cert });
      assert.equal(refused.status, 404);
      assert.equal(JSON.parse(refused.body).error.code, 'DeploymentNotFound');
    });

    it('closes invalid UTF-8 with 1007 and a message over the limit with 1009, the session\'s Azure side with 1001', { timeout: 30000 }, async () => {
      const bad = await rawSession(host.front.port, '/v1/realtime?model=gpt-realtime', { ca: host.certificate.cert });
      assert.equal(bad.status, 101);
      assert.equal(bad.protocol, 'realtime');
      const badClosed = closeOf(bad.ws);
      bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
      assert.equal((await badClosed).code, 1007);
      assert.equal((await host.standIn.sessions.at(-1).closedPromise).code, 1001);

      const big = await rawSession(host.front.port, '/v1/realtime?model=gpt-realtime', { ca: host.certificate.cert });
      const bigClosed = closeOf(big.ws);
      big.ws.on('error', () => {});
      big.ws.send(Buffer.alloc(MAX_MESSAGE + 1024, 0x61), { binary: false });
      // The companion sends 1009 and closes (the server closes first, RFC 6455) while most
      // of the message is still on its way. lighttpd passes the close frame on; nginx and
      // Apache close the client's connection with its upload unread, and the reset that
      // follows drops the close frame in the client's kernel (README "Realtime (WebSocket)").
      assert.ok((name === 'lighttpd' ? [1009] : [1009, 1006]).includes((await bigClosed).code));
      assert.equal((await host.standIn.sessions.at(-1).closedPromise).code, 1001);
      await host.companion.logLine(/outcome="client sent what WebSocket forbids \(The WebSocket message exceeded the locally configured limit\)"/);
    });

    it('ends the session of a client that stops reading, and another session goes on', { timeout: 30000 }, async () => {
      const stalled = await rawSession(host.front.port, '/v1/realtime?model=gpt-realtime', { ca: host.certificate.cert });
      assert.equal(stalled.status, 101);
      const upstream = host.standIn.sessions.at(-1);
      stalled.ws.on('error', () => {});
      stalled.ws._socket.pause();  // reads nothing more: the kernel's buffers, then the web server's, fill
      // 20 MB of audio deltas: far more than every buffer on the way holds.
      stalled.ws.send(JSON.stringify({ type: 'response.create', response: { metadata: { deltas: '3000' } } }));

      const other = sdkSession(host.front.port);
      await other.opened;
      await other.next('session.created');
      other.rt.send({ type: 'response.create' });
      assert.equal((await other.next('response.done')).response.status, 'completed');

      await waitFor(() => upstream.closed, 'Azure\'s side closed', 20000);
      assert.equal(upstream.closed.code, 1001, 'Azure\'s side closed as the client went away');
      await host.companion.logLine(/outcome="client stopped reading"/);
      other.rt.close();
      await other.closed;
      stalled.ws.terminate();  // its socket, paused, would never read the web server's close
    });
  });
}

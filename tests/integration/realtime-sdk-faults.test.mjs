// Realtime sessions of the official `openai` client's Node WebSocket class (OpenAIRealtimeWS,
// over the `ws` package) through lighttpd, nginx and Apache with the shipped snippets, when
// things go wrong (issue 25's proof): a session over the key's limit (the SDK reports the
// 429, Azure is not contacted, and the place is free again once the first session ends),
// Azure vanishing mid-session (the SDK's socket closes with 1011 or 1001 at once), and the
// client vanishing without a close frame (Azure's side closed with 1001). The companion
// allows one session per key for this file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

import { waitFor } from './harness.mjs';
import { CLIENT_KEY, startApacheFront, startLighttpdFront, startNginxFront, suiteRealtimeHost } from './realtime-fronts.mjs';

// The SDK's session: `created` once Azure's session.created came through, `failed` with the
// SDK's error if it never opens, `closed` with the socket's close code.
function sdkSession(port) {
  const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `https://127.0.0.1:${port}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime' }, client);
  const created = new Promise((resolve) => rt.on('session.created', resolve));
  const failed = new Promise((resolve) => rt.on('error', resolve));
  const closed = new Promise((resolve) => rt.socket.on('close', (code) => resolve(code)));
  return { rt, created, failed, closed };
}

const within = (promise, ms) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve('timed out'), ms))]);

const FRONTS = { lighttpd: startLighttpdFront, nginx: startNginxFront, apache: startApacheFront };

for (const [name, startFront] of Object.entries(FRONTS)) {
  describe(`the SDK's realtime sessions when things fail, through ${name}`, () => {
    const host = suiteRealtimeHost(startFront, { companionEnv: { AZURE_OPENAI_PROXY_REALTIME_SESSIONS_PER_KEY: '1' } });
    const open = () => {
      const session = sdkSession(host.front.port);
      host.open.push(session.rt.socket);
      return session;
    };

    it('reports a session over the key\'s limit as the 429 it got, without reaching Azure', { timeout: 30000 }, async () => {
      const first = open();
      await first.created;
      const upgrades = host.standIn.upgrades.length;
      const second = open();
      const error = await within(second.failed, 10000);
      assert.match(String(error?.message ?? error), /429/);
      assert.equal(host.standIn.upgrades.length, upgrades, 'Azure was not contacted');
      await host.companion.logLine(/key=alice .*outcome="refused 429"/);
      first.rt.close({ code: 1000, reason: 'done' });
      assert.equal(await first.closed, 1000);
      // The place is given back when the session has ended: the next one opens.
      await host.companion.logLine(/key=alice .*outcome="client closed"/);
      const third = open();
      await third.created;
      third.rt.close({ code: 1000, reason: 'done' });
      await third.closed;
      await waitFor(() => host.companion.output.split('\n').filter((l) => /outcome="client closed"/.test(l)).length === 2,
        'both sessions ended at the companion');
    });

    it('closes the SDK\'s socket with 1011 or 1001 at once when Azure vanishes', { timeout: 30000 }, async () => {
      const session = open();
      await session.created;
      host.standIn.sessions.at(-1).ws._socket.destroy();  // no close frame, no TLS close_notify
      const code = await within(session.closed, 3000);
      assert.ok([1011, 1001].includes(code), `close code ${code}`);
      await host.companion.logLine(/outcome="upstream vanished \(/);
    });

    it('closes Azure\'s side with 1001 when the SDK\'s client vanishes without a close', { timeout: 30000 }, async () => {
      const session = open();
      await session.created;
      const atAzure = host.standIn.sessions.at(-1);
      session.rt.socket.terminate();  // the TCP connection dropped, no close frame
      const closedAtAzure = await within(atAzure.closedPromise, 5000);
      assert.equal(closedAtAzure?.code, 1001, JSON.stringify(closedAtAzure));
    });
  });
}

// Realtime sessions counted in the host's shared state (issue 25): a key's sessions open at
// once (the routing file's `realtime_sessions`) across the companion's processes, refused
// over it with 429 before Azure is reached while another key still opens; a closed
// session's place given back; and the FastCGI program's /metrics, through the same web
// server, showing the companion's sessions, bytes and refusals from the file both map.
// Through lighttpd and nginx with the shipped snippets, as realtime-socket.test.mjs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import { startProxy, tempDir, waitFor } from './harness.mjs';
import {
  AZURE_KEY, CLIENT_KEY, frontCertificate, rawSession, startCompanion, startLighttpdFront, startNginxFront,
} from './realtime-fronts.mjs';

const BOB_KEY = 'bob-key-4567';
const SESSION = '/v1/realtime?model=gpt-realtime';

// The settings both programs read: alice (the routing file's, 2 sessions at once) and bob
// (the environment's, no limit), one state file.
function hostSettings(standIn, certificate) {
  const dir = tempDir('realtime-limits');
  fs.chmodSync(dir, 0o755);
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ keys: { alice: { key: CLIENT_KEY, realtime_sessions: 2 } } }));
  return {
    dir,
    env: {
      AZURE_OPENAI_ENDPOINT: standIn.url, AZURE_OPENAI_TOKEN: AZURE_KEY, AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile,
      AZURE_OPENAI_PROXY_CONFIG: config, AZURE_OPENAI_PROXY_API_KEYS: `bob:${BOB_KEY}`,
      AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state'),
    },
  };
}

const FRONTS = { lighttpd: startLighttpdFront, nginx: startNginxFront };

for (const [name, startFront] of Object.entries(FRONTS)) {
  describe(`realtime sessions in the shared state through ${name}`, () => {
    let certificate, standIn, proxy, companion, front;
    const open = [];
    const session = async (key) => {
      const s = await rawSession(front.port, SESSION, { protocols: ['realtime', `openai-insecure-api-key.${key}`], ca: certificate.cert });
      if (s.ws) open.push(s.ws);
      return s;
    };
    const closed = (ws) => new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    const metrics = async () => {
      // Under the mount the shipped nginx site passes on (it serves /v1/ and /openai-proxy/).
      const answer = await fetch(`https://127.0.0.1:${front.port}/openai-proxy/metrics`);
      assert.equal(answer.status, 200);
      return answer.text();
    };
    const value = (page, series) => {
      const line = page.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };

    before(async () => {
      certificate = frontCertificate();
      standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: AZURE_KEY });
      const host = hostSettings(standIn, certificate);
      proxy = await startProxy({ ...host.env, AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: 'www-data:www-data' }, { dir: host.dir });
      companion = await startCompanion(standIn, certificate, host.env);
      front = await startFront(companion, certificate, proxy.socket);
    });
    after(async () => {
      for (const ws of open) ws.terminate();
      await front?.server.stop();
      const stopped = await companion?.stop();
      const proxyStopped = await proxy?.stop();
      await standIn?.close();
      assert.equal(stopped?.code, 0, `the companion stopped cleanly: ${JSON.stringify(stopped)}`);
      assert.equal(proxyStopped?.code, 0, `the proxy stopped cleanly: ${JSON.stringify(proxyStopped)}`);
    });

    it('refuses a key\'s third session with 429 while another key opens, and a closed one frees its place', { timeout: 30000 }, async () => {
      const first = await session(CLIENT_KEY);
      const second = await session(CLIENT_KEY);
      assert.deepEqual([first.status, second.status], [101, 101]);
      const upgrades = standIn.upgrades.length;
      const third = await session(CLIENT_KEY);
      assert.equal(third.status, 429);
      const error = JSON.parse(third.body).error;
      assert.equal(error.code, 'session_limit_exceeded');
      assert.match(error.message, /2 realtime sessions open/);
      assert.equal(standIn.upgrades.length, upgrades, 'Azure was not contacted');
      await companion.logLine(/key=alice .*outcome="refused 429"/);
      assert.equal((await session(BOB_KEY)).status, 101, 'another key still opens');

      const firstClosed = closed(first.ws);
      first.ws.close(1000);
      assert.equal(await firstClosed, 1000);
      await companion.logLine(/key=alice .*client_close=1000 .*outcome="client closed"/);
      assert.equal((await session(CLIENT_KEY)).status, 101, 'the closed session\'s place is free again');
    });

    it('shows the companion\'s sessions, bytes and refusals in the FastCGI program\'s /metrics', { timeout: 30000 }, async () => {
      const s = await session(BOB_KEY);
      assert.equal(s.status, 101);
      const message = JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } });
      const answered = new Promise((resolve) => s.ws.on('message', (data) => {
        if (JSON.parse(data).type === 'session.updated') resolve();
      }));
      s.ws.send(message);
      await answered;
      const before = await metrics();
      assert.equal(value(before, 'aop_realtime_sessions_open'), open.filter((ws) => ws.readyState === 1).length);
      assert.equal(value(before, 'aop_realtime_refused_total{reason="session_limit_exceeded"}'), 1);
      assert.match(before, /# TYPE aop_realtime_session_seconds histogram/);

      const gone = closed(s.ws);
      s.ws.close(4000);
      await gone;
      await waitFor(async () => value(await metrics(), 'aop_realtime_bytes_total{key="bob",from="client"}') !== undefined,
        'bob\'s bytes in /metrics');
      const page = await metrics();
      assert.equal(value(page, 'aop_realtime_bytes_total{key="bob",from="client"}'), Buffer.byteLength(message));
      assert.ok(value(page, 'aop_realtime_bytes_total{key="bob",from="upstream"}') > 0, 'Azure\'s events counted');
      assert.equal(value(page, 'aop_realtime_sessions_total{key="alice",outcome="client closed"}'), 1);
      assert.equal(value(page, 'aop_realtime_sessions_total{key="bob",outcome="client closed"}'), 1);
      assert.ok(value(page, 'aop_realtime_close_codes_total{side="client",code="4000"}') >= 1);
      assert.equal(value(page, 'aop_realtime_session_seconds_count'), 2);
      assert.equal(value(page, 'aop_realtime_sessions_open'), value(before, 'aop_realtime_sessions_open') - 1);
    });
  });
}

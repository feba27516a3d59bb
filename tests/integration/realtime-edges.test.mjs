// The realtime companion's edges (issue 25), through lighttpd with the shipped snippet, to
// the stand-in of Azure's realtime socket: a session whose Azure handshake outlasts the
// handshake deadline hears 504 `upstream_timeout` (that attempt closed); each access line
// names the close code Azure sent, or `none` when it never answered our close; SIGHUP
// reads the routing file again (new sessions under the new keys, open ones untouched, a
// broken file refused with one line); a relayed session counts as in flight on its
// routing file target until it ends (aop_target_in_flight in the FastCGI program's /metrics).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { tempDir, waitFor } from './harness.mjs';
import { AZURE_KEY, CLIENT_KEY, rawSession, startLighttpdFront, suiteRealtimeHost } from './realtime-fronts.mjs';

const SESSION = '/v1/realtime?model=gpt-realtime';
const HANDSHAKE_TIMEOUT_S = 2;
const closeOf = (ws) => new Promise((resolve) => ws.on('close', (code) => resolve(code)));

// The stand-in, the companion (a 2-s handshake deadline) and lighttpd in front; `env` (or
// `env(standIn)`) over them. `withProxy`: the FastCGI program behind lighttpd too, with the
// same settings and state file (its /metrics).
function hostSuite(env = {}, { withProxy = false } = {}) {
  const host = suiteRealtimeHost(startLighttpdFront,
    { env, withProxy, companionEnv: { AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT: String(HANDSHAKE_TIMEOUT_S) } });
  host.metrics = async () => {
    const answer = await fetch(`https://127.0.0.1:${host.front.port}/metrics`);
    assert.equal(answer.status, 200);
    return answer.text();
  };
  host.session = async (options = {}) => {
    const s = await rawSession(host.front.port, SESSION, { ca: host.certificate.cert, ...options });
    if (s.ws) host.open.push(s.ws);
    return s;
  };
  return host;
}

describe('the realtime handshake deadline while Azure\'s handshake is under way', () => {
  const host = hostSuite();

  it('answers 504 upstream_timeout, closes the attempt, and the next session opens', { timeout: 30000 }, async () => {
    host.standIn.upgradeDelayMs = 4 * HANDSHAKE_TIMEOUT_S * 1000;
    const slow = await host.session();
    host.standIn.upgradeDelayMs = 0;
    assert.equal(slow.status, 504, `a 504, not ${slow.status ?? slow.error}`);
    const error = JSON.parse(slow.body).error;
    assert.equal(error.code, 'upstream_timeout');
    assert.equal(error.type, 'api_error');
    assert.match(error.message, /did not open the realtime session within 2 s/);
    // Closed by the companion before the stand-in's answer was due.
    await waitFor(() => host.standIn.upgrades[0].closedUnanswered, 'Azure\'s half-open attempt closed');
    await host.companion.logLine(/key=alice model=gpt-realtime .*outcome="refused 504"/);
    assert.equal((await host.session()).status, 101, 'a session after it opens');
  });
});

describe('Azure\'s close code in the access line', () => {
  const host = hostSuite();

  it('is Azure\'s answer to the client\'s close', { timeout: 30000 }, async () => {
    const s = await host.session();
    assert.equal(s.status, 101);
    await waitFor(() => host.standIn.sessions.length === 1, 'Azure\'s session');
    const closed = closeOf(s.ws);
    s.ws.close(4001);
    assert.equal(await closed, 4001);
    assert.equal((await host.standIn.sessions[0].closedPromise).code, 4001, 'Azure heard the client\'s code');
    await host.companion.logLine(/client_close=4001 upstream_close=4001 outcome="client closed"/);
  });

  it('is Azure\'s 1001 at a drain, and none from an Azure that never answers', { timeout: 30000 }, async () => {
    const answering = await host.session();
    host.standIn.silent = true;
    const silent = await host.session();
    host.standIn.silent = false;
    assert.deepEqual([answering.status, silent.status], [101, 101]);
    const codes = [closeOf(answering.ws), closeOf(silent.ws)];
    const stopped = await host.companion.stop();
    assert.equal(stopped.code, 0);
    assert.deepEqual(await Promise.all(codes), [1001, 1001]);
    assert.equal((await host.standIn.sessions[1].closedPromise).code, 1001);
    const lines = host.companion.output.split('\n').filter((l) => /outcome="proxy stopping"/.test(l));
    assert.equal(lines.length, 2, host.companion.output);
    assert.ok(lines.some((l) => / client_close=1001 upstream_close=1001 /.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => / client_close=1001 upstream_close=none /.test(l)), lines.join('\n'));
  });
});

describe('SIGHUP reloads the routing file in the companion', () => {
  const CAROL_KEY = 'carol-key-8910';
  const dir = tempDir('realtime-reload');
  const routing = path.join(dir, 'config.json');
  const writeKeys = (keys) => fs.writeFileSync(routing, JSON.stringify({ keys }));
  writeKeys({ alice: { key: CLIENT_KEY } });
  // alice in the routing file only (the environment's key is another's).
  const host = hostSuite({ AZURE_OPENAI_PROXY_CONFIG: routing, AZURE_OPENAI_PROXY_API_KEYS: 'bob:bob-key-4567' });
  const as = (key) => host.session({ protocols: ['realtime', `openai-insecure-api-key.${key}`] });
  // The lines the companion wrote for the signal, once one says `said`.
  const hangUp = async (said) => {
    const before = host.companion.output.length;
    process.kill(host.companion.pid, 'SIGHUP');
    const since = () => host.companion.output.slice(before).split('\n').filter(Boolean);
    await waitFor(() => since().some((l) => said.test(l)), `a line ${said}`);
    await new Promise((resolve) => setTimeout(resolve, 200));  // any line more it would write with it
    return since();
  };
  const answers = (ws) => new Promise((resolve) => {
    ws.on('message', (data) => { if (JSON.parse(data).type === 'session.updated') resolve(true); });
    ws.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } }));
  });

  it('opens sessions for a key it adds, refuses one it removes, keeps open sessions and a broken file out', { timeout: 30000 }, async () => {
    const open = await as(CLIENT_KEY);
    assert.equal(open.status, 101);
    assert.equal((await as(CAROL_KEY)).status, 401, 'carol is not yet a key');

    writeKeys({ carol: { key: CAROL_KEY } });
    await hangUp(/SIGHUP: .*config\.json in force: 0 endpoints, 0 models, 1 keys/);
    assert.equal((await as(CAROL_KEY)).status, 101, 'the key the reload added opens a session');
    const removed = await as(CLIENT_KEY);
    assert.equal(removed.status, 401, 'the key the reload removed is refused');
    assert.equal(JSON.parse(removed.body).error.code, 'invalid_api_key');
    assert.ok(await answers(open.ws), 'the session opened before the reload goes on');

    fs.writeFileSync(routing, '{"keys": ');
    const said = await hangUp(/SIGHUP: .*config\.json refused, the routing in force stays/);
    assert.equal(said.length, 1, `one line says so: ${said.join('\n')}`);
    assert.equal((await as(CAROL_KEY)).status, 101, 'the table in force stays');
    assert.equal((await as(CLIENT_KEY)).status, 401);
  });
});

describe('a relayed session in flight on its target', () => {
  const dir = tempDir('realtime-in-flight');
  fs.chmodSync(dir, 0o755);
  const routing = path.join(dir, 'config.json');
  const host = hostSuite((standIn) => {
    fs.writeFileSync(routing, JSON.stringify({
      endpoints: { azure: { url: standIn.url, key: AZURE_KEY } }, models: { 'gpt-realtime': ['azure'] } }));
    return { AZURE_OPENAI_PROXY_CONFIG: routing, AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state') };
  }, { withProxy: true });
  const inFlight = async () => {
    const found = /^aop_target_in_flight\{target="[^"]*"\} (\S+)$/m.exec(await host.metrics());
    return found ? Number(found[1]) : 0;
  };
  const closeSession = async (ws, count) => {
    const closed = closeOf(ws);
    ws.close(1000);
    assert.equal(await closed, 1000);
    await waitFor(() => host.companion.output.split('\n').filter((l) => /client_close=1000 /.test(l)).length === count,
      'the session\'s line');
  };

  it('counts from its 101 to its end in aop_target_in_flight', { timeout: 30000 }, async () => {
    assert.equal(await inFlight(), 0);
    const first = await host.session();
    assert.equal(first.status, 101);
    assert.equal(await inFlight(), 1, 'the open session is in flight on its target');
    const second = await host.session();
    assert.equal(second.status, 101);
    assert.equal(await inFlight(), 2);
    await closeSession(first.ws, 1);
    assert.equal(await inFlight(), 1, 'an ended session gives its place back');
    await closeSession(second.ws, 2);
    assert.equal(await inFlight(), 0);
  });
});

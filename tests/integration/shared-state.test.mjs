// The shared state under faults, through lighttpd and 4 worker processes: a worker killed
// (SIGKILL) while it holds a circuit's trial does not block the model; a trial that hangs
// holds it only for its lease; the state file truncated and overwritten while requests run
// is rebuilt, every worker moves to it, later requests succeed and /metrics still parses.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { descendants, rawHttp, sanitizerReports, sleep, startLighttpd, startProxy, tempDir, waitFor } from './harness.mjs';

const UPSTREAM_KEY = 'upstream-key';
const CLIENT_KEY = 'sk-main-0123456789';
const chat = (model) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi there' }] });
const headers = (extra = {}) => ({ authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json', ...extra });

function metricsOf(text) {
  const families = JSON.parse(execFileSync('/usr/bin/python3', [path.join(import.meta.dirname, 'parse-metrics.py')], { input: text }));
  // A sample's value (by its own name, _total included) summed over the matching labels.
  const value = (name, labels = {}) => families.flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
  return { families, value };
}

// One model on one target; a key with a limit (so that keys are counted too).
async function startState(name, retry) {
  const dir = tempDir(name);
  const mock = createAzureMock({ apiKey: UPSTREAM_KEY });
  await mock.listen();
  const ports = new Map();  // the mock's connection id -> the proxy's port on it
  mock.server.on('connection', (socket) => ports.set(socket.mockId, socket.remotePort));
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({
    endpoints: { only: { url: mock.url, key: 'env:UPSTREAM_KEY' } },
    models: { 'gpt-4o': ['only'] },
    keys: { main: { key: 'env:KEY_MAIN', concurrent: 100 } },
    retry: { max_tries: 1, circuit_failures: 1, ...retry },
  }));
  const stateFile = path.join(dir, 'state');
  const proxy = await startProxy({
    AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: config, UPSTREAM_KEY,
    KEY_MAIN: CLIENT_KEY, AZURE_OPENAI_PROXY_WORKERS: '4', AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_STATE_FILE: stateFile,
  });
  const web = await startLighttpd({ socket: proxy.socket });
  const post = (extra = {}) => rawHttp(web.port, { headers: headers(extra), body: chat('gpt-4o') });
  const metrics = async () => metricsOf((await rawHttp(web.port, { method: 'GET', path: '/metrics' })).body.toString());
  const stop = async () => {
    await web.stop();
    const stopped = await proxy.stop();
    await mock.close();
    assert.deepEqual(sanitizerReports(proxy.logs()), []);
    assert.equal(stopped.code, 0, proxy.logs());
  };
  return { dir, mock, ports, proxy, web, post, metrics, stateFile, stop };
}

// Opens the model's circuit (one failure), waits it out, and sends a trial that hangs
// (its answer's promise, wrapped: an async function would wait for it).
async function hangTrial(s) {
  s.mock.scenario = 'server-error';
  assert.equal((await s.post()).status, 500);
  s.mock.scenario = '';
  const refused = await s.post();
  assert.equal(refused.status, 503, refused.body.toString());
  assert.equal(JSON.parse(refused.body).error.code, 'no_healthy_deployment');
  await sleep(1100);  // circuit_open_seconds
  const trial = s.post({ 'x-mock-scenario': 'hang' }).catch((error) => ({ status: 0, error }));
  await waitFor(() => s.mock.requests.some((r) => r.headers['x-mock-scenario'] === 'hang'), 'the trial to reach the upstream');
  const blocked = await s.post();
  assert.equal(blocked.status, 503, 'the trial is out: the others wait');
  return { trial };
}

// The worker whose upstream connection has this local port (/proc/net/tcp, then its fds).
function workerOnPort(proxyPid, port) {
  let inode;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && parseInt(fields[1].split(':').at(-1), 16) === port) inode = fields[9];
    }
  }
  assert.ok(inode, `a socket on port ${port}`);
  for (const pid of descendants(proxyPid)) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch {}
    for (const fd of fds) {
      try { if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid; } catch {}
    }
  }
  throw new Error(`no worker holds socket ${inode}`);
}

describe('a circuit trial held by a worker killed with SIGKILL', () => {
  let s;
  // The lease is long: only the holder's death can give the trial back within the test.
  before(async () => { s = await startState('trial-kill', { circuit_open_seconds: 1, trial_timeout_seconds: 600 }); });
  after(async () => { await s?.stop(); });

  it('serves the model again once the holder is found dead, without removing the state file', async () => {
    const { trial } = await hangTrial(s);
    const inode = fs.statSync(s.stateFile).ino;
    const hung = s.mock.requests.find((r) => r.headers['x-mock-scenario'] === 'hang');
    const holder = workerOnPort(s.proxy.pid, s.ports.get(hung.connection));
    process.kill(holder, 'SIGKILL');
    await s.proxy.waitForLog(new RegExp(`worker ${holder} killed by signal 9`));
    assert.notEqual((await trial).status, 200, 'the trial died with its worker');
    await waitFor(async () => (await s.post()).status === 200, 'the model to serve again', 10000);
    assert.equal((await s.post()).status, 200);
    assert.equal(fs.statSync(s.stateFile).ino, inode, 'the same state file');
    const m = await s.metrics();
    assert.equal(m.value('aop_target_circuit_open', { target: 'only/gpt-4o' }), 0);
    await waitFor(async () => (await s.metrics()).value('aop_state_slots_used', { table: 'processes' }) === 4,
      'the dead worker\'s row to be given back (4 live workers)', 5000);
  });
});

describe('a circuit trial that hangs', () => {
  let s;
  before(async () => { s = await startState('trial-hang', { circuit_open_seconds: 1, trial_timeout_seconds: 2 }); });
  after(async () => { await s?.stop(); });

  it('holds the model for its lease (trial_timeout_seconds), not until the first-byte timeout', async () => {
    const started = Date.now();
    await hangTrial(s);
    await waitFor(async () => (await s.post()).status === 200, 'another request to be the trial', 10000);
    assert.ok(Date.now() - started >= 2000, 'not before the lease');
    assert.equal((await s.post()).status, 200, 'the second trial closed the circuit');
  });
});

// A worker that gets no request after the file is rebuilt moves to the new one all the
// same (within a second or two): every live process counts in it, /metrics says 4.
describe('the state file truncated while no request comes', () => {
  let s;
  before(async () => { s = await startState('state-idle', { circuit_open_seconds: 30 }); });
  after(async () => { await s?.stop(); });

  it('is joined by every worker, busy or not', async () => {
    assert.equal((await s.post()).status, 200);
    await waitFor(async () => (await s.metrics()).value('aop_state_slots_used', { table: 'processes' }) === 4, '4 processes in the file');
    fs.truncateSync(s.stateFile, 0);
    await sleep(2500);  // no request: only the workers' own once-a-second look
    assert.equal((await s.metrics()).value('aop_state_slots_used', { table: 'processes' }), 4);
  });
});

describe('the state file truncated and overwritten while requests run', () => {
  let s;
  before(async () => { s = await startState('state-damage', { circuit_open_seconds: 30 }); });
  after(async () => { await s?.stop(); });

  it('is rebuilt, every worker moves to it, later requests succeed and /metrics parses', async () => {
    assert.equal((await s.post()).status, 200);
    const size = fs.statSync(s.stateFile).size;
    let running = true;
    const results = { ok: 0, failed: 0 };
    const client = async () => {
      while (running) {
        const res = await s.post().catch(() => ({ status: 0 }));
        results[res.status === 200 ? 'ok' : 'failed']++;
      }
    };
    const clients = [client(), client(), client(), client()];
    for (let i = 0; i < 3; i++) {
      await sleep(400);
      fs.truncateSync(s.stateFile, 0);
      await sleep(400);
      fs.writeFileSync(s.stateFile, crypto.randomBytes(size));
    }
    await sleep(500);
    running = false;
    await Promise.all(clients);
    console.log(`during the faults: ${results.ok} answered, ${results.failed} failed`);
    for (let i = 0; i < 20; i++) assert.equal((await s.post()).status, 200);
    // Every worker counts in the same (rebuilt) file: 40 requests show as 40.
    const before = (await s.metrics()).value('aop_requests_total', { route: 'chat/completions', status: '200' });
    for (let i = 0; i < 40; i++) assert.equal((await s.post()).status, 200);
    const m = await s.metrics();
    assert.equal(m.value('aop_requests_total', { route: 'chat/completions', status: '200' }) - before, 40);
    assert.equal(m.value('aop_state_in_flight', { table: 'targets' }), 0);
    assert.equal(m.value('aop_state_in_flight', { table: 'keys' }), 0);
    assert.equal(fs.statSync(s.stateFile).size, size);
    assert.equal(fs.readFileSync(s.stateFile).subarray(0, 8).toString(), 'AOPSTATE');
    const logs = s.proxy.logs();
    assert.doesNotMatch(logs, /killed by signal/, 'no worker died (SIGBUS)');
    const rebuilt = logs.split('\n').filter((l) => /the state file .* rebuilt/.test(l));
    assert.ok(rebuilt.length >= 1 && rebuilt.length <= 6, `one line per rebuild:\n${rebuilt.join('\n')}`);
  });
});

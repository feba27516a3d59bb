// The supervisor (--workers N): workers it starts survive the signals sent while they
// start, and a worker it cannot start is logged and tried again, never signalled as -1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { fastcgiExchange, fastcgiRequest, isRunning, startChild, startProxy, tempDir, waitFor } from './harness.mjs';

const KEY = 'supervisor-key';
const SIGHUP_BIT = 1n << 0n;  // bit n-1 of /proc/PID/status masks is signal n

function routingFile(dir, mock) {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({
    endpoints: { local: { url: mock.url, key: 'env:UPSTREAM_KEY' } },
    models: { 'gpt-4o': ['local'] },
  }));
  return file;
}

function workersOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

// The signals a process has a handler for (SigCgt), or null once it is gone.
function caughtSignals(pid) {
  try {
    return BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]}`);
  } catch { return null; }
}

function startedAt(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);  // field 22, in clock ticks
}

const chat = (socket, mock) => {
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'still there?' }] });
  return fastcgiExchange(socket, fastcgiRequest({
    REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
    CONTENT_LENGTH: String(body.length), HTTP_HOST: new URL(mock.url).host,
  }, body));
};

describe('a worker started while SIGHUPs arrive', () => {
  let mock, proxy;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const dir = tempDir('supervisor');
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: KEY, UPSTREAM_KEY: KEY,
      AZURE_OPENAI_PROXY_CONFIG: routingFile(dir, mock), AZURE_OPENAI_PROXY_WORKERS: '3',
      AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state'),
    }, { dir });
    await waitFor(() => workersOf(proxy.pid).filter((pid) => caughtSignals(pid) & SIGHUP_BIT).length === 3, 'three workers');
  });
  after(async () => {
    await proxy?.stop();
    await mock?.close();
  });

  // Each round: a worker is killed, and SIGHUPs go without pause to the supervisor (which
  // passes them on to every worker) and, as `kill -HUP` to the process group would, to the
  // worker started in its place from the moment it exists until it has its handler.
  it('lives on and answers, round after round of a worker killed and SIGHUPs in a storm', async () => {
    const rounds = 10;
    for (let round = 0; round < rounds; round++) {
      const before = workersOf(proxy.pid);
      // The oldest: a worker younger than a second is restarted only a second later.
      const victim = before.sort((a, b) => startedAt(a) - startedAt(b))[0];
      process.kill(victim, 'SIGKILL');
      const deadline = Date.now() + 5000;
      let settled = false;
      while (!settled && Date.now() < deadline) {
        process.kill(proxy.pid, 'SIGHUP');
        const fresh = workersOf(proxy.pid).filter((pid) => !before.includes(pid));
        for (const pid of fresh) try { process.kill(pid, 'SIGHUP'); } catch {}
        settled = fresh.length > 0 && fresh.every((pid) => caughtSignals(pid) & SIGHUP_BIT);
        if (/killed by signal 1;/.test(proxy.logs())) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.doesNotMatch(proxy.logs(), /killed by signal 1;/, `round ${round + 1}: a worker died of a SIGHUP`);
      assert.ok(settled, `round ${round + 1}: no worker took the killed one's place within 5 s`);
      const res = await chat(proxy.socket, mock);
      assert.equal(res.status, 200, res.head + res.text);
    }
    await waitFor(() => workersOf(proxy.pid).length === 3, 'three workers again');
  });
});

// A user id no process runs as: what its processes may signal is theirs alone.
function unusedUid() {
  const used = new Set(fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map((pid) => {
    try { return Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); } catch { return -1; }
  }));
  let uid = 40000 + (process.pid % 20000);
  while (used.has(uid)) uid++;
  return uid;
}

// The soft limit only, set by the same user: root here may lack CAP_SYS_RESOURCE.
const setProcessLimit = (uid, pid, soft) => {
  const set = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'prlimit', '--pid', String(pid), `--nproc=${soft}:`],
    { encoding: 'utf8' });
  assert.equal(set.status, 0, set.stderr);
};
const hardProcessLimit = (pid) => /^Max processes\s+\S+\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))[1];

// RLIMIT_NPROC makes fork() fail for a user other than root, set on the running
// supervisor with prlimit. Another process of the same user, with SIGHUP's default
// action, would die of a kill(-1, SIGHUP).
describe('a worker that cannot be started (fork fails)', { skip: process.getuid() !== 0 && 'needs root (setpriv, prlimit)' }, () => {
  it('is logged and started a second later, and no signal goes to pid -1', async () => {
    const mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const uid = unusedUid();
    const dir = tempDir('fork-fails');
    fs.chownSync(dir, uid, uid);
    const neighbour = startChild('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'sleep', '600']);
    const proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: KEY, UPSTREAM_KEY: KEY,
      AZURE_OPENAI_PROXY_CONFIG: routingFile(dir, mock), AZURE_OPENAI_PROXY_WORKERS: '2',
      AZURE_OPENAI_PROXY_THREADS: '1', AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state'),
    }, { dir, uid });
    try {
      await waitFor(() => workersOf(proxy.pid).filter((pid) => caughtSignals(pid) & SIGHUP_BIT).length === 2, 'two workers');
      setProcessLimit(uid, proxy.pid, 1);
      const [victim, survivor] = workersOf(proxy.pid);
      process.kill(victim, 'SIGKILL');
      await waitFor(() => !workersOf(proxy.pid).includes(victim), 'the killed worker to be reaped');
      await waitFor(() => /cannot start a worker/.test(proxy.logs()), 'the failed start to be logged', 3000).catch(() => {});
      process.kill(proxy.pid, 'SIGHUP');
      await waitFor(() => caughtSignals(survivor) !== null && /SIGHUP: .*config\.json in force/.test(proxy.logs()), 'the reload');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(isRunning(neighbour.pid), `a process of the same user was signalled: ${JSON.stringify(neighbour.exited)}`);
      assert.match(proxy.logs(), /azure-openai-proxy: cannot start a worker, trying again every second \(fork\): Resource temporarily unavailable\n/);
      assert.deepEqual(workersOf(proxy.pid), [survivor]);
      assert.equal((await chat(proxy.socket, mock)).status, 200, 'the other worker answers meanwhile');

      setProcessLimit(uid, proxy.pid, hardProcessLimit(proxy.pid));
      await waitFor(() => workersOf(proxy.pid).length === 2, 'a worker started again', 5000);
      await proxy.waitForLog(/worker \d+ started after \d+ failed tries/);
      assert.equal(proxy.logs().match(/cannot start a worker/g).length, 1, 'logged once, not at each try');
      assert.equal((await chat(proxy.socket, mock)).status, 200);
    } finally {
      await proxy.stop();
      await neighbour.stop('SIGKILL');
      await mock.close();
    }
    assert.equal(neighbour.exited.signal, 'SIGKILL', 'the neighbour lived until the test ended it');
  });
});

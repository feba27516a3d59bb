// The faults, one function per kind. Each injects its fault into the running stack,
// undoes it (brings back Redis, the routing file, the upstream's manners), and resolves
// with what it did:
//   { injected: did the fault happen, undone: is the stack whole again (the supervisor
//     has its workers, Redis answers, the reload was taken), variant, detail }
// `round` counts the kind's earlier faults, so that variants are taken in turn.
import crypto from 'node:crypto';
import fs from 'node:fs';

import { rawHttp, sleep, waitFor } from '../integration/harness.mjs';
import { KEYS } from './clients.mjs';
import { holderOf } from './procfs.mjs';
import { GARBAGE_MODES, startFakeRedis } from './redis.mjs';
import { RETRY, WORKERS } from './stack.mjs';

const pick = (list, random) => list[Math.floor(random() * list.length)];
const between = (random, lowMs, highMs) => Math.round(lowMs + random() * (highMs - lowMs));

function killNine(stack, pid) {
  stack.killedByUs.add(pid);
  process.kill(pid, 'SIGKILL');
}

const askTrialModel = (stack, timeoutMs = 3000) => rawHttp(stack.web.port, {
  headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-trial', messages: [{ role: 'user', content: 'trial' }] }), timeoutMs,
}).catch((error) => ({ status: 0, error: error.message }));

const answered = (answer) => `${answer.status} ${answer.json?.error?.code || answer.error || ''}`.trim();

// kill -9 of a worker picked at random; undone once the supervisor has replaced it.
async function workerKill(stack, random) {
  const workers = stack.workers();
  if (!workers.length) return { injected: false, detail: 'no worker running' };
  const pid = pick(workers, random);
  killNine(stack, pid);
  return { injected: true, undone: await stack.waitForWorkers(5000, [pid]), detail: `worker ${pid}` };
}

// gpt-trial's only target answers 500 until the proxy answers 503 no_healthy_deployment
// without asking it (its circuit is open); then it is healthy again.
async function failUntilCircuitOpens(stack) {
  stack.mocks.trial.scenario = 'server-error';
  let open = false, answer;
  for (let i = 0; i < RETRY.circuit_failures + 4 && !open; i++) {
    answer = await askTrialModel(stack);
    open = answer.status === 503 && answer.json?.error?.code === 'no_healthy_deployment';
  }
  stack.mocks.trial.scenario = '';
  return { open, answer };
}

// kill -9 of the worker whose request is an open circuit's trial: gpt-trial's only target
// fails until its circuit opens, then holds the next request (the trial); the worker that
// sent it is found through the upstream's side of its connection, and killed. The target
// is healthy again at once: only the lost trial stands between the model and its clients.
async function trialKill(stack) {
  const { trial } = stack.mocks;
  const failing = await failUntilCircuitOpens(stack);
  if (!failing.open) return { injected: false, detail: `the circuit did not open (gpt-trial answered ${answered(failing.answer)})` };
  const heldSince = Date.now();
  trial.scenario = 'hang';
  await sleep(RETRY.circuit_open_seconds * 1000 + 100);
  const asked = askTrialModel(stack, 20000);
  let held;
  try {
    await waitFor(() => (held = [...trial.answers].find((a) => a.since >= heldSince)), 'the trial', 3000);
  } catch {
    trial.scenario = '';
    const answer = await asked;
    return { injected: false, detail: `no trial went out (gpt-trial answered ${answered(answer)})` };
  }
  const pid = holderOf(stack.workers(), held.port, Number(new URL(trial.url).port));
  trial.scenario = '';
  if (!pid) {
    held.res.destroy();
    await asked;
    return { injected: false, detail: 'the trial was out but no worker was found holding it' };
  }
  killNine(stack, pid);
  await asked;
  return { injected: true, undone: await stack.waitForWorkers(5000, [pid]), detail: `worker ${pid} held the trial` };
}

// SIGHUP to the supervisor, each way in turn: the same file; the routing file rewritten
// (other weights, priorities and limits); while a worker starts: a worker killed, then
// SIGHUPs every 2 ms for 100 ms: the first wakes the supervisor, which replaces the dead
// worker, and the next is passed on to every worker, the one just forked among them.
const RELOADS = ['same file', 'file rewritten', 'while a worker starts'];
async function reload(stack, random, round) {
  const variant = RELOADS[round % RELOADS.length];
  if (variant === 'file rewritten') stack.writeRouting('shuffled', random);
  if (variant === 'while a worker starts') {
    killNine(stack, pick(stack.workers(), random));
    for (const until = Date.now() + 100; Date.now() < until; await sleep(2)) process.kill(stack.proxy.pid, 'SIGHUP');
  }
  const taken = await stack.reload();
  const workers = await stack.waitForWorkers(5000);
  return { injected: true, undone: taken >= WORKERS + 1 && workers, variant, detail: `${variant}: taken by ${taken} of ${WORKERS + 1} processes` };
}

// Redis killed (SIGKILL) or stopped (SIGTERM), down for up to 2 s, started again.
async function redisRestart(stack, random) {
  const signal = random() < 0.5 ? 'SIGKILL' : 'SIGTERM';
  const downMs = between(random, 200, 2000);
  try {
    await stack.redis.stop(signal);
    await sleep(downMs);
  } finally {
    await stack.startRedis();
  }
  return { injected: true, undone: true, variant: signal, detail: `${signal}, down ${downMs} ms` };
}

// Redis replaced for 1-4 s by a server on its port that answers garbage (each way of
// GARBAGE_MODES in turn), then the real one back.
async function redisGarbage(stack, random, round) {
  const mode = GARBAGE_MODES[round % GARBAGE_MODES.length];
  const forMs = between(random, 1000, 4000);
  let accepted = 0;
  try {
    await stack.redis.stop('SIGKILL');
    stack.fakeRedis = await startFakeRedis(stack.redisPort, mode);
    await sleep(forMs);
    accepted = stack.fakeRedis.accepted();
  } finally {
    await stack.fakeRedis?.stop();
    stack.fakeRedis = null;
    await stack.startRedis();
  }
  return { injected: true, undone: true, variant: mode, detail: `${mode} for ${forMs} ms, ${accepted} connections from the proxy` };
}

// Upstream connections reset mid-answer: every answer the main upstream (sometimes the
// backup too) is sending is reset, and for 0.3-1.5 s new ones break the same way (each
// of the mock's reset scenarios in turn).
const RESETS = ['reset-mid-stream', 'reset-mid-body', 'reset-before-headers'];
async function upstreamReset(stack, random, round) {
  const scenario = RESETS[round % RESETS.length];
  const mocks = [stack.mocks.main, ...(random() < 0.3 ? [stack.mocks.backup] : [])];
  let reset = 0;
  for (const mock of mocks) {
    for (const answer of mock.answers) {
      answer.res.socket?.resetAndDestroy();
      reset++;
    }
    mock.scenario = scenario;
  }
  const forMs = between(random, 300, 1500);
  await sleep(forMs);
  for (const mock of mocks) mock.scenario = stack.normalScenario;
  return {
    injected: true, undone: true, variant: scenario,
    detail: `${reset} answers reset, then ${scenario} for ${forMs} ms (${mocks.length === 2 ? 'main and backup' : 'main'})`,
  };
}

// A routing file whose first target for gpt-4o and the embeddings is on a host that does
// not resolve, put in force by a reload for 1-3 s, then the good file back.
async function unresolvableEndpoint(stack, random) {
  const forMs = between(random, 1000, 3000);
  let taken = 0;
  try {
    stack.writeRouting('unresolvable');
    taken = await stack.reload();
    await sleep(forMs);
  } finally {
    stack.writeRouting('base');
  }
  const back = await stack.reload();
  const workers = await stack.waitForWorkers(5000);
  return {
    injected: taken > 0, undone: back >= WORKERS + 1 && workers,
    detail: `in force ${forMs} ms (taken by ${taken}, the good file back by ${back} of ${WORKERS + 1} processes)`,
  };
}

// The shared-state file damaged under the running workers (each way in turn): truncated
// to 0, its first 64 KiB overwritten with random bytes, or replaced by 1 KiB of them.
const DAMAGE = ['truncated', 'head overwritten', 'replaced by 1 KiB'];
async function stateFile(stack, random, round) {
  const how = DAMAGE[round % DAMAGE.length];
  const existed = fs.existsSync(stack.stateFile);
  if (how === 'truncated') {
    if (existed) fs.truncateSync(stack.stateFile, 0);
  } else if (how === 'head overwritten') {
    const fd = fs.openSync(stack.stateFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try { fs.writeSync(fd, crypto.randomBytes(65536), 0, 65536, 0); } finally { fs.closeSync(fd); }
  } else {
    fs.writeFileSync(stack.stateFile, crypto.randomBytes(1024), { mode: 0o600 });
  }
  await sleep(1000);  // every worker touches the file within that (Redis' sync, every 100 ms)
  return { injected: true, undone: await stack.waitForWorkers(5000), variant: how, detail: `${how}${existed ? '' : ' (the file was missing)'}` };
}

export const FAULTS = {
  'worker-kill': workerKill,
  'trial-kill': trialKill,
  reload,
  'redis-restart': redisRestart,
  'redis-garbage': redisGarbage,
  'upstream-reset': upstreamReset,
  'unresolvable-endpoint': unresolvableEndpoint,
  'state-file': stateFile,
};

// What each kind does, for the report.
export const FAULT_TEXT = {
  'worker-kill': 'kill -9 of a worker picked at random',
  'trial-kill': 'kill -9 of the worker holding an open circuit\'s trial request (gpt-trial)',
  reload: `SIGHUP to the supervisor (${RELOADS.join(', ')})`,
  'redis-restart': 'Redis killed or stopped, down 0.2-2 s, started again',
  'redis-garbage': `Redis replaced for 1-4 s by a server answering garbage (${GARBAGE_MODES.join(', ')})`,
  'upstream-reset': `upstream connections reset mid-answer (${RESETS.join(', ')})`,
  'unresolvable-endpoint': 'a routing file whose first target is on nonexistent.invalid, in force 1-3 s',
  'state-file': `the shared-state file ${DAMAGE.join(', ')}`,
};

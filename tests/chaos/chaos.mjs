// `make chaos`: the fault run. For CHAOS_SECONDS (600), clients keep sending chat
// requests, streams and embeddings through lighttpd to the proxy (4 workers, a routing
// file, client keys with limits, Redis on loopback) while faults arrive at random: kill -9
// of a worker and of the one holding a circuit's trial, SIGHUP reloads, Redis restarted
// and replaced by one answering garbage, upstream connections reset, an unresolvable
// endpoint, the state file truncated or overwritten. Then a quiet settling period and a
// final phase with no faults, where nothing may fail. Writes a report (markdown and JSON),
// prints it, and exits 1 when a check fails. tests/chaos/README.md says more.
//
// Usage: node tests/chaos/chaos.mjs [--out DIR]
// Settings (environment): CHAOS_SECONDS, CHAOS_REPEATS (each kind at least this often;
// default one per 30 s of faults), CHAOS_FAULTS (kinds, comma-separated; default all),
// CHAOS_SEED, CHAOS_GRACE_MS; PROXY_BIN picks the program (default the sanitizer build).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, isRunning, sleep } from '../integration/harness.mjs';
import { attribute, readStack, runChecks } from './checks.mjs';
import { createLedger, startClients, sweep } from './clients.mjs';
import { FAULTS } from './faults.mjs';
import { rssKiB } from './procfs.mjs';
import { renderReport } from './report.mjs';
import { PROXY_BIN, createStack, routedTargets, routing, startStack } from './stack.mjs';

function readSettings() {
  const env = process.env;
  const seconds = Number(env.CHAOS_SECONDS || 600);
  const short = seconds < 180;  // a smoke run: shorter phases around the faults
  const kinds = env.CHAOS_FAULTS ? env.CHAOS_FAULTS.split(',') : Object.keys(FAULTS);
  for (const kind of kinds) if (!FAULTS[kind]) throw new Error(`CHAOS_FAULTS: no fault '${kind}' (${Object.keys(FAULTS).join(', ')})`);
  const argv = process.argv.slice(2);
  return {
    seconds, kinds,
    repeats: Number(env.CHAOS_REPEATS || Math.max(1, Math.round(seconds / 30))),
    seed: Number(env.CHAOS_SEED || Math.floor(Math.random() * 2 ** 31)),
    graceMs: Number(env.CHAOS_GRACE_MS || 3000),
    warmupMs: short ? 3000 : 10000,
    settleMs: short ? 3000 : 10000,   // more than a circuit's open time and Redis' reconnect
    finalMs: short ? 5000 : 20000,
    quietMs: short ? 1000 : 1500,     // before and during each reading: no request in flight
    sweepRounds: 4,                   // each combination this often in the final sweep
    requestTimeoutMs: 20000,
    fdSlack: 8,                       // idle upstream and Redis connections come and go
    rssSlackMiB: 32,
    idleCpuPercent: 20,
    out: argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(ROOT, 'bench/results'),
  };
}

// A small seeded generator (mulberry32): the same seed, the same faults in the same order.
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(list, random) {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const log = (text) => process.stderr.write(`chaos: ${text}\n`);

// Every kind `repeats` times in a random order, spread over `seconds`: after each fault
// the next waits a random share of the time left per fault still to come.
async function injectFaults(stack, settings, random, started) {
  const deck = shuffled(settings.kinds.flatMap((kind) => Array(settings.repeats).fill(kind)), random);
  const deadline = started + settings.seconds * 1000;
  const rounds = {}, windows = [];
  let busyMs = 0;
  for (let i = 0; i < deck.length; i++) {
    const kind = deck[i];
    const busy = i ? busyMs / i : 1000;  // how long a fault has taken to inject and undo
    const gap = ((deadline - Date.now()) / (deck.length - i) - busy) * (0.5 + random());
    await sleep(Math.max(100, Math.min(gap, deadline - Date.now() - busy)));
    const round = rounds[kind] = (rounds[kind] ?? -1) + 1;
    const start = Date.now(), logFrom = stack.proxy.output.length;
    let result;
    try {
      result = await FAULTS[kind](stack, random, round);
    } catch (error) {
      result = { injected: false, detail: `the fault itself failed: ${error.message}` };
    }
    const actionEnd = Date.now();
    busyMs += actionEnd - start;
    const rssMiB = Math.round(stack.workers().reduce((sum, pid) => sum + (rssKiB(pid) || 0), 0) / 1024);
    windows.push({ kind, round, start, actionEnd, end: actionEnd + settings.graceMs, logFrom, rssMiB, ...result });
    log(`+${((start - started) / 1000).toFixed(0)} s ${kind} #${round + 1}: ${result.detail}${result.injected ? '' : ' (not injected)'}`);
  }
  const last = windows.length ? windows[windows.length - 1].end : 0;
  await sleep(Math.max(deadline, last) - Date.now());
  return windows;
}

// Runs the clients while `work` runs, then waits until each has its answer.
async function withClients(stack, ledger, settings, work) {
  const clients = startClients(stack.url, ledger, { timeoutMs: settings.requestTimeoutMs });
  try {
    return await work();
  } finally {
    await clients.stop();
  }
}

async function phases(stack, ledger, settings, run) {
  await startStack(stack);
  log(`${stack.url}: ${PROXY_BIN} with 4 workers; warm-up`);
  await withClients(stack, ledger, settings, () => sleep(settings.warmupMs));
  for (const outcome of await sweep(stack.url, { rounds: 1, timeoutMs: settings.requestTimeoutMs })) ledger.record(outcome);
  run.baseline = await readStack(stack, settings.quietMs);

  ledger.phase = 'faults';
  const random = seeded(settings.seed);
  const started = run.started = Date.now();
  log(`faults for ${settings.seconds} s: ${settings.kinds.join(', ')}, each ${settings.repeats} times (seed ${settings.seed})`);
  run.windows = await withClients(stack, ledger, settings, () => injectFaults(stack, settings, random, started));
  run.faultsMs = Date.now() - started;

  // The routing in force at the end is the base one, whatever the last reload left.
  stack.writeRouting('base');
  await stack.reload();
  run.routedTargets = routedTargets(stack.routingText);
  log(`settling for ${settings.settleMs / 1000} s, then the final phase`);
  ledger.phase = 'final';
  await sleep(settings.settleMs);
  run.settled = await readStack(stack, settings.quietMs);
  await withClients(stack, ledger, settings, () => sleep(settings.finalMs));
  run.sweep = await sweep(stack.url, { rounds: settings.sweepRounds, timeoutMs: settings.requestTimeoutMs });
  for (const outcome of run.sweep) ledger.record(outcome);
  // Once every label set of the run has been seen, the same requests again make no series.
  run.swept = await readStack(stack, settings.quietMs);
  const again = await sweep(stack.url, { rounds: 1, timeoutMs: settings.requestTimeoutMs });
  for (const outcome of again) ledger.record(outcome);
  run.sweep.push(...again);
  run.end = await readStack(stack, settings.quietMs);
  run.supervisorAlive = isRunning(stack.proxy.pid);
}

// The targets only the unresolvable endpoint's routing file names: they may keep a slot.
function introducedTargets(stack, settings) {
  if (!stack.mocks?.trial || !settings.kinds.includes('unresolvable-endpoint')) return [];
  const base = new Set(routedTargets(routing(stack.mocks, 'base')));
  return routedTargets(routing(stack.mocks, 'unresolvable')).filter((target) => !base.has(target));
}

function describeMachine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model || 'cpu'}, load ${os.loadavg()[0].toFixed(1)}`;
}

function commit() {
  try { return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return '?'; }
}

function writeReport(run, checks, settings) {
  const table = renderReport(run, checks, settings);
  fs.mkdirSync(settings.out, { recursive: true });
  const name = `chaos-${run.date}`;
  fs.writeFileSync(path.join(settings.out, `${name}.md`), table);
  // Every number, and the first failures whole (a run on a broken proxy fails thousands).
  const { output, ledger, ...kept } = run;
  const failures = { count: ledger.failures.length, first: ledger.failures.slice(0, 100) };
  fs.writeFileSync(path.join(settings.out, `${name}.json`), JSON.stringify({
    settings, checks, ...kept, ledger: { counts: ledger.counts, failures }, killedByUs: [...run.killedByUs],
  }, null, 2) + '\n');
  process.stdout.write(table);
  log(`report: ${path.join(settings.out, `${name}.md`)}; the proxy's log: ${run.logFile}`);
}

async function main() {
  const settings = readSettings();
  const ledger = createLedger();
  const stack = createStack();
  const run = {
    date: new Date().toISOString().slice(0, 10), commit: commit(), machine: describeMachine(), proxyBin: path.relative(ROOT, PROXY_BIN),
    ledger, windows: [], sweep: [], routedTargets: [], introducedTargets: [], started: 0, faultsMs: 0,
  };
  // Interrupted: every process stopped by its PID before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => { log(`${signal}: stopping`); stack.stop().finally(() => process.exit(130)); });
  try {
    await phases(stack, ledger, settings, run);
  } catch (error) {
    run.error = String(error.stack || error);
    log(`the run went wrong: ${run.error}`);
  } finally {
    run.output = stack.proxy?.output || '';
    run.stopProblems = await stack.stop();
    run.stopped = stack.stopped;
  }
  run.killedByUs = stack.killedByUs;
  run.logFile = path.join(stack.dir, 'proxy.log');
  fs.writeFileSync(run.logFile, run.output);
  run.introducedTargets = introducedTargets(stack, settings);
  run.attribution = attribute(ledger.failures, run.windows, run.output, stack.killedByUs);
  const checks = runChecks(run, settings);
  writeReport(run, checks, settings);
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) log(`${failed.length} checks failed: ${failed.map((c) => c.check).join('; ')}`);
  process.exitCode = failed.length ? 1 : 0;
}

await main();

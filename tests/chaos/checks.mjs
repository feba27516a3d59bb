// What the fault run reads of the running stack (/proc and /metrics), how it attributes
// each failed request to the faults it met, and every check of the run, in one place.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { ROOT, rawHttp, sanitizerReports, sleep } from '../integration/harness.mjs';
import { MODELS } from './clients.mjs';
import { connectedTo, cpuTicks, descriptors, rssKiB } from './procfs.mjs';
import { WORKERS } from './stack.mjs';

// ---- readings ----------------------------------------------------------------------------

// Descriptors of the supervisor and of each worker; each worker's resident memory, its
// CPU time over `quietMs` with no request in flight (in % of a core), and whether it is
// connected to Redis.
async function sampleProcesses(stack, quietMs) {
  const pids = stack.workers();
  const ticks = pids.map(cpuTicks);
  await sleep(quietMs);
  return {
    supervisor: { pid: stack.proxy.pid, fds: descriptors(stack.proxy.pid) },
    workers: pids.map((pid, i) => ({
      pid, fds: descriptors(pid), rssKiB: rssKiB(pid), redis: connectedTo(pid, stack.redisPort),
      cpuPercent: ticks[i] === null || cpuTicks(pid) === null ? null : Math.round(((cpuTicks(pid) - ticks[i]) * 10 * 100) / quietMs),
    })),
  };
}

// The processes (after `quietMs` with no request) and /metrics.
export async function readStack(stack, quietMs) {
  await sleep(quietMs);
  return { processes: await sampleProcesses(stack, quietMs), metrics: await readMetrics(stack) };
}

// The shared state's tables, as /metrics shows them (gauges another change adds: until
// then each reads null, "n/a").
export const STATE_GAUGES = {
  'slots used: processes': ['aop_state_slots_used', { table: 'processes' }],
  'slots used: targets': ['aop_state_slots_used', { table: 'targets' }],
  'slots used: keys': ['aop_state_slots_used', { table: 'keys' }],
  'slots used: series': ['aop_state_slots_used', { table: 'series' }],
  'in flight: targets': ['aop_state_in_flight', { table: 'targets' }],
  'in flight: keys': ['aop_state_in_flight', { table: 'keys' }],
};

function parseSamples(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

// Whether the Prometheus Python client's parser takes the page (null: no parser here).
function prometheusParses(text) {
  try {
    execFileSync('/usr/bin/python3', [path.join(ROOT, 'tests/integration/parse-metrics.py')], { input: text, stdio: ['pipe', 'ignore', 'pipe'] });
    return { parses: true };
  } catch (error) {
    const said = String(error.stderr || error.message).trim().split('\n').pop();
    return /ModuleNotFoundError|ENOENT/.test(said) ? { parses: null, said } : { parses: false, said };
  }
}

async function readMetrics(stack) {
  const answer = await rawHttp(stack.web.port, { method: 'GET', path: '/metrics', timeoutMs: 10000 })
    .catch((error) => ({ status: 0, body: Buffer.from(String(error.message)) }));
  const text = answer.body.toString();
  const samples = parseSamples(text);
  // A sample's value summed over the series whose labels match; null when there is none.
  const value = (name, labels = {}) => {
    const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    return found.length ? found.reduce((sum, s) => sum + s.value, 0) : null;
  };
  const state = Object.fromEntries(Object.entries(STATE_GAUGES).map(([what, [name, labels]]) => [what, value(name, labels)]));
  const circuits = Object.fromEntries(samples.filter((s) => s.name === 'aop_target_circuit_open').map((s) => [s.labels.target, s.value]));
  return { status: answer.status, ...prometheusParses(text), state, circuits, value };
}

// Workers the supervisor saw die, but not by the run's kill -9: [{ pid, how }].
export function unaskedDeaths(output, killedByUs) {
  const deaths = [];
  for (const [, pid, how, number] of output.matchAll(/worker (\d+) (killed by signal|exited with) (\d+)/g)) {
    if (how === 'killed by signal' && number === '9' && killedByUs.has(Number(pid))) continue;
    deaths.push({ pid: Number(pid), how: `${how} ${number}` });
  }
  return deaths;
}

// ---- attribution -------------------------------------------------------------------------

// Each failed request of the fault phase goes to every fault window it overlapped (it
// "failed during" those faults). One that overlapped none failed after a fault was over:
// it goes to the last window that ended before it began ("failed after"), the sign of a
// fault that outlived its window. Windows gain `failed` and `failedAfter`, and `deaths`:
// the workers that died but not by the run's kill -9, from the fault's injection until
// the next one's (as the supervisor logged them).
export function attribute(failures, windows, output, killedByUs) {
  const byKind = {};
  const before = [];
  windows.forEach((window, i) => {
    window.failed = 0;
    window.failedAfter = 0;
    window.deaths = unaskedDeaths(output.slice(window.logFrom, windows[i + 1]?.logFrom), killedByUs).length;
    byKind[window.kind] ||= { during: 0, after: 0 };
  });
  for (const failure of failures.filter((f) => f.phase === 'faults')) {
    const hit = windows.filter((w) => failure.start < w.end && failure.end > w.start);
    failure.windows = hit.map((w) => `${w.kind} #${w.round + 1}`);
    for (const window of hit) window.failed++;
    for (const kind of new Set(hit.map((w) => w.kind))) byKind[kind].during++;
    if (hit.length) continue;
    const last = windows.filter((w) => w.end <= failure.start).pop();
    if (!last) { before.push(failure); continue; }
    last.failedAfter++;
    byKind[last.kind].after++;
    failure.after = `${last.kind} #${last.round + 1}`;
  }
  return { byKind, before };
}

// ---- checks ------------------------------------------------------------------------------

const MiB = 1024;

function sameOrNa(start, end, allowed = 0) {
  if (start === null || end === null || start === undefined || end === undefined) return { ok: true, shown: 'n/a' };
  return { ok: end <= start + allowed && end >= start - allowed, shown: `${start} → ${end}` };
}

// Every check of the run: [{ check, ok, detail }]. `run` holds what the run saw.
export function runChecks(run, settings) {
  const checks = [];
  const add = (check, ok, detail) => checks.push({ check, ok: Boolean(ok), detail });
  const { windows, attribution, ledger } = run;

  if (run.error) add('the run went through', false, run.error);

  const kinds = settings.kinds;
  const injected = (kind) => windows.filter((w) => w.kind === kind && w.injected).length;
  const short = kinds.filter((kind) => injected(kind) < settings.repeats);
  add(`each kind of fault injected at least ${settings.repeats} times`, !short.length,
    short.length ? short.map((k) => `${k}: ${injected(k)}`).join(', ') : kinds.map((k) => `${k}: ${injected(k)}`).join(', '));

  const notUndone = windows.filter((w) => w.injected && w.undone === false);
  add('every fault undone (workers replaced, reloads taken, Redis back)', !notUndone.length,
    notUndone.map((w) => `${w.kind} #${w.round + 1}: ${w.detail}`).slice(0, 8).join('; ') || 'all');

  const after = Object.values(attribution.byKind).reduce((sum, k) => sum + k.after, 0) + attribution.before.length;
  add('no request failed outside the fault windows', after === 0, `${after} failed after their fault's window (by kind in the table)`);

  const final = ledger.counts.final || { sent: 0, failed: 0 };
  add('no request failed after the last fault (final phase)', final.sent > 0 && final.failed === 0, `${final.failed} of ${final.sent} failed`);

  const blocked = new Set(run.sweep.filter((o) => !o.ok).map((o) => `${o.model} ${o.kind} as ${o.key}: ${o.why}`));
  const combinations = Object.values(MODELS).reduce((n, m) => n + m.kinds.length * m.keys.length, 0);
  add('every model and key answers 200 (final sweep)', run.sweep.length > 0 && !blocked.size,
    blocked.size ? [...blocked].slice(0, 6).join('; ') : `${combinations} model/key/kind combinations, ${run.sweep.length} requests`);

  const circuits = run.end?.metrics?.circuits || {};
  const open = run.routedTargets.filter((t) => circuits[t]);
  add('no circuit left open (aop_target_circuit_open of every routed target)', run.end && !open.length,
    open.length ? `open: ${open.join(', ')}` : `${run.routedTargets.length} targets closed`);

  checks.push(...resourceChecks(run, settings));

  for (const [what, reading] of [['at the start', run.baseline], ['at the end', run.end]]) {
    const parses = reading?.metrics?.parses;
    add(`/metrics parses (Prometheus client) ${what}`, parses !== false, parses === null ? 'n/a (no python3-prometheus-client)' : parses ? 'yes' : reading?.metrics?.said || 'no answer');
  }

  const deaths = unaskedDeaths(run.output || '', run.killedByUs);
  add('no worker died but those the run killed', !deaths.length,
    deaths.length ? `${deaths.length}: ${summarize(deaths.map((d) => d.how))}` : 'none');

  const reports = sanitizerReports(run.output || '');
  add('no sanitizer report', !reports.length, reports.slice(0, 3).join(' | ') || 'none');

  add('the supervisor ran throughout and stopped cleanly', run.supervisorAlive && run.stopped?.code === 0,
    `alive at the end: ${Boolean(run.supervisorAlive)}; stopped with ${JSON.stringify(run.stopped)}`);
  add('every process the run started is stopped', !run.stopProblems.length, run.stopProblems.join('; ') || 'yes');
  return checks;
}

// "3 killed by signal 7, 1 exited with 1"
export function summarize(list) {
  const counts = {};
  for (const item of list) counts[item] = (counts[item] || 0) + 1;
  return Object.entries(counts).map(([item, n]) => `${n} ${item}`).join(', ');
}

// Descriptors, memory and the shared state's slots: back to where they were after the
// warm-up. Workers replaced during the run are compared with the largest at the start.
function resourceChecks(run, settings) {
  const checks = [];
  const add = (check, ok, detail) => checks.push({ check, ok: Boolean(ok), detail });
  const start = run.baseline?.processes, end = run.end?.processes;
  if (!start || !end) return [{ check: 'descriptors, memory and slots read at the start and the end', ok: false, detail: 'not read' }];

  const supervisorFds = sameOrNa(start.supervisor.fds, end.supervisor.fds);
  add('supervisor descriptors back to the start', supervisorFds.ok, supervisorFds.shown);
  const most = (list, field) => Math.max(...list.map((w) => w[field] ?? 0));
  const fdLimit = most(start.workers, 'fds') + settings.fdSlack;
  const fdOver = end.workers.filter((w) => w.fds > fdLimit);
  add(`worker descriptors back to the start (at most the largest then + ${settings.fdSlack})`,
    end.workers.length === WORKERS && !fdOver.length,
    `${start.workers.map((w) => w.fds).join('/')} → ${end.workers.map((w) => w.fds).join('/')}`);
  const rssLimit = most(start.workers, 'rssKiB') + settings.rssSlackMiB * MiB;
  const rssOver = end.workers.filter((w) => w.rssKiB > rssLimit);
  const mib = (w) => (w.rssKiB / MiB).toFixed(1);
  add(`worker memory back to the start (VmRSS at most the largest then + ${settings.rssSlackMiB} MiB)`, !rssOver.length,
    `${start.workers.map(mib).join('/')} → ${end.workers.map(mib).join('/')} MiB`);

  const busy = end.workers.filter((w) => w.cpuPercent > settings.idleCpuPercent);
  add(`workers idle with no request in flight (each under ${settings.idleCpuPercent} % of a core)`, !busy.length,
    `${end.workers.map((w) => `${w.cpuPercent ?? '?'} %`).join(' / ')}`);
  // One process of the host talks to Redis for all (the one holding the state file's lock).
  const talking = end.workers.filter((w) => w.redis).length;
  add('one worker connected to Redis at the end (it talks for the host)', talking === 1,
    `${talking} of ${end.workers.length}`);

  const before = run.baseline.metrics.state, swept = run.swept?.metrics?.state || {}, after = run.end.metrics.state;
  for (const what of Object.keys(STATE_GAUGES)) {
    // Targets a fault's routing file added (the unresolvable endpoint's) may keep a slot.
    // Series are counters whose label sets grow while faults make new ones and go with a
    // rebuilt state file: once the final sweep has seen every label set, the same requests
    // again must make none.
    const from = what.endsWith('series') ? swept[what] : before[what];
    const allowed = what.endsWith('targets') && what.startsWith('slots') ? run.introducedTargets.length : 0;
    const verdict = sameOrNa(from, after[what], allowed);
    const shown = what.endsWith('series') && verdict.shown !== 'n/a'
      ? `${before[what]} at the start, ${from} after the final sweep, ${after[what]} after one more` : verdict.shown;
    add(`shared state ${what} back to the start`, verdict.ok, shown);
  }
  return checks;
}

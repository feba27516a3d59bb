// The fault run's report in markdown: per kind of fault what was injected and what it
// cost, the checks, and the readings behind them.
import { FAULT_TEXT } from './faults.mjs';
import { STATE_GAUGES, summarize } from './checks.mjs';

const seconds = (ms) => (ms / 1000).toFixed(1);

function faultTable(run, settings) {
  const lines = [
    '| fault | injected | requests failed during its windows (most in one) | failed after its window | not undone | workers died unasked | variants |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const kind of settings.kinds) {
    const windows = run.windows.filter((w) => w.kind === kind);
    const injected = windows.filter((w) => w.injected);
    const { during = 0, after = 0 } = run.attribution.byKind[kind] || {};
    const most = Math.max(0, ...windows.map((w) => w.failed));
    const notUndone = injected.filter((w) => w.undone === false).length;
    const variants = summarize(injected.map((w) => w.variant).filter(Boolean));
    const tried = windows.length > injected.length ? ` of ${windows.length}` : '';
    const deaths = windows.reduce((sum, w) => sum + w.deaths, 0);
    lines.push(`| ${kind} | ${injected.length}${tried} | ${during} (${most}) | ${after} | ${notUndone} | ${deaths} | ${variants} |`);
  }
  return lines;
}

function checkTable(checks) {
  return ['| check | result | detail |', '|---|---|---|',
    ...checks.map((c) => `| ${c.check} | ${c.ok ? 'ok' : '**FAILED**'} | ${String(c.detail).replaceAll('|', '\\|').replaceAll('\n', ' ')} |`)];
}

function readingTable(run) {
  const start = run.baseline?.processes, end = run.end?.processes;
  if (!start || !end) return [];
  const row = (name, a, b) => `| ${name} | ${a ?? 'n/a'} | ${b ?? 'n/a'} |`;
  const workers = (p, field, scale = 1) => p.workers.map((w) => (w[field] === null ? '?' : (w[field] / scale).toFixed(scale === 1 ? 0 : 1))).join(' / ');
  const lines = ['| reading | after the warm-up | at the end |', '|---|---|---|',
    row('supervisor descriptors', start.supervisor.fds, end.supervisor.fds),
    row('worker descriptors', workers(start, 'fds'), workers(end, 'fds')),
    row('worker VmRSS, MiB', workers(start, 'rssKiB', 1024), workers(end, 'rssKiB', 1024)),
    row('worker CPU with no request in flight, % of a core', workers(start, 'cpuPercent'), workers(end, 'cpuPercent')),
    row('workers connected to Redis (one talks for the host)', start.workers.filter((w) => w.redis).length, end.workers.filter((w) => w.redis).length)];
  for (const what of Object.keys(STATE_GAUGES)) lines.push(row(`shared state ${what}`, run.baseline.metrics.state[what], run.end.metrics.state[what]));
  return lines;
}

// The failures outside every fault window (after a fault, or in the final phase), grouped
// by where they fell and what they said (numbers left out), the largest groups first.
function failureGroups(run) {
  const groups = new Map();
  for (const f of run.ledger.failures) {
    if (f.phase === 'faults' && !f.after && f.windows?.length) continue;
    const where = f.phase === 'faults' ? `after ${f.after ? f.after.replace(/ #\d+$/, '') : 'no fault'}` : `${f.phase} phase`;
    const said = f.why.replaceAll('\n', ' ').replace(/\d{4,}/g, 'N').slice(0, 160);
    const key = `${where}|${f.model}|${said}`;
    const group = groups.get(key) || groups.set(key, { where, model: f.model, said, count: 0, first: f.start }).get(key);
    group.count++;
  }
  const shown = [...groups.values()].sort((a, b) => b.count - a.count).slice(0, 15);
  if (!shown.length) return [];
  return ['', '**Requests that failed outside every fault window**, by where and why (long numbers as N; the 15 largest groups):', '',
    ...shown.map((g) => `- ${g.count} × ${g.where}, ${g.model} (first at +${seconds(g.first - run.started)} s): ${g.said}`)];
}

function timeline(run) {
  return run.windows.map((w) => `- +${seconds(w.start - run.started)} s ${w.kind} #${w.round + 1}` +
    `${w.injected ? '' : ' (not injected)'}: ${w.detail}; undone in ${seconds(w.actionEnd - w.start)} s; ${w.failed} failed during` +
    `${w.failedAfter ? `, ${w.failedAfter} after` : ''}${w.deaths ? `; ${w.deaths} workers died unasked` : ''}; workers' RSS then ${w.rssMiB} MiB`);
}

export function renderReport(run, checks, settings) {
  const failedChecks = checks.filter((c) => !c.ok).length;
  const counts = (phase) => { const c = run.ledger.counts[phase] || { sent: 0, failed: 0 }; return `${c.sent} (${c.failed} failed)`; };
  const lines = [
    `# Fault run (\`make chaos\`): ${failedChecks ? `${failedChecks} checks FAILED` : 'every check passed'}`,
    '',
    `${run.date}, commit ${run.commit}, ${run.machine}. ${seconds(run.faultsMs)} s of faults (CHAOS_SECONDS=${settings.seconds}), ` +
    `seed ${settings.seed}; the proxy \`${run.proxyBin}\` with 4 workers and a routing file, behind lighttpd, ` +
    'Redis on loopback; 6 client loops (chat, streamed chat, embeddings, with 3 keys).',
    '',
    `Requests: warm-up ${counts('warm-up')}, during the faults ${counts('faults')}, final phase ${counts('final')}.`,
    '',
    `A fault's window runs from its injection until it is undone (the worker replaced, the reload taken, Redis back, ` +
    `the routing file restored) plus ${seconds(settings.graceMs)} s. A failed request counts for every window it ` +
    'overlapped; one that overlapped none counts as "failed after" the last fault before it.',
    '',
    ...faultTable(run, settings),
    '',
    ...settings.kinds.map((kind) => `- **${kind}**: ${FAULT_TEXT[kind]}`),
    '',
    '## Checks',
    '',
    ...checkTable(checks),
    '',
    '## Readings',
    '',
    ...readingTable(run),
    ...failureGroups(run),
    '',
    `<details><summary>Every fault (${run.windows.length})</summary>`,
    '',
    ...timeline(run),
    '',
    '</details>',
    '',
  ];
  return lines.join('\n');
}

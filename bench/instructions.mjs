// The instructions a small request costs, counted by callgrind (bench/callgrind-small.mjs):
// the proxy, the libcurl floor and the FastCGI floor, one after another in the same run.
// CPU times on a shared machine move by a third from run to run; these counts hardly move,
// so the small-request target is read by them when the CPU tables of two runs disagree.
import path from 'node:path';

import { ROOT } from '../tests/integration/harness.mjs';

export const INSTRUCTIONS_TARGET = 1.2;  // the proxy against both floors together
const COUNTED = [
  ['proxy', [], 'the proxy behind lighttpd'],
  ['curlFloor', ['--floor'], 'the libcurl floor (per transfer)'],
  ['fastcgiFloor', ['--fcgi-floor'], 'the FastCGI floor behind lighttpd'],
];

// Each counted in its own run of callgrind-small.mjs; a run that fails leaves its count
// null and its error's last line.
export async function instructionsPhase({ smoke, run, node, log }) {
  const sizes = smoke ? ['--requests', '200', '--warmup', '50', '--floor-seconds', '1,2'] : [];
  const counts = { errors: {} };
  for (const [key, flags] of COUNTED) {
    log(`instructions per small request (callgrind): ${key}`);
    const result = await run(node, [path.join(ROOT, 'bench/callgrind-small.mjs'), ...flags, ...sizes]);
    const figure = result.stdout.trim().split('\n').pop();
    try {
      counts[key] = JSON.parse(figure).perRequest;
    } catch {
      counts[key] = null;
      counts.errors[key] = (result.stderr.trim().split('\n').pop() || `exit ${result.status}`).slice(0, 200);
    }
  }
  return counts;
}

export function instructionsTable(counts, f) {
  if (!counts) return [];
  const k = (n) => (n ? `${f(n / 1000, 1)}k` : '–');
  const both = counts.curlFloor && counts.fastcgiFloor ? counts.curlFloor + counts.fastcgiFloor : null;
  const ratio = (over) => (counts.proxy && over ? counts.proxy / over : null);
  const overBoth = ratio(both);
  return ['', `**Instructions per small request** (callgrind, user space, every thread; ${COUNTED.map(([, , name]) => name).join(', ')}; 8 kept connections, bench/callgrind-small.mjs: a count that hardly moves with the machine's load, where the CPU times above move by a third from run to run; the target: the proxy ≤ ${INSTRUCTIONS_TARGET}× both floors together):`, '',
    '| the proxy | libcurl floor | FastCGI floor | both floors | proxy / both floors | proxy / libcurl floor |',
    '|---|---|---|---|---|---|',
    `| ${k(counts.proxy)} | ${k(counts.curlFloor)} | ${k(counts.fastcgiFloor)} | ${k(both)} | ${f(overBoth, 2)}${overBoth > INSTRUCTIONS_TARGET ? ' (over)' : ''} | ${f(ratio(counts.curlFloor), 2)} |`];
}

export function instructionsFailures(counts) {
  if (!counts) return [];
  return COUNTED.filter(([key]) => !counts[key]).map(([key]) => `instructions of ${key}: ${counts.errors[key] || 'no count'}`);
}

// The small-request targets of issue 22 that read one row of the small table against
// another, each ratio taken in the same run (the CPU columns of the small table):
// - the whole path behind lighttpd against the floor row's whole path (≤ 1.8);
// - the proxy process's own share against nginx's whole path as a plain reverse proxy (≤ 1.5;
//   where libcurl is the floor, the floors tables below read the share against it instead);
// - the proxy's own share over a TLS upstream with kept connections against plain HTTP (≤ 1.2).
// The targets against the libcurl floor and against both floors have their own tables.
import { bothFloors } from './floors.mjs';

const READINGS = [
  { label: 'whole path behind lighttpd / the floor row\'s whole path', target: 1.8,
    over: ['proxy-behind-lighttpd', 'whole'], under: ['floor-behind-lighttpd', 'whole'] },
  { label: 'the proxy\'s share / nginx\'s whole path (or, libcurl being the floor, the floors\' tables below)', target: 1.5,
    over: ['proxy-behind-lighttpd', 'proxy'], under: ['nginx-reverse-proxy', 'whole'] },
  { label: 'the proxy\'s share, TLS upstream (HTTP/1.1, kept connections) / plain HTTP', target: 1.2,
    over: ['proxy-behind-lighttpd-tls', 'proxy'], under: ['proxy-behind-lighttpd', 'proxy'] },
];

function cpuOf(small, [row, part], connections) {
  const r = small[row]?.rows?.[connections];
  if (!r) return null;
  return part === 'whole' ? r.cpuUsPerRequest : r.cpuUs?.[part] ?? null;
}

export function smallTargetsTable(results, connections, f) {
  const small = results.small;
  const rows = READINGS.map((reading) => {
    const cells = connections.map((c) => {
      const over = cpuOf(small, reading.over, c), under = cpuOf(small, reading.under, c);
      if (!over || !under) return '–';
      const ratio = over / under;
      return `${f(over, 1)} / ${f(under, 1)} = ${f(ratio, 2)}${ratio > reading.target ? ' (over)' : ''}`;
    });
    return cells.every((cell) => cell === '–') ? null : `| ${reading.label} | ≤ ${reading.target} | ${cells.join(' | ')} |`;
  }).filter(Boolean);
  if (!rows.length) return [];
  return ['', '**The small-request targets read in this run** (CPU µs per request from the table above; a noisy machine moves each by a third from run to run, so read them beside the instructions table):', '',
    `| ratio | target | ${connections.map((c) => `${c} conns`).join(' | ')} |`,
    `|---|---|${connections.map(() => '---').join('|')}|`, ...rows, ...tlsBelowFloors(results, connections, f)];
}

// Over TLS the libcurl floor alone spends more per transfer than the proxy's whole share over
// plain HTTP: where 1.2x that share lies below both floors together over TLS, no FastCGI
// program relaying through libcurl reaches the TLS target, and the table says so.
function tlsBelowFloors(results, connections, f) {
  const cells = connections.map((c) => {
    const floor = results.curlFloor?.['curl-floor-tls'];
    const both = floor && bothFloors(results, floor, c);
    const plain = cpuOf(results.small, ['proxy-behind-lighttpd', 'proxy'], c);
    return both && plain ? { target: plain * 1.2, sum: both.sum } : null;
  }).filter(Boolean);
  if (!cells.length || cells.some((cell) => cell.target >= cell.sum)) return [];
  const range = (values) => `${f(Math.min(...values), 1)}–${f(Math.max(...values), 1)}`;
  return ['', `The TLS target lies below what any FastCGI program relaying through libcurl spends over TLS: 1.2× the proxy's share over plain HTTP is ${range(cells.map((c) => c.target))} µs, below both floors together over TLS (${range(cells.map((c) => c.sum))} µs; the floors' tables below).`];
}

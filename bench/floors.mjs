// Two yardsticks for `make bench` (bench/README.md), apart from bench/run.mjs:
// - the libcurl floor (bench/curl_floor.c): a minimal libcurl multi program making the
//   proxy's small upstream transfers, whose CPU per transfer the proxy process's own CPU per
//   request is read against (issue 22: the proxy's share ≤ 1.2× this floor);
// - the Go program this project descends from (diemus/azure-openai-proxy), run when
//   BENCH_GO_PROXY names a binary of it built by the operator (never shipped here).
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, canConnect, freePort, startChild, tempDir, waitFor } from '../tests/integration/harness.mjs';

export const CURL_FLOOR = path.join(ROOT, 'build/bench-curl-floor');
// What wrk's chat.lua sends with BENCH_MODEL=gpt-4o: the proxy passes it on as it is.
const CHAT_BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":32}';
// The ratio the issue sets: the proxy process's CPU per request over the floor's per transfer.
export const FLOOR_TARGET_RATIO = 1.2;

// Each floor makes the transfers of one proxy row, to the same upstream the same way.
export const CURL_FLOORS = {
  'curl-floor': { proxyRow: 'proxy-behind-lighttpd', name: 'plain HTTP upstream', tls: false, http: '1.1' },
  'curl-floor-tls': { proxyRow: 'proxy-behind-lighttpd-tls', name: 'TLS upstream, HTTP/1.1', tls: true, http: '1.1' },
  'curl-floor-tls-h2': { proxyRow: 'proxy-behind-lighttpd-tls-h2', name: 'TLS upstream, HTTP/2', tls: true, http: '2' },
};

async function floorRun(args, rate, run) {
  const result = await run(CURL_FLOOR, args, { BENCH_BODY: CHAT_BODY, BENCH_RATE: String(rate || 0) });
  let out;
  try { out = JSON.parse(result.stdout.trim().split('\n').pop()); } catch {
    out = { transfers: 0, errors: 1, seconds: null, cpuUs: null, firstError: result.stderr.slice(0, 200) || `exit ${result.status}` };
  }
  return {
    ...out, status: result.status, rate: rate || null,
    perSecond: out.seconds ? out.transfers / out.seconds : null,
    cpuUsPerTransfer: out.transfers && out.cpuUs !== null ? out.cpuUs / out.transfers : null,
  };
}

// One floor at each connection count: as many transfers in flight as wrk has connections,
// after the same warm-up and for as long as wrk runs; `rows` as fast as it goes, `paced` at
// the proxy row's own requests/s in this run (`small` holds it).
export async function curlFloor(key, upstream, url, settings, small, run) {
  if (!fs.existsSync(CURL_FLOOR)) throw new Error(`${CURL_FLOOR} is missing: make ${path.relative(ROOT, CURL_FLOOR)} (make bench builds it)`);
  const floor = CURL_FLOORS[key];
  const rows = {}, paced = {};
  for (const connections of settings.connections) {
    const args = [url(floor.tls ? upstream.tlsUrl : upstream.url), String(connections), String(settings.warmupS),
      String(settings.wrkS), floor.http, ...(floor.tls ? [upstream.ca] : [])];
    rows[connections] = await floorRun(args, 0, run);
    const proxyRate = small[floor.proxyRow]?.rows?.[connections]?.rps;
    if (proxyRate) paced[connections] = await floorRun(args, proxyRate, run);
  }
  return { name: floor.name, proxyRow: floor.proxyRow, http: floor.http, rows, paced };
}

// The proxy process's CPU per request over the floor's per transfer, at each connection count.
export function floorRatios(results) {
  const ratios = {};
  for (const [key, floor] of Object.entries(results.curlFloor || {})) {
    const proxy = results.small[floor.proxyRow]?.rows || {};
    const over = (rows) => Object.fromEntries(Object.entries(rows).map(([c, row]) => {
      const share = proxy[c]?.cpuUs?.proxy;
      return [c, share && row.cpuUsPerTransfer ? share / row.cpuUsPerTransfer : null];
    }));
    ratios[key] = { asFast: over(floor.rows), atProxyRate: over(floor.paced || {}), bothFloors: overBothFloors(results, floor) };
  }
  return ratios;
}

// What any FastCGI program behind lighttpd relaying through libcurl pays at the least: the
// floor row's program share (accept, read the request, answer, close) plus the libcurl
// floor's transfer at the proxy's req/s. The floor program runs faster than the proxy, so
// its share is if anything low: the ratio errs against the proxy.
export const FASTCGI_FLOOR_ROW = 'floor-behind-lighttpd';
export function bothFloors(results, floor, connections) {
  const fastcgi = results.small[FASTCGI_FLOOR_ROW]?.rows?.[connections]?.cpuUs?.proxy;
  const curl = floor.paced?.[connections]?.cpuUsPerTransfer;
  const proxy = results.small[floor.proxyRow]?.rows?.[connections]?.cpuUs?.proxy;
  if (!fastcgi || !curl || !proxy) return null;
  return { fastcgi, curl, sum: fastcgi + curl, proxy, ratio: proxy / (fastcgi + curl) };
}
function overBothFloors(results, floor) {
  return Object.fromEntries(Object.keys(floor.paced || {}).map((c) => [c, bothFloors(results, floor, c)?.ratio ?? null]));
}

export function floorTable(results, connections, f) {
  const floors = Object.entries(results.curlFloor || {});
  if (!floors.length) return [];
  const lines = ['', `**CPU per small request: the proxy process's own share against the libcurl floor** (bench/curl_floor.c: a libcurl multi program, epoll + curl_multi_socket_action, making the same POSTs to the same upstream, as many in flight as wrk's connections, in the same run; CPU µs per transfer from its getrusage; the proxy's µs per request from /proc as above; the issue's target: ratio ≤ ${FLOOR_TARGET_RATIO}):`, ''];
  lines.push(`| upstream | floor | ${connections.map((c) => `${c} in flight: floor µs (transfers/s) · proxy µs · ratio`).join(' | ')} |`);
  lines.push(`|---|---|${connections.map(() => '---').join('|')}|`);
  const ratioCell = (ratio) => `${f(ratio, 2)}${ratio && ratio > FLOOR_TARGET_RATIO ? ' (over)' : ''}`;
  for (const [key, floor] of floors) {
    for (const [pace, rows] of [['asFast', floor.rows], ['atProxyRate', floor.paced || {}]]) {
      const cells = connections.map((c) => {
        const row = rows[c];
        if (!row) return '–';
        const proxy = results.small[floor.proxyRow]?.rows?.[c]?.cpuUs?.proxy;
        const errors = row.errors ? ` · ${row.errors} errors (${row.firstError})` : '';
        return `${f(row.cpuUsPerTransfer, 1)} (${f(row.perSecond)}) · ${f(proxy, 1)} · ${ratioCell(results.floorRatios?.[key]?.[pace]?.[c])}${errors}`;
      });
      lines.push(`| ${floor.name} | ${pace === 'asFast' ? 'as fast as it goes' : "at the proxy's req/s"} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('', "Read the ratio at the proxy's req/s first: a program making more transfers a second finds more of them ready at each wakeup, and spends less on each.");
  return [...lines, ...bothFloorsTable(results, connections, f, ratioCell)];
}

// The libcurl floor makes no FastCGI exchange; the proxy must. Read its share against
// what a program doing both at the least would spend.
function bothFloorsTable(results, connections, f, ratioCell) {
  const floors = Object.entries(results.curlFloor || {});
  if (!results.small[FASTCGI_FLOOR_ROW]) return [];
  const lines = ['', `**The proxy's share against both floors together** (what a FastCGI program behind lighttpd that relays through libcurl spends at the least: the floor row's program share, its accept, read, answer and close, plus the libcurl floor's transfer at the proxy's req/s; CPU µs per request):`, ''];
  lines.push(`| upstream | ${connections.map((c) => `${c} conns: FastCGI floor + libcurl floor = both · proxy · ratio`).join(' | ')} |`);
  lines.push(`|---|${connections.map(() => '---').join('|')}|`);
  for (const [, floor] of floors) {
    const cells = connections.map((c) => {
      const both = bothFloors(results, floor, c);
      return both ? `${f(both.fastcgi, 1)} + ${f(both.curl, 1)} = ${f(both.sum, 1)} · ${f(both.proxy, 1)} · ${ratioCell(both.ratio)}` : '–';
    });
    lines.push(`| ${floor.name} | ${cells.join(' | ')} |`);
  }
  return [...lines, ...belowBothFloors(results, floors, connections, f)];
}

// Where the target against the libcurl floor alone lies below both floors together, the
// table says so: no FastCGI program relaying through libcurl reaches it.
function belowBothFloors(results, floors, connections, f) {
  const said = [];
  for (const [, floor] of floors) {
    const cells = connections.map((c) => bothFloors(results, floor, c)).filter(Boolean);
    const below = cells.filter((both) => both.curl * FLOOR_TARGET_RATIO < both.sum);
    if (!cells.length || below.length !== cells.length) continue;
    const range = (values) => `${f(Math.min(...values), 1)}–${f(Math.max(...values), 1)}`;
    said.push(`${floor.name}: ${FLOOR_TARGET_RATIO}× the libcurl floor alone is ${range(cells.map((b) => b.curl * FLOOR_TARGET_RATIO))} µs, below both floors together (${range(cells.map((b) => b.sum))} µs)`);
  }
  return said.length ? ['', `The target against the libcurl floor alone lies below what any FastCGI program relaying through libcurl spends: ${said.join('; ')}.`] : [];
}

// ---- the floor of the concurrent streams ---------------------------------------------------

// The proxy's upstream transfers of the streams phase made by bench-curl-floor alone: the
// same count opened at the streams client's pace (100 every 50 ms), each read to its end.
// What it spends is what any program relaying these streams through libcurl spends on the
// upstream side; lighttpd's share of the proxy's row is the other side's. Read the proxy's
// share against the first, and the whole path against both (issue 22).
export const STREAM_FLOORS = {
  'curl-floor-streams': { proxyRow: 'proxy-behind-lighttpd', nginxRow: 'nginx-reverse-proxy', name: 'the libcurl floor: the streams\' upstream transfers alone, plain HTTP', tls: false },
  'curl-floor-streams-tls': { proxyRow: 'proxy-behind-lighttpd-tls', nginxRow: 'nginx-reverse-proxy-tls', name: 'the libcurl floor: the streams\' upstream transfers alone, TLS (HTTP/1.1)', tls: true },
};
const OPEN_RATE = 2000;  // streams a second, as bench/streams.mjs opens them

export async function streamFloor(key, upstream, url, count, streamS, run) {
  if (!fs.existsSync(CURL_FLOOR)) throw new Error(`${CURL_FLOOR} is missing: make ${path.relative(ROOT, CURL_FLOOR)} (make bench builds it)`);
  const floor = STREAM_FLOORS[key];
  const body = '{"model":"bench-stream","stream":true,"messages":[{"role":"user","content":"Tell me a story."}]}';
  const args = ['--streams', url(floor.tls ? upstream.tlsStreamUrl : upstream.url), String(count), String(streamS + 60),
    '1.1', ...(floor.tls ? [upstream.ca] : [])];
  const result = await run(CURL_FLOOR, args, { BENCH_BODY: body, BENCH_RATE: String(OPEN_RATE) });
  let out;
  try { out = JSON.parse(result.stdout.trim().split('\n').pop()); } catch {
    return { streams: count, completed: 0, errors: { [result.stderr.slice(0, 200) || `exit ${result.status}`]: count } };
  }
  const cpuSeconds = out.cpuUs / 1e6;
  return {
    streams: count, completed: out.completed, errors: out.errors ? { [out.firstError]: out.errors } : {},
    events: upstream.events, idleRssKiB: out.idleRssKiB, kibPerStream: (out.peakRssKiB - out.idleRssKiB) / count,
    cpuSeconds, cpu: { web: 0, proxy: cpuSeconds }, firstByteMs: null,
  };
}

// Each proxy row's streams against the floors at the same count: the proxy's share over
// the libcurl floor, and the whole path over both floors (lighttpd's share + libcurl's).
export function streamFloorTable(results, f) {
  const lines = [];
  for (const [key, floor] of Object.entries(STREAM_FLOORS)) {
    for (const r of results.streams[key] || []) {
      const proxy = (results.streams[floor.proxyRow] || []).find((p) => p.streams === r.streams && !p.promptBytes);
      if (!proxy || !r.cpuSeconds) continue;
      const wholeFloor = proxy.cpu.web + r.cpuSeconds;
      const nginx = (results.streams[floor.nginxRow] || []).find((n) => n.streams === r.streams);
      const perEvent = (row, seconds) => (row?.completed && row.events ? (seconds * 1e6) / (row.completed * row.events) : null);
      lines.push(`| ${results.names[floor.proxyRow]} | ${r.streams} | ${f(proxy.cpu.proxy, 2)} / ${f(r.cpuSeconds, 2)} = ${f(proxy.cpu.proxy / r.cpuSeconds, 2)} | ` +
        `${f(proxy.cpuSeconds, 2)} / ${f(wholeFloor, 2)} = ${f(proxy.cpuSeconds / wholeFloor, 2)} | ` +
        `${f(perEvent(proxy, proxy.cpu.proxy), 1)} / ${f(perEvent(r, r.cpuSeconds), 1)} / ${f(perEvent(nginx, nginx?.cpuSeconds), 1)} | ` +
        `${f(proxy.kib.proxy, 1)} / ${f(r.kibPerStream, 1)} | ${f(proxy.kibPerStream, 1)} / ${f(proxy.kib.web + r.kibPerStream, 1)} |`);
    }
  }
  if (!lines.length) return [];
  return ['', '**Streams against their floors** (CPU seconds and KiB per stream; the proxy\'s share against the libcurl floor making the same upstream transfers alone; the whole path against both floors: lighttpd\'s share in the proxy\'s row plus the libcurl floor):', '',
    '| path | streams | CPU s: proxy / libcurl floor = ratio | CPU s: whole path / both floors = ratio | CPU µs per event: proxy / libcurl floor / nginx\'s whole path | KiB per stream: proxy / libcurl floor | KiB per stream: whole path / both floors |',
    '|---|---|---|---|---|---|---|', ...lines];
}

// ---- the Go program this project descends from --------------------------------------------

export const GO_PROXY = process.env.BENCH_GO_PROXY || '';
export const GO_PROXY_NAME = 'the Go program this project descends from (diemus/azure-openai-proxy)';
export const GO_PROXY_NOT_RUN = 'not run (set BENCH_GO_PROXY; see bench/README.md)';

// It listens on AZURE_OPENAI_PROXY_ADDRESS and is the web server itself: its one process is
// the whole path's cost. Over TLS it trusts the run's certificate through SSL_CERT_FILE
// (Go's crypto/x509 reads it on Linux) and speaks HTTP/2 (Go's default transport offers it).
// It logs two lines per request: to a file, as an operator would keep them.
export async function goProxy(upstream, tls) {
  const dir = tempDir('bench-go-proxy');
  const port = await freePort();
  const env = {
    PATH: process.env.PATH, AZURE_OPENAI_PROXY_ADDRESS: `127.0.0.1:${port}`, AZURE_OPENAI_PROXY_MODE: 'azure',
    AZURE_OPENAI_ENDPOINT: tls ? upstream.tlsUrl : upstream.url, AZURE_OPENAI_APIVERSION: '2024-10-21',
    ...(tls ? { SSL_CERT_FILE: upstream.ca } : {}),
  };
  const log = path.join(dir, 'go-proxy.log');
  // exec: the shell becomes the program, so the PID measured is the Go program's.
  const child = startChild('sh', ['-c', 'exec "$0" >"$1" 2>&1', GO_PROXY, log], { env });
  await waitFor(async () => child.exited || canConnect({ host: '127.0.0.1', port }), 'the Go proxy', 15000);
  if (child.exited) throw new Error(`the Go proxy exited at start: ${fs.readFileSync(log, 'utf8').slice(-500)}`);
  const base = `http://127.0.0.1:${port}`;
  return {
    name: `${GO_PROXY_NAME}${tls ? ', TLS upstream (HTTP/2, Go\'s default)' : ''}`,
    url: () => `${base}/v1/chat/completions`, uploadUrl: null,  // it has no transcription route
    web: () => [], proxy: () => [child.pid], stop: () => child.stop(),
  };
}

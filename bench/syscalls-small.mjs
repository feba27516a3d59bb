// System calls per small request, by name, of the proxy and of its two floors side by
// side: the kernel's share of the proxy's CPU, which callgrind does not see. The same load
// as bench/callgrind-small.mjs (8 kept connections behind lighttpd, the stand-in upstream),
// with the release proxy running free: after the warm-up `strace -f -c` attaches to all its
// threads for N requests; then `perf stat -e task-clock` does the same for another N (CPU
// in user and kernel mode, per request; noisy on a shared machine, unlike the counts).
// The FastCGI floor (build/bench-floor under spawn-fcgi) is measured the same way; the
// libcurl floor (build/bench-curl-floor) runs by time, so it runs under strace for 3 s and
// for 9 s and the difference of its calls over the difference of its transfers is the
// figure; its CPU per transfer is its own getrusage over a run without strace.
//
// Usage: node bench/syscalls-small.mjs [--requests 2000] [--warmup 200] [--connections 8] [--proxy-only]
//   BENCH_PROXY: the program (default build/azure-openai-proxy, the release build)
//   --connections: requests in flight. With 8, how calls are shared among requests (one
//     epoll_wait for several, an answer there before libcurl looks) changes from run to run
//     by a tenth or more; with 1, each request goes the same way, and a change shows.
//   --proxy-only: the proxy's column only (the floors do not change with the proxy)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, canConnect, startChild, startLighttpd, tempDir, waitFor } from '../tests/integration/harness.mjs';
import {
  BODY, CONNECTIONS, PROXY, REQUESTS, UPSTREAM_PATH, WARMUP, argv, load, onPath, option, standInAnswer, startStandIn,
} from './small-requests.mjs';
const IN_FLIGHT = Number(option('--connections', String(CONNECTIONS)));

// `strace -c`'s table: calls and errors by system call name.
function parseStraceSummary(file) {
  const counts = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 5 || !/^\d+$/.test(cells[3]) || cells.at(-1) === 'total') continue;
    counts[cells.at(-1)] = { calls: Number(cells[3]), errors: cells.length >= 6 ? Number(cells[4]) : 0 };
  }
  return counts;
}

// CPU time of every thread of `pid` so far, in user and in kernel mode (µs).
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
function cpuTimes(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) * TICK_US, kernel: Number(fields[12]) * TICK_US };
}

// `tool` (strace or perf) attached to every thread of `pid` while `work` runs; resolves
// once the tool has written its summary.
async function attached(command, args, ready, work) {
  const tool = startChild(command, args);
  await waitFor(() => tool.exited || ready(tool.output), `${command} attached`, 20000);
  if (tool.exited) throw new Error(`${command} could not attach: ${tool.output}`);
  try {
    await work();
  } finally {
    await tool.stop('SIGINT', 20000);
  }
}

// The system calls and the CPU of the process `pid` (all its threads) per request over
// `REQUESTS` requests to `url`.
async function measureServing(pid, url, dir, name) {
  await load(url, WARMUP, IN_FLIGHT);
  const straced = path.join(dir, `${name}.strace`);
  await attached('strace', ['-f', '-c', '-o', straced, '-p', String(pid)], (out) => out.includes('attached'),
    () => load(url, REQUESTS, IN_FLIGHT));
  const perfOut = path.join(dir, `${name}.perf`);
  // perf prints nothing when it is ready: a second's grace, then the load.
  let before, after;
  await attached('perf', ['stat', '-x', ',', '-e', 'task-clock', '-o', perfOut, '-p', String(pid)],
    () => new Promise((resolve) => setTimeout(() => resolve(true), 1000)), async () => {
      before = cpuTimes(pid);
      await load(url, REQUESTS, IN_FLIGHT);
      after = cpuTimes(pid);
    });
  const clock = fs.readFileSync(perfOut, 'utf8').split('\n').find((l) => l.includes('task-clock'));
  const cpuMs = clock ? Number(clock.split(',')[0]) : NaN;
  const calls = parseStraceSummary(straced);
  return {
    calls, perUnit: REQUESTS, cpuUs: (cpuMs * 1000) / REQUESTS,
    userUs: (after.user - before.user) / REQUESTS, kernelUs: (after.kernel - before.kernel) / REQUESTS,
  };
}

// The proxy or the FastCGI floor, listening on a unix socket behind lighttpd.
async function servingColumn(mockPort, floor) {
  const dir = tempDir(floor ? 'syscalls-fcgi-floor' : 'syscalls-proxy');
  const socket = path.join(dir, 'program.sock');
  const program = floor
    ? startChild('spawn-fcgi', ['-n', '-s', socket, '--', path.join(ROOT, 'build/bench-floor')], {
      env: { PATH: process.env.PATH, BENCH_FLOOR_BODY: await standInAnswer(mockPort) },
    })
    : startChild(PROXY, ['--listen', socket], {
      env: { PATH: process.env.PATH, AZURE_OPENAI_ENDPOINT: `http://127.0.0.1:${mockPort}`, AZURE_OPENAI_PROXY_THREADS: '2' },
    });
  try {
    await waitFor(async () => program.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'the program', 20000);
    if (program.exited) throw new Error(`the program exited at start: ${program.output}`);
    const web = await startLighttpd({ socket });
    try {
      return await measureServing(program.pid, `${web.url}/v1/chat/completions`, dir, floor ? 'fcgi-floor' : 'proxy');
    } finally {
      await web.stop();
    }
  } finally {
    await program.stop('SIGTERM', 20000);
  }
}

// bench-curl-floor for `seconds`, under strace or not: its summary line and the counts.
async function curlFloorRun(dir, url, seconds, traced) {
  const out = path.join(dir, `curl-floor.${seconds}.strace`);
  const floorArgs = [path.join(ROOT, 'build/bench-curl-floor'), url, String(IN_FLIGHT), '0.01', String(seconds)];
  const [command, ...args] = traced ? ['strace', '-f', '-c', '-o', out, ...floorArgs] : floorArgs;
  const floor = startChild(command, args, { env: { PATH: process.env.PATH, BENCH_BODY: BODY } });
  const ended = await floor.exitPromise;
  const line = floor.output.split('\n').find((l) => l.startsWith('{"transfers"'));
  if (ended.code !== 0 || !line) throw new Error(`bench-curl-floor failed: ${floor.output}`);
  const result = JSON.parse(line);
  if (result.errors) throw new Error(`bench-curl-floor: ${result.errors} failed transfers (${result.firstError})`);
  return { result, calls: traced ? parseStraceSummary(out) : {} };
}

// The libcurl floor's calls per transfer: the difference of a 9 s and a 3 s run.
async function curlFloorColumn(mockPort) {
  const dir = tempDir('syscalls-curl-floor');
  const url = `http://127.0.0.1:${mockPort}${UPSTREAM_PATH}`;
  const short = await curlFloorRun(dir, url, 3, true);
  const long = await curlFloorRun(dir, url, 9, true);
  const calls = {};
  for (const name of new Set([...Object.keys(short.calls), ...Object.keys(long.calls)])) {
    const of = (run, field) => run.calls[name]?.[field] || 0;
    calls[name] = { calls: of(long, 'calls') - of(short, 'calls'), errors: of(long, 'errors') - of(short, 'errors') };
  }
  const plain = (await curlFloorRun(dir, url, 3, false)).result;
  return { calls, perUnit: long.result.transfers - short.result.transfers, cpuUs: plain.cpuUs / plain.transfers };
}

const per = (column, name, field = 'calls') => (column?.calls[name]?.[field] || 0) / column?.perUnit;
const fixed = (n) => (Number.isFinite(n) ? n.toFixed(2) : '-');

function printTable(proxy, curlFloor, fcgiFloor) {
  const names = new Set([proxy, curlFloor, fcgiFloor].flatMap((c) => (c ? Object.keys(c.calls) : [])));
  const rows = [...names].map((name) => {
    const floors = curlFloor && fcgiFloor ? per(curlFloor, name) + per(fcgiFloor, name) : NaN;
    return { name, proxy: per(proxy, name), errors: per(proxy, name, 'errors'), curl: per(curlFloor, name), fcgi: per(fcgiFloor, name), floors };
  }).filter((r) => r.proxy >= 0.005 || r.curl >= 0.005 || r.fcgi >= 0.005).sort((a, b) => b.proxy - a.proxy);
  const sum = (key) => rows.reduce((total, r) => total + r[key], 0);
  rows.push({ name: 'total', proxy: sum('proxy'), errors: sum('errors'), curl: sum('curl'), fcgi: sum('fcgi'), floors: sum('floors') });
  console.log('| system call | proxy / request (failed) | libcurl floor / transfer | FastCGI floor / request | floors together | proxy over floors |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${fixed(r.proxy)}${r.errors ? ` (${fixed(r.errors)})` : ''} | ${fixed(r.curl)} | ${fixed(r.fcgi)} | ${fixed(r.floors)} | ${fixed(r.proxy - r.floors)} |`);
  }
  const cpu = (column) => (column ? `${column.cpuUs.toFixed(1)} µs` +
    (column.kernelUs === undefined ? '' : ` (user ${column.userUs.toFixed(0)}, kernel ${column.kernelUs.toFixed(0)})`) : '-');
  console.log(`\nCPU (user + kernel) per request: proxy ${cpu(proxy)}, libcurl floor ${cpu(curlFloor)} per transfer, ` +
    `FastCGI floor ${cpu(fcgiFloor)}\n(perf stat task-clock; user and kernel from /proc/PID/stat, in ticks; getrusage for the libcurl floor)`);
}

async function main() {
  const mock = await startStandIn();
  try {
    const proxy = await servingColumn(mock.port, false);
    const onlyProxy = argv.includes('--proxy-only');
    if (!onlyProxy) onPath('spawn-fcgi');
    const fcgiFloor = onlyProxy ? null : await servingColumn(mock.port, true);
    const curlFloor = onlyProxy ? null : await curlFloorColumn(mock.port);
    console.log(`${REQUESTS} small requests, ${IN_FLIGHT} connections, system calls per request:\n`);
    printTable(proxy, curlFloor, fcgiFloor);
  } finally {
    await mock.stop();
  }
}

main().catch((error) => { console.error(error.message); process.exitCode = 1; });

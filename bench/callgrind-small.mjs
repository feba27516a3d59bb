// The proxy's own instructions per small request, counted by callgrind: repeatable on a
// shared, noisy machine where CPU times are not. The release proxy runs under
// `valgrind --tool=callgrind` behind lighttpd (the harness's configuration) in front of
// the local stand-in upstream (tests/upstream/azure-mock.mjs); 8 connections send small
// chat completions (the body and headers of bench/chat.lua); after a warm-up the counters
// are zeroed, N requests run, and the proxy's instructions (all its threads) are dumped
// and divided by N. See bench/README.md ("Instructions per small request").
//
// Usage: node bench/callgrind-small.mjs [--requests 2000] [--warmup 200] [--keep] [--floor]
//        [--floor-seconds 3,9]
//   BENCH_PROXY: the program (default build/azure-openai-proxy, the release build)
//   --keep: leave the callgrind dump and print where (for callgrind_annotate --inclusive=yes);
//     with --floor, both of the floor's dumps (3 s and 9 s: compare them per transfer)
//   --floor: the libcurl floor instead (build/bench-curl-floor: the same POST to the same
//     stand-in, as many in flight as the connections here): it runs by time, not by count,
//     so it runs twice, 3 s and 9 s, and the difference of its instructions over the
//     difference of its transfers is the figure (start-up and teardown cancel out);
//     --floor-seconds changes the two lengths.
// The last line printed is the figure as JSON ({"counted": ..., "perRequest": ...}), for
// make bench (bench/instructions.mjs).
//   --fcgi-floor: the FastCGI floor instead (build/bench-floor, libfcgi's loop answering
//     every request itself with the stand-in's answer, started by spawn-fcgi on a unix
//     socket), behind the same lighttpd, counted as the proxy is: the FastCGI work the
//     libcurl floor does not do. The two floors together are the least the proxy can cost.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, canConnect, startChild, startLighttpd, tempDir, waitFor } from '../tests/integration/harness.mjs';
import {
  BODY, CONNECTIONS, PROXY, REQUESTS, UPSTREAM_PATH, WARMUP, argv, load, onPath, option, standInAnswer, startStandIn,
} from './small-requests.mjs';

const FLOOR_SECONDS = option('--floor-seconds', '3,9').split(',').map(Number);
const printFigure = (counted, perRequest) => console.log(JSON.stringify({ counted, perRequest }));

function callgrindControl(args) {
  return new Promise((resolve, reject) => {
    execFile('callgrind_control', args, (error, stdout, stderr) => (error ? reject(new Error(`callgrind_control ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

// Copies a dump where it outlives the run and says where.
function keepDump(dump, name) {
  const kept = path.join(tempDir('callgrind-kept'), name);
  fs.copyFileSync(dump, kept);
  process.env.AOP_KEEP_TEST_DIRS = '1';
  console.log(`dump: ${kept} (callgrind_annotate --inclusive=yes ${kept})`);
}

// The summary of a callgrind dump: total instructions (Ir) of every thread.
function totalInstructions(file) {
  const text = fs.readFileSync(file, 'utf8');
  const line = text.match(/^(?:summary|totals):\s+(\d+)/m);
  if (!line) throw new Error(`no totals in ${file}`);
  return Number(line[1]);
}

// bench-curl-floor under callgrind for `seconds`: its instructions and its transfers.
async function floorRun(dir, url, seconds) {
  const out = path.join(dir, `floor.${seconds}`);
  const floor = startChild('valgrind', ['--tool=callgrind', '--dump-instr=no', `--callgrind-out-file=${out}`,
    path.join(ROOT, 'build/bench-curl-floor'), url, String(CONNECTIONS), '0.01', String(seconds)], {
    env: { PATH: process.env.PATH, BENCH_BODY: BODY },
  });
  const ended = await floor.exitPromise;
  const line = floor.output.split('\n').find((l) => l.startsWith('{"transfers"'));
  if (ended.code !== 0 || !line) throw new Error(`bench-curl-floor failed: ${floor.output}`);
  const result = JSON.parse(line);
  if (result.errors) throw new Error(`bench-curl-floor: ${result.errors} failed transfers (${result.firstError})`);
  if (argv.includes('--keep')) keepDump(out, `floor.${seconds}.${result.transfers}-transfers`);
  return { instructions: totalInstructions(out), transfers: result.transfers };
}

async function measureFloor(dir, mockPort) {
  const url = `http://127.0.0.1:${mockPort}${UPSTREAM_PATH}`;
  const short = await floorRun(dir, url, FLOOR_SECONDS[0]);
  const long = await floorRun(dir, url, FLOOR_SECONDS[1]);
  const transfers = long.transfers - short.transfers;
  const perTransfer = (long.instructions - short.instructions) / transfers;
  console.log(`the libcurl floor, ${CONNECTIONS} in flight: ${transfers} transfers more in the longer run, ` +
    `${(perTransfer / 1000).toFixed(1)}k instructions per transfer`);
  printFigure('curl-floor', perTransfer);
}

// The program counted, under callgrind, listening on `socket`: the proxy, or the FastCGI floor.
async function startCounted(socket, out, mockPort) {
  const callgrind = ['--tool=callgrind', '--dump-instr=no', `--callgrind-out-file=${out}.%p`];
  const counted = argv.includes('--fcgi-floor')
    ? startChild('spawn-fcgi', ['-n', '-s', socket, '--', onPath('valgrind'), ...callgrind, path.join(ROOT, 'build/bench-floor')], {
      env: { PATH: process.env.PATH, BENCH_FLOOR_BODY: await standInAnswer(mockPort) },
    })
    : startChild('valgrind', [...callgrind, PROXY, '--listen', socket], {
      env: {
        PATH: process.env.PATH, AZURE_OPENAI_ENDPOINT: `http://127.0.0.1:${mockPort}`, AZURE_OPENAI_PROXY_THREADS: '2',
      },
    });
  await waitFor(async () => counted.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'the program under valgrind', 60000);
  if (counted.exited) throw new Error(`the program exited at start: ${counted.output}`);
  return counted;
}

async function main() {
  const dir = tempDir('callgrind-small');
  const mock = await startStandIn();
  const mockPort = mock.port;
  if (argv.includes('--floor')) {
    try {
      await measureFloor(dir, mockPort);
    } finally {
      await mock.stop();
    }
    return;
  }
  const socket = path.join(dir, 'proxy.sock');
  const out = path.join(dir, 'callgrind.out');
  let proxy;
  try {
    proxy = await startCounted(socket, out, mockPort);
  } catch (error) {
    await mock.stop();
    throw error;
  }
  const web = await startLighttpd({ socket });
  try {
    const url = `${web.url}/v1/chat/completions`;
    await load(url, WARMUP);
    await callgrindControl(['--zero', String(proxy.pid)]);
    await load(url, REQUESTS);
    await callgrindControl(['--dump=measured', String(proxy.pid)]);
    const dumps = fs.readdirSync(dir).filter((f) => f.startsWith('callgrind.out.') && !f.endsWith(`.${proxy.pid}`));
    if (dumps.length !== 1) throw new Error(`expected one dump in ${dir}, found ${dumps.join(', ')}`);
    const dump = path.join(dir, dumps[0]);
    const total = totalInstructions(dump);
    const what = argv.includes('--fcgi-floor') ? 'the FastCGI floor' : 'the proxy';
    console.log(`${REQUESTS} small requests, ${CONNECTIONS} connections: ${total} instructions in ${what}, ` +
      `${(total / REQUESTS / 1000).toFixed(1)}k per request`);
    printFigure(argv.includes('--fcgi-floor') ? 'fcgi-floor' : 'proxy', total / REQUESTS);
    if (argv.includes('--keep')) keepDump(dump, 'callgrind.out.measured');
  } finally {
    await web.stop();
    await proxy.stop('SIGTERM', 30000);
    await mock.stop();
  }
}

main().catch((error) => { console.error(error.message); process.exitCode = 1; });

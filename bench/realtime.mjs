// The realtime phase of `make bench` (bench/README.md): the WebSocket companion
// (build/azure-openai-proxy-realtime, release build) in front of the realtime stand-in
// (tests/upstream/azure-realtime-socket.mjs, TLS), measured in one run:
// - sessions held: COUNT idle sessions opened at once (batches of 100) and still open
//   after the hold time;
// - memory per session: the companion's VmRSS with them open, less its VmRSS before,
//   divided by COUNT (each session: the client's WebSocket and Azure's, over TLS);
// - the delay a frame gains: a 100 ms chunk of 24 kHz PCM16 (4,800 bytes) every 100 ms,
//   as a base64 `input_audio_buffer.append` + `commit` (answered `committed`) and as a
//   4,800-byte binary message (answered with an `error` event), timed from send to answer
//   straight to the stand-in and through the companion; what the companion adds is the
//   difference of the two.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

import WebSocket from 'ws';

import { AUDIO_CHUNK_BYTES, startRealtimeSocketStandIn } from '../tests/upstream/azure-realtime-socket.mjs';
import { canConnect, freePort, sleep, startChild, waitFor } from '../tests/integration/harness.mjs';
import { makeCertificate } from '../tests/integration/upstream-http2-parts.mjs';

const AZURE_KEY = 'bench-azure-key';
const MODEL_PATH = 'realtime?model=gpt-realtime';

const vmRssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

// A session whose first event (session.created) has come, or null if it failed.
function openSession(url, options) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    const fail = () => { ws.terminate(); resolve(null); };
    ws.once('error', fail);
    ws.once('close', fail);
    ws.once('message', () => {
      ws.off('close', fail);
      resolve(ws);
    });
  });
}

async function openMany(count, url, options) {
  const sessions = [];
  for (let i = 0; i < count; i += 100)
    sessions.push(...await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => openSession(url, options))));
  return sessions.filter(Boolean);
}

// Milliseconds from each chunk's send to its answer, a chunk every 100 ms.
async function chunkDelays(ws, chunks, binary) {
  const audio = Buffer.alloc(AUDIO_CHUNK_BYTES, 3);
  const append = JSON.stringify({ type: 'input_audio_buffer.append', audio: audio.toString('base64') });
  const commit = JSON.stringify({ type: 'input_audio_buffer.commit' });
  const delays = [];
  for (let i = 0; i < chunks; i++) {
    const answered = new Promise((resolve) => ws.once('message', resolve));
    const sent = performance.now();
    if (binary) ws.send(audio, { binary: true });
    else { ws.send(append); ws.send(commit); }
    await answered;
    delays.push(performance.now() - sent);
    await sleep(Math.max(0, 100 - (performance.now() - sent)));
  }
  return percentiles(delays);
}

async function frameDelays(url, options, chunks) {
  const ws = await openSession(url, options);
  if (!ws) return null;
  const result = { base64: await chunkDelays(ws, chunks, false), binary: await chunkDelays(ws, chunks, true) };
  ws.close();
  return result;
}

// { sessions, held, rssBeforeKiB, rssHeldKiB, perSessionKiB, delay: { direct, companion } }
export async function realtimePhase({ companionBin, sessions, holdS, chunks, log }) {
  const certificate = makeCertificate();
  const standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: AZURE_KEY });
  const port = await freePort();
  const companion = startChild(companionBin, ['--listen', `127.0.0.1:${port}`], {
    env: {
      PATH: process.env.PATH, AZURE_OPENAI_ENDPOINT: standIn.url, AZURE_OPENAI_TOKEN: AZURE_KEY,
      AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile, AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS: String(sessions + 10),
    },
  });
  try {
    await waitFor(async () => companion.exited || canConnect({ host: '127.0.0.1', port }), 'the companion', 15000);
    if (companion.exited) throw new Error(`the companion exited at start: ${companion.output}`);
    const viaCompanion = `ws://127.0.0.1:${port}/v1/${MODEL_PATH}`;
    const direct = [`${standIn.url.replace('https:', 'wss:')}/openai/v1/${MODEL_PATH}`, { headers: { 'api-key': AZURE_KEY }, ca: certificate.cert }];
    log(`realtime: the delay of ${chunks} audio chunks, direct and through the companion`);
    const delay = { direct: await frameDelays(...direct, chunks), companion: await frameDelays(viaCompanion, {}, chunks) };
    await sleep(500);
    const rssBeforeKiB = vmRssKiB(companion.pid);
    log(`realtime: ${sessions} idle sessions through the companion`);
    const open = await openMany(sessions, viaCompanion, {});
    await sleep(holdS * 1000);
    const held = open.filter((ws) => ws.readyState === WebSocket.OPEN).length;
    const rssHeldKiB = vmRssKiB(companion.pid);
    for (const ws of open) ws.terminate();
    return { sessions, held, rssBeforeKiB, rssHeldKiB, perSessionKiB: (rssHeldKiB - rssBeforeKiB) / sessions, delay };
  } finally {
    const stopped = await companion.stop('SIGTERM', 10000);
    if (stopped.code !== 0) log(`realtime: the companion stopped with ${JSON.stringify(stopped)}`);
    await standIn.close();
  }
}

// The report's lines for the phase.
export function realtimeTable(r, f) {
  const d = r.delay;
  const added = (kind, p) => (d.direct && d.companion ? f(d.companion[kind][p] - d.direct[kind][p], 3) : '–');
  const row = (name, x) => `| ${name} | ${x ? `${f(x.base64.p50, 3)} / ${f(x.base64.p99, 3)}` : '–'} | ${x ? `${f(x.binary.p50, 3)} / ${f(x.binary.p99, 3)}` : '–'} |`;
  return [
    '', `**Realtime WebSocket sessions** (the companion, TLS to the stand-in): ${r.held} of ${r.sessions} idle sessions held in one process; ` +
      `memory ${f(r.perSessionKiB, 1)} KiB per session (VmRSS ${f(r.rssBeforeKiB / 1024, 1)} MiB before, ${f(r.rssHeldKiB / 1024, 1)} MiB with them open).`,
    '', 'A 100 ms chunk of 24 kHz PCM16 (4,800 bytes) every 100 ms, ms from send to the answer (p50 / p99):', '',
    '| path | base64 append + commit | binary message |', '|---|---|---|',
    row('straight to the stand-in', d.direct), row('through the companion', d.companion),
    `| added by the companion | ${added('base64', 'p50')} / ${added('base64', 'p99')} | ${added('binary', 'p50')} / ${added('binary', 'p99')} |`,
  ];
}

export function realtimeFailures(r) {
  const problems = [];
  if (r.held !== r.sessions) problems.push(`realtime: ${r.held} of ${r.sessions} sessions held`);
  if (!r.delay.direct || !r.delay.companion) problems.push('realtime: a delay session did not open');
  return problems;
}

// Clients that take the proxy's time without using it: bodies sent a byte at a time,
// answers never read, requests that never arrive whole. Each is bounded by a deadline
// (the read, idle-read and write timeouts), and while they wait everyone else is served.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { fastcgiRequest, rawHttp, sleep, startLighttpd, startProxy, waitFor } from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const KEY = 'test-key';
const AUTH = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const CHAT = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
const DEADLINES = {
  AZURE_OPENAI_PROXY_READ_TIMEOUT: '4', AZURE_OPENAI_PROXY_READ_IDLE_TIMEOUT: '2',
  AZURE_OPENAI_PROXY_WRITE_TIMEOUT: '2', AZURE_OPENAI_PROXY_THREADS: '2',
};
const CLIENTS = 50;

const threadsOf = (pid) => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const fdsOf = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const proxyPid = (host) => host.pids().find((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('azure-openai-proxy'));

// A client that sends its headers and then its body one byte a second; resolves with the
// status it was answered (0: the connection closed unanswered) and when.
function slowBody(port) {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${CHAT.length}\r\n\r\n`);
      let at = 0;
      const timer = setInterval(() => { if (at < CHAT.length && !socket.destroyed) socket.write(CHAT[at++]); }, 1000);
      socket.on('close', () => clearInterval(timer));
    });
    let answer = '';
    socket.on('data', (d) => { answer += d; });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ status: Number(answer.split(' ')[1]) || 0, ms: Date.now() - started }));
    setTimeout(() => socket.destroy(), 30000);
  });
}

// A client that asks for a 64 MiB answer and never reads it (its socket stays open).
function neverReads(port) {
  const socket = net.connect(port, '127.0.0.1', () => {
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nX-Mock-Scenario: big\r\nX-Mock-Bytes: ${64 << 20}\r\nContent-Length: ${CHAT.length}\r\n\r\n${CHAT}`);
    socket.pause();
  });
  socket.on('error', () => {});
  return socket;
}

// Normal requests, one after another, for `ms`: every one must succeed, and some must be
// answered while every slow client is still held (`cut()` counts those given up on so far),
// so that normal requests were not waiting for the slow ones' deadlines to free the proxy.
async function servedMeanwhile(port, ms, cut) {
  const until = Date.now() + ms;
  let served = 0;
  let whileAllHeld = 0;
  while (Date.now() < until) {
    const res = await rawHttp(port, { headers: AUTH, body: CHAT, timeoutMs: 5000 });
    assert.equal(res.status, 200, 'a normal request is served meanwhile');
    if (cut() === 0) whileAllHeld++;
    served++;
    await sleep(100);
  }
  assert.ok(whileAllHeld >= 1, `${served} served, none while every slow client was still held`);
  return served;
}

for (const name of ['nginx', 'lighttpd']) {
  describe(`slow clients behind ${name}`, () => {
    let mock, host, port, pid, baseline;
    before(async () => {
      mock = createAzureMock({ apiKey: KEY });
      await mock.listen();
      if (name === 'nginx') {
        const started = await HOSTS.nginx(mock, DEADLINES);
        port = Number(new URL(started.rootUrl).port);
        host = started;
      } else {
        const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...DEADLINES });
        const web = await startLighttpd({ socket: proxy.socket });
        port = web.port;
        host = { stop: async () => { await web.stop(); await proxy.stop(); }, logs: () => proxy.logs(), pids: () => [proxy.pid] };
      }
      pid = proxyPid(host);
      await rawHttp(port, { headers: AUTH, body: CHAT });
      baseline = { threads: threadsOf(pid), fds: fdsOf(pid) };
    });
    after(async () => { await host?.stop(); await mock?.close(); });

    if (name === 'nginx') {  // lighttpd reads whole bodies itself before passing them on
      it(`${CLIENTS} bodies sent a byte a second get 408 within the read timeout, others served meanwhile`, async () => {
        const slow = Array.from({ length: CLIENTS }, () => slowBody(port));
        await servedMeanwhile(port, 3000, () => (host.logs().match(/status=408 /g) || []).length);
        const results = await Promise.all(slow);
        for (const result of results) {
          assert.equal(result.status, 408, JSON.stringify(result));
          assert.ok(result.ms < 10000, `answered after ${result.ms} ms`);
        }
        await waitFor(() => (host.logs().match(/status=408 .*outcome=request_timeout/g) || []).length >= CLIENTS, 'a log line for each', 5000);
      });
    }

    it(`${CLIENTS} clients that never read their answer are cut after the write timeout, others served meanwhile`, async () => {
      const before = mock.openConnections;
      const sockets = Array.from({ length: CLIENTS }, () => neverReads(port));
      try {
        await servedMeanwhile(port, 3000, () => (host.logs().match(/outcome=write-timeout/g) || []).length);
        await waitFor(() => (host.logs().match(/outcome=write-timeout/g) || []).length >= CLIENTS, 'every stalled answer given up on', 15000);
        await waitFor(() => mock.openConnections <= before + 2, 'their upstream transfers closed', 5000);
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });

    it('leaves no thread or descriptor behind', async () => {
      await waitFor(() => threadsOf(pid) <= baseline.threads && fdsOf(pid) <= baseline.fds + 4,
        `threads ${threadsOf(pid)}/${baseline.threads}, descriptors ${fdsOf(pid)}/${baseline.fds}`, 10000);
    });
  });
}

describe('requests that never arrive whole (FastCGI level)', () => {
  it('half a request is closed after the idle timeout; a stalled body on a reader thread gets 408', async () => {
    const mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, ...DEADLINES });
    try {
      const started = Date.now();
      // Params cut in the middle: nothing to answer, the connection closes.
      const whole = fastcgiRequest({ REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions' }, CHAT);
      const half = await new Promise((resolve) => {
        const socket = net.connect(proxy.socket, () => socket.write(whole.subarray(0, 20)));
        socket.on('close', () => resolve(Date.now() - started));
        socket.on('error', () => {});
      });
      assert.ok(half >= 1500 && half < 6000, `closed after ${half} ms`);
      await proxy.waitForLog(/outcome=read-timeout error="the request's params/);

      // 40 KiB of a 100 KiB body, then nothing: past 16 KiB a reader thread waits for it.
      const big = JSON.stringify({ model: 'gpt-4o', pad: 'x'.repeat(100000) });
      const bytes = fastcgiRequest({
        REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(big.length), HTTP_AUTHORIZATION: `Bearer ${KEY}`,
      }, big);
      const answer = await new Promise((resolve) => {
        let got = Buffer.alloc(0);
        const socket = net.connect(proxy.socket, () => socket.write(bytes.subarray(0, 40000)));
        socket.on('data', (d) => { got = Buffer.concat([got, d]); });
        socket.on('close', () => resolve(got.toString('latin1')));
        socket.on('error', () => {});
      });
      assert.match(answer, /Status: 408/);
      assert.match(answer, /request_timeout/);
      assert.equal(mock.requests.length, 0);
    } finally {
      await proxy.stop();
      await mock.close();
    }
  });
});

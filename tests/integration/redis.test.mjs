// Two hosts (two proxies, each with its own shared state, behind its own lighttpd) and
// one real Redis: a key's requests per minute hold across both, a 429 one host saw cools
// the target down for the other, and with Redis gone every request is still served and
// each proxy says so once. Then a server on the Redis port that misbehaves (a huge array
// announced, garbage, absurd counts and cooldowns): the proxies stay responsive and idle,
// honour no cooldown beyond the cap, and share counts again once a real Redis answers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { takeCommands } from '../upstream/resp.mjs';
import { connectedTo } from '../chaos/procfs.mjs';
import { canConnect, clearOfMinuteEdge, descendants, freePort, rawHttp, sleep, startChild, startLighttpd, startProxy, tempDir, waitFor } from './harness.mjs';

const UPSTREAM_KEY = 'upstream-key';
const ALICE = 'sk-alice-0123456789';
const MAIN = 'sk-main-0123456789';
const BURST = 'sk-burst-0123456789';
const BURST_RPM = 10;
const HAND = 'sk-hand-0123456789';
const chat = (model) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
const as = (key) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const SYNC_MS = 400;  // comfortably more than a sync round (100 ms), even under ASan

// Debian ships the server in redis-tools as redis-check-rdb, which runs as the server
// when called by that name (redis-server's own package only adds a system service).
async function startRedis(port) {
  port ??= await freePort();
  const dir = tempDir('redis');
  const redis = startChild('/usr/bin/redis-check-rdb',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { argv0: 'redis-server' });
  await waitFor(async () => redis.exited || canConnect({ host: '127.0.0.1', port }), 'redis');
  if (redis.exited) throw new Error(`redis exited at start: ${redis.output}`);
  redis.port = port;
  return redis;
}

// One command to Redis; its reply (a bulk string or a status) as text.
function redisCommand(port, words) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`);
    });
    let text = '';
    socket.on('data', (data) => {
      text += data.toString('latin1');
      const header = /^[$+:-](-?\d*)[^\r]*\r\n/.exec(text);
      if (!header) return;
      if (text[0] !== '$' || text.length >= header[0].length + Number(header[1]) + 2) {
        socket.destroy();
        resolve(text[0] === '$' ? text.slice(header[0].length, header[0].length + Number(header[1])) : text);
      }
    });
    socket.on('error', reject);
  });
}

describe('two hosts sharing limits and cooldowns through Redis', () => {
  let redis, limited, healthy, hosts = [];
  before(async () => {
    redis = await startRedis();
    [limited, healthy] = [createAzureMock({ apiKey: UPSTREAM_KEY }), createAzureMock({ apiKey: UPSTREAM_KEY })];
    for (const mock of [limited, healthy]) await mock.listen();
    limited.scenario = 'rate-limit';
    limited.retryAfterMs = 20000;
    const dir = tempDir('redis-hosts');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { limited: { url: limited.url, key: UPSTREAM_KEY }, healthy: { url: healthy.url, key: UPSTREAM_KEY, priority: 1 } },
      models: { 'gpt-4o': ['limited', 'healthy'], 'gpt-4o-mini': ['healthy'] },
      keys: { alice: { key: ALICE, requests_per_minute: 6 }, main: { key: MAIN }, burst: { key: BURST, requests_per_minute: BURST_RPM } },
    }));
    for (const name of ['a', 'b']) {
      const proxy = await startProxy({
        AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: file,
        AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, `state-${name}`),
        AZURE_OPENAI_PROXY_REDIS_URL: `redis://127.0.0.1:${redis.port}/2`,
        AZURE_OPENAI_PROXY_WORKERS: name === 'b' ? '3' : '1',  // host b: three processes, one talking to Redis
      });
      const web = await startLighttpd({ socket: proxy.socket });
      hosts.push({ proxy, web });
    }
    await sleep(SYNC_MS);
  });
  after(async () => {
    for (const { web, proxy } of hosts) {
      await web.stop();
      const stopped = await proxy.stop();
      assert.equal(stopped.code, 0, proxy.logs());
    }
    await redis?.stop();
    for (const mock of [limited, healthy]) await mock?.close();
  });

  const post = (host, model, key) => rawHttp(hosts[host].web.port, { headers: as(key), body: chat(model) });

  it('holds a key to its requests per minute across both hosts', async () => {
    await clearOfMinuteEdge(15000);
    const codes = [];
    for (let i = 0; i < 10; i++) {
      codes.push((await post(i % 2, 'gpt-4o-mini', ALICE)).status);
      await sleep(SYNC_MS);
    }
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
  });

  it('talks to Redis from one process per host', async () => {
    const clients = await redisCommand(redis.port, ['CLIENT', 'LIST']);
    const proxies = clients.split('\n').filter((line) => / cmd=(evalsha|mget|set)/.test(line));
    assert.equal(proxies.length, hosts.length, clients);
  });

  it('holds a burst on both hosts at once to the limit plus one request per host but one', async (t) => {
    await clearOfMinuteEdge(15000);
    const answers = await Promise.all(Array.from({ length: 2 * BURST_RPM }, (_, i) => post(i % 2, 'gpt-4o-mini', BURST)));
    const admitted = answers.filter((answer) => answer.status === 200).length;
    t.diagnostic(`${admitted} of ${answers.length} admitted at once`);
    assert.ok(admitted <= BURST_RPM + hosts.length - 1, `${admitted} of ${answers.length} admitted`);
    for (const answer of answers.filter((a) => a.status !== 200)) {
      assert.equal(answer.status, 429, answer.body.toString());
      assert.equal(answer.headers['x-ratelimit-limit-requests'], String(BURST_RPM));
    }
    // What was not admitted at once is, as the rounds hand the rest out, up to the limit.
    await sleep(SYNC_MS);
    let more = 0;
    for (let i = 0; i < BURST_RPM && admitted + more < BURST_RPM; i++) {
      if ((await post(i % 2, 'gpt-4o-mini', BURST)).status === 200) more++;
      await sleep(SYNC_MS / 4);
    }
    assert.equal(admitted + more, Math.max(admitted, BURST_RPM));
  });

  it('shares a cooldown: a 429 host a saw is not asked again by host b', async () => {
    assert.equal((await post(0, 'gpt-4o', MAIN)).status, 200);
    assert.equal(limited.requests.length, 1, 'host a tried the limited target once');
    await sleep(SYNC_MS);
    for (let i = 0; i < 5; i++) assert.equal((await post(1, 'gpt-4o', MAIN)).status, 200);
    assert.equal(limited.requests.length, 1, 'host b knew of the cooldown');
    assert.equal(healthy.requests.filter((r) => r.url.includes('/deployments/gpt-4o/')).length, 6);
  });

  it('serves every request with Redis gone, and says so once per proxy', async () => {
    await redis.stop();
    for (let i = 0; i < 6; i++) assert.equal((await post(i % 2, 'gpt-4o-mini', MAIN)).status, 200);
    await sleep(2500);  // a few reconnection attempts
    assert.equal((await post(0, 'gpt-4o-mini', MAIN)).status, 200);
    for (const { proxy } of hosts) {
      const warnings = proxy.logs().split('\n').filter((line) => /warning: redis at 127\.0\.0\.1:\d+\/2 unreachable/.test(line));
      assert.equal(warnings.length, 1, proxy.logs());
    }
  });
});

// The share a host holds in Redis is the host's, not the process's: when the process that
// talks to Redis dies, the next one finds its host's share, not a stranger's to wait out
// (a host alone held its whole key's limit under the dead name, and was left ~1 request).
describe('a host whose process talking to Redis dies', () => {
  let redis, mock, proxy, web;
  before(async () => {
    redis = await startRedis();
    mock = createAzureMock({ apiKey: UPSTREAM_KEY });
    await mock.listen();
    const dir = tempDir('redis-takeover');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { only: { url: mock.url, key: UPSTREAM_KEY } },
      models: { 'gpt-4o-mini': ['only'] },
      keys: { hand: { key: HAND, requests_per_minute: 1000 } },
    }));
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: file,
      AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state'), AZURE_OPENAI_PROXY_WORKERS: '3',
      AZURE_OPENAI_PROXY_REDIS_URL: `redis://127.0.0.1:${redis.port}/3`,
    });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    await proxy?.stop();
    await redis?.stop();
    await mock?.close();
  });

  it('keeps the host\'s share for the process that takes over', async () => {
    const post = () => rawHttp(web.port, { headers: as(HAND), body: chat('gpt-4o-mini') });
    await clearOfMinuteEdge(15000);
    for (let i = 0; i < 5; i++) assert.equal((await post()).status, 200);
    await sleep(SYNC_MS);
    const workers = () => descendants(proxy.pid);
    const leader = workers().find((pid) => connectedTo(pid, redis.port));
    assert.ok(leader, 'a worker talks to Redis');
    process.kill(leader, 'SIGKILL');
    await waitFor(() => workers().some((pid) => pid !== leader && connectedTo(pid, redis.port)), 'another worker talking to Redis');
    await sleep(SYNC_MS);
    const codes = [];
    for (let i = 0; i < 10; i++) codes.push((await post()).status);
    assert.deepEqual(codes, Array(10).fill(200));
  });
});

// CPU seconds a process has used (user + system), from /proc/PID/stat (in USER_HZ, 100 a
// second on Linux).
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const residentMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;


const bulk = (text) => (text === null ? '$-1\r\n' : `$${Buffer.byteLength(text)}\r\n${text}\r\n`);

// A server on the Redis port that answers every command as `fake.mode` says:
//   huge-array  announces an array of 2,147,483,647 elements, then sends nothing
//   garbage     bytes that are not RESP
//   values      well-formed answers carrying `fake.count` as every count, `fake.share`
//               as every key's share and `fake.cooldown` as every target's cooldown end
async function startFakeRedis() {
  const fake = { mode: 'values', count: '0', share: '6', cooldown: null, commands: 0, sockets: new Set() };
  const answer = ([name, ...args]) => {
    if (fake.mode === 'huge-array') return '*2147483647\r\n';
    if (fake.mode === 'garbage') return '\xff\x00 this is not what Redis says\r\n';
    switch (name.toUpperCase()) {
      case 'SCRIPT': return bulk('0123456789abcdef0123456789abcdef01234567');
      case 'EVALSHA': return `*5\r\n${`:${fake.count}\r\n`.repeat(4)}:${fake.share}\r\n`;
      case 'MGET': return `*${args.length}\r\n${args.map((key) => bulk(key.startsWith('aop:cd:') ? fake.cooldown : fake.count)).join('')}`;
      case 'INCRBY': case 'EXPIRE': return ':1\r\n';
      default: return '+OK\r\n';
    }
  };
  const server = net.createServer((socket) => {
    fake.sockets.add(socket);
    socket.on('close', () => fake.sockets.delete(socket));
    socket.on('error', () => {});
    const state = { buffer: Buffer.alloc(0) };
    socket.on('data', (data) => {
      state.buffer = Buffer.concat([state.buffer, data]);
      for (const command of takeCommands(state)) {
        fake.commands++;
        socket.write(Buffer.from(answer(command), 'latin1'));
      }
    });
  });
  fake.port = await freePort();
  await new Promise((resolve) => server.listen(fake.port, '127.0.0.1', resolve));
  fake.close = () => new Promise((resolve) => {
    for (const socket of fake.sockets) socket.destroy();
    server.close(resolve);
  });
  return fake;
}

describe('a server on the Redis port that misbehaves, then a real Redis there', () => {
  const CAP_S = 3;
  let fake, redis, upstream, hosts = [];
  const CARL = 'sk-carl-0123456789';
  before(async () => {
    fake = await startFakeRedis();
    upstream = createAzureMock({ apiKey: UPSTREAM_KEY });
    await upstream.listen();
    const dir = tempDir('redis-faults');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: { healthy: { url: upstream.url, key: UPSTREAM_KEY } },
      models: { 'gpt-4o-mini': ['healthy'] },
      keys: { alice: { key: ALICE, requests_per_minute: 6 }, main: { key: MAIN }, carl: { key: CARL, requests_per_minute: 6 } },
      retry: { cooldown_cap_seconds: CAP_S },
    }));
    for (const name of ['a', 'b']) {
      const proxy = await startProxy({
        AZURE_OPENAI_ENDPOINT: upstream.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: file,
        AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, `state-${name}`),
        AZURE_OPENAI_PROXY_REDIS_URL: `redis://127.0.0.1:${fake.port}`,
      });
      const web = await startLighttpd({ socket: proxy.socket });
      hosts.push({ proxy, web });
    }
  });
  after(async () => {
    const stopped = [];
    for (const { web, proxy } of hosts) {
      await web.stop();
      stopped.push(await proxy.stop());
    }
    await fake?.close();
    await redis?.stop();
    await upstream?.close();
    hosts.forEach(({ proxy }, i) => {
      assert.equal(stopped[i].code, 0, proxy.logs());
      assert.doesNotMatch(proxy.logs(), /AddressSanitizer|runtime error/);
    });
  });

  const post = (host, key) => rawHttp(hosts[host].web.port, { headers: as(key), body: chat('gpt-4o-mini') });
  const warnings = (proxy) => proxy.logs().split('\n').filter((line) => /warning: redis at .* unreachable/.test(line));

  // Each proxy answers, and over a few seconds of no requests uses little CPU and no more
  // memory (an idle proxy uses next to none; one building a reply of two billion elements
  // keeps a core busy and its memory growing).
  async function assertResponsiveAndIdle(what) {
    for (let i = 0; i < 4; i++) assert.equal((await post(i % 2, MAIN)).status, 200, what);
    const before = hosts.map(({ proxy }) => ({ cpu: cpuSeconds(proxy.pid), rss: residentMiB(proxy.pid) }));
    const started = Date.now();
    await sleep(3000);
    const wall = (Date.now() - started) / 1000;
    hosts.forEach(({ proxy }, i) => {
      const used = cpuSeconds(proxy.pid) - before[i].cpu, grown = residentMiB(proxy.pid) - before[i].rss;
      assert.ok(used < wall / 10, `${what}: proxy ${i} used ${used} s of CPU in ${wall} s while idle`);
      assert.ok(grown < 20, `${what}: proxy ${i} grew by ${grown} MiB while idle`);
    });
    for (let i = 0; i < 2; i++) assert.equal((await post(i, MAIN)).status, 200, what);
  }

  it('caps a cooldown from Redis at cooldown_cap_seconds, and survives absurd counts', async () => {
    await waitFor(() => fake.commands > 4, 'the proxies to talk to the server');
    for (let i = 0; i < 2; i++) assert.equal((await post(i, ALICE)).status, 200);  // alice known to both
    fake.count = '9223372036854775807';
    fake.cooldown = '9223372036854775807';
    await sleep(SYNC_MS);
    const counted = await post(1, ALICE);
    assert.equal(counted.status, 429, hosts[1].proxy.logs().slice(-3000));
    assert.match(counted.json.error.message, /for this key: 6 requests per minute/);
    assert.ok(Number(counted.headers['retry-after']) <= 60, `retry-after ${counted.headers['retry-after']}`);
    const cooled = await post(0, MAIN);
    assert.equal(cooled.status, 429, cooled.body.toString());
    assert.ok(Number(cooled.headers['retry-after']) <= CAP_S, `retry-after ${cooled.headers['retry-after']}`);
  });

  it('takes negative counts and cooldowns as none', async () => {
    fake.count = '-9223372036854775808';
    fake.cooldown = '-5';
    await sleep(CAP_S * 1000 + 500);  // the capped cooldown has run out
    assert.equal((await post(0, MAIN)).status, 200);
    assert.equal((await post(1, ALICE)).status, 200);
  });

  it('stays responsive and idle while the server announces a 2,147,483,647-element array', async () => {
    fake.mode = 'huge-array';
    await sleep(1500);
    await assertResponsiveAndIdle('huge array');
  });

  it('stays responsive and idle while the server answers garbage, and says so once', async () => {
    fake.mode = 'garbage';
    await sleep(1500);
    await assertResponsiveAndIdle('garbage');
    for (const { proxy } of hosts) assert.equal(warnings(proxy).length, 1, proxy.logs());
  });

  it('shares counts again once a real Redis answers on the same port', async () => {
    await fake.close();
    redis = await startRedis(fake.port);
    await sleep(2500);  // reconnected
    await clearOfMinuteEdge(15000);
    const codes = [];
    for (let i = 0; i < 10; i++) {
      codes.push((await post(i % 2, CARL)).status);
      await sleep(SYNC_MS);
    }
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    for (const { proxy } of hosts) assert.match(proxy.logs(), /redis at .* answers again/);
  });
});

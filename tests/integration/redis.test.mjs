// Two hosts (two proxies, each with its own shared state, behind its own lighttpd) and
// one real Redis: a key's requests per minute hold across both, a 429 one host saw cools
// the target down for the other, and with Redis gone every request is still served and
// each proxy says so once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { canConnect, clearOfMinuteEdge, freePort, rawHttp, sleep, startChild, startLighttpd, startProxy, tempDir, waitFor } from './harness.mjs';

const UPSTREAM_KEY = 'upstream-key';
const ALICE = 'sk-alice-0123456789';
const MAIN = 'sk-main-0123456789';
const chat = (model) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
const as = (key) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const SYNC_MS = 400;  // comfortably more than a sync round (100 ms), even under ASan

// Debian ships the server in redis-tools as redis-check-rdb, which runs as the server
// when called by that name (redis-server's own package only adds a system service).
async function startRedis() {
  const port = await freePort();
  const dir = tempDir('redis');
  const redis = startChild('/usr/bin/redis-check-rdb',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { argv0: 'redis-server' });
  await waitFor(async () => redis.exited || canConnect({ host: '127.0.0.1', port }), 'redis');
  if (redis.exited) throw new Error(`redis exited at start: ${redis.output}`);
  redis.port = port;
  return redis;
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
      keys: { alice: { key: ALICE, requests_per_minute: 6 }, main: { key: MAIN } },
    }));
    for (const name of ['a', 'b']) {
      const proxy = await startProxy({
        AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, AZURE_OPENAI_PROXY_CONFIG: file,
        AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, `state-${name}`),
        AZURE_OPENAI_PROXY_REDIS_URL: `redis://127.0.0.1:${redis.port}/2`,
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

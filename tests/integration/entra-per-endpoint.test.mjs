// Keyless Azure per endpoint (issue 23): a routing file whose two endpoints are two
// resources in two tenants, each with its own `credential` (a service principal of its
// tenant). Two Entra stand-ins (one per tenant, each signing with its own key) and two
// Azure stand-ins, each taking only its own tenant's tokens. Through lighttpd: each
// endpoint answers with its own token; with the first one down, the model's second
// target answers with its token; no secret in the log or --check-config.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { PROXY_BIN, postJson, proxyEnv, startLighttpd, startProxy, tempDir } from './harness.mjs';

const chat = (model) => ({ model, messages: [{ role: 'user', content: 'hello' }] });
const EAST_SECRET = 'east-secret-Q7+&=value', WEST_SECRET = 'west-secret-Z3/%value';
let tenants, dir, file, stack;

function tenant(name, secret) {
  const entra = createEntraMock({ tenant: `tenant-${name}`, clientId: `app-${name}`, clientSecret: secret, lifetimeS: 30 });
  const azure = createAzureMock({ verifyBearer: (token) => entra.verify(token) });
  return { entra, azure };
}

before(async () => {
  tenants = { east: tenant('east', EAST_SECRET), west: tenant('west', WEST_SECRET) };
  for (const t of Object.values(tenants)) {
    await t.entra.listen();
    await t.azure.listen();
  }
  dir = tempDir('entra-per-endpoint');
  fs.writeFileSync(path.join(dir, 'west-secret'), `${WEST_SECRET}\n`);
  const credential = (name, secret) => ({
    source: 'client-secret', tenant: `tenant-${name}`, client_id: `app-${name}`, client_secret: secret,
    authority_host: tenants[name].entra.url,
  });
  file = path.join(dir, 'routing.json');
  fs.writeFileSync(file, JSON.stringify({
    endpoints: {
      east: { url: tenants.east.azure.url, priority: 0, credential: credential('east', 'env:EAST_SECRET') },
      west: { url: tenants.west.azure.url, priority: 1, credential: credential('west', `file:${path.join(dir, 'west-secret')}`) },
    },
    models: { 'gpt-4o': ['east', 'west'], 'gpt-4o-mini': ['west'] },
  }));
  const own = tempDir('entra-per-endpoint-proxy');
  const proxy = await startProxy({
    AZURE_OPENAI_ENDPOINT: tenants.east.azure.url, AZURE_OPENAI_PROXY_CONFIG: file, EAST_SECRET, AZURE_OPENAI_PROXY_WORKERS: '1', AZURE_OPENAI_PROXY_THREADS: '2',
    AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
  }, { dir: own });
  const web = await startLighttpd({ socket: proxy.socket });
  stack = { proxy, web, url: web.url };
});

after(async () => {
  if (stack) {
    await stack.web.stop();
    const stopped = await stack.proxy.stop();
    assert.equal(stopped.code, 0, `the proxy exited with ${JSON.stringify(stopped)}`);
  }
  for (const t of Object.values(tenants)) {
    await t.azure.close().catch(() => {});
    await t.entra.close();
  }
});

function assertNoSecretIn(text) {
  for (const secret of [EAST_SECRET, WEST_SECRET]) assert.ok(!text.includes(secret), `a secret showed: ${secret}`);
  assert.ok(!/Bearer ey/.test(text), 'a token showed');
}

describe('a credential per routing-file endpoint', () => {
  it('each endpoint sends its own tenant\'s token', async () => {
    const east = await postJson(`${stack.url}/v1/chat/completions`, chat('gpt-4o'));
    assert.equal(east.status, 200, String(east.body));
    const west = await postJson(`${stack.url}/v1/chat/completions`, chat('gpt-4o-mini'));
    assert.equal(west.status, 200, String(west.body));
    assert.equal(tenants.east.entra.counts.secret, 1, 'one token from the east tenant');
    assert.equal(tenants.west.entra.counts.secret, 1, 'one token from the west tenant');
    assert.equal(tenants.east.azure.requests.length, 1, 'east answered gpt-4o');
    assert.equal(tenants.west.azure.requests.length, 1, 'west answered gpt-4o-mini');
    for (const t of Object.values(tenants)) {
      assert.deepEqual(t.azure.refusedTokens, [], 'no token of the other tenant reached a resource');
      assert.equal(t.entra.counts.refused, 0);
    }
  });

  it('fails over from a resource that is down to the other, with the other\'s token', async () => {
    await tenants.east.azure.close();
    const westBefore = tenants.west.azure.requests.length;
    const answer = await postJson(`${stack.url}/v1/chat/completions`, chat('gpt-4o'));
    assert.equal(answer.status, 200, String(answer.body));
    assert.equal(tenants.west.azure.requests.length - westBefore, 1, 'west answered gpt-4o');
    assert.deepEqual(tenants.west.azure.refusedTokens, [], 'west took its own tenant\'s token');
    assertNoSecretIn(stack.proxy.logs());
  });

  it('--check-config names each endpoint\'s credential and shows no secret', () => {
    const run = spawnSync(PROXY_BIN, ['--check-config'], { env: proxyEnv({ AZURE_OPENAI_ENDPOINT: tenants.east.azure.url, AZURE_OPENAI_PROXY_CONFIG: file, EAST_SECRET }), encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Entra ID credential client-secret, tenant tenant-east, client app-east/);
    assert.match(run.stdout, /Entra ID credential client-secret, tenant tenant-west, client app-west/);
    assertNoSecretIn(run.stdout + run.stderr);
  });
});

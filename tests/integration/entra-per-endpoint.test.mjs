// Keyless Azure per endpoint (issue 23): a routing file whose two endpoints are two
// resources in two tenants, each with its own `credential` (a service principal of its
// tenant). Two Entra stand-ins (one per tenant, each signing with its own key) and two
// Azure stand-ins, each taking only its own tenant's tokens. Through lighttpd: each
// endpoint answers with its own token; with the first one down, the model's second
// target answers with its token; no secret in the log or --check-config. The start tries
// every endpoint's credential: a wrong secret stops it with one line naming the endpoint,
// an unreachable Entra is a warning naming it and the start goes on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { PROXY_BIN, postJson, proxyEnv, startLighttpd, startProxy, tempDir } from './harness.mjs';
import { runProxyToEnd } from './entra-stack.mjs';

const chat = (model) => ({ model, messages: [{ role: 'user', content: 'hello' }] });
const EAST_SECRET = 'east-secret-Q7+&=value', WEST_SECRET = 'west-secret-Z3/%value';
let tenants, dir, file, stack;

// A routing file of the two tenants' endpoints; `west`: changes to the west credential.
function routingFile(name, west = {}) {
  const credential = (tenantName, secret) => ({
    source: 'client-secret', tenant: `tenant-${tenantName}`, client_id: `app-${tenantName}`, client_secret: secret,
    authority_host: tenants[tenantName].entra.url,
  });
  const written = path.join(dir, name);
  fs.writeFileSync(written, JSON.stringify({
    endpoints: {
      east: { url: tenants.east.azure.url, priority: 0, credential: credential('east', 'env:EAST_SECRET') },
      west: { url: tenants.west.azure.url, priority: 1, credential: { ...credential('west', `file:${path.join(dir, 'west-secret')}`), ...west } },
    },
    models: { 'gpt-4o': ['east', 'west'], 'gpt-4o-mini': ['west'] },
  }));
  return written;
}

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
  file = routingFile('routing.json');
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

describe('the start tries every endpoint\'s credential', () => {
  it('obtained each endpoint\'s token before serving, naming the endpoint', () => {
    for (const name of ['east', 'west'])
      assert.match(stack.proxy.logs(), new RegExp(`Entra ID token of endpoint '${name}' \\(client-secret, tenant tenant-${name}, client app-${name}[^)]*\\) obtained at start`));
  });

  it('a wrong secret of one endpoint stops the start: one line naming the endpoint, the source and AADSTS7000215, exit 1', async () => {
    const wrong = 'wrong-west-secret-never-logged';
    const own = tempDir('entra-per-endpoint-wrong');
    const socket = path.join(own, 'proxy.sock');
    const refusedBefore = tenants.west.entra.counts.refused;
    const run = await runProxyToEnd(['--listen', socket], {
      AZURE_OPENAI_ENDPOINT: tenants.east.azure.url, AZURE_OPENAI_PROXY_CONFIG: routingFile('wrong.json', { client_secret: wrong }),
      EAST_SECRET, AZURE_OPENAI_PROXY_WORKERS: '2', AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
    });
    assert.equal(run.status, 1, run.stderr);
    const named = run.stderr.split('\n').filter((line) => /AADSTS/.test(line));
    assert.equal(named.length, 1, run.stderr);
    assert.match(named[0], /^azure-openai-proxy: Entra ID refused the credential of endpoint 'west' \(client-secret, tenant tenant-west, client app-west[^)]*\): the token endpoint answered 401 invalid_client: "?AADSTS7000215.*; not starting$/);
    assert.equal(tenants.west.entra.counts.refused - refusedBefore, 1, 'one token request');
    assert.ok(!/serving with/.test(run.stderr), 'no worker started');
    assert.ok(!run.stderr.includes(wrong));
    assert.ok(!fs.existsSync(socket), 'the socket is removed');
  });

  it('an endpoint whose Entra cannot be reached: a warning naming it, and the start goes on', async () => {
    const own = tempDir('entra-per-endpoint-unreachable');
    const proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: tenants.east.azure.url, EAST_SECRET, AZURE_OPENAI_PROXY_THREADS: '2',
      AZURE_OPENAI_PROXY_CONFIG: routingFile('unreachable.json', { authority_host: 'http://127.0.0.1:9' }),
      AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
    }, { dir: own });
    try {
      await proxy.waitForLog(/serving with/);
      assert.match(proxy.logs(), /warning: no Entra ID token of endpoint 'west' at start \(client-secret, tenant tenant-west, client app-west[^)]*\): the token endpoint could not be reached: .*; starting anyway/);
      assert.match(proxy.logs(), /Entra ID token of endpoint 'east' \([^)]*\) obtained at start|Entra ID token of endpoint 'east' \([^)]*\): another process of the host obtained it/);
      assertNoSecretIn(proxy.logs());
    } finally {
      const stopped = await proxy.stop();
      assert.equal(stopped.code, 0, `the proxy exited with ${JSON.stringify(stopped)}`);
    }
  });
});

// Keyless Azure (issue 23): the proxy gets, caches and renews its own Entra ID tokens.
// Through lighttpd, with several worker processes, against the Entra stand-in
// (tests/upstream/entra-mock.mjs: 4-s tokens) and an Azure stand-in that takes only
// unexpired tokens for its audience: each source serves requests and a stream across
// renewals with no failure, the token endpoint counted; Entra down past expiry gives 503
// upstream_auth_failed and then recovery; a wrong secret is named by Entra's AADSTS code;
// no secret ever shows in a log line or --check-config; as plain CGI the calls share the token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { PROXY_BIN, openStream, postJson, proxyEnv, sanitizerReports, sleep, tempDir, waitFor } from './harness.mjs';
import { runProxyToEnd, startKeylessProxy } from './entra-stack.mjs';

const WORKERS = 2;
const LIFETIME_S = 4;
const SECRET = 'entra-secret-Xy9+&=/value';
const IDENTITY_HEADER = 'identity-header-secret-value';
const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] };

let entra, azure, dir;
const lifeLeftMs = [];  // what each token Azure took had left to live

before(async () => {
  entra = createEntraMock({ clientSecret: SECRET, identityHeader: IDENTITY_HEADER, lifetimeS: LIFETIME_S });
  await entra.listen();
  azure = createAzureMock({
    verifyBearer: (token) => {
      const problem = entra.verify(token);
      if (!problem) lifeLeftMs.push(entra.remainingMs(token));
      return problem;
    },
  });
  await azure.listen();
  dir = tempDir('entra');
  fs.writeFileSync(path.join(dir, 'secret'), `${SECRET}\n`);
  fs.writeFileSync(path.join(dir, 'federated-token'), entra.federatedToken);
});

after(async () => {
  await azure.close();
  await entra.close();
});

const SOURCES = {
  'client-secret': { shape: 'secret', env: () => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_CLIENT_SECRET: `file:${path.join(dir, 'secret')}`, AZURE_AUTHORITY_HOST: entra.url,
  }) },
  'workload-identity': { shape: 'assertion', env: () => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'workload-identity', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_FEDERATED_TOKEN_FILE: path.join(dir, 'federated-token'), AZURE_AUTHORITY_HOST: entra.url,
  }) },
  'managed-identity (IMDS)': { shape: 'imds', env: () => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'managed-identity',
    AZURE_OPENAI_PROXY_IMDS_ENDPOINT: `${entra.url}/metadata/identity/oauth2/token`,
  }) },
  'managed-identity (App Service)': { shape: 'appService', env: () => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'managed-identity', IDENTITY_ENDPOINT: `${entra.url}/msi/token`,
    IDENTITY_HEADER: IDENTITY_HEADER,
  }) },
};

const startKeyless = (env, workers = WORKERS) => startKeylessProxy({ azure, workers, env });

function assertNoSecretIn(text) {
  for (const secret of [SECRET, IDENTITY_HEADER, entra.federatedToken])
    assert.ok(!text.includes(secret), `a secret showed: ${secret}`);
  assert.ok(!/Bearer ey/.test(text), 'a token showed');
}

// Requests from four clients and one slow stream for `ms`; every answer's status.
async function trafficFor(url, ms, during = async () => {}) {
  const failures = [];
  let answered = 0;
  const stream = openStream(`${url}/v1/chat/completions`,
    { ...CHAT, stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }] },
    { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': String(Math.round(ms / 20)) });
  const end = Date.now() + ms;
  const client = async () => {
    while (Date.now() < end) {
      const answer = await postJson(`${url}/v1/chat/completions`, CHAT);
      answered++;
      if (answer.status !== 200) failures.push(`${answer.status} ${answer.body}`);
      await sleep(40);
    }
  };
  await Promise.all([client(), client(), client(), client(), during()]);
  await stream.done;
  return { answered, failures, stream };
}

for (const [name, source] of Object.entries(SOURCES)) {
  describe(`${name}: tokens of ${LIFETIME_S} s renewed under traffic`, () => {
    it('serves requests and a stream across renewals with no failure, about one token request per renewal for the host', async () => {
      const stack = await startKeyless(source.env());
      try {
        const countBefore = entra.counts[source.shape];
        const refusedBefore = azure.refusedTokens.length;
        lifeLeftMs.length = 0;
        const refusedByEntraBefore = entra.counts.refused;
        const started = Date.now();
        // Workload identity: the federated token file rotates midway; the next exchange reads the new one.
        const rotate = async () => {
          if (source.shape !== 'assertion') return;
          await sleep(4000);
          // As kubelet does: the new token accepted first, then the file swapped whole (a
          // rename), so that no read sees it half written; the old one stays valid 1 s.
          entra.rotateFederatedToken(`${entra.federatedToken.split('.').slice(0, 2).join('.')}.cm90YXRlZA`, 1000);
          const file = path.join(dir, 'federated-token');
          fs.writeFileSync(`${file}.new`, entra.federatedToken);
          fs.renameSync(`${file}.new`, file);
        };
        const { answered, failures, stream } = await trafficFor(stack.url, 8000, rotate);
        const seconds = (Date.now() - started) / 1000;
        const tokenRequests = entra.counts[source.shape] - countBefore;
        const renewals = seconds / (LIFETIME_S / 2);
        const leastLeft = Math.min(...lifeLeftMs);
        console.log(`${name}: ${answered} requests and a ${stream.events.length}-event stream over ${seconds.toFixed(1)} s: ` +
          `${tokenRequests} token requests (${renewals.toFixed(1)} renewal periods, ${WORKERS} processes), ` +
          `${azure.refusedTokens.length - refusedBefore} tokens refused by Azure, ${entra.counts.refused} refused by Entra, ` +
          `least life left in a token sent ${Math.round(leastLeft)} ms`);
        assert.deepEqual(failures, []);
        assert.equal(stream.status, 200);
        assert.ok(stream.raw.includes('data: [DONE]'), 'the stream ended whole');
        assert.equal(azure.refusedTokens.length - refusedBefore, 0, 'Azure refused no token');
        // Workload identity: after the rotation, the new file's token (the old one is refused).
        assert.equal(entra.counts.refused - refusedByEntraBefore, 0, 'Entra refused no token request');
        assert.ok(tokenRequests >= Math.floor(renewals) - 1, `renewed: ${tokenRequests} token requests`);
        // Renewed in the background at half the lifetime: no token sent was near its end
        // (one renewed only when a request found it expired would have had about 1 s left).
        assert.ok(leastLeft > LIFETIME_S * 1000 * 0.3, `a token with ${Math.round(leastLeft)} ms left was sent`);
        // One token for the host (the state file's row): not one per process.
        assert.ok(tokenRequests <= Math.ceil(renewals) + 2, `no crowd: ${tokenRequests} token requests`);
        assertNoSecretIn(stack.proxy.logs());
      } finally {
        await stack.stop();
      }
    });
  });
}

// One worker, so that every request meets the same keeper's view of the outage.
describe('Entra down', () => {
  let stack;
  before(async () => { stack = await startKeyless(SOURCES['client-secret'].env(), 1); });
  after(async () => { entra.down = false; await stack.stop(); });

  it('for less than a token lives: nothing fails', async () => {
    assert.equal((await postJson(`${stack.url}/v1/chat/completions`, CHAT)).status, 200);
    const { failures } = await trafficFor(stack.url, 1500, async () => {
      entra.down = true;
      await sleep(700);
      entra.down = false;
    });
    assert.deepEqual(failures, []);
  });

  it('past expiry: 503 upstream_auth_failed with Entra\'s code in the log, then recovery by itself', async () => {
    entra.down = true;
    await sleep(LIFETIME_S * 1000 + 500);
    const refused = await postJson(`${stack.url}/v1/chat/completions`, CHAT);
    assert.equal(refused.status, 503);
    const error = JSON.parse(refused.body).error;
    assert.equal(error.code, 'upstream_auth_failed');
    assert.equal(error.type, 'api_error');
    assert.ok(!/AADSTS/.test(error.message), 'Entra\'s words stay in the log');
    await stack.proxy.waitForLog(/AADSTS90033/);
    assert.match(stack.proxy.logs(), /Entra ID token \(client-secret, tenant test-tenant, client test-client[^)]*\): the token endpoint answered 503 temporarily_unavailable: AADSTS90033/);
    entra.down = false;
    await waitFor(async () => (await postJson(`${stack.url}/v1/chat/completions`, CHAT)).status === 200, 'recovery', 15000);
    assertNoSecretIn(stack.proxy.logs());
  });
});

describe('a crowd at start', () => {
  it('waits for one token request, not one each', async () => {
    // The start asks for the token before the worker serves; a slow Entra keeps that
    // request pending while the crowd arrives (and waits on the socket).
    entra.delayMs = 1500;
    const before = entra.counts.secret;
    const stack = await startKeyless(SOURCES['client-secret'].env(), 1);
    try {
      const answers = await Promise.all(Array.from({ length: 40 }, () => postJson(`${stack.url}/v1/chat/completions`, CHAT)));
      assert.deepEqual(answers.map((a) => a.status), answers.map(() => 200));
      assert.equal(entra.counts.secret - before, 1, 'one token request for 40 requests');
    } finally {
      entra.delayMs = 0;
      await stack.stop();
    }
  });
});

describe('a token Azure refuses while the proxy believes it valid', () => {
  it('is renewed once and the request sent again: the client sees 200', async () => {
    entra.lifetimeS = 60;  // no renewal of its own during the test
    const stack = await startKeyless(SOURCES['client-secret'].env(), 1);
    try {
      assert.equal((await postJson(`${stack.url}/v1/chat/completions`, CHAT)).status, 200);
      const tokensBefore = entra.counts.secret;
      const refusedBefore = azure.refusedTokens.length;
      entra.revokedBefore = Date.now() + 1;
      await sleep(5);
      const answer = await postJson(`${stack.url}/v1/chat/completions`, CHAT);
      assert.equal(answer.status, 200, String(answer.body));
      assert.equal(azure.refusedTokens.length - refusedBefore, 1, 'one 401 from Azure');
      assert.equal(entra.counts.secret - tokensBefore, 1, 'one new token');
      assert.equal((await postJson(`${stack.url}/v1/chat/completions`, CHAT)).status, 200);
    } finally {
      entra.lifetimeS = LIFETIME_S;
      entra.revokedBefore = 0;
      await stack.stop();
    }
  });
});

describe('a wrong secret', () => {
  it('stops the start with one line naming the source and AADSTS7000215, exit status 1, never the secret', async () => {
    const wrong = 'wrong-secret-never-logged';
    const own = tempDir('entra-wrong');
    const socket = path.join(own, 'proxy.sock');
    const before = entra.counts.refused;
    const run = await runProxyToEnd(['--listen', socket], {
      AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_WORKERS: '4', AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
      ...SOURCES['client-secret'].env(), AZURE_CLIENT_SECRET: wrong,
    });
    assert.equal(run.status, 1, run.stderr);
    const named = run.stderr.split('\n').filter((line) => /AADSTS/.test(line));
    assert.equal(named.length, 1, run.stderr);
    assert.match(named[0], /^azure-openai-proxy: Entra ID refused the credential \(client-secret, tenant test-tenant, client test-client[^)]*\): the token endpoint answered 401 invalid_client: "?AADSTS7000215: Invalid client secret provided.*; not starting$/);
    assert.ok(!/serving with/.test(run.stderr), 'no worker started');
    assert.equal(entra.counts.refused - before, 1, 'one token request');
    assert.ok(!run.stderr.includes(wrong));
    assert.ok(!fs.existsSync(socket), 'the socket is removed');
  });

  it('an unreadable federated token file stops the start too', async () => {
    const own = tempDir('entra-nofile');
    const run = await runProxyToEnd(['--listen', path.join(own, 'proxy.sock')], {
      AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
      ...SOURCES['workload-identity'].env(), AZURE_FEDERATED_TOKEN_FILE: path.join(own, 'absent'),
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /Entra ID refused the credential \(workload-identity[^)]*\): AZURE_FEDERATED_TOKEN_FILE: cannot read '[^']*absent'; not starting/);
  });
});

// Plain CGI (a process a call, as a shared host's mod_cgi runs it): the calls share the
// token through the state file, so one asks Entra and the next ones take its token; a call
// that ends while its renewal is under way gives the renewal up (no failure), the next asks.
describe('as plain CGI, one process a call', () => {
  it('every call is answered across renewals, the token kept between calls in the state file', async () => {
    const own = tempDir('entra-cgi');
    const body = JSON.stringify(CHAT);
    const env = {
      ...SOURCES['client-secret'].env(), AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
      GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'POST', SCRIPT_NAME: '/proxy',
      PATH_INFO: '/v1/chat/completions', REQUEST_URI: '/proxy/v1/chat/completions', CONTENT_TYPE: 'application/json',
      CONTENT_LENGTH: String(Buffer.byteLength(body)), HTTP_AUTHORIZATION: 'Bearer test-key',
    };
    const tokensBefore = entra.counts.secret, refusedBefore = azure.refusedTokens.length, refusedByEntraBefore = entra.counts.refused;
    const calls = [];
    const started = Date.now();
    while (Date.now() - started < 3 * LIFETIME_S * 1000) {
      const run = await runProxyToEnd([], env, { input: body });
      calls.push({ status: run.status, answer: (/^Status: (\d+)/m.exec(run.stdout) || [])[1] || '200', stderr: run.stderr });
      await sleep(100);
    }
    const tokenRequests = entra.counts.secret - tokensBefore;
    console.log(`plain CGI: ${calls.length} calls over ${((Date.now() - started) / 1000).toFixed(1)} s, ${tokenRequests} token requests`);
    assert.deepEqual(calls.map((c) => `${c.status} ${c.answer}`), calls.map(() => '0 200'));
    assert.equal(azure.refusedTokens.length - refusedBefore, 0, 'Azure refused no token');
    assert.equal(entra.counts.refused - refusedByEntraBefore, 0, 'Entra refused no token request');
    // Kept between the calls: far fewer token requests than calls.
    assert.ok(tokenRequests >= 3 && tokenRequests <= calls.length / 2, `${tokenRequests} token requests for ${calls.length} calls`);
    const stderr = calls.map((c) => c.stderr).join('');
    assert.ok(!/try \d+ failed/.test(stderr), 'a call that ended mid-renewal counted no failure');
    assert.deepEqual(sanitizerReports(stderr), []);
    assertNoSecretIn(stderr);
  });
});

describe('--check-config', () => {
  it('names the credential, shows no secret and does not contact Entra', async () => {
    const arrivals = entra.arrivals;
    for (const source of Object.values(SOURCES)) {
      const run = spawnSync(PROXY_BIN, ['--check-config'], { env: proxyEnv({ AZURE_OPENAI_ENDPOINT: azure.url, ...source.env() }), encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout + run.stderr, /Entra ID credential: (client-secret|workload-identity|managed-identity)/);
      assertNoSecretIn(run.stdout + run.stderr);
    }
    await sleep(300);  // a request it sent while this process was blocked would be read now
    assert.equal(entra.arrivals, arrivals, 'no token request');
  });

  it('a missing piece is one line naming the variable', () => {
    const run = spawnSync(PROXY_BIN, ['--check-config'], {
      env: proxyEnv({ AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: SECRET }),
      encoding: 'utf8',
    });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /AZURE_TENANT_ID: not set/);
    assert.ok(!run.stderr.includes(SECRET));
  });
});

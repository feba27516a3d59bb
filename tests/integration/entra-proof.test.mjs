// Issue 23's proof: through lighttpd and through nginx (the shipped site, fastcgi_keep_conn),
// with 4 worker processes on a state file of their own, for each credential source a 60-s
// run with 5-s tokens and requests and streams throughout: zero failures, every stream
// (each outliving the token it began with) ends with [DONE], Azure refuses no token, no
// token sent had less than 30 % of its life left, and the token endpoint is asked about
// once per renewal for the whole host (counted, not once per process). The five sources
// run at once, each against Entra and Azure stand-ins of its own so that every count is
// its own; the workload identity's federated token file is rotated midway.
// AOP_PROOF_SECONDS makes a manual run longer (or shorter); CI runs the full 60 s.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { LIGHTTPD, openStream, postJson, sleep, tempDir } from './harness.mjs';
import { NGINX } from './hosts.mjs';
import { CHAT, makeCertificate, startKeylessProxy } from './entra-stack.mjs';

const RUN_MS = Number(process.env.AOP_PROOF_SECONDS || 60) * 1000;
const LIFETIME_S = 5;
const WORKERS = 4;
const SECRET = 'proof-secret-Xy9+&=/value';
const IDENTITY_HEADER = 'proof-identity-header-value';
// Modest traffic (two cores, sanitizer builds, five hosts at once): two clients of small
// requests with a pause, and streams back to back that each outlive a token.
const PAUSE_MS = 400;
const STREAM = { ...CHAT, stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }] };
const STREAM_HEADERS = { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '400' };

let dir, certificate;

before(() => {
  dir = tempDir('entra-proof');
  fs.writeFileSync(path.join(dir, 'secret'), `${SECRET}\n`);
  certificate = makeCertificate(dir, 'proof');
});

// Each source: the stand-in's counter of its token requests, the stand-in's options, and
// the proxy's settings naming it.
const SOURCES = {
  'client-secret': { shape: 'secret', env: (entra) => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_CLIENT_SECRET: `file:${path.join(dir, 'secret')}`, AZURE_AUTHORITY_HOST: entra.url,
  }) },
  'client-certificate': { shape: 'certificate', entra: () => ({ certificatePem: fs.readFileSync(certificate.cert, 'utf8') }), env: (entra) => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'client-certificate', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_CLIENT_CERTIFICATE_PATH: certificate.both, AZURE_AUTHORITY_HOST: entra.url,
  }) },
  'workload-identity': { shape: 'assertion', rotates: true, env: (entra, own) => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'workload-identity', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_FEDERATED_TOKEN_FILE: path.join(own, 'federated-token'), AZURE_AUTHORITY_HOST: entra.url,
  }) },
  'managed-identity (IMDS)': { shape: 'imds', env: (entra) => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'managed-identity',
    AZURE_OPENAI_PROXY_IMDS_ENDPOINT: `${entra.url}/metadata/identity/oauth2/token`,
  }) },
  'managed-identity (App Service)': { shape: 'appService', env: (entra) => ({
    AZURE_OPENAI_PROXY_CREDENTIAL: 'managed-identity', IDENTITY_ENDPOINT: `${entra.url}/msi/token`, IDENTITY_HEADER,
  }) },
};

// A source's own stand-ins and host behind `web`; `lifeLeftMs`: what each token Azure took
// had left to live.
async function startSource(name, source, web) {
  const entra = createEntraMock({ clientSecret: SECRET, identityHeader: IDENTITY_HEADER, lifetimeS: LIFETIME_S, ...source.entra?.() });
  await entra.listen();
  const lifeLeftMs = [];
  const azure = createAzureMock({
    verifyBearer: (token) => {
      const problem = entra.verify(token);
      if (!problem) lifeLeftMs.push(entra.remainingMs(token));
      return problem;
    },
  });
  await azure.listen();
  const own = tempDir('entra-proof-source');
  fs.writeFileSync(path.join(own, 'federated-token'), entra.federatedToken);
  const run = { name, source, entra, azure, lifeLeftMs, own, host: null };
  run.close = async () => {
    try {
      if (run.host) await run.host.stop();
    } finally {
      await azure.close();
      await entra.close();
    }
  };
  try {
    run.host = await startKeylessProxy({ azure, workers: WORKERS, env: source.env(entra, own), web });
  } catch (error) {
    await run.close();
    throw error;
  }
  return run;
}

// As kubelet does: the new token accepted first, then the file swapped whole (a rename),
// so that no read sees it half written; the old one stays valid 1 s.
function rotateFederatedToken({ entra, own }) {
  entra.rotateFederatedToken(`${entra.federatedToken.split('.').slice(0, 2).join('.')}.cm90YXRlZA`, 1000);
  const file = path.join(own, 'federated-token');
  fs.writeFileSync(`${file}.new`, entra.federatedToken);
  fs.renameSync(`${file}.new`, file);
}

// Requests and streams for RUN_MS; what each answered.
async function drive(run) {
  const url = `${run.host.url}/v1/chat/completions`;
  const end = Date.now() + RUN_MS;
  const failures = [], streams = [];
  let answered = 0;
  const client = async () => {
    while (Date.now() < end) {
      const answer = await postJson(url, CHAT).catch((error) => ({ status: 0, body: error.message }));
      answered++;
      if (answer.status !== 200) failures.push(`${answer.status} ${String(answer.body).slice(0, 200)}`);
      await sleep(PAUSE_MS);
    }
  };
  const streamer = async () => {
    while (Date.now() < end) {
      const started = Date.now();
      const stream = await openStream(url, STREAM, STREAM_HEADERS).done.catch((error) => ({ status: 0, raw: error.message }));
      streams.push({ status: stream.status, whole: stream.raw.includes('data: [DONE]'), ms: Date.now() - started });
    }
  };
  const midway = async () => {
    if (!run.source.rotates) return;
    await sleep(RUN_MS / 2);
    rotateFederatedToken(run);
    run.rotatedAt = Date.now();
  };
  await Promise.all([client(), client(), streamer(), midway()]);
  return { answered, failures, streams };
}

// The counts of one source's run, printed in one line.
function measure(run, traffic, { tokensBefore, refusedBefore, since, web }) {
  const seconds = (Date.now() - since) / 1000;
  const obtained = run.entra.requests.filter((r) => r.at >= since && r.ok);
  const tokenRequests = run.entra.counts[run.source.shape] - tokensBefore;
  // The proxy renews at half the life the answer states (App Service's expires_on is
  // whole seconds: a little less than the token's).
  const statedS = obtained.reduce((sum, r) => sum + r.statedLifeMs, 0) / Math.max(1, obtained.length) / 1000;
  const renewals = seconds / (statedS / 2);
  const m = {
    seconds, tokenRequests, renewals, refusedByAzure: run.azure.refusedTokens.length,
    refusedByEntra: run.entra.counts.refused - refusedBefore, leastLeftMs: Math.min(...run.lifeLeftMs),
    shortestStreamMs: Math.min(...traffic.streams.map((s) => s.ms)), ...traffic,
    // Tokens for the rotated file alone (the old one refused by then).
    afterRotation: run.rotatedAt ? obtained.filter((r) => r.at > run.rotatedAt + 1000).length : null,
  };
  console.log(`${web} ${run.name}: ${m.answered} requests, ${m.failures.length} failed; ${m.streams.length} streams ` +
    `(shortest ${(m.shortestStreamMs / 1000).toFixed(1)} s), ${m.streams.filter((s) => s.whole).length} ended with [DONE]; ` +
    `${m.tokenRequests} token requests in ${m.seconds.toFixed(1)} s for ${m.renewals.toFixed(1)} renewal periods ` +
    `(${WORKERS} processes); ${m.refusedByAzure} tokens refused by Azure, ${m.refusedByEntra} requests refused by Entra; ` +
    `least life left in a token sent ${Math.round(m.leastLeftMs)} ms of ${LIFETIME_S * 1000}` +
    (m.afterRotation === null ? '' : `; ${m.afterRotation} tokens for the rotated federated token alone`));
  return m;
}

function assertProof(name, m) {
  assert.deepEqual(m.failures, [], `${name}: failed requests`);
  assert.ok(m.streams.length >= 2, `${name}: streams throughout`);
  for (const stream of m.streams) {
    assert.equal(stream.status, 200, `${name}: a stream's status`);
    assert.ok(stream.whole, `${name}: a stream ended without [DONE]`);
  }
  // Longer than a token lives: each stream crossed at least one renewal.
  assert.ok(m.shortestStreamMs > LIFETIME_S * 1000, `${name}: a stream of ${m.shortestStreamMs} ms`);
  assert.equal(m.refusedByAzure, 0, `${name}: Azure refused a token`);
  // Workload identity: after the rotation the new file's token (the old one is refused).
  assert.equal(m.refusedByEntra, 0, `${name}: Entra refused a token request`);
  if (m.afterRotation !== null) assert.ok(m.afterRotation > 0, `${name}: no token for the rotated file`);
  // Renewed in the background at half the lifetime: no token sent was near its end.
  assert.ok(m.leastLeftMs > LIFETIME_S * 1000 * 0.3, `${name}: a token with ${Math.round(m.leastLeftMs)} ms left was sent`);
  // One token for the host (the state file's row), not one per process.
  assert.ok(m.tokenRequests >= Math.floor(m.renewals) - 1 && m.tokenRequests <= Math.ceil(m.renewals) + 2,
    `${name}: ${m.tokenRequests} token requests for ${m.renewals.toFixed(1)} renewal periods`);
}

for (const web of [LIGHTTPD, NGINX]) {
  describe(`through ${web.name}, ${WORKERS} workers`, () => {
    const runs = [];
    after(async () => {
      for (const run of runs) await run.close();
    });

    it(`every source: ${RUN_MS / 1000} s of ${LIFETIME_S}-s tokens under requests and streams, no failure, one token request per renewal for the host`, async () => {
      for (const [name, source] of Object.entries(SOURCES)) runs.push(await startSource(name, source, web));
      const since = Date.now();
      const counts = runs.map((run) => ({ tokensBefore: run.entra.counts[run.source.shape], refusedBefore: run.entra.counts.refused }));
      const traffic = await Promise.all(runs.map(drive));
      const measured = runs.map((run, i) => measure(run, traffic[i], { ...counts[i], since, web: web.name }));
      runs.forEach((run, i) => assertProof(`${web.name} ${run.name}`, measured[i]));
      for (const run of runs) {
        const logs = run.host.logs();
        for (const secret of [SECRET, IDENTITY_HEADER, run.entra.federatedToken])
          assert.ok(!logs.includes(secret), `${run.name}: a secret showed in the log`);
        assert.ok(!/Bearer ey/.test(logs), `${run.name}: a token showed in the log`);
      }
    });
  });
}

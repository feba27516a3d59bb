// Keyless Azure (issue 23): one Entra ID token for the whole host. Through lighttpd with 4
// worker processes sharing the state file, against the Entra stand-in
// (tests/upstream/entra-mock.mjs), which counts the token requests: a crowd of first
// requests at start makes one; short-lived tokens under traffic are renewed about once per
// renewal for the host, not once per process; a token Azure refuses is renewed once for
// the host; Entra unreachable at start is a warning and the start goes on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { CHAT, assertNoSecretIn, crowd, startKeylessHost, startStandIns } from './entra-stack.mjs';
import { PROXY_BIN, descendants, isRunning, openStream, postJson, proxyEnv, request, sleep, startLighttpd, tempDir, waitFor } from './harness.mjs';

const WORKERS = 4;
const SECRET = 'host-secret-value-Zq7';

let entra, azure, standIns;

before(async () => { ({ entra, azure } = standIns = await startStandIns({ secret: SECRET, lifetimeS: 3 })); });
after(() => standIns.close());

const startHost = (extra = {}) => startKeylessHost({ entra, azure, secret: SECRET, workers: WORKERS, extra });

describe(`one token for the host (${WORKERS} worker processes)`, () => {
  it('a crowd of 40 first requests while Entra is slow: one token request, every answer 200', async () => {
    entra.delayMs = 1500;
    const before = entra.counts.secret + entra.counts.refused;
    const host = await startHost();
    try {
      const answers = await crowd(host.url, 40);
      assert.deepEqual(answers.map((a) => a.status), answers.map(() => 200));
      assert.equal(entra.counts.secret + entra.counts.refused - before, 1, 'one token request for the host');
      assert.match(host.proxy.logs(), /Entra ID token \(client-secret, tenant test-tenant, client test-client[^)]*\) obtained at start, valid \d+ s/);
      // The token lives in the state file (0600), nowhere else.
      assert.equal(fs.statSync(host.stateFile).mode & 0o777, 0o600);
      const metrics = (await request(`${host.url}/metrics`)).text;
      assert.match(metrics, /^aop_entra_token_requests_total\{source="client-secret",outcome="ok"\} 1$/m);
      const left = Number(metrics.match(/^aop_entra_token_expiry_seconds\{source="client-secret"\} (\S+)$/m)?.[1]);
      assert.ok(left > 0 && left <= 3, `seconds left: ${left}`);
      assertNoSecretIn(metrics, SECRET);
      assertNoSecretIn(host.proxy.logs(), SECRET);
    } finally {
      entra.delayMs = 0;
      await host.stop();
    }
  });

  it('3-s tokens under traffic for 15 s: about one token request per renewal for the host, no failure', async () => {
    const host = await startHost();
    try {
      const before = entra.counts.secret;
      const refusedBefore = azure.refusedTokens.length;
      const started = Date.now();
      const failures = [];
      let answered = 0;
      const stream = openStream(`${host.url}/v1/chat/completions`,
        { ...CHAT, stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }] },
        { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '700' });
      const client = async () => {
        while (Date.now() - started < 15000) {
          const answer = await postJson(`${host.url}/v1/chat/completions`, CHAT);
          answered++;
          if (answer.status !== 200) failures.push(`${answer.status} ${answer.body}`);
          await sleep(30);
        }
      };
      await Promise.all(Array.from({ length: 8 }, client));
      await stream.done;
      const seconds = (Date.now() - started) / 1000;
      const tokenRequests = entra.counts.secret - before;
      const renewals = seconds / 1.5;  // at half of a 3-s life
      console.log(`${answered} requests and a ${stream.events.length}-event stream over ${seconds.toFixed(1)} s with ${WORKERS} processes: ` +
        `${tokenRequests} token requests for ${renewals.toFixed(1)} renewal periods`);
      assert.deepEqual(failures, []);
      assert.equal(stream.status, 200);
      assert.ok(stream.raw.includes('data: [DONE]'), 'the stream crossed renewals whole');
      assert.equal(azure.refusedTokens.length - refusedBefore, 0, 'Azure refused no token');
      assert.ok(tokenRequests >= Math.floor(renewals) - 1, `renewed: ${tokenRequests}`);
      assert.ok(tokenRequests <= Math.ceil(renewals) + 2, `one per renewal for the host, not per process: ${tokenRequests}`);
      assertNoSecretIn(host.proxy.logs(), SECRET);
    } finally {
      await host.stop();
    }
  });

  it('a token Azure refuses is renewed once for the host; every process resends and answers 200', async () => {
    entra.lifetimeS = 60;
    const host = await startHost();
    try {
      assert.deepEqual((await crowd(host.url, 16)).map((a) => a.status), Array(16).fill(200));
      const before = entra.counts.secret;
      entra.revokedBefore = Date.now() + 1;
      await sleep(5);
      const answers = await crowd(host.url, 24);
      assert.deepEqual(answers.map((a) => a.status), Array(24).fill(200));
      const renewed = entra.counts.secret - before;
      assert.ok(renewed >= 1 && renewed <= 2, `${renewed} token requests for the host after the refusal`);
    } finally {
      entra.lifetimeS = 3;
      entra.revokedBefore = 0;
      await host.stop();
    }
  });

  it('Entra unreachable at start: a warning, the start goes on, and the token comes once Entra is back', async () => {
    entra.down = true;
    const host = await startHost();
    try {
      await host.proxy.waitForLog(/no Entra ID token at start/);
      assert.match(host.proxy.logs(), /warning: no Entra ID token at start \(client-secret[^)]*\): the token endpoint answered 503 temporarily_unavailable: "?AADSTS90033.*starting anyway/);
      entra.down = false;
      await waitFor(async () => (await postJson(`${host.url}/v1/chat/completions`, CHAT)).status === 200, 'the token', 15000);
      assertNoSecretIn(host.proxy.logs(), SECRET);
    } finally {
      entra.down = false;
      await host.stop();
    }
  });

  it('4 processes lighttpd starts itself (bin-path, max-procs): their start checks make one token request', async () => {
    entra.delayMs = 1000;
    const before = entra.arrivals;
    const own = tempDir('entra-maxprocs');
    const env = proxyEnv({
      AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_THREADS: '2', AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
      AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
      AZURE_CLIENT_SECRET: SECRET, AZURE_AUTHORITY_HOST: entra.url,
    });
    const environment = Object.entries(env).map(([k, v]) => `"${k}" => "${v}"`).join(', ');
    const web = await startLighttpd({ configText: ({ port, dir }) => `
server.modules += ("mod_fastcgi")
server.document-root = "${dir}"
server.bind = "127.0.0.1"
server.port = ${port}
fastcgi.server = ( "/" => ((
  "socket" => "${path.join(own, 'proxy.sock')}", "bin-path" => "${PROXY_BIN}", "max-procs" => 4,
  "check-local" => "disable", "fix-root-scriptname" => "enable", "bin-environment" => ( ${environment} ),
)))
` });
    try {
      const answers = await crowd(web.url, 24);
      assert.deepEqual(answers.map((a) => a.status), Array(24).fill(200));
      assert.equal(entra.arrivals - before, 1, 'one token request for 4 processes started at once');
      const workers = descendants(web.pid);
      assert.equal(workers.length, 4, 'lighttpd started 4 processes');
      assert.equal(web.output.match(/another process of the host obtained it/g)?.length, 3, web.output);
    } finally {
      entra.delayMs = 0;
      const workers = descendants(web.pid);
      await web.stop();
      await waitFor(() => workers.every((pid) => !isRunning(pid)), 'lighttpd\'s processes stopped');
    }
  });
});

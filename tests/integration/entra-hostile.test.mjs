// Keyless Azure (issue 23): hostile token endpoints. Through lighttpd with 2 worker
// processes sharing a state file, against the Entra stand-in's hostile modes
// (tests/upstream/entra-mock.mjs): a slow endpoint (the token request's own timeout: the
// start goes on, requests get 503 upstream_auth_failed within it, the loop keeps answering),
// garbage, a 10-MiB body (read no further than 64 KiB), a token for another audience (one
// renewal, then Azure's 401 reaches the client: no loop), absurd expires_in values, and
// Entra down while a token is valid and past its expiry.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { CHAT, assertNoSecretIn, crowd, startKeylessHost, startStandIns } from './entra-stack.mjs';
import { postJson, request, sleep, waitFor } from './harness.mjs';

const WORKERS = 2;
const SECRET = 'hostile-secret-value-Kw3';

let entra, azure, standIns;

before(async () => { ({ entra, azure } = standIns = await startStandIns({ secret: SECRET, lifetimeS: 3 })); });
after(() => standIns.close());

const startHost = () => startKeylessHost({ entra, azure, secret: SECRET, workers: WORKERS });

function assertAuthFailed(answer) {
  assert.equal(answer.status, 503, String(answer.body));
  const error = JSON.parse(answer.body).error;
  assert.equal(error.code, 'upstream_auth_failed');
  assert.equal(error.type, 'api_error');
}

// Started while Entra misbehaves: a warning (the start goes on) matching `said`, requests
// refused with 503 upstream_auth_failed, then, Entra healed, served by themselves.
async function startsAnywayAndRecovers(said, heal) {
  const host = await startHost();
  try {
    const warning = await host.proxy.waitForLog(/no Entra ID token at start/);
    assert.match(warning, said);
    assertAuthFailed(await postJson(`${host.url}/v1/chat/completions`, CHAT));
    heal();
    await waitFor(async () => (await postJson(`${host.url}/v1/chat/completions`, CHAT)).status === 200, 'recovery', 20000);
    assertNoSecretIn(host.proxy.logs(), SECRET);
  } finally {
    heal();
    await host.stop();
  }
}

describe('a hostile token endpoint', () => {
  it('slow beyond the token request\'s 10 s: the start goes on, requests get 503 within it, the loop keeps answering', async () => {
    entra.delayMs = 25000;
    const host = await startHost();
    try {
      const begun = Date.now();
      await waitFor(() => /no Entra ID token at start/.test(host.proxy.logs()), 'the start\'s warning', 15000);
      assert.ok(Date.now() - begun < 12000, `the start waited ${Date.now() - begun} ms for Entra`);
      assert.match(host.proxy.logs(), /no Entra ID token at start .*could not be reached: .*(timed out|Timeout)/i);
      const started = Date.now();
      const [refused, health] = await Promise.all([
        postJson(`${host.url}/v1/chat/completions`, CHAT),
        (async () => { await sleep(300); const t = Date.now(); const a = await request(`${host.url}/healthz`); return { ...a, ms: Date.now() - t }; })(),
      ]);
      assertAuthFailed(refused);
      assert.ok(Date.now() - started < 12000, `answered in ${Date.now() - started} ms`);
      assert.equal(health.status, 200);
      assert.ok(health.ms < 2000, `/healthz took ${health.ms} ms while a token request hung`);
      entra.delayMs = 0;
      await waitFor(async () => (await postJson(`${host.url}/v1/chat/completions`, CHAT)).status === 200, 'recovery', 25000);
    } finally {
      entra.delayMs = 0;
      await host.stop();
    }
  });

  it('slow at start, then stopped: SIGTERM ends the start\'s token request at once, status 0', async () => {
    entra.delayMs = 25000;
    const host = await startHost();
    try {
      await sleep(500);
      const started = Date.now();
      await host.stop();  // asserts status 0
      assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
      assert.match(host.proxy.logs(), /stopped while trying the Entra ID credential/);
    } finally {
      entra.delayMs = 0;
    }
  });

  it('garbage (an HTML page with 200): a clear log line, 503, then recovery', async () => {
    entra.mode = 'garbage';
    await startsAnywayAndRecovers(/the token endpoint answered 200 with no JSON object/, () => { entra.mode = ''; });
  });

  it('a 10-MiB body: read no further than 64 KiB, a clear log line, 503, then recovery', async () => {
    entra.mode = 'huge';
    await startsAnywayAndRecovers(/answer is longer than 64 KiB: not read/, () => { entra.mode = ''; });
  });

  for (const value of [0, -5, 'soon'])
    it(`expires_in ${JSON.stringify(value)}: no token taken, 503, then recovery`, async () => {
      entra.expiresIn = value;
      await startsAnywayAndRecovers(/no usable access_token|no future expires_in/, () => { entra.expiresIn = undefined; });
    });

  it('expires_in of 10 years: believed for a day at most, the token used, no renewal storm', async () => {
    entra.expiresIn = 10 * 365 * 24 * 3600;
    entra.lifetimeS = 60;
    const before = entra.arrivals;
    const host = await startHost();
    try {
      for (let i = 0; i < 5; i++) {
        assert.deepEqual((await crowd(host.url, 8)).map((a) => a.status), Array(8).fill(200));
        await sleep(400);
      }
      assert.equal(entra.arrivals - before, 1, 'one token request for the host');
      assert.match(host.proxy.logs(), /obtained at start, valid 86400 s/);
    } finally {
      entra.expiresIn = undefined;
      entra.lifetimeS = 3;
      await host.stop();
    }
  });

  it('a token for another audience: renewed once, then Azure\'s 401 reaches the client; no loop', async () => {
    entra.mode = 'audience';
    const before = entra.arrivals;
    const host = await startHost();
    try {
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await postJson(`${host.url}/v1/chat/completions`, CHAT));
      assert.deepEqual(answers.map((a) => a.status), Array(6).fill(401));
      const asked = entra.arrivals - before;
      assert.ok(asked >= 2 && asked <= 1 + WORKERS, `${asked} token requests for 6 refused requests`);
    } finally {
      entra.mode = '';
      await host.stop();
    }
  });
});

describe('Entra down, with the host\'s one token', () => {
  it('while the token is valid nothing fails; past its expiry 503 upstream_auth_failed, then recovery', async () => {
    entra.lifetimeS = 6;  // renewed at 3 s: at least 2 s of use left when Entra goes down
    const host = await startHost();
    try {
      assert.deepEqual((await crowd(host.url, 8)).map((a) => a.status), Array(8).fill(200));
      entra.down = true;
      const during = [];
      for (let end = Date.now() + 1000; Date.now() < end; await sleep(50)) during.push(...await crowd(host.url, 4));
      assert.deepEqual(during.filter((a) => a.status !== 200).map((a) => a.status), []);
      await sleep(6500);  // past the token's expiry
      assertAuthFailed(await postJson(`${host.url}/v1/chat/completions`, CHAT));
      await host.proxy.waitForLog(/AADSTS90033/);
      const metrics = (await request(`${host.url}/metrics`)).text;
      assert.match(metrics, /^aop_entra_token_requests_total\{source="client-secret",outcome="failed"\} [1-9]/m);
      assert.match(metrics, /^aop_entra_token_expiry_seconds\{source="client-secret"\} 0$/m);
      entra.down = false;
      await waitFor(async () => (await postJson(`${host.url}/v1/chat/completions`, CHAT)).status === 200, 'recovery', 15000);
      assert.deepEqual((await crowd(host.url, 8)).map((a) => a.status), Array(8).fill(200));
    } finally {
      entra.down = false;
      entra.lifetimeS = 3;
      await host.stop();
    }
  });
});

// Keyless Azure with a certificate (issue 23): AZURE_OPENAI_PROXY_CREDENTIAL=client-certificate
// and AZURE_CLIENT_CERTIFICATE_PATH (a PEM with the certificate and its key, made here with
// `openssl req -x509`). Through lighttpd against the Entra stand-in, which verifies each
// client assertion against the registered certificate (tests/upstream/entra-certificate.mjs),
// and an Azure stand-in that takes only the stand-in's unexpired tokens: chat and a stream
// succeed; a certificate Entra does not know stops the start with AADSTS700027 in one line
// and no key anywhere; --check-config refuses a PEM without its key in one line.
// Also the `default` chain taking the certificate from the environment.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { PROXY_BIN, openStream, postJson, proxyEnv, tempDir } from './harness.mjs';
import { makeCertificate, runProxyToEnd, startKeylessProxy } from './entra-stack.mjs';

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] };
let entra, azure, dir, registered, unknown, certificateOnly, keyOnly;

before(async () => {
  dir = tempDir('entra-certificate');
  registered = makeCertificate(dir, 'registered');
  unknown = makeCertificate(dir, 'unknown');
  certificateOnly = registered.cert;
  keyOnly = registered.key;
  entra = createEntraMock({ certificatePem: fs.readFileSync(registered.cert, 'utf8'), lifetimeS: 4 });
  await entra.listen();
  azure = createAzureMock({ verifyBearer: (token) => entra.verify(token) });
  await azure.listen();
});

after(async () => {
  await azure.close();
  await entra.close();
});

const certificateEnv = (pem, extra = {}) => ({
  AZURE_OPENAI_PROXY_CREDENTIAL: 'client-certificate', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
  AZURE_CLIENT_CERTIFICATE_PATH: pem, AZURE_AUTHORITY_HOST: entra.url, ...extra,
});

const startKeyless = (env) => startKeylessProxy({ azure, workers: 2, env });

function assertNoKeyIn(text) {
  for (const secret of [registered.keyText, unknown.keyText])
    assert.ok(!text.includes(secret.split('\n')[1]), 'a private key showed');
  assert.ok(!/PRIVATE KEY/.test(text), 'a private key showed');
  assert.ok(!/Bearer ey/.test(text), 'a token showed');
}

const checkConfig = (env) => spawnSync(PROXY_BIN, ['--check-config'], { env: proxyEnv({ AZURE_OPENAI_ENDPOINT: azure.url, ...env }), encoding: 'utf8' });

describe('client-certificate', () => {
  it('chat and a stream succeed with Bearer tokens from a signed client assertion', async () => {
    const refusedBefore = azure.refusedTokens.length;
    const stack = await startKeyless(certificateEnv(registered.both));
    try {
      const answer = await postJson(`${stack.url}/v1/chat/completions`, CHAT);
      assert.equal(answer.status, 200, String(answer.body));
      assert.equal(JSON.parse(answer.body).object, 'chat.completion');
      const stream = await openStream(`${stack.url}/v1/chat/completions`, { ...CHAT, stream: true }).done;
      assert.equal(stream.status, 200);
      assert.equal(stream.events.at(-1), 'data: [DONE]');
      assert.ok(entra.counts.certificate >= 1, 'Entra took a certificate assertion');
      assert.equal(entra.counts.refused, 0, 'Entra refused no assertion');
      assert.equal(azure.refusedTokens.length - refusedBefore, 0, 'Azure refused no token');
      assert.match(stack.proxy.logs(), /Entra ID token \(client-certificate, tenant test-tenant, client test-client/);
      assertNoKeyIn(stack.proxy.logs());
    } finally {
      await stack.stop();
    }
  });

  // The start's check of the credential (issue 23): a certificate Entra does not know stops
  // the program with one line naming the source and Entra's code, never the key.
  it('a certificate Entra does not know stops the start: AADSTS700027 and the source in one line, exit 1', async () => {
    const own = tempDir('entra-certificate-unknown');
    const socket = path.join(own, 'proxy.sock');
    const run = await runProxyToEnd(['--listen', socket],
      { AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'), ...certificateEnv(unknown.both) });
    assert.equal(run.status, 1, run.stderr);
    const named = run.stderr.split('\n').filter((line) => /AADSTS/.test(line));
    assert.equal(named.length, 1, run.stderr);
    assert.match(named[0], /Entra ID refused the credential \(client-certificate, tenant test-tenant[^)]*\): the token endpoint answered 401 invalid_client: "?AADSTS700027.*; not starting$/);
    assertNoKeyIn(run.stderr);
    assert.ok(!fs.existsSync(socket), 'the socket is removed');
  });
});

describe('client-certificate in --check-config', () => {
  it('names the source and shows no key', () => {
    const run = checkConfig(certificateEnv(registered.both));
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Entra ID credential: client-certificate, tenant test-tenant, client test-client/);
    assertNoKeyIn(run.stdout + run.stderr);
  });

  for (const [what, pem, line] of [
    ['a PEM without its private key', () => certificateOnly, /AZURE_CLIENT_CERTIFICATE_PATH: '[^']*registered\.crt' holds no private key/],
    ['a PEM without its certificate', () => keyOnly, /AZURE_CLIENT_CERTIFICATE_PATH: '[^']*registered\.key' holds no PEM certificate/],
    ['an unreadable file', () => path.join(dir, 'missing.pem'), /AZURE_CLIENT_CERTIFICATE_PATH: cannot read '[^']*missing\.pem'/],
    ['a key that is not the certificate\'s', () => {
      const mixed = path.join(dir, 'mixed.pem');
      fs.writeFileSync(mixed, fs.readFileSync(registered.cert, 'utf8') + unknown.keyText);
      return mixed;
    }, /the private key is not the certificate's/],
  ]) {
    it(`refuses ${what} in one line`, () => {
      const run = checkConfig(certificateEnv(pem()));
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, line);
      assert.equal(run.stderr.trim().split('\n').filter((l) => /CERTIFICATE_PATH/.test(l)).length, 1, run.stderr);
      assertNoKeyIn(run.stdout + run.stderr);
    });
  }
});

describe('default', () => {
  it('takes the certificate the environment names, says so at start, and serves with it', async () => {
    const env = { ...certificateEnv(registered.both), AZURE_OPENAI_PROXY_CREDENTIAL: 'default' };
    const before = entra.counts.certificate;
    const stack = await startKeyless(env);
    try {
      const answer = await postJson(`${stack.url}/v1/chat/completions`, CHAT);
      assert.equal(answer.status, 200, String(answer.body));
      assert.ok(entra.counts.certificate > before, 'a certificate assertion was sent');
      assert.match(stack.proxy.logs(), /Entra ID credential: client-certificate \(taken by default: AZURE_CLIENT_CERTIFICATE_PATH is set\), tenant test-tenant/);
      assertNoKeyIn(stack.proxy.logs());
    } finally {
      await stack.stop();
    }
  });
});

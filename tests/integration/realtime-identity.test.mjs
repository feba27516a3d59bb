// How the realtime companion (azure-openai-proxy-realtime, issue 25) reaches Azure as the
// FastCGI program does: keyless with its Entra ID token (the Entra stand-in, short-lived
// tokens, the realtime stand-in checking `Authorization: Bearer` as Azure does; one token
// for the host, which a plain CGI call of the FastCGI program finds in the state file), the
// routing file's targets with their own credentials (a target down or at its limit, the
// next one opens the session), and the dated preview route when the setting names it.
// Clients talk to the companion directly on a loopback port (realtime-socket.test.mjs
// covers the web servers in front of it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import WebSocket from 'ws';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { ROOT, canConnect, freePort, proxyEnv, sleep, startChild, tempDir, waitFor } from './harness.mjs';
import { runProxyToEnd } from './entra-stack.mjs';
import { makeCertificate } from './upstream-http2-parts.mjs';

const REALTIME_BIN = process.env.REALTIME_BIN || path.join(ROOT, 'build/asan/azure-openai-proxy-realtime');
const CLIENT_KEY = 'alice-key-123';
const SECRET = 'rt-secret-Q7+&=value';

const identity = (entra, secret = SECRET) => ({
  AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
  AZURE_CLIENT_SECRET: secret, AZURE_AUTHORITY_HOST: entra.url,
});

// The companion on a loopback port with its own state file; `env` adds to the client key
// and the CA bundle of the stand-ins' certificate.
async function startCompanion(certificate, env) {
  const port = await freePort();
  const stateFile = path.join(tempDir('rt-state'), 'state');
  const companion = startChild(REALTIME_BIN, ['--listen', `127.0.0.1:${port}`], {
    env: proxyEnv({
      AZURE_OPENAI_PROXY_API_KEYS: `alice:${CLIENT_KEY}`, AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile,
      AZURE_OPENAI_PROXY_STATE_FILE: stateFile, ...env,
    }),
  });
  companion.stateFile = stateFile;
  await waitFor(async () => companion.exited || await canConnect({ port, host: '127.0.0.1' }), 'the companion');
  if (companion.exited) throw new Error(`the companion exited at start: ${companion.output}`);
  companion.port = port;
  return companion;
}

// A session's first event (session.created), or the HTTP refusal it met: { status, body }.
function openSession(port, model = 'gpt-realtime') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/realtime?model=${model}`, ['realtime'],
      { headers: { 'api-key': CLIENT_KEY } });
    ws.once('message', (data) => resolve({ ws, event: JSON.parse(data.toString()) }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body: body ? JSON.parse(body) : null }));
    });
    ws.once('error', reject);
  });
}

async function closeSession(session) {
  if (!session.ws) return;
  const closed = new Promise((resolve) => session.ws.once('close', resolve));
  session.ws.close(1000);
  await closed;
}

const iatOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).iat;

// The Entra stand-in with tokens of `lifetimeS`, the realtime stand-in taking only its
// tokens, and the companion keyless between them, for the describe() it is called in.
function keylessStack(lifetimeS, env = {}) {
  const stack = {};
  before(async () => {
    const certificate = makeCertificate();
    stack.entra = createEntraMock({ clientSecret: SECRET, lifetimeS });
    await stack.entra.listen();
    stack.azure = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'no-key-here',
      verifyBearer: (t) => stack.entra.verify(t) });
    stack.companion = await startCompanion(certificate, { AZURE_OPENAI_ENDPOINT: stack.azure.url, ...identity(stack.entra), ...env });
  });
  after(async () => {
    const stopped = await stack.companion?.stop();
    await stack.azure?.close();
    await stack.entra?.close();
    assert.equal(stopped?.code, 0, stack.companion?.output);
  });
  return stack;
}

describe('realtime sessions with the Entra ID token', () => {
  const stack = keylessStack(4);  // tokens renewed every 2 s

  it('opens a session keyless, and the next one after a renewal with the new token', async () => {
    const { entra, azure, companion } = stack;
    const first = await openSession(companion.port);
    assert.equal(first.event?.type, 'session.created', JSON.stringify(first));
    const firstToken = azure.sessions.at(-1).bearer;
    assert.ok(firstToken && !entra.verify(firstToken), 'the session opened with a valid Entra token');
    assert.equal(azure.upgrades.at(-1).headers['api-key'], undefined, 'no key went upstream');
    // The 4-s token is renewed at half its life: the next session carries the new one.
    const requests = entra.total();
    await waitFor(() => entra.total() > requests, 'a renewal', 8000);
    await sleep(100);
    const second = await openSession(companion.port);
    assert.equal(second.event?.type, 'session.created', JSON.stringify(second));
    const secondToken = azure.sessions.at(-1).bearer;
    assert.notEqual(secondToken, firstToken);
    assert.equal(entra.verify(secondToken), '');
    await closeSession(first);
    await closeSession(second);
    assert.doesNotMatch(companion.output, /Bearer ey|rt-secret/, 'no token nor secret in the log');
  });
});

describe('a token Azure refuses', () => {
  const stack = keylessStack(3600, { AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT: '2' });
  let renewedAt = 0;  // when the companion last renewed a token for a refusal

  it('reaches the client as Azure\'s 401, and the next session has a new token', async () => {
    const { entra, azure, companion } = stack;
    const opened = await openSession(companion.port);
    assert.equal(opened.event?.type, 'session.created');
    const held = azure.sessions.at(-1).bearer;
    await closeSession(opened);
    // Revoked: every token issued before the next second.
    entra.revokedBefore = (iatOf(held) + 1) * 1000;
    await waitFor(() => Date.now() > entra.revokedBefore, 'the next second');
    const refused = await openSession(companion.port);
    assert.equal(refused.status, 401, JSON.stringify(refused));
    assert.match(refused.body?.error?.message ?? '', /invalid subscription key|Access denied/);
    const requests = entra.total();
    const again = await openSession(companion.port);
    assert.equal(again.event?.type, 'session.created', JSON.stringify(again));
    assert.equal(entra.total(), requests + 1, 'one token request for the refusal');
    assert.notEqual(azure.sessions.at(-1).bearer, held);
    renewedAt = Date.now();
    await closeSession(again);
  });

  it('a session that finds no token within the handshake deadline hears 503, the next one opens', async () => {
    const { entra, azure, companion } = stack;
    await sleep(Math.max(0, renewedAt + 5500 - Date.now()));  // a refusal renews at most every 5 s
    entra.revokedBefore = (iatOf(azure.sessions.at(-1).bearer) + 1) * 1000;
    await waitFor(() => Date.now() > entra.revokedBefore, 'the next second');
    entra.delayMs = 4000;  // a slow Entra: longer than the 2-s handshake deadline
    try {
      assert.equal((await openSession(companion.port)).status, 401);
      const waited = await openSession(companion.port);
      assert.equal(waited.status, 503, JSON.stringify(waited));
      assert.equal(waited.body?.error?.code, 'upstream_auth_failed');
    } finally {
      entra.delayMs = 0;
    }
    // Until the slow renewal lands, a session may still hear 503, or be cut when the token
    // comes so late that Azure's handshake cannot finish within the 2-s deadline.
    let opened;
    await waitFor(async () => (opened = await openSession(companion.port).catch(() => ({}))).event,
      'a session once the token came', 15000);
    assert.equal(opened.event.type, 'session.created');
    await closeSession(opened);
  });
});

describe('one token for the host', () => {
  const stack = keylessStack(3600);

  it('the FastCGI program finds the companion\'s token in the state file and asks Entra nothing', async () => {
    const { entra, companion } = stack;
    const chat = createAzureMock({ verifyBearer: (token) => entra.verify(token) });
    await chat.listen();
    try {
      const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] });
      const requests = entra.total();
      assert.equal(requests, 1, 'the companion\'s start asked once');
      const run = await runProxyToEnd([], {
        ...identity(entra), AZURE_OPENAI_ENDPOINT: chat.url, AZURE_OPENAI_PROXY_STATE_FILE: companion.stateFile,
        GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'POST', SCRIPT_NAME: '/proxy',
        PATH_INFO: '/v1/chat/completions', REQUEST_URI: '/proxy/v1/chat/completions', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(Buffer.byteLength(body)),
      }, { input: body });
      assert.doesNotMatch(run.stdout, /^Status: [45]/m, run.stdout + run.stderr);
      assert.match(run.stdout, /chat\.completion/);
      assert.equal(entra.total(), requests, 'a plain CGI call took the host\'s token');
    } finally {
      await chat.close();
    }
  });
});

describe('the start tries the credential', () => {
  it('stops with one line and status 1 on a wrong secret', async () => {
    const certificate = makeCertificate();
    const entra = createEntraMock({ clientSecret: SECRET });
    await entra.listen();
    const port = await freePort();
    try {
      const child = spawn(REALTIME_BIN, ['--listen', `127.0.0.1:${port}`], {
        env: proxyEnv({
          AZURE_OPENAI_ENDPOINT: 'https://127.0.0.1:9', AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile,
          AZURE_OPENAI_PROXY_STATE_FILE: path.join(tempDir('rt-state'), 'state'), ...identity(entra, 'a-wrong-secret'),
        }),
      });
      let output = '';
      child.stderr.on('data', (chunk) => { output += chunk; });
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
      const status = await new Promise((resolve) => child.on('close', resolve));
      clearTimeout(timer);
      assert.equal(status, 1, output);
      const lines = output.split('\n').filter((l) => /refused the credential/.test(l));
      assert.equal(lines.length, 1, output);
      assert.match(lines[0], /^azure-openai-proxy(-realtime)?: .*Entra ID refused the credential.*AADSTS7000215/);
      assert.doesNotMatch(output, /a-wrong-secret/);
      assert.equal(await canConnect({ port, host: '127.0.0.1' }), false, 'nothing listens');
    } finally {
      await entra.close();
    }
  });
});

describe('the routing file\'s targets', () => {
  let certificate, entra, limited, brief, keyless, spare, companion, downPort;

  before(async () => {
    certificate = makeCertificate();
    entra = createEntraMock({ clientSecret: SECRET, lifetimeS: 3600 });
    await entra.listen();
    limited = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'limited-key' });
    limited.refuseAll = { status: 429, retryAfter: 30 };
    brief = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'brief-key' });
    brief.refuseAll = { status: 429, retryAfter: 2 };
    keyless = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'no-key-here', verifyBearer: (t) => entra.verify(t) });
    spare = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'spare-key' });
    downPort = await freePort();  // nothing listens there
    const dir = tempDir('rt-routing');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({
      endpoints: {
        limited: { url: limited.url, key: 'env:LIMITED_KEY' },
        down: { url: `https://127.0.0.1:${downPort}`, key: 'inline-down-key', priority: 1 },
        keyless: { url: keyless.url, priority: 2, credential: {
          source: 'client-secret', tenant: 'test-tenant', client_id: 'test-client', client_secret: 'env:RT_SECRET',
          authority_host: entra.url } },
        spare: { url: spare.url, key: 'spare-key', priority: 3 },
        brief: { url: brief.url, key: 'brief-key' },
      },
      models: { 'gpt-realtime': ['limited', 'down', 'keyless'], 'gpt-4o-mini-realtime-preview': ['brief', 'spare'] },
      retry: { max_tries: 3 },
    }));
    companion = await startCompanion(certificate, {
      AZURE_OPENAI_ENDPOINT: spare.url, AZURE_OPENAI_TOKEN: 'spare-key', AZURE_OPENAI_PROXY_CONFIG: file,
      LIMITED_KEY: 'limited-key', RT_SECRET: SECRET,
    });
  });

  after(async () => {
    const stopped = await companion?.stop();
    for (const standIn of [limited, brief, keyless, spare]) await standIn?.close();
    await entra?.close();
    assert.equal(stopped?.code, 0, companion?.output);
  });

  it('passes a target at its limit and one down, and opens on the next with its own token', async () => {
    const first = await openSession(companion.port);
    assert.equal(first.event?.type, 'session.created', JSON.stringify(first));
    assert.equal(limited.upgrades.length, 1, 'the limited target was tried first');
    assert.equal(limited.upgrades[0].headers['api-key'], 'limited-key');
    assert.equal(keyless.sessions.length, 1);
    assert.equal(entra.verify(keyless.sessions[0].bearer), '', 'the keyless endpoint got its Entra token');
    assert.equal(keyless.upgrades[0].headers['api-key'], undefined);
    // The limited target cools down (its retry-after), the one down opened its failure count:
    // the next session goes on without asking the limited one again.
    const second = await openSession(companion.port);
    assert.equal(second.event?.type, 'session.created', JSON.stringify(second));
    assert.equal(limited.upgrades.length, 1, 'a target cooling down is not asked');
    assert.equal(keyless.sessions.length, 2);
    // Another model of the file goes to its own targets, with each endpoint's key.
    const other = await openSession(companion.port, 'gpt-4o-mini-realtime-preview');
    assert.equal(other.event?.type, 'session.created', JSON.stringify(other));
    assert.equal(brief.upgrades.at(-1).headers['api-key'], 'brief-key');
    assert.equal(spare.upgrades.at(-1).headers['api-key'], 'spare-key');
    for (const session of [first, second, other]) await closeSession(session);
  });

  it('cools a target down as long as its 429 asked (Retry-After), not the default 10 s', async () => {
    const asked = brief.upgrades.length;
    assert.ok(asked >= 1, 'the brief target refused a session before');
    await sleep(3000);  // its Retry-After: 2
    const session = await openSession(companion.port, 'gpt-4o-mini-realtime-preview');
    assert.equal(session.event?.type, 'session.created', JSON.stringify(session));
    assert.equal(brief.upgrades.length, asked + 1, 'asked again once its wait was over');
    await closeSession(session);
  });

  it('tells the client when every target is refusing', async () => {
    keyless.refuseAll = { status: 503 };
    try {
      const refused = await openSession(companion.port);
      assert.equal(refused.status, 502, JSON.stringify(refused));  // Azure's 503 is no answer of the client's
      assert.equal(typeof refused.body?.error?.message, 'string');
    } finally {
      keyless.refuseAll = null;
    }
  });
});

describe('the dated preview route', () => {
  let certificate, azure, companion;

  before(async () => {
    certificate = makeCertificate();
    azure = await startRealtimeSocketStandIn({ tls: certificate, apiKey: 'preview-key' });
    companion = await startCompanion(certificate, {
      AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_TOKEN: 'preview-key',
      AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION: '2024-10-01-preview',
    });
  });

  after(async () => {
    const stopped = await companion?.stop();
    await azure?.close();
    assert.equal(stopped?.code, 0, companion?.output);
  });

  it('opens /openai/realtime?api-version=…&deployment=… when the setting names its version', async () => {
    const session = await openSession(companion.port);
    assert.equal(session.event?.type, 'session.created', JSON.stringify(session));
    assert.match(azure.upgrades.at(-1).url, /^\/openai\/realtime\?api-version=2024-10-01-preview&deployment=gpt-realtime$/);
    assert.equal(azure.sessions.at(-1).apiVersion, '2024-10-01-preview');
    await closeSession(session);
  });
});

// What the keyless tests share (entra-host, entra-hostile, entra-credentials, entra-certificate,
// entra-proof): the proxy with an identity against the Entra stand-in, its workers sharing
// a state file of their own, behind lighttpd (or nginx); a certificate and its key; a
// crowd of requests; no secret or token in a text.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { LIGHTTPD, PROXY_BIN, postJson, proxyEnv, startHostBehind } from './harness.mjs';

export const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] };

// The Entra stand-in with `secret` and tokens of `lifetimeS`, and an Azure stand-in that
// takes only its unexpired tokens for its audience.
export async function startStandIns({ secret, lifetimeS }) {
  const entra = createEntraMock({ clientSecret: secret, lifetimeS });
  await entra.listen();
  const azure = createAzureMock({ verifyBearer: (token) => entra.verify(token) });
  await azure.listen();
  return { entra, azure, close: async () => { await azure.close(); await entra.close(); } };
}

// The proxy with `workers` processes and the identity `env` names, behind `web` (harness.mjs's
// LIGHTTPD or hosts.mjs's NGINX); its stop() fails on an unclean exit.
export const startKeylessProxy = ({ azure, workers, env, web = LIGHTTPD }) =>
  startHostBehind(web, { workers, env: { AZURE_OPENAI_ENDPOINT: azure.url, ...env } });

export const startKeylessHost = ({ entra, azure, secret, workers, extra = {} }) => startKeylessProxy({
  azure, workers, env: {
    AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_CLIENT_SECRET: secret, AZURE_AUTHORITY_HOST: entra.url, ...extra,
  },
});

export const crowd = (url, n, body = CHAT) =>
  Promise.all(Array.from({ length: n }, () => postJson(`${url}/v1/chat/completions`, body)));

export function assertNoSecretIn(text, secret) {
  assert.ok(!text.includes(secret), 'the secret showed');
  assert.ok(!/Bearer ey/.test(text), 'a token showed');
}

// A self-signed certificate and its key in `dir`, apart and in one PEM file (`both`) as the
// SDKs read it.
export function makeCertificate(dir, name) {
  const key = path.join(dir, `${name}.key`), cert = path.join(dir, `${name}.crt`), both = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  fs.writeFileSync(both, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'));
  return { key, cert, both, keyText: fs.readFileSync(key, 'utf8') };
}

// The proxy run to its end (asynchronously: the stand-ins answer from this process): a
// start that stops, or a plain CGI call (`input` on its stdin). SIGKILL after `timeoutMs`.
export function runProxyToEnd(args, env, { timeoutMs = 20000, input = '' } = {}) {
  return new Promise((resolve) => {
    const child = spawn(PROXY_BIN, args, { env: proxyEnv(env) });
    let stdout = '', stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.stdin.on('error', () => {});  // a start that stops reads nothing
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
}

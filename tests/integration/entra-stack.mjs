// What the keyless tests share (entra-host, entra-hostile, entra-credentials, entra-certificate): the proxy
// with a client-secret identity against the Entra stand-in, its workers sharing a state
// file of their own, behind lighttpd; a crowd of requests; no secret or token in a text.
import assert from 'node:assert/strict';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { postJson, startHostBehindLighttpd } from './harness.mjs';

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

// The proxy with `workers` processes and the identity `env` names, behind lighttpd; its
// stop() fails on an unclean exit.
export const startKeylessProxy = ({ azure, workers, env }) =>
  startHostBehindLighttpd({ workers, env: { AZURE_OPENAI_ENDPOINT: azure.url, ...env } });

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

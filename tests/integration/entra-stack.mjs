// What the keyless tests share (entra-host.test.mjs, entra-hostile.test.mjs): the proxy
// with a client-secret identity against the Entra stand-in, its workers sharing a state
// file of their own, behind lighttpd; a crowd of requests; no secret or token in a text.
import assert from 'node:assert/strict';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { createEntraMock } from '../upstream/entra-mock.mjs';
import { postJson, startLighttpd, startProxy, tempDir } from './harness.mjs';

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

export async function startKeylessHost({ entra, azure, secret, workers, extra = {} }) {
  const own = tempDir('entra-host');
  const proxy = await startProxy({
    AZURE_OPENAI_ENDPOINT: azure.url, AZURE_OPENAI_PROXY_WORKERS: String(workers), AZURE_OPENAI_PROXY_THREADS: '2',
    AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
    AZURE_OPENAI_PROXY_CREDENTIAL: 'client-secret', AZURE_TENANT_ID: 'test-tenant', AZURE_CLIENT_ID: 'test-client',
    AZURE_CLIENT_SECRET: secret, AZURE_AUTHORITY_HOST: entra.url, ...extra,
  }, { dir: own });
  const web = await startLighttpd({ socket: proxy.socket });
  return {
    proxy, url: web.url, stateFile: path.join(own, 'state'),
    stop: async () => {
      await web.stop();
      const stopped = await proxy.stop();
      assert.equal(stopped.code, 0, `the proxy exited with ${JSON.stringify(stopped)}`);
    },
  };
}

export const crowd = (url, n, body = CHAT) =>
  Promise.all(Array.from({ length: n }, () => postJson(`${url}/v1/chat/completions`, body)));

export function assertNoSecretIn(text, secret) {
  assert.ok(!text.includes(secret), 'the secret showed');
  assert.ok(!/Bearer ey/.test(text), 'a token showed');
}

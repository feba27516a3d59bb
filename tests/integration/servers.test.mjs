// Every host the proxy ships configuration for, each started for real on loopback with
// the files from deploy/ (rendered for test ports and paths), and put through the same
// checks: answers, unbuffered streams, root and sub-path mounts, chunked and 5 MiB bodies,
// forward-proxy use, abandoned streams, and a clean stop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { HOSTS } from './hosts.mjs';
import {
  PROXY_BIN, ROOT, canConnect, curl, freePort, openStream, postJson, processesMentioning,
  request, sleep, startChild, streamInLockstep, tempDir, waitFor,
} from './harness.mjs';

const KEY = 'server-test-key';
const chat = (extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...extra });
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

for (const [name, start] of Object.entries(HOSTS)) {
  describe(name, () => {
    let mock, host;

    before(async () => {
      mock = createAzureMock({ apiKey: KEY });
      await mock.listen();
      host = await start(mock);
    });

    after(async () => {
      await host?.stop();
      await mock?.close();
    });

    const headers = { authorization: `Bearer ${KEY}` };

    it('answers a chat completion and an embedding with the upstream answer', async () => {
      let res = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      assert.match(res.json.choices[0].message.content, /You said: hi/);
      assert.equal(mock.lastRequest().headers['api-key'], KEY, 'the client key arrived as api-key');
      assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-4o/chat/completions');
      res = await postJson(`${host.rootUrl}/v1/embeddings`, { model: 'text-embedding-3-small', input: 'x' }, headers);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.object, 'list');
    });

    it('streams each event before the upstream sends the next', async () => {
      const { stream, late } = await streamInLockstep(mock, `${host.rootUrl}/v1/chat/completions`, chat({ stream: true }), headers);
      assert.deepEqual(late, []);
      assert.equal(stream.events[stream.events.length - 1], 'data: [DONE]');
    });

    it('works mounted under a sub-path', async () => {
      const res = await postJson(`${host.subUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-4o/chat/completions');
      const models = await request(`${host.subUrl}/v1/models`);
      assert.equal(models.json.object, 'list');
    });

    it('passes a chunked body and a 5 MiB body intact', async () => {
      const small = JSON.stringify({ model: 'text-embedding-3-small', input: 'chunked body' });
      let res = await curl([`${host.rootUrl}/v1/embeddings`, '-H', `Authorization: Bearer ${KEY}`, '-H', 'Transfer-Encoding: chunked',
        '-H', 'Content-Type: application/json', '--data-binary', small]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'list', res.stdout);
      assert.equal(mock.lastRequest().sha256, sha256(small));

      const big = JSON.stringify({ model: 'text-embedding-3-small', input: 'x'.repeat(5 * 1024 * 1024) });
      const file = path.join(tempDir('body'), 'big.json');
      fs.writeFileSync(file, big);
      res = await curl([`${host.rootUrl}/v1/embeddings`, '-H', `Authorization: Bearer ${KEY}`, '-H', 'Content-Type: application/json',
        '--data-binary', `@${file}`]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'list', res.stdout.slice(0, 300));
      assert.equal(mock.lastRequest().sha256, sha256(big));
    });

    it('reaches the proxy as a forward proxy (absolute-form request line)', async () => {
      const res = await curl(['-x', host.rootUrl, 'http://api.openai.com/v1/chat/completions', '-H', `Authorization: Bearer ${KEY}`,
        '-H', 'Content-Type: application/json', '-d', JSON.stringify(chat())]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'chat.completion', res.stdout.slice(0, 300));
    });

    it('closes the upstream connection within 2 s of the client leaving mid-stream', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      const upstream = mock.lastRequest();
      const left = Date.now();
      stream.abort();
      await waitFor(() => upstream.closedAt > 0, 'the upstream connection to close', 10000);
      assert.ok(upstream.closedAt - left < 2000, `closed ${upstream.closedAt - left} ms after the client left`);
    });

    // nginx drops the request itself when its client leaves; the others learn of it only
    // when they next write, which an SSE comment on an idle stream makes them do.
    it(name.includes('nginx') ? 'sends no heartbeat on an idle stream (nginx notices a client leaving itself)'
      : 'sends a heartbeat comment on an idle stream, so that a client leaving is noticed', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      await sleep(1300);
      stream.abort();
      if (name.includes('nginx')) assert.equal(stream.heartbeats, 0);
      else assert.ok(stream.heartbeats >= 1, `${stream.heartbeats} heartbeats in 1.3 s of silence`);
    });

    it('keeps serving across a graceful restart with a stream open', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      await host.gracefulRestart();
      const res = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      stream.abort();
    });

    it('leaves no proxy process behind when stopped, even with a stream open', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      // The binary is a private copy in host.dir: any process running it is this host's,
      // orphans of earlier restarts included.
      assert.ok(processesMentioning(host.dir).length > 0, 'proxy processes run');
      await host.stop();
      await waitFor(() => processesMentioning(host.dir).length === 0, 'every proxy process to stop', 5000);
      stream.abort();
      host = null;
    });
  });
}

// Beyond AZURE_OPENAI_PROXY_MAX_REQUESTS a request is answered at once, never queued.
describe('a proxy at its request limit (nginx)', () => {
  it('answers 503 with retry-after at once, asks nothing upstream, and serves again when a slot frees', async () => {
    const mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const host = await HOSTS.nginx(mock, { AZURE_OPENAI_PROXY_MAX_REQUESTS: '1' });
    try {
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      mock.pace = async (index) => { if (index === 1) await held; };
      const headers = { authorization: `Bearer ${KEY}` };
      const busy = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }), { ...headers, 'x-mock-scenario': 'paced' });
      await busy.waitForEvents(1);
      const started = Date.now();
      const refused = await postJson(`${host.rootUrl}/v1/chat/completions`, chat({ model: 'refused-model' }), headers);
      assert.ok(Date.now() - started < 2000, 'answered at once');
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.json.error.code, 'proxy_overloaded');
      assert.match(refused.json.error.message, /as many requests as it is set to \(1\)/);
      assert.ok(!mock.requests.some((r) => r.body.includes('refused-model')), 'it never reached the upstream');
      release();
      await busy.done;
      await waitFor(() => /outcome=ok/.test(host.logs()), 'the stream to be logged', 5000);
      const served = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(served.status, 200, served.text);
      assert.match(host.logs(), /POST \/v1\/chat\/completions model=- deployment=- status=503 .*outcome=proxy_overloaded/);
    } finally {
      await host.stop();
      await mock.close();
    }
  });
});

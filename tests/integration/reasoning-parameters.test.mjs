// Reasoning models' parameters (issue 24), with the official openai npm client through
// lighttpd and nginx: max_tokens and temperature sent to a reasoning deployment succeed
// (Azure receives max_completion_tokens, no temperature, every other byte as the SDK sent
// it); a deployment no rule knows teaches the host with one extra round trip, then every
// process of the host (workers, another program on the state file) sends it right;
// AZURE_OPENAI_PROXY_FIX_PARAMETERS=off relays Azure's 400; a 400
// the proxy cannot fix is relayed unchanged, with no second try. The stand-in's reasoning
// deployments refuse as Azure does (tests/upstream/azure-reasoning.mjs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import OpenAI from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { request, startHostBehindLighttpd, suiteHost, tempDir, waitFor } from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const KEY = 'reasoning-key';
const WORKERS = 2;
const messages = [{ role: 'user', content: 'Hello reasoner' }];
const REPLY = 'Hello from the mock! You said: Hello reasoner';

const clientFor = (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });
const to = (mock, deployment) => mock.requests.filter((r) => r.path === `/openai/deployments/${deployment}/chat/completions`);

// lighttpd in front of a proxy with WORKERS worker processes and a state file of its own.
async function lighttpdStack(mock, env = {}, stateFile = path.join(tempDir('reasoning'), 'state'), workers = WORKERS) {
  const host = await startHostBehindLighttpd({ workers, stateFile, env: { AZURE_OPENAI_ENDPOINT: mock.url, ...env } });
  // Another proxy program of the host (its own process, its own lighttpd), on the same state file.
  return { ...host, metrics: true, another: () => lighttpdStack(mock, env, stateFile, 1) };
}

async function nginxStack(mock) {
  const own = tempDir('reasoning-nginx');
  fs.chmodSync(own, 0o755);
  const host = await HOSTS.nginx(mock, {
    AZURE_OPENAI_PROXY_WORKERS: String(WORKERS), AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'),
  });
  return { url: host.rootUrl, logs: host.logs, stop: host.stop };
}

for (const [name, start] of [['lighttpd', lighttpdStack], ['nginx', nginxStack]]) {
  describe(`reasoning parameters through ${name}`, () => {
    const suite = suiteHost(() => createAzureMock({ apiKey: KEY }), start, clientFor);

    it('max_tokens and temperature to a reasoning deployment: the answer, and Azure got the rewrite, the rest byte for byte', async () => {
      const before = to(suite.mock, 'o3-mini').length;
      const completion = await suite.client.chat.completions.create({ model: 'o3-mini', messages, max_tokens: 50, temperature: 0.7, user: 'u-1' });
      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.choices[0].message.content, REPLY);
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.ok(completion.usage.total_tokens > 0);
      const sent = to(suite.mock, 'o3-mini').slice(before);
      assert.equal(sent.length, 1, 'right the first time: one upstream request');
      assert.equal(sent[0].body.toString(), JSON.stringify({ model: 'o3-mini', messages, max_completion_tokens: 50, user: 'u-1' }));
      const line = () => suite.stack.logs().split('\n').find((l) => l.includes('model=o3-mini') && l.includes('rewrites='));
      await waitFor(line, 'the access line');
      assert.match(line(), / status=200 .*rewrites=max_tokens>max_completion_tokens,-temperature/);
    });

    it('streamed: the chunks arrive and Azure got the rewrite', async () => {
      const before = to(suite.mock, 'gpt-5-mini').length;
      const stream = await suite.client.chat.completions.create({ model: 'gpt-5-mini', messages, stream: true, max_tokens: 20, temperature: 0.2, top_p: 1 });
      let text = '';
      let chunks = 0;
      for await (const chunk of stream) {
        if (chunk.choices.length) assert.equal(chunk.object, 'chat.completion.chunk');  // Azure's first one is empty
        chunks++;
        text += chunk.choices[0]?.delta?.content ?? '';
      }
      assert.equal(text, REPLY);
      assert.ok(chunks > 3);
      const sent = to(suite.mock, 'gpt-5-mini').slice(before);
      assert.equal(sent.length, 1);
      // top_p at its default is accepted: left as it was.
      assert.equal(sent[0].body.toString(), JSON.stringify({ model: 'gpt-5-mini', messages, stream: true, max_completion_tokens: 20, top_p: 1 }));
    });

    it('a deployment that is no reasoning model receives the body unchanged', async () => {
      const params = { model: 'gpt-4o', messages, max_tokens: 50, temperature: 0.7 };
      const completion = await suite.client.chat.completions.create(params);
      assert.equal(completion.choices[0].message.content, REPLY);
      assert.equal(to(suite.mock, 'gpt-4o').at(-1).body.toString(), JSON.stringify(params));
    });

    it('an unknown deployment that refuses max_tokens: one extra round trip the first time, none after, in every process', async () => {
      const params = { model: 'mystery-reasoner', messages, max_tokens: 30 };
      const first = await suite.client.chat.completions.create(params);
      assert.equal(first.choices[0].message.content, REPLY);
      let sent = to(suite.mock, 'mystery-reasoner');
      assert.equal(sent.length, 2, 'refused, fixed, sent again');
      assert.equal(sent[0].body.toString(), JSON.stringify(params));
      assert.equal(sent[1].body.toString(), JSON.stringify({ model: 'mystery-reasoner', messages, max_completion_tokens: 30 }));
      // Many at once, over the workers (which one takes a connection is the kernel's choice).
      const count = 24;
      await Promise.all(Array.from({ length: count }, async () => {
        const again = await suite.client.chat.completions.create(params);
        assert.equal(again.choices[0].message.content, REPLY);
      }));
      sent = to(suite.mock, 'mystery-reasoner');
      assert.equal(sent.length, 2 + count, 'no refusal after the first: every request right the first time');
      for (const request of sent.slice(2)) assert.equal(JSON.parse(request.body).max_tokens, undefined);
      assert.match(suite.stack.logs(), /model=mystery-reasoner .*status=200 .*rewrites=max_tokens>max_completion_tokens/);
      if (!suite.stack.metrics) return;  // the nginx site serves /v1 only
      // Counted host-wide: one refusal learned, every request of this model rewritten (a
      // model the operator did not configure is labelled "other").
      const metrics = (await request(`${suite.stack.url}/metrics`)).text;
      assert.match(metrics, /^aop_parameter_refusals_learned_total\{model="other"\} 1$/m);
      assert.match(metrics, new RegExp(`^aop_parameter_rewrites_total\\{model="other"\\} ${count + 1}$`, 'm'));
      assert.match(metrics, /^aop_parameter_rewrites_total\{model="o3-mini"\} 1$/m);
      // A process that never met the refusal (another program on the state file) sends
      // its very first request right.
      const other = await suite.stack.another();
      try {
        const answer = await clientFor(other.url).chat.completions.create(params);
        assert.equal(answer.choices[0].message.content, REPLY);
        sent = to(suite.mock, 'mystery-reasoner');
        assert.equal(sent.length, 3 + count, 'one round trip');
        assert.equal(sent.at(-1).body.toString(), JSON.stringify({ model: 'mystery-reasoner', messages, max_completion_tokens: 30 }));
      } finally {
        await other.stop();
      }
    });

    it('a 400 the proxy cannot fix is relayed unchanged, with no second try', async () => {
      const before = suite.mock.requests.length;
      const res = await request(`${suite.stack.url}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'x-mock-scenario': 'content-filter' },
        body: JSON.stringify({ model: 'o3-mini', messages, max_tokens: 5 }),
      });
      assert.equal(res.status, 400);
      assert.equal(res.json.error.code, 'content_filter');
      assert.equal(res.json.error.innererror.code, 'ResponsibleAIPolicyViolation');
      assert.equal(Number(res.headers['content-length'] ?? res.body.length), res.body.length);
      assert.equal(suite.mock.requests.length, before + 1, 'one upstream request');
    });
  });
}

describe('reasoning parameters: AZURE_OPENAI_PROXY_FIX_PARAMETERS=off', () => {
  let mock, stack;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    stack = await lighttpdStack(mock, { AZURE_OPENAI_PROXY_FIX_PARAMETERS: 'off' });
  });
  after(async () => {
    await stack?.stop();
    await mock?.close();
  });

  it("relays Azure's 400 unchanged and sends the body as the client did", async () => {
    const params = { model: 'o3-mini', messages, max_tokens: 50, temperature: 0.7 };
    await assert.rejects(clientFor(stack.url).chat.completions.create(params), (error) => {
      assert.equal(error.status, 400);
      assert.equal(error.code, 'unsupported_parameter');
      assert.equal(error.param, 'max_tokens');
      return true;
    });
    const sent = to(mock, 'o3-mini');
    assert.equal(sent.length, 1);
    assert.equal(sent[0].body.toString(), JSON.stringify(params));
    assert.doesNotMatch(stack.logs(), /rewrites=/);
  });
});

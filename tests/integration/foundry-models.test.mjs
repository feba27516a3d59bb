// Models that are not OpenAI's, deployed in Azure AI Foundry (issue 24): DeepSeek-R1,
// Llama-3.3-70B-Instruct, Mistral-Large-2411 and grok-3, with the official openai npm
// client through lighttpd (Azure's v1 API, AZURE_OPENAI_APIVERSION=v1, the route
// Foundry's documentation uses) and nginx (the deployments route with a dated
// api-version, which Foundry serves too). Chat, streams and a full tool round trip pass;
// DeepSeek-R1's `reasoning_content` reaches the client byte for byte in the answer and in
// every delta; its usage, on the finish reason's chunk, is counted; no parameter rule fires
// on these names (DeepSeek-R1 takes max_tokens and temperature as sent); Azure's refusal
// of tools for DeepSeek-R1 is relayed once, unchanged. What a client must set: a mapper
// entry for a deployment name with a dot (the proxy's default mapping drops dots, as the
// seed's did). The stand-in's Foundry deployments: tests/upstream/azure-foundry.mjs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import OpenAI from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { openStream, request, startHostBehindLighttpd, suiteHost, tempDir, waitFor } from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const KEY = 'foundry-key';
const LLAMA = 'Llama-3.3-70B-Instruct';
// What an operator sets for a deployment whose name has a dot: the name as it is.
const MAPPER = `${LLAMA}=${LLAMA}`;
const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

const clientFor = (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });

async function lighttpdStack(mock) {
  const host = await startHostBehindLighttpd({
    workers: 2, env: { AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_APIVERSION: 'v1', AZURE_OPENAI_MODEL_MAPPER: MAPPER },
  });
  return {
    ...host, metrics: true,
    // Where Azure got a chat request for `deployment`: the v1 route, the deployment in the body.
    chatCalls: () => mock.requests.filter((r) => r.path === '/openai/v1/chat/completions'),
    sentTo: (r) => JSON.parse(r.body).model,
    checkRoute: (r) => assert.equal(r.query.get('api-version'), null, 'the v1 API: no api-version'),
  };
}

async function nginxStack(mock) {
  const own = tempDir('foundry-nginx');
  fs.chmodSync(own, 0o755);
  const host = await HOSTS.nginx(mock, { AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state'), AZURE_OPENAI_MODEL_MAPPER: MAPPER });
  const route = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
  return {
    url: host.rootUrl, logs: host.logs, stop: host.stop,
    chatCalls: () => mock.requests.filter((r) => route.test(r.path)),
    sentTo: (r) => decodeURIComponent(route.exec(r.path)[1]),
    checkRoute: (r) => assert.equal(r.query.get('api-version'), '2024-10-21'),
  };
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const deltas = chunks.map((c) => c.choices[0]?.delta ?? {});
  return {
    chunks,
    content: deltas.map((d) => d.content ?? '').join(''),
    reasoning: deltas.map((d) => d.reasoning_content ?? '').join(''),
    calls: deltas.flatMap((d) => d.tool_calls ?? []),
  };
}

// The access line of the last request for `model` with status 200, once written.
async function accessLine(stack, model) {
  const find = () => stack.logs().split('\n').filter((l) => l.includes(`model=${model} `) && / status=200 /.test(l)).at(-1);
  await waitFor(find, `the access line of ${model}`);
  return find();
}

for (const [name, start] of [['lighttpd, the v1 API', lighttpdStack], ['nginx, the deployments route', nginxStack]]) {
  describe(`Azure AI Foundry models through ${name}`, () => {
    const suite = suiteHost(() => createAzureMock({ apiKey: KEY }), start, clientFor);

    it('DeepSeek-R1: the answer with its reasoning_content, and the body went as the client sent it', async () => {
      const before = suite.stack.chatCalls().length;
      const params = { model: 'DeepSeek-R1', messages: [{ role: 'user', content: 'Hello R1' }], max_tokens: 2048, temperature: 0.6 };
      const completion = await suite.client.chat.completions.create(params);
      assert.equal(completion.object, 'chat.completion');
      const message = completion.choices[0].message;
      assert.equal(message.content, 'Hello from DeepSeek-R1, you said: Hello R1');
      assert.match(message.reasoning_content, /^Okay, the user greets me/);
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.ok(completion.usage.completion_tokens_details.reasoning_tokens > 0);
      assert.ok(completion.usage.completion_tokens > completion.usage.completion_tokens_details.reasoning_tokens);
      const sent = suite.stack.chatCalls().slice(before);
      assert.equal(sent.length, 1);
      suite.stack.checkRoute(sent[0]);
      assert.equal(suite.stack.sentTo(sent[0]), 'DeepSeek-R1');
      // No reasoning rule fires on DeepSeek-R1: max_tokens and temperature as sent.
      assert.equal(sent[0].body.toString(), JSON.stringify(params));
      assert.doesNotMatch(await accessLine(suite.stack, 'DeepSeek-R1'), /rewrites=/);
    });

    it('DeepSeek-R1 streamed: reasoning_content deltas byte for byte, the usage on the last chunk counted', async () => {
      const body = { model: 'DeepSeek-R1', stream: true, messages: [{ role: 'user', content: 'Think aloud' }] };
      const raw = openStream(`${suite.stack.url}/v1/chat/completions`, body, { authorization: `Bearer ${KEY}` });
      await raw.done;
      assert.equal(raw.status, 200);
      assert.equal(raw.raw, suite.mock.streams.at(-1).text + '\n', 'every byte as Azure sent it, then the blank line Azure omits');
      assert.ok(raw.events.some((e) => e.includes('"reasoning_content":"Okay, "')));
      // The SDK reads the same stream: reasoning first, then the answer; usage without asking.
      const read = await collect(await suite.client.chat.completions.create(body));
      assert.match(read.reasoning, /^Okay, the user greets me\. I should answer briefly and kindly\.$/);
      assert.equal(read.content, 'Hello from DeepSeek-R1, you said: Think aloud');
      const last = read.chunks.at(-1);
      assert.equal(last.choices[0].finish_reason, 'stop');
      assert.ok(last.usage.completion_tokens > last.usage.completion_tokens_details.reasoning_tokens);
      // The usage the proxy read (for the key's limits, the log and metrics) is that one.
      const line = await accessLine(suite.stack, 'DeepSeek-R1');
      assert.match(line, new RegExp(`tokens=${last.usage.prompt_tokens}\\+${last.usage.completion_tokens}( |$)`));
      if (!suite.stack.metrics) return;  // the nginx site serves /v1 only
      const metrics = (await request(`${suite.stack.url}/metrics`)).text;
      assert.match(metrics, /^aop_tokens_total\{model="other",key="",kind="completion"\} [1-9]\d*$/m);
    });

    it('DeepSeek-R1 with tools: Azure refuses them, the refusal reaches the client unchanged, once', async () => {
      const before = suite.stack.chatCalls().length;
      await assert.rejects(suite.client.chat.completions.create({ model: 'DeepSeek-R1', messages: [{ role: 'user', content: 'Weather?' }], tools: [weather] }), (error) => {
        assert.equal(error.status, 400);
        assert.equal(error.code, 'UnsupportedToolUse');
        assert.equal(error.message, '400 Request included unsupported tool use.');
        return true;
      });
      assert.equal(suite.stack.chatCalls().length, before + 1, 'no second try: nothing the proxy could fix');
    });

    for (const model of [LLAMA, 'Mistral-Large-2411']) {
      it(`${model}: a full tool round trip, plain and streamed`, async () => {
        const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
        const first = await suite.client.chat.completions.create({ model, messages, tools: [weather], tool_choice: 'auto' });
        assert.equal(first.choices[0].finish_reason, 'tool_calls');
        const call = first.choices[0].message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Paris' });
        const answer = await suite.client.chat.completions.create({
          model, tools: [weather],
          messages: [...messages, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' }],
        });
        assert.equal(answer.choices[0].message.content, `Hello from ${model}, the tool said sunny, 21 C`);
        assert.equal(answer.choices[0].finish_reason, 'stop');
        const sent = suite.stack.chatCalls().slice(-2);
        assert.deepEqual(sent.map(suite.stack.sentTo), [model, model], 'the deployment named as it is, dots included');
        const echoed = JSON.parse(sent[1].body).messages;
        assert.equal(echoed[1].tool_calls[0].id, call.id);
        assert.equal(echoed[2].tool_call_id, call.id);
        // Streamed: the call's pieces put together are the call.
        const streamed = await collect(await suite.client.chat.completions.create({ model, messages, tools: [weather], stream: true }));
        assert.equal(streamed.chunks.at(-1).choices[0].finish_reason, 'tool_calls');
        assert.equal(streamed.calls[0].function.name, 'get_weather');
        assert.deepEqual(JSON.parse(streamed.calls.map((c) => c.function.arguments).join('')), { location: 'Paris' });
      });
    }

    it('grok-3: chat and a stream with include_usage', async () => {
      const completion = await suite.client.chat.completions.create({ model: 'grok-3', messages: [{ role: 'user', content: 'Hi grok' }], presence_penalty: 0.5 });
      assert.equal(completion.choices[0].message.content, 'Hello from grok-3, you said: Hi grok');
      assert.equal(JSON.parse(suite.stack.chatCalls().at(-1).body).presence_penalty, 0.5, 'sent as the client sent it');
      const streamed = await collect(await suite.client.chat.completions.create({
        model: 'grok-3', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi grok' }],
      }));
      assert.equal(streamed.content, 'Hello from grok-3, you said: Hi grok');
      assert.ok(streamed.chunks.at(-1).usage.total_tokens > 0);
    });
  });
}

describe('Azure AI Foundry: a deployment name with a dot and no mapper entry', () => {
  let mock, stack;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    stack = await startHostBehindLighttpd({ env: { AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_APIVERSION: 'v1' } });
  });
  after(async () => {
    await stack?.stop();
    await mock?.close();
  });

  it("gets Azure's DeploymentNotFound, and the access line shows the name the proxy made", async () => {
    await assert.rejects(clientFor(stack.url).chat.completions.create({ model: LLAMA, messages: [{ role: 'user', content: 'Hi' }] }), (error) => {
      assert.equal(error.status, 404);
      assert.equal(error.code, 'DeploymentNotFound');
      return true;
    });
    assert.equal(JSON.parse(mock.lastRequest().body).model, 'Llama-33-70B-Instruct');
    await waitFor(() => /model=Llama-3\.3-70B-Instruct deployment=Llama-33-70B-Instruct /.test(stack.logs()), 'the access line');
  });
});

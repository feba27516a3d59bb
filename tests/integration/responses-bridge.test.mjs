// The Chat→Responses bridge (issue 24), with the official openai npm client's
// chat.completions.create through lighttpd and nginx, against Responses-only deployments of
// the Azure stand-in (tests/upstream/azure-responses.mjs): plain, streamed with and without
// include_usage, a tool round trip, structured output, an image part — each call succeeds
// in the shapes the SDK's types say, and Azure receives the Responses shape. A deployment no
// rule knows is learned from Azure's OperationNotSupported with one extra round trip, once.
// Hostile streams through the proxy: a cut, unknown events, a 10 MiB delta (RSS bounded),
// invalid JSON; n=2 and 10,000 messages refused with clear 4xx; the off switch. With a
// routing file: failover after a 429 sends the next target the Responses body, and a model
// marked "responses" is bridged from its first request. On a keyless resource the bridged and
// the learned tries carry the proxy's own Entra ID token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import OpenAI from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { openStream, request, rssRiseKiB, startHostBehindLighttpd, startLighttpd, startProxy, suiteHost, tempDir, waitFor } from './harness.mjs';
import { HOSTS } from './hosts.mjs';
import { assertNoSecretIn, startKeylessHost, startStandIns } from './entra-stack.mjs';

const KEY = 'bridge-key';
const WORKERS = 2;
const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'], additionalProperties: false },
  },
};

const clientFor = (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });
const responsesCalls = (mock) => mock.requests.filter((r) => r.path === '/openai/responses');
const chatCalls = (mock, deployment) => mock.requests.filter((r) => r.path === `/openai/deployments/${deployment}/chat/completions`);

async function lighttpdStack(mock, workers = WORKERS) {
  const host = await startHostBehindLighttpd({ workers, env: { AZURE_OPENAI_ENDPOINT: mock.url } });
  return {
    ...host, metrics: true,
  };
}

async function nginxStack(mock) {
  const own = tempDir('bridge-nginx');
  fs.chmodSync(own, 0o755);
  const host = await HOSTS.nginx(mock, { AZURE_OPENAI_PROXY_WORKERS: String(WORKERS), AZURE_OPENAI_PROXY_STATE_FILE: path.join(own, 'state') });
  return { url: host.rootUrl, logs: host.logs, stop: host.stop };
}

async function collect(stream) {
  let text = '';
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  return { text, chunks };
}

for (const [name, start] of [['lighttpd', lighttpdStack], ['nginx', nginxStack]]) {
  describe(`the Chat→Responses bridge through ${name}`, () => {
    const suite = suiteHost(() => createAzureMock({ apiKey: KEY }), start, clientFor);

    it('plain: a chat.completion, and Azure received the Responses shape', async () => {
      const before = responsesCalls(suite.mock).length;
      const completion = await suite.client.chat.completions.create({
        model: 'gpt-5-codex', max_tokens: 200, user: 'u-1',
        messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello bridge' }],
      });
      assert.equal(completion.object, 'chat.completion');
      assert.match(completion.id, /^chatcmpl-/);
      assert.equal(completion.choices[0].message.role, 'assistant');
      assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: Hello bridge');
      assert.equal(completion.choices[0].finish_reason, 'stop');
      assert.ok(completion.usage.prompt_tokens > 0 && completion.usage.completion_tokens > 0);
      assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
      const sent = responsesCalls(suite.mock).slice(before);
      assert.equal(sent.length, 1);
      assert.equal(sent[0].query.get('api-version'), '2025-04-01-preview', "the route api-versions' responses entry");
      const body = JSON.parse(sent[0].body);
      assert.equal(body.model, 'gpt-5-codex');
      assert.equal(body.instructions, 'Be brief.');
      assert.equal(body.max_output_tokens, 200);
      assert.equal(body.messages, undefined);
      assert.ok(Array.isArray(body.input));
      assert.equal(chatCalls(suite.mock, 'gpt-5-codex').length, 0, 'a known Responses-only family: no chat try');
      // The access line names the bridge and carries the usage the Responses answer reported.
      const line = () => suite.stack.logs().split('\n').find((l) => /model=gpt-5-codex .*status=200 /.test(l));
      await waitFor(line, 'the access line');
      assert.match(line(), /tokens=(\d+)\+(\d+)/);
      const [, prompt, done] = /tokens=(\d+)\+(\d+)/.exec(line());
      assert.deepEqual([Number(prompt), Number(done)], [completion.usage.prompt_tokens, completion.usage.completion_tokens]);
      assert.match(line(), /rewrites=bridge:responses/);
    });

    it('streamed, without and with include_usage: chat chunks ending the stream', async () => {
      const plain = await collect(await suite.client.chat.completions.create({ model: 'o3-pro', stream: true, messages: [{ role: 'user', content: 'Stream it' }] }));
      assert.equal(plain.text, 'Hello from the mock! You said: Stream it');
      assert.equal(plain.chunks.at(-1).choices[0].finish_reason, 'stop');
      assert.ok(plain.chunks.every((c) => !c.usage), 'no usage chunk unless asked');
      const counted = await collect(await suite.client.chat.completions.create({
        model: 'o3-pro', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Stream it' }],
      }));
      assert.equal(counted.text, plain.text);
      const last = counted.chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage.completion_tokens > 0);
      assert.ok(last.usage.completion_tokens_details.reasoning_tokens > 0);
      assert.equal(JSON.parse(responsesCalls(suite.mock).at(-1).body).stream, true);
    });

    it('tools: a tool call, its result sent back, the final answer', async () => {
      const messages = [{ role: 'user', content: 'Please call get_weather for Paris' }];
      const first = await suite.client.chat.completions.create({ model: 'gpt-5-pro', messages, tools: [weather] });
      const call = first.choices[0].message.tool_calls[0];
      assert.equal(first.choices[0].finish_reason, 'tool_calls');
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', days: 1 });
      const sentTools = JSON.parse(responsesCalls(suite.mock).at(-1).body).tools;
      assert.equal(sentTools[0].name, 'get_weather', 'flat Responses tools');
      messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp":21}' });
      const second = await suite.client.chat.completions.create({ model: 'gpt-5-pro', messages, tools: [weather] });
      assert.equal(second.choices[0].message.content, 'The tool said: {"temp":21}');
      const input = JSON.parse(responsesCalls(suite.mock).at(-1).body).input;
      assert.ok(input.some((item) => item.type === 'function_call' && item.call_id === call.id));
      assert.ok(input.some((item) => item.type === 'function_call_output' && item.output === '{"temp":21}'));
      // Streamed: the tool call's arguments arrive as deltas.
      const streamed = await collect(await suite.client.chat.completions.create({ model: 'gpt-5-pro', stream: true, messages: messages.slice(0, 1), tools: [weather] }));
      const args = streamed.chunks.map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '').join('');
      assert.deepEqual(JSON.parse(args), { city: 'Paris', days: 1 });
      assert.equal(streamed.chunks.at(-1).choices[0].finish_reason, 'tool_calls');
    });

    it('structured output and an image part', async () => {
      const structured = await suite.client.chat.completions.create({
        model: 'gpt-5-codex', messages: [{ role: 'user', content: 'Weather as JSON' }],
        response_format: { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema: weather.function.parameters } },
      });
      assert.deepEqual(JSON.parse(structured.choices[0].message.content), { city: 'Paris', days: 1 });
      assert.equal(JSON.parse(responsesCalls(suite.mock).at(-1).body).text.format.type, 'json_schema');
      const image = await suite.client.chat.completions.create({
        model: 'gpt-5-codex', messages: [{ role: 'user', content: [
          { type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } }] }],
      });
      assert.equal(image.choices[0].message.content, 'Hello from the mock! You said: What is this? (1 image)');
      const part = JSON.parse(responsesCalls(suite.mock).at(-1).body).input[0].content[1];
      assert.deepEqual(part, { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' });
    });

    it('learned: a deployment in no family refuses chat once, then is bridged at once in every worker', async () => {
      const params = { model: 'mystery-responder', messages: [{ role: 'user', content: 'Who are you' }] };
      const before = responsesCalls(suite.mock).length;
      const bridgedSoFar = async () => Number(/^aop_bridged_requests_total\{model="other"\} (\d+)$/m.exec((await request(`${suite.stack.url}/metrics`)).text)?.[1] ?? 0);
      const bridgedBefore = suite.stack.metrics ? await bridgedSoFar() : 0;
      const first = await suite.client.chat.completions.create(params);
      assert.equal(first.choices[0].message.content, 'Hello from the mock! You said: Who are you');
      assert.equal(chatCalls(suite.mock, 'mystery-responder').length, 1, 'one chat try, refused');
      assert.equal(responsesCalls(suite.mock).length, before + 1);
      const count = 12;
      await Promise.all(Array.from({ length: count }, async () => {
        const again = await suite.client.chat.completions.create(params);
        assert.equal(again.choices[0].message.content, first.choices[0].message.content);
      }));
      assert.equal(chatCalls(suite.mock, 'mystery-responder').length, 1, 'no chat try after the first, in any worker');
      assert.equal(responsesCalls(suite.mock).length, before + 1 + count);
      if (!suite.stack.metrics) return;  // the nginx site serves /v1 only
      // Counted host-wide: learned once, every request of the model bridged (a model the
      // operator did not configure is labelled "other").
      const metrics = (await request(`${suite.stack.url}/metrics`)).text;
      assert.match(metrics, /^aop_responses_only_learned_total\{model="other"\} 1$/m);
      assert.equal(await bridgedSoFar(), bridgedBefore + count + 1);
    });

    it('refused with clear errors: n=2 names n, 10,000 messages is a 4xx', async () => {
      await assert.rejects(suite.client.chat.completions.create({ model: 'gpt-5-codex', n: 2, messages: [{ role: 'user', content: 'x' }] }), (error) => {
        assert.equal(error.status, 400);
        assert.equal(error.param, 'n');
        return true;
      });
      const many = Array.from({ length: 10000 }, () => ({ role: 'user', content: 'x' }));
      await assert.rejects(suite.client.chat.completions.create({ model: 'gpt-5-codex', messages: many }), (error) => {
        assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}`);
        assert.match(error.message, /messages/);
        return true;
      });
    });
  });
}

describe('the bridge: hostile Responses streams through the proxy', () => {
  let mock, stack;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    stack = await lighttpdStack(mock, 1);  // one process: its RSS is the one measured
  });
  after(async () => {
    await stack?.stop();
    await mock?.close();
  });
  const stream = (scenario, extra = {}) => openStream(`${stack.url}/v1/chat/completions`,
    { model: 'gpt-5-codex', stream: true, messages: [{ role: 'user', content: 'Hostile' }] },
    { authorization: `Bearer ${KEY}`, 'x-mock-scenario': scenario, ...extra });
  const done = async (s) => { try { await s.done; } catch { /* a cut connection */ } return s; };

  it('a stream that breaks mid-way: an error event, no [DONE]', async () => {
    const s = await done(stream('responses-break'));
    assert.equal(s.status, 200);
    assert.match(s.raw, /event: error/);
    assert.doesNotMatch(s.raw, /\[DONE\]/);
  });

  it('unknown event types are ignored', async () => {
    const s = await done(stream('responses-unknown'));
    assert.match(s.raw, /data: \[DONE\]/);
    assert.doesNotMatch(s.raw, /event: error/);
    const text = s.events.filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '').join('');
    assert.match(text, /Hello from the mock/);
  });

  it('invalid JSON in an event: an error event, no [DONE]', async () => {
    const s = await done(stream('responses-bad-json'));
    assert.match(s.raw, /event: error/);
    assert.doesNotMatch(s.raw, /\[DONE\]/);
  });

  it('a 10 MiB delta goes through with the proxy memory bounded', async () => {
    const bytes = 10 * 1024 * 1024;
    let s;
    const risen = await rssRiseKiB(stack.proxy.pid, async () => { s = await done(stream('responses-huge-delta', { 'x-mock-bytes': String(bytes) })); });
    const text = s.events.filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.length >= bytes, `the whole delta arrived (${text.length})`);
    assert.match(s.raw, /data: \[DONE\]/);
    console.log(`# RSS rise for a 10 MiB delta through the bridge: ${risen} KiB`);
    assert.ok(risen < 8 * 1024, `the proxy's RSS rose ${risen} KiB`);
  });
});

describe("the bridge on Azure's v1 API", () => {
  let mock, proxy, web;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_APIVERSION: 'v1', AZURE_OPENAI_MODEL_MAPPER: 'codex=gpt-5-codex' });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    await proxy?.stop();
    await mock?.close();
  });

  it('goes to /openai/v1/responses with the deployment as its model, no api-version', async () => {
    const completion = await clientFor(web.url).chat.completions.create({ model: 'codex', messages: [{ role: 'user', content: 'On v1' }] });
    assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: On v1');
    assert.equal(completion.model, 'gpt-5-codex');
    const sent = mock.requests.filter((r) => r.path === '/openai/v1/responses');
    assert.equal(sent.length, 1);
    assert.equal(JSON.parse(sent[0].body).model, 'gpt-5-codex');
    assert.doesNotMatch(sent[0].url, /api-version/);
  });
});

describe('the bridge: AZURE_OPENAI_PROXY_FIX_PARAMETERS=off turns it off', () => {
  let mock, proxy, web;
  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    proxy = await startProxy({ AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_FIX_PARAMETERS: 'off' });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    await proxy?.stop();
    await mock?.close();
  });

  it("relays Azure's OperationNotSupported as it came, and learns nothing", async () => {
    for (let i = 0; i < 2; i++) {
      await assert.rejects(clientFor(web.url).chat.completions.create({ model: 'gpt-5-codex', messages: [{ role: 'user', content: 'x' }] }),
        (error) => error.status === 400 && error.code === 'OperationNotSupported');
    }
    assert.equal(chatCalls(mock, 'gpt-5-codex').length, 2);
    assert.equal(responsesCalls(mock).length, 0);
  });
});

describe('the bridge with a routing file: failover and the "responses" mark', () => {
  const UPSTREAM_KEY = 'upstream-key-0123456789';
  let limited, healthy, proxy, web;
  before(async () => {
    const dir = tempDir('bridge-routing');
    [limited, healthy] = [0, 1].map(() => createAzureMock({ apiKey: UPSTREAM_KEY }));
    for (const mock of [limited, healthy]) await mock.listen();
    limited.scenario = 'rate-limit';
    const config = {
      endpoints: { limited: { url: limited.url, key: 'env:UPSTREAM_KEY' }, healthy: { url: healthy.url, key: 'env:UPSTREAM_KEY' } },
      // corp-llm: a deployment no family names, marked Responses-only here.
      models: { codex: ['limited/gpt-5-codex', { endpoint: 'healthy', deployment: 'gpt-5-codex', priority: 1 }], 'corp-llm': ['healthy/custom-deployment'] },
      parameters: { 'corp-llm': 'responses' },
      keys: { main: { key: 'env:KEY_MAIN' } },
    };
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    proxy = await startProxy({
      AZURE_OPENAI_ENDPOINT: healthy.url, AZURE_OPENAI_PROXY_CONFIG: file, AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'state'),
      AZURE_OPENAI_TOKEN: UPSTREAM_KEY, UPSTREAM_KEY, KEY_MAIN: KEY,
    });
    web = await startLighttpd({ socket: proxy.socket });
  });
  after(async () => {
    await web?.stop();
    await proxy?.stop();
    for (const mock of [limited, healthy]) await mock?.close();
  });

  it('a 429 from the first target: the next target gets the Responses body too', async () => {
    const completion = await clientFor(web.url).chat.completions.create({ model: 'codex', messages: [{ role: 'user', content: 'Fail over' }] });
    assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: Fail over');
    assert.equal(responsesCalls(limited).length, 1, 'the first target was asked, bridged');
    const sent = responsesCalls(healthy);
    assert.equal(sent.length, 1);
    assert.equal(JSON.parse(sent[0].body).model, 'gpt-5-codex', 'the body carries each target\'s deployment');
    const line = await proxy.waitForLog(/model=codex .*status=200/);
    assert.match(line, / tries=2/);
    assert.match(line, /rewrites=bridge:responses/);
  });

  it('a model the routing file marks "responses" is bridged from its first request', async () => {
    const completion = await clientFor(web.url).chat.completions.create({ model: 'corp-llm', messages: [{ role: 'user', content: 'Marked' }] });
    assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: Marked');
    assert.equal(chatCalls(healthy, 'custom-deployment').length, 0);
    assert.equal(JSON.parse(responsesCalls(healthy).at(-1).body).model, 'custom-deployment');
  });
});

describe("the bridge on a keyless resource (the proxy's own Entra ID token)", () => {
  const SECRET = 'bridge-entra-secret-Q4';
  let standIns, host;
  before(async () => {
    standIns = await startStandIns({ secret: SECRET, lifetimeS: 60 });
    host = await startKeylessHost({ ...standIns, secret: SECRET, workers: 1 });
  });
  after(async () => {
    await host?.stop();
    await standIns?.close();
  });

  it('a bridged try, and one learned from OperationNotSupported, carry the token: 200 from a resource that takes no key', async () => {
    const client = new OpenAI({ baseURL: `${host.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
    const refusedBefore = standIns.azure.refusedTokens.length;
    for (const model of ['gpt-5-codex', 'mystery-responder']) {
      const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'keyless' }] });
      assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: keyless');
      const { text } = await collect(await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'keyless' }] }));
      assert.equal(text, 'Hello from the mock! You said: keyless');
    }
    assert.equal(standIns.azure.refusedTokens.length - refusedBefore, 0, 'Azure refused no token');
    const bridged = responsesCalls(standIns.azure);
    assert.equal(bridged.length, 4, 'each call went to the Responses API');
    assert.ok(bridged.every((r) => !r.headers['api-key'] && /^Bearer ey/.test(r.headers.authorization)), 'a Bearer token, no key');
    assertNoSecretIn(host.proxy.logs(), SECRET);
  });
});

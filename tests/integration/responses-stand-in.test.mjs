// The Azure stand-in's Responses API (tests/upstream/azure-responses.mjs), checked with the
// official openai package directly, no proxy between: the SDK's own parsing and its stream
// accumulator (responses.stream) are the check that answers and events have Azure's shapes.
// Also: Responses-only deployments refuse chat as Azure does, the stand-in refuses what
// Azure refuses, and its hostile stream scenarios do what the bridge's tests need.
// The fixtures tests/unit/fixtures/responses-*.sse (read by the unit tests of the bridge's
// way back) are streams this stand-in sent; UPDATE_FIXTURES=1 writes them anew.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import OpenAI, { AzureOpenAI } from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { REASONING_TOKENS } from '../upstream/azure-responses.mjs';
import { ROOT } from './harness.mjs';

const KEY = 'stand-in-key';
const FIXTURE = path.join(ROOT, 'tests/unit/fixtures/responses-o3-pro.sse');
const TOOL_FIXTURE = path.join(ROOT, 'tests/unit/fixtures/responses-gpt-5-codex-tool.sse');
const weather = { type: 'function', name: 'get_weather', description: 'The weather in a city', strict: true,
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'], additionalProperties: false } };

// The raw text of a stream the stand-in sends, and its events' types and data.
async function rawStream(mock, body, scenario = '') {
  const response = await fetch(`${mock.url}/openai/v1/responses`, {
    method: 'POST', body: JSON.stringify({ ...body, stream: true }),
    headers: { 'content-type': 'application/json', 'api-key': KEY, ...(scenario && { 'x-mock-scenario': scenario }) },
  });
  let text = '';
  try { text = await response.text(); } catch (error) { return { text, error }; }
  const events = text.split('\n\n').filter(Boolean).map((block) => {
    const [, name] = block.match(/^event: (.*)$/m) || [];
    const [, data] = block.match(/^data: (.*)$/m) || [];
    return { name, data };
  });
  return { text, events };
}

describe('the stand-in\'s Responses API, read by the openai SDK', () => {
  let mock, v1, dated;

  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    v1 = new OpenAI({ baseURL: `${mock.url}/openai/v1`, apiKey: KEY, defaultHeaders: { 'api-key': KEY }, maxRetries: 0 });
    dated = new AzureOpenAI({ endpoint: mock.url, apiKey: KEY, apiVersion: '2025-04-01-preview', maxRetries: 0 });
  });
  after(async () => { await mock?.close(); });

  it('a plain answer: a reasoning item, then the message; usage counts the reasoning tokens', async () => {
    const response = await v1.responses.create({ model: 'o3-pro', input: 'Hi there', instructions: 'Be brief.', reasoning: { effort: 'high' } });
    assert.equal(response.status, 'completed');
    assert.equal(response.output_text, 'Hello from the mock! You said: Hi there');
    assert.deepEqual(response.output.map((item) => item.type), ['reasoning', 'message']);
    assert.equal(response.usage.output_tokens_details.reasoning_tokens, REASONING_TOKENS);
    assert.equal(response.usage.total_tokens, response.usage.input_tokens + response.usage.output_tokens);
    assert.equal(response.reasoning.effort, 'high');
    assert.equal((await v1.responses.retrieve(response.id)).id, response.id);
  });

  it('the dated route with 2025-04-01-preview; older api-versions have no Responses API', async () => {
    const response = await dated.responses.create({ model: 'gpt-4o', input: 'dated' });
    assert.equal(response.output_text, 'Hello from the mock! You said: dated');
    assert.deepEqual(response.output.map((item) => item.type), ['message']);  // not a reasoning model
    assert.equal(mock.lastRequest().path, '/openai/responses');
    const old = new AzureOpenAI({ endpoint: mock.url, apiKey: KEY, apiVersion: '2024-10-21', maxRetries: 0 });
    await assert.rejects(old.responses.create({ model: 'gpt-4o', input: 'x' }), (error) => error.status === 404);
  });

  it('a stream the SDK accumulates into the same answer, events numbered from 0, no [DONE]', async () => {
    const stream = v1.responses.stream({ model: 'o3-pro', input: 'Stream please', reasoning: { summary: 'auto' } });
    const types = [];
    const numbers = [];
    let text = '';
    let summary = '';
    for await (const event of stream) {
      types.push(event.type);
      numbers.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.reasoning_summary_text.delta') summary += event.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(text, 'Hello from the mock! You said: Stream please');
    assert.equal(final.output_text, text);
    assert.equal(summary, final.output[0].summary[0].text);
    assert.deepEqual(numbers, numbers.map((_, i) => i));
    assert.deepEqual([types[0], types[1], types.at(-1)], ['response.created', 'response.in_progress', 'response.completed']);
    for (const type of ['response.reasoning_summary_part.added', 'response.reasoning_summary_text.done', 'response.content_part.added',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done'])
      assert.ok(types.includes(type), type);
    assert.ok(!mock.streams.at(-1).text.includes('[DONE]'));
  });

  it('a function call when asked for, plain and streamed; its output answered in a round trip', async () => {
    const request = { model: 'gpt-5-codex', input: 'Please call get_weather for Paris', tools: [weather] };
    const response = await v1.responses.create(request);
    const call = response.output.find((item) => item.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris', days: 1 });

    const stream = v1.responses.stream(request);
    let argumentsText = '';
    stream.on('response.function_call_arguments.delta', (event) => { argumentsText += event.delta; });
    const final = await stream.finalResponse();
    const streamed = final.output.find((item) => item.type === 'function_call');
    assert.equal(argumentsText, streamed.arguments);
    assert.equal(final.status, 'completed');

    const next = await v1.responses.create({ model: 'gpt-5-codex', tools: [weather], input: [
      { role: 'user', content: 'Please call get_weather for Paris' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' },
    ] });
    assert.equal(next.output_text, 'The tool said: {"temp":21}');
    await assert.rejects(v1.responses.create({ model: 'gpt-5-codex', input: [{ type: 'function_call_output', call_id: 'call_nowhere', output: 'x' }] }),
      (error) => error.status === 400 && /No tool call found/.test(error.message));
  });

  it('structured output, an image part, and a tiny max_output_tokens (incomplete)', async () => {
    const structured = await v1.responses.create({ model: 'gpt-5-pro', input: 'Weather as JSON',
      text: { format: { type: 'json_schema', name: 'weather', strict: true, schema: weather.parameters } } });
    assert.deepEqual(JSON.parse(structured.output_text), { city: 'Paris', days: 1 });

    const image = await v1.responses.create({ model: 'o3-pro', input: [{ role: 'user', content: [
      { type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'auto' }] }] });
    assert.equal(image.output_text, 'Hello from the mock! You said: What is this? (1 image)');

    const cut = await v1.responses.create({ model: 'o3-pro', input: 'A long question', max_output_tokens: 16 });
    assert.equal(cut.status, 'incomplete');
    assert.equal(cut.incomplete_details.reason, 'max_output_tokens');
    const stream = v1.responses.stream({ model: 'o3-pro', input: 'A long question', max_output_tokens: 16 });
    const types = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types.at(-1), 'response.incomplete');
  });

  it('refuses what Azure refuses, in Azure\'s words', async () => {
    const refused = async (body, param, code) => assert.rejects(v1.responses.create({ model: 'o3-pro', input: 'x', ...body }),
      (error) => error.status === 400 && error.param === param && error.code === code);
    await refused({ max_output_tokens: 5 }, 'max_output_tokens', 'integer_below_min_value');
    await refused({ max_tokens: 50 }, 'max_tokens', 'unknown_parameter');
    await refused({ temperature: 0.2 }, 'temperature', 'unsupported_parameter');
    await refused({ tools: [{ type: 'function', function: { name: 'nested' } }] }, 'tools[0].name', 'missing_required_parameter');
    assert.equal((await v1.responses.create({ model: 'gpt-4o', input: 'x', temperature: 0.2 })).status, 'completed');
  });

  it('Responses-only deployments refuse chat with Azure\'s OperationNotSupported; others serve both', async () => {
    for (const model of ['gpt-5-codex', 'o3-pro', 'gpt-5-pro']) {
      await assert.rejects(v1.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }), (error) => {
        assert.equal(error.status, 400);
        assert.equal(error.code, 'OperationNotSupported');
        assert.equal(error.message, `400 The chatCompletion operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`);
        return true;
      });
    }
    const chat = await dated.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(chat.choices[0].message.content, 'Hello from the mock! You said: x');
  });

  it('hostile streams: cut, unknown events, a 10 MiB delta, an event that is not JSON, failed, error', async () => {
    const body = { model: 'o3-pro', input: 'Hostile' };
    const cut = await rawStream(mock, body, 'responses-break');
    assert.ok(cut.error || !cut.text.includes('response.completed'));

    const unknown = await rawStream(mock, body, 'responses-unknown');
    assert.ok(unknown.events.some((event) => event.name === 'response.mock_future_event'));
    assert.equal(unknown.events.at(-1).name, 'response.completed');
    let unknownText = '';  // the SDK's plain stream reads past them (its accumulator, responses.stream, refuses them)
    for await (const event of await v1.responses.create({ ...body, stream: true }, { headers: { 'x-mock-scenario': 'responses-unknown' } }))
      if (event.type === 'response.output_text.delta') unknownText += event.delta;
    assert.equal(unknownText, 'Hello from the mock! You said: Hostile');

    const huge = await rawStream(mock, body, 'responses-huge-delta');
    const big = huge.events.find((event) => event.data.length > 10 * 1024 * 1024);
    assert.equal(JSON.parse(big.data).delta.length, 10 * 1024 * 1024);

    const bad = await rawStream(mock, body, 'responses-bad-json');
    assert.ok(bad.events.some((event) => { try { JSON.parse(event.data); return false; } catch { return true; } }));
    await assert.rejects((async () => {
      for await (const event of await v1.responses.create({ ...body, stream: true }, { headers: { 'x-mock-scenario': 'responses-bad-json' } })) void event;
    })(), /malformed server-sent event JSON/);

    const failed = await rawStream(mock, body, 'responses-failed');
    assert.equal(failed.events.at(-1).name, 'response.failed');
    assert.equal(JSON.parse(failed.events.at(-1).data).response.error.code, 'server_error');
    await assert.rejects((async () => {
      for await (const event of await v1.responses.create({ ...body, stream: true }, { headers: { 'x-mock-scenario': 'responses-error-event' } })) void event;
    })(), (error) => error instanceof OpenAI.APIError && /Rate limit reached/.test(error.message));
  });

  it('the unit tests\' fixtures are streams this stand-in sends (the same events in the same order)', async () => {
    const question = { model: 'o3-pro', input: 'What is the weather in Paris?', reasoning: { summary: 'auto' } };
    const cases = [
      [FIXTURE, question],
      [TOOL_FIXTURE, { model: 'gpt-5-codex', input: 'Please call get_weather', tools: [weather] }],
      ...['unknown', 'failed', 'error-event', 'bad-json'].map((fault) =>
        [path.join(ROOT, `tests/unit/fixtures/responses-o3-pro-${fault}.sse`), question, `responses-${fault}`]),
    ];
    for (const [file, body, scenario] of cases) {
      const { text, events } = await rawStream(mock, body, scenario);
      if (process.env.UPDATE_FIXTURES) fs.writeFileSync(file, text);
      const fixture = fs.readFileSync(file, 'utf8').split('\n\n').filter(Boolean).map((block) => block.match(/^event: (.*)$/m)[1]);
      assert.deepEqual(events.map((event) => event.name), fixture);
    }
  });
});

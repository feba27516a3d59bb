// The official openai package (7.x, from the npm registry) against the proxy behind
// lighttpd: every route family Azure serves. Each call checks what the SDK returned and
// what the Azure-like upstream received.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

import OpenAI, { toFile } from 'openai';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { curl, request, startStack } from './harness.mjs';

const KEY = 'sdk-key';
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const messages = [{ role: 'user', content: 'Hello SDK' }];

function clientFor(url, options = {}) {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000, ...options });
}

describe('the openai SDK against azure mode (dated API)', () => {
  let stack, mock, client;
  const last = () => mock.lastRequest();

  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: KEY }), { AZURE_OPENAI_MODEL_MAPPER: 'gpt-4.1=gpt-41' });
    mock = stack.mock;
    client = clientFor(stack.url);
  });
  after(async () => { await stack?.stop(); });

  it('chat: plain, with the key as api-key and the SDK headers forwarded', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4o', messages });
    assert.equal(completion.choices[0].message.content, 'Hello from the mock! You said: Hello SDK');
    assert.equal(last().path, '/openai/deployments/gpt-4o/chat/completions');
    assert.equal(last().query.get('api-version'), '2024-10-21');
    assert.equal(last().headers['api-key'], KEY);
    assert.equal(last().headers.authorization, undefined);
    assert.match(last().headers['user-agent'], /^OpenAI\/JS 7\./);
    assert.ok(last().headers['x-stainless-lang']);
  });

  it('chat: streamed through the SDK iterator, Azure\'s empty first chunk included', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4.1', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let chunks = 0;
    let usage;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Hello from the mock! You said: Hello SDK');
    assert.ok(usage && usage.total_tokens > 0);
    assert.ok(chunks > 5);
    assert.equal(last().path, '/openai/deployments/gpt-41/chat/completions');
  });

  it('chat: tools', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o', messages,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }],
    });
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
    assert.equal(completion.choices[0].message.tool_calls[0].function.name, 'get_weather');
    assert.equal(JSON.parse(last().body).tools[0].function.name, 'get_weather');
  });

  it('completions and embeddings', async () => {
    const completion = await client.completions.create({ model: 'gpt-3.5-turbo', prompt: 'Say hi' });
    assert.match(completion.choices[0].text, /You said: Say hi/);
    assert.equal(last().path, '/openai/deployments/gpt-35-turbo/completions');
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    assert.equal(embedding.data.length, 2);
    assert.equal(embedding.data[0].embedding.length, 8);
    assert.equal(JSON.parse(last().body).encoding_format, 'base64', 'the SDK asks for base64 and decodes it');
  });

  it('images: generate and edit (a multipart upload)', async () => {
    const generated = await client.images.generate({ model: 'dall-e-3', prompt: 'a red fox' });
    assert.equal(Buffer.from(generated.data[0].b64_json, 'base64').toString(), 'image:a red fox');
    assert.equal(last().path, '/openai/deployments/dall-e-3/images/generations');

    const png = crypto.randomBytes(50000);
    const edited = await client.images.edit({ model: 'gpt-image-1', image: await toFile(png, 'in.png', { type: 'image/png' }), prompt: 'add a hat' });
    assert.equal(Buffer.from(edited.data[0].b64_json, 'base64').toString(), `edited:${png.length}:add a hat`);
    assert.equal(last().path, '/openai/deployments/gpt-image-1/images/edits');
    assert.ok(last().body.includes(png), 'the image reached Azure byte for byte');
  });

  it('audio: a 25 MiB transcription upload with bounded memory, and a translation', async () => {
    const peak = () => Number(fs.readFileSync(`/proc/${stack.proxy.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);
    const small = crypto.randomBytes(4000);
    await client.audio.translations.create({ model: 'whisper-1', file: await toFile(small, 'warm-up.wav') });
    const before = peak();

    const audio = crypto.randomBytes(25 * 1024 * 1024);
    const transcription = await client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(audio, 'big.wav', { type: 'audio/wav' }) });
    assert.equal(transcription.text, `Transcribed ${audio.length} bytes of big.wav`);
    assert.equal(last().path, '/openai/deployments/whisper-1/audio/transcriptions');
    const sent = last().body;
    assert.ok(sent.length > audio.length && sent.includes(audio), 'the upload reached Azure byte for byte');
    const grewKiB = peak() - before;
    assert.ok(grewKiB < 8 * 1024, `peak memory grew by ${grewKiB} KiB for a 25 MiB upload`);

    const translation = await client.audio.translations.create({ model: 'whisper-1', file: await toFile(small, 'fr.wav'), response_format: 'text' });
    assert.match(String(translation), /Translated 4000 bytes of fr.wav/);
    assert.equal(last().path, '/openai/deployments/whisper-1/audio/translations');
  });

  it('audio: speech streams back as audio/mpeg bytes', async () => {
    const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello there' });
    assert.equal(response.headers.get('content-type'), 'audio/mpeg');
    const bytes = Buffer.from(await response.arrayBuffer());
    assert.ok(bytes.equals(mock.speechBytes));
    assert.equal(last().path, '/openai/deployments/tts-1/audio/speech');
  });

  it('models: list and retrieve (the proxy\'s own list)', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.ok(ids.includes('gpt-4o') && ids.includes('gpt-4.1'));
    const model = await client.models.retrieve('gpt-4o');
    assert.equal(model.id, 'gpt-4o');
    assert.equal(model.object, 'model');
  });

  it('files: upload, list, retrieve, content, delete', async () => {
    const lines = '{"custom_id":"1","method":"POST","url":"/chat/completions","body":{"model":"gpt-4o","messages":[]}}\n';
    const file = await client.files.create({ file: await toFile(Buffer.from(lines), 'batch.jsonl'), purpose: 'batch' });
    assert.equal(file.filename, 'batch.jsonl');
    assert.equal(file.bytes, lines.length);
    assert.equal(last().path, '/openai/files');
    assert.equal(last().query.get('api-version'), '2024-10-21');

    const listed = [];
    for await (const f of client.files.list()) listed.push(f.id);
    assert.ok(listed.includes(file.id));
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    const content = await client.files.content(file.id);
    assert.equal(await content.text(), lines);
    assert.equal(last().path, `/openai/files/${file.id}/content`);
    const deleted = await client.files.delete(file.id);
    assert.equal(deleted.deleted, true);
    assert.equal(last().method, 'DELETE');
  });

  it('batches: create, retrieve, cancel', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from('{}\n'), 'in.jsonl'), purpose: 'batch' });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(batch.input_file_id, file.id);
    assert.equal(last().path, '/openai/batches');
    assert.equal((await client.batches.retrieve(batch.id)).id, batch.id);
    const cancelled = await client.batches.cancel(batch.id);
    assert.equal(cancelled.status, 'cancelling');
    assert.equal(last().path, `/openai/batches/${batch.id}/cancel`);
  });

  it('fine-tuning: jobs, events, checkpoints, cancel', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from('{}\n'), 'train.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'gpt-4o-mini-2024-07-18', training_file: file.id });
    assert.equal(JSON.parse(last().body).model, 'gpt-4o-mini-2024-07-18', 'a base model name is not a deployment: left alone');
    const jobs = [];
    for await (const j of client.fineTuning.jobs.list()) jobs.push(j.id);
    assert.ok(jobs.includes(job.id));
    assert.equal((await client.fineTuning.jobs.retrieve(job.id)).id, job.id);
    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id)) events.push(e.message);
    assert.deepEqual(events, ['Job enqueued']);
    assert.equal(last().path, `/openai/fine_tuning/jobs/${job.id}/events`);
    const checkpoints = [];
    for await (const c of client.fineTuning.jobs.checkpoints.list(job.id)) checkpoints.push(c.step_number);
    assert.deepEqual(checkpoints, [10]);
    assert.equal((await client.fineTuning.jobs.cancel(job.id)).status, 'cancelled');
  });

  it('assistants and threads, on their preview api-version, with OpenAI-Beta forwarded', async () => {
    const assistant = await client.beta.assistants.create({ model: 'gpt-4.1', name: 'Helper', instructions: 'Be brief.' });
    assert.equal(assistant.model, 'gpt-41', 'the body\'s model became the deployment');
    assert.equal(last().path, '/openai/assistants');
    assert.equal(last().query.get('api-version'), '2025-04-01-preview');
    assert.match(last().headers['openai-beta'], /assistants=v2/);

    const thread = await client.beta.threads.create();
    await client.beta.threads.messages.create(thread.id, { role: 'user', content: 'Hi there' });
    const run = await client.beta.threads.runs.create(thread.id, { assistant_id: assistant.id });
    assert.equal(run.status, 'completed');
    assert.equal((await client.beta.threads.runs.retrieve(run.id, { thread_id: thread.id })).id, run.id);
    const said = [];
    for await (const m of client.beta.threads.messages.list(thread.id)) said.push(m.content[0].text.value);
    assert.deepEqual(said, ['Hi there', 'Hello from the mock assistant!']);
    assert.equal((await client.beta.assistants.delete(assistant.id)).deleted, true);
  });

  it('vector stores', async () => {
    const store = await client.vectorStores.create({ name: 'docs' });
    assert.equal(store.name, 'docs');
    assert.equal(last().path, '/openai/vector_stores');
    assert.equal(last().query.get('api-version'), '2025-04-01-preview');
  });

  it('responses: plain and streamed, the model mapped to its deployment', async () => {
    const response = await client.responses.create({ model: 'gpt-4.1', input: 'Hi responses' });
    assert.equal(response.output_text, 'Hello from the mock! You said: Hi responses');
    assert.equal(last().path, '/openai/responses');
    assert.equal(JSON.parse(last().body).model, 'gpt-41');
    assert.equal(last().query.get('api-version'), '2025-04-01-preview');
    assert.equal((await client.responses.retrieve(response.id)).id, response.id);

    const stream = await client.responses.create({ model: 'gpt-4o', input: 'streaming', stream: true });
    let text = '';
    const types = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(text, 'Hello from the mock! You said: streaming');
    assert.equal(types[0], 'response.created');
    assert.equal(types[types.length - 1], 'response.completed');
  });

  it('errors reach the SDK as its typed errors', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (error) => {
      assert.equal(error.status, 404);
      assert.equal(error.code, 'DeploymentNotFound');
      return true;
    });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }, { headers: { 'x-mock-scenario': 'rate-limit' } }),
      (error) => error instanceof OpenAI.RateLimitError && error.headers.get('retry-after') === '1');
  });

  it('Entra ID tokens stay Bearer tokens; OpenAI-Organization and OpenAI-Project stay behind', async () => {
    const jwt = ['eyJhbGciOiJSUzI1NiJ9', 'eyJzdWIiOiJ1c2VyIn0', 'c2lnbmF0dXJl'].join('.');
    const entra = clientFor(stack.url, { apiKey: jwt, organization: 'org-123', project: 'proj-456' });
    await entra.chat.completions.create({ model: 'gpt-4o', messages });
    assert.equal(last().headers.authorization, `Bearer ${jwt}`);
    assert.equal(last().headers['api-key'], undefined);
    assert.equal(last().headers['openai-organization'], undefined);
    assert.equal(last().headers['openai-project'], undefined);
  });

  it('legacy /v1/engines and /v1/deployments forms reach the deployment', async () => {
    let res = await curl([`${stack.url}/v1/engines/gpt-3.5-turbo/chat/completions`, '-H', `Authorization: Bearer ${KEY}`,
      '-H', 'Content-Type: application/json', '-d', JSON.stringify({ messages })]);
    assert.equal(JSON.parse(res.stdout).object, 'chat.completion', res.stdout);
    assert.equal(last().path, '/openai/deployments/gpt-35-turbo/chat/completions');
    res = await curl([`${stack.url}/v1/deployments/custom-deployment/embeddings`, '-H', `Authorization: Bearer ${KEY}`,
      '-H', 'Content-Type: application/json', '-d', JSON.stringify({ input: 'x' })]);
    assert.equal(JSON.parse(res.stdout).object, 'list', res.stdout);
    assert.equal(last().path, '/openai/deployments/custom-deployment/embeddings');
  });

  it('Realtime gets a clear 501', async () => {
    const res = await request(`${stack.url}/v1/realtime?model=gpt-4o-realtime-preview`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    assert.equal(res.status, 501);
    assert.equal(res.json.error.code, 'realtime_not_supported');
    assert.match(res.json.error.message, /WebSocket/);
  });
});

describe('the openai SDK against Azure\'s v1 API', () => {
  let stack, client;
  const last = () => stack.mock.lastRequest();

  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: KEY }),
      { AZURE_OPENAI_APIVERSION: 'v1', AZURE_OPENAI_MODEL_MAPPER: 'gpt-4.1=gpt-41,whisper=whisper-1' });
    client = clientFor(stack.url);
  });
  after(async () => { await stack?.stop(); });

  it('sends /openai/v1/... with the deployment as the JSON model and no api-version', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4.1', messages });
    assert.match(completion.choices[0].message.content, /Hello SDK/);
    assert.equal(last().path, '/openai/v1/chat/completions');
    assert.equal(last().query.get('api-version'), null);
    assert.equal(JSON.parse(last().body).model, 'gpt-41');
  });

  it('replaces the model in a multipart upload', async () => {
    const audio = crypto.randomBytes(300000);
    const transcription = await client.audio.transcriptions.create({ model: 'whisper', file: await toFile(audio, 'a.wav') });
    assert.equal(transcription.text, `Transcribed ${audio.length} bytes of a.wav`);
    assert.equal(last().path, '/openai/v1/audio/transcriptions');
    assert.ok(last().body.includes('name="model"\r\n\r\nwhisper-1\r\n'));
    assert.ok(last().body.includes(audio));
  });

  it('files and responses live under /openai/v1 too', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from('x'), 'x.jsonl'), purpose: 'batch' });
    assert.equal(last().path, '/openai/v1/files');
    assert.equal(sha256(await (await client.files.content(file.id)).text()), sha256('x'));
    const response = await client.responses.create({ model: 'gpt-4.1', input: 'v1' });
    assert.match(response.output_text, /You said: v1/);
    assert.equal(last().path, '/openai/v1/responses');
  });
});

describe('GET /v1/models from Azure', () => {
  it('lists Azure\'s models in OpenAI\'s shape when AZURE_OPENAI_PROXY_MODELS_SOURCE=azure', async () => {
    const stack = await startStack(() => createAzureMock({ apiKey: KEY }), { AZURE_OPENAI_PROXY_MODELS_SOURCE: 'azure' });
    try {
      const client = clientFor(stack.url);
      const models = [];
      for await (const model of client.models.list()) models.push(model);
      assert.deepEqual(models.map((m) => m.id), ['gpt-4o-2024-08-06', 'gpt-4.1-2025-04-14', 'text-embedding-3-small', 'whisper']);
      assert.deepEqual(Object.keys(models[0]).sort(), ['created', 'id', 'object', 'owned_by']);
      assert.equal(stack.mock.lastRequest().path, '/openai/models');
      assert.equal((await client.models.retrieve('whisper')).created, 1696118400);
      await assert.rejects(clientFor(stack.url, { apiKey: 'wrong' }).models.list(), (error) => error.status === 401);
    } finally {
      await stack.stop();
    }
  });
});

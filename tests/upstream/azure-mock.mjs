// A local stand-in for Azure OpenAI (and, under /v1, for api.openai.com).
//
// It checks what Azure checks -- the api-key, the api-version, the deployment route,
// JSON bodies -- and answers the way Azure does: JSON bodies, SSE streams that open with
// an empty-choices frame and end without the final blank line, Azure-shaped error
// bodies, a 429 with retry-after, slow streams. Tests import createAzureMock() to see
// what arrived and to pace streams; `node azure-mock.mjs --port N` runs it alone.
//
// Scenarios are picked with the request header `x-mock-scenario`:
//   rate-limit      429 with retry-after / retry-after-ms / x-ratelimit-* headers
//   content-filter  400 with Azure's ResponsibleAIPolicyViolation body
//   server-error    500 with an Azure error body
//   hang            accepts the request and never answers
//   slow            stream with `x-mock-delay-ms` (default 300) between events
//   paced           stream where each event waits for mock.pace(index) to resolve
//   long            stream of `x-mock-events` events (default 1000)
// Faults (what a broken network or upstream does):
//   reset-before-headers  the connection is reset before any byte of an answer
//   garbage               bytes that are not HTTP, then the end of the connection
//   reset-mid-body        a JSON answer cut after its first bytes (reset)
//   reset-mid-stream      an event stream reset after three events
//   bad-chunk             an event stream whose second chunk has a malformed size
//   stall-mid-stream      an event stream that goes silent after one event
//   endless               an event stream that never ends (an event every 20 ms)
//   big                   a 200 answer of `x-mock-bytes` bytes (default 100 MiB)
//   big-error             the same as a 500 error
//   many-headers          an answer with 1,000 headers
//   huge-header           an answer with one 300 KB header
//   bare-cr-header        a chat answer whose header values hold a bare CR (one hiding a
//                         second field behind it) and a control byte, and whose field
//                         names include ones that are not HTTP tokens
//   nul-header            a chat answer with a NUL in a header value
// The Responses API, Responses-only deployments and their stream faults: azure-responses.mjs.
// Models that are not OpenAI's (Azure AI Foundry: DeepSeek-R1, Llama, Mistral, grok): azure-foundry.mjs.
//
// Both of Azure's URL shapes are served: the dated API (/openai/deployments/{deployment}/...
// and /openai/<path>, api-version required) and the v1 API (/openai/v1/<path>, the
// deployment in the body's model, api-version optional).

import http from 'node:http';
import crypto from 'node:crypto';

import { createResources, parseMultipart } from './azure-resources.mjs';
import { REASONING_DEPLOYMENTS, reasoningRefusal } from './azure-reasoning.mjs';
import { createResponsesStandIn, chatNotSupported, RESPONSES_ONLY_DEPLOYMENTS } from './azure-responses.mjs';
import { createRealtime } from './azure-realtime.mjs';
import { FOUNDRY_DEPLOYMENTS, foundryAnswer } from './azure-foundry.mjs';

export const SUPPORTED_API_VERSIONS = new Set([
  '2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', '2024-10-21',
  '2024-02-15-preview', '2024-05-01-preview', '2024-08-01-preview', '2024-09-01-preview',
  '2024-10-01-preview', '2024-12-01-preview', '2025-01-01-preview', '2025-03-01-preview',
  '2025-04-01-preview', 'preview',
]);

export const DEFAULT_DEPLOYMENTS = [
  'gpt-35-turbo', 'gpt-35-turbo-0301', 'gpt-4', 'gpt-4o', 'gpt-4o-mini', 'gpt-41',
  'gpt-41-mini', 'gpt-5', 'o4-mini', 'text-embedding-3-small', 'text-embedding-3-large',
  'text-embedding-ada-002', 'custom-deployment', 'dall-e-3', 'gpt-image-1', 'whisper-1', 'tts-1',
  ...REASONING_DEPLOYMENTS.keys(),  // azure-reasoning.mjs: they refuse what reasoning models refuse
  ...RESPONSES_ONLY_DEPLOYMENTS,  // the Responses API only (azure-responses.mjs)
  ...FOUNDRY_DEPLOYMENTS,  // models that are not OpenAI's (azure-foundry.mjs)
];

const EMBEDDING_DIMENSIONS = 8;

function azureError(code, message, extra = {}) {
  return { error: { code, message, ...extra } };
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function requestIds() {
  const id = crypto.randomUUID();
  return {
    'apim-request-id': id,
    'x-request-id': id,
    'x-ms-region': 'Sweden Central',
    'x-ratelimit-remaining-requests': '99',
    'x-ratelimit-remaining-tokens': '99000',
  };
}

function lastUserText(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const content = messages[i].content;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) return content.map((part) => part.text || '').join(' ');
  }
  return typeof body.prompt === 'string' ? body.prompt : '';
}

function replyText(body) {
  return `Hello from the mock! You said: ${lastUserText(body)}`;
}

const promptFilterResults = [{
  prompt_index: 0,
  content_filter_results: {
    hate: { filtered: false, severity: 'safe' },
    self_harm: { filtered: false, severity: 'safe' },
    sexual: { filtered: false, severity: 'safe' },
    violence: { filtered: false, severity: 'safe' },
  },
}];

function usageFor(text) {
  const completion = text.split(/\s+/).length;
  return { prompt_tokens: 9, completion_tokens: completion, total_tokens: 9 + completion };
}

function chatCompletion(body, deployment) {
  const text = replyText(body);
  const wantsTool = Array.isArray(body.tools) && body.tools.length > 0;
  const message = wantsTool
    ? {
        role: 'assistant',
        content: null,
        tool_calls: [{
          id: 'call_mock_1',
          type: 'function',
          function: { name: body.tools[0].function.name, arguments: '{"location":"Paris"}' },
        }],
      }
    : { role: 'assistant', content: text };
  return {
    id: 'chatcmpl-mock' + crypto.randomBytes(6).toString('hex'),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: deployment,
    prompt_filter_results: promptFilterResults,
    choices: [{
      index: 0,
      finish_reason: wantsTool ? 'tool_calls' : 'stop',
      message,
      content_filter_results: promptFilterResults[0].content_filter_results,
    }],
    usage: usageFor(text),
    system_fingerprint: 'fp_mock',
  };
}

// Resolves once `res` takes writes again, or is gone.
function drained(res) {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

// Made one at a time as the stream is sent: a long stream (150,000 events) starts at once,
// as Azure's do, rather than after the whole of it is prepared.
function* chatStreamEvents(body, deployment, count) {
  const id = 'chatcmpl-mock' + crypto.randomBytes(6).toString('hex');
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices, extra = {}) => ({
    id, object: 'chat.completion.chunk', created, model: deployment, choices, ...extra,
  });
  const text = replyText(body);
  const pieces = count ? Array.from({ length: count }, (_, i) => `word${i} `) : text.split(/(?<= )/);
  const sse = (event) => `data: ${JSON.stringify(event)}\n\n`;
  // Azure's first frame: no choices, only the prompt's content-filter results.
  yield sse({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults });
  yield sse(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
  for (const piece of pieces)
    yield sse(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
  yield sse(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
  if (body.stream_options && body.stream_options.include_usage)
    yield sse(chunk([], { usage: usageFor(text) }));
}

function completion(body, deployment) {
  const text = replyText(body);
  return {
    id: 'cmpl-mock' + crypto.randomBytes(6).toString('hex'),
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: deployment,
    choices: [{ index: 0, text, finish_reason: 'stop', logprobs: null }],
    usage: usageFor(text),
  };
}

function completionStreamEvents(body, deployment) {
  const text = replyText(body);
  const base = { id: 'cmpl-mock', object: 'text_completion', created: Math.floor(Date.now() / 1000), model: deployment };
  const events = text.split(/(?<= )/).map((piece) => ({
    ...base, choices: [{ index: 0, text: piece, finish_reason: null, logprobs: null }],
  }));
  events.push({ ...base, choices: [{ index: 0, text: '', finish_reason: 'stop', logprobs: null }] });
  return events.map((event) => `data: ${JSON.stringify(event)}\n\n`);
}

function embeddingVector(text, index) {
  const digest = crypto.createHash('sha256').update(`${index}:${text}`).digest();
  return Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => digest[i] / 255);
}

function embeddings(body, deployment) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const data = inputs.map((input, index) => {
    const vector = embeddingVector(String(input), index);
    const embedding = body.encoding_format === 'base64'
      ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
      : vector;
    return { object: 'embedding', index, embedding };
  });
  return { object: 'list', data, model: deployment, usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } };
}

// `verifyBearer(token)`: a resource with key authentication switched off (issue 23): only an
// Entra ID token the function finds good ('' back) passes, anything else gets Azure's 401.
export function createAzureMock({ apiKey = 'test-key', openaiKey = 'sk-test-openai', deployments = DEFAULT_DEPLOYMENTS, verifyBearer = null } = {}) {
  const mock = {
    requests: [],          // every request that arrived, in order
    refusedTokens: [],     // verifyBearer: each token refused, and why
    streams: [],           // the exact text of every event stream sent, in order
    openConnections: 0,    // sockets currently open (tests watch aborts with it)
    pace: async () => {},  // `paced` scenario: awaited before each event
    scenario: '',          // the scenario of requests that name none
    retryAfterMs: 1000,    // what the rate-limit scenario asks to wait
    server: null,
    url: '',
  };
  const knownDeployments = new Set(deployments);
  const hanging = new Set();
  // Realtime's WebRTC calls (azure-realtime.mjs): its own deployments and ephemeral keys.
  const realtime = createRealtime({ mock, checkAzureAuth, sendJson, azureError });

  // `events`: any iterable of SSE strings. The head goes out at once; an event is written
  // when the connection has taken the ones before it (a long stream waits for 'drain', so
  // neither its whole text piles up here nor this process stops answering meanwhile).
  async function streamEvents(req, res, events, scenario, done = true) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...requestIds() });
    res.flushHeaders();
    const delay = Number(req.headers['x-mock-delay-ms'] || 300);
    const record = { text: '', complete: false, headers: req.headers };
    mock.streams.push(record);
    let i = 0;
    for (const event of events) {
      if (res.destroyed) return;
      if (scenario === 'paced') await mock.pace(i, event);
      else if (scenario === 'slow' && i > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (res.destroyed) return;
      if (!res.write(event)) await drained(res);
      record.text += event;
      i++;
    }
    // Azure ends with [DONE] but without the blank line that closes the event.
    const end = done ? 'data: [DONE]\n' : '';
    res.end(end);
    record.text += end;
    record.complete = true;
  }

  function checkAzureAuth(req, res) {
    if (verifyBearer) return checkBearerOnly(req, res);
    if (req.headers['api-key'] === apiKey) return true;
    const auth = req.headers.authorization || '';
    if (/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(auth)) return true;  // Entra ID token
    sendJson(res, 401, azureError('401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.'));
    return false;
  }

  function checkBearerOnly(req, res) {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
    const problem = bearer ? verifyBearer(bearer[1]) : 'no bearer token';
    if (!problem) return true;
    mock.refusedTokens.push({ at: Date.now(), problem });
    sendJson(res, 401, azureError('401', 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.'));
    return false;
  }

  function checkApiVersion(url, res) {
    const version = url.searchParams.get('api-version');
    if (version && SUPPORTED_API_VERSIONS.has(version)) return true;
    sendJson(res, 404, azureError('404', 'Resource not found'));
    return false;
  }

  function parseJson(raw, res) {
    try {
      const body = JSON.parse(raw.toString('utf8'));
      if (body && typeof body === 'object' && !Array.isArray(body)) return body;
    } catch {}
    sendJson(res, 400, azureError('BadRequest', 'Invalid JSON body', { param: null, type: 'invalid_request_error' }));
    return null;
  }

  function applyScenario(scenario, req, res) {
    switch (scenario) {
      case 'rate-limit':
        sendJson(res, 429, azureError('429', 'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.'), {
          ...requestIds(), 'retry-after': String(Math.ceil(mock.retryAfterMs / 1000)), 'retry-after-ms': String(mock.retryAfterMs),
          'x-ratelimit-remaining-requests': '0', 'x-ratelimit-remaining-tokens': '0',
        });
        return true;
      case 'content-filter':
        sendJson(res, 400, azureError('content_filter', "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", {
          param: 'prompt', status: 400,
          innererror: {
            code: 'ResponsibleAIPolicyViolation',
            content_filter_result: {
              hate: { filtered: false, severity: 'safe' }, jailbreak: { filtered: true, detected: true },
              self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' },
              violence: { filtered: false, severity: 'safe' },
            },
          },
        }), requestIds());
        return true;
      case 'server-error':
        sendJson(res, 500, azureError('InternalServerError', 'The server had an error while processing your request.'), requestIds());
        return true;
      case 'hang':
        hanging.add(res);
        return true;
      default:
        return applyFault(scenario, req, res);
    }
  }

  function applyFault(scenario, req, res) {
    const sse = { 'content-type': 'text/event-stream; charset=utf-8', ...requestIds() };
    const event = (i) => `data: ${JSON.stringify({ id: 'chatcmpl-fault', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `part${i} ` }, finish_reason: null }] })}\n\n`;
    const size = Number(req.headers['x-mock-bytes'] || 100 * 1024 * 1024);
    switch (scenario) {
      case 'reset-before-headers':
        req.socket.resetAndDestroy();
        return true;
      case 'garbage':
        req.socket.end('THIS IS NOT HTTP AT ALL\r\n\r\n');
        return true;
      case 'reset-mid-body':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000', ...requestIds() });
        res.write('{"id":"chatcmpl-cut","choices":[');
        setTimeout(() => req.socket.resetAndDestroy(), 50);
        return true;
      case 'reset-mid-stream':
        res.writeHead(200, sse);
        for (let i = 0; i < 3; i++) res.write(event(i));
        setTimeout(() => req.socket.resetAndDestroy(), 100);
        return true;
      case 'bad-chunk': {
        const first = event(0);
        req.socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(first).toString(16)}\r\n${first}\r\n`);
        setTimeout(() => req.socket.end('NOT-A-SIZE\r\nxyz\r\n'), 100);
        return true;
      }
      case 'stall-mid-stream':
        res.writeHead(200, sse);
        res.write(event(0));
        hanging.add(res);
        return true;
      case 'endless': {
        res.writeHead(200, sse);
        let i = 0;
        const timer = setInterval(() => { if (res.destroyed) clearInterval(timer); else res.write(event(i++)); }, 20);
        res.on('close', () => clearInterval(timer));
        return true;
      }
      case 'big':
      case 'big-error': {
        res.writeHead(scenario === 'big' ? 200 : 500, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
        const block = Buffer.alloc(1 << 20, 0x61);
        let sent = 0;
        const pump = () => {
          while (sent < size && !res.destroyed) {
            const piece = block.subarray(0, Math.min(block.length, size - sent));
            sent += piece.length;
            if (!res.write(piece)) return res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return true;
      }
      case 'many-headers': {
        const headers = {};
        for (let i = 0; i < 1000; i++) headers[`x-mock-header-${i}`] = `value-${i}`;
        sendJson(res, 200, { ok: true }, headers);
        return true;
      }
      case 'huge-header':
        req.socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: ${'h'.repeat(300000)}\r\nContent-Length: 2\r\n\r\n{}`);
        return true;
      // node's http refuses these bytes in a header: written on the socket itself.
      case 'bare-cr-header':
      case 'nul-header': {
        const answer = JSON.stringify({
          id: 'chatcmpl-odd-header', object: 'chat.completion', created: 0, model: 'gpt-4o',
          choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'clean answer' } }],
        });
        const odd = scenario === 'nul-header'
          ? 'X-Nul: before\0after\r\n'
          : 'X-Bare-Cr: before\rafter\r\nX-Hidden: one\rSet-Cookie: injected=1\r\nX-Control: a\x01b\tc\r\n' +
            'X Spaced: not a token\r\nX(Paren): not a token\r\n: no name\r\n';
        req.socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${odd}X-After: intact\r\n` +
          `Content-Length: ${Buffer.byteLength(answer)}\r\nConnection: close\r\n\r\n${answer}`, 'latin1');
        return true;
      }
      default:
        return false;
    }
  }

  const knownDeployment = (name) => typeof name === 'string' && knownDeployments.has(name);
  const resources = createResources({ isDeployment: knownDeployment });
  const responses = createResponsesStandIn({ isDeployment: knownDeployment, applyScenario, streamEvents, scenarioOf: (req) => req.headers['x-mock-scenario'] || mock.scenario });
  const MULTIPART_OPERATIONS = new Set(['images/edits', 'audio/transcriptions', 'audio/translations']);
  const SPEECH = Buffer.concat([Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x00'), crypto.createHash('sha512').update('speech').digest(), Buffer.alloc(20000, 0xfb)]);
  mock.speechBytes = SPEECH;

  function deploymentNotFound(res) {
    sendJson(res, 404, azureError('DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.'));
  }

  // Reads a deployment operation's body the way Azure does: JSON, or multipart with a
  // model field (the SDKs always send one). Null after answering with an error.
  function operationBody(req, res, raw, operation) {
    if (MULTIPART_OPERATIONS.has(operation)) {
      const form = parseMultipart(raw, req.headers['content-type']);
      if (!form) { sendJson(res, 400, azureError('BadRequest', 'Expected a multipart/form-data body.')); return null; }
      if (!form.fields.model) { sendJson(res, 400, azureError('BadRequest', "The form field 'model' is required.")); return null; }
      const fileField = operation === 'images/edits' ? 'image' : 'file';
      if (!form.files[fileField] && !form.files[`${fileField}[]`]) { sendJson(res, 400, azureError('BadRequest', `The form field '${fileField}' is required.`)); return null; }
      return { form, model: form.fields.model };
    }
    const json = parseJson(raw, res);
    return json && { json, model: json.model };
  }

  async function serveDeployment(req, res, raw, deployment, operation, body) {
    if (!knownDeployment(deployment)) return deploymentNotFound(res);
    if (operation === 'chat/completions' && RESPONSES_ONLY_DEPLOYMENTS.includes(deployment)) return sendJson(res, 400, chatNotSupported(deployment), requestIds());
    const scenario = req.headers['x-mock-scenario'] || mock.scenario;
    if (applyScenario(scenario, req, res)) return;
    const count = scenario === 'long' ? Number(req.headers['x-mock-events'] || 1000) : 0;
    const headers = { ...requestIds(), 'x-ms-deployment-name': deployment };
    const json = body.json || {};
    switch (operation) {
      case 'chat/completions': {
        const refused = reasoningRefusal(deployment, json);
        if (refused) return sendJson(res, 400, refused, headers);
        const foundry = foundryAnswer(deployment, json);
        if (foundry?.events) return streamEvents(req, res, foundry.events, scenario);
        if (foundry) return sendJson(res, foundry.status, foundry.body, headers);
      }
        if (json.stream) return streamEvents(req, res, chatStreamEvents(json, deployment, count), scenario);
        return sendJson(res, 200, chatCompletion(json, deployment), headers);
      case 'completions':
        if (json.stream) return streamEvents(req, res, completionStreamEvents(json, deployment), scenario);
        return sendJson(res, 200, completion(json, deployment), headers);
      case 'embeddings':
        if (json.input === undefined) return sendJson(res, 400, azureError('BadRequest', "'input' is a required property"));
        return sendJson(res, 200, embeddings(json, deployment), headers);
      case 'images/generations':
        if (!json.prompt) return sendJson(res, 400, azureError('BadRequest', "'prompt' is a required property"));
        return sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{ b64_json: Buffer.from(`image:${json.prompt}`).toString('base64'), revised_prompt: json.prompt }] }, headers);
      case 'images/edits': {
        const image = body.form.files.image || body.form.files['image[]'];
        return sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{ b64_json: Buffer.from(`edited:${image.data.length}:${body.form.fields.prompt}`).toString('base64') }] }, headers);
      }
      case 'audio/transcriptions':
      case 'audio/translations': {
        const file = body.form.files.file;
        const text = `${operation === 'audio/translations' ? 'Translated' : 'Transcribed'} ${file.data.length} bytes of ${file.filename}`;
        if (body.form.fields.response_format === 'text') { res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...headers }); return res.end(text); }
        return sendJson(res, 200, { text }, headers);
      }
      case 'audio/speech':
        if (!json.input) return sendJson(res, 400, azureError('BadRequest', "'input' is a required property"));
        res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': SPEECH.length, ...headers });
        return res.end(SPEECH);
      default:
        return sendJson(res, 404, azureError('404', 'Resource not found'));
    }
  }

  async function serveAzure(req, res, url, raw) {
    if (url.pathname.startsWith('/openai/v1/realtime/') && realtime.serve(req, res, url, raw)) return;
    if (!checkAzureAuth(req, res)) return;
    const v1 = url.pathname.startsWith('/openai/v1/');
    if (v1) {
      const version = url.searchParams.get('api-version');
      if (version && version !== 'preview' && version !== 'latest')
        return sendJson(res, 400, azureError('BadRequest', `api-version ${version} is not supported on the v1 API; use preview or none.`));
    } else if (!checkApiVersion(url, res)) {
      return;
    }
    const path = url.pathname.slice(v1 ? '/openai/v1'.length : '/openai'.length);
    const dated = path.match(/^\/deployments\/([^/]+)\/(.+)$/);
    const operation = dated ? dated[2] : path.slice(1);
    const isOperation = ['chat/completions', 'completions', 'embeddings', 'images/generations', 'audio/speech'].includes(operation) || MULTIPART_OPERATIONS.has(operation);
    if (req.method === 'POST' && isOperation && (dated || v1)) {
      const body = operationBody(req, res, raw, operation);
      if (!body) return;
      // Dated API: the deployment is in the URL; v1 API: it is the body's model.
      return serveDeployment(req, res, raw, dated ? decodeURIComponent(dated[1]) : body.model, operation, body);
    }
    if (dated) return sendJson(res, 404, azureError('404', 'Resource not found'));
    const type = req.headers['content-type'] || '';
    let json = null;
    if (raw.length && type.startsWith('application/json')) {
      json = parseJson(raw, res);
      if (!json) return;
    }
    const form = type.startsWith('multipart/form-data') ? parseMultipart(raw, type) : null;
    const reply = (status, body, headers = {}) => sendJson(res, status, body, { ...requestIds(), ...headers });
    const replyText = (status, data, headers = {}) => { res.writeHead(status, { 'content-length': data.length, ...headers }); res.end(data); };
    const stream = (events, done) => streamEvents(req, res, events, req.headers['x-mock-scenario'] || mock.scenario, done);
    if (await responses({ req, res, url, v1, path, json })) return;
    const handled = await resources({ method: req.method, path, json, form, reply, replyText, stream });
    if (handled === null) sendJson(res, 404, azureError('404', 'Resource not found'));
  }

  // api.openai.com's side, for openai mode: checks the Bearer key, echoes what came.
  async function serveOpenAI(req, res, url, raw) {
    if (req.headers.authorization !== `Bearer ${openaiKey}`) {
      return sendJson(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    }
    const scenario = req.headers['x-mock-scenario'] || mock.scenario;
    if (applyScenario(scenario, req, res)) return;
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
      const body = parseJson(raw, res);
      if (!body) return;
      if (body.stream) return streamEvents(req, res, chatStreamEvents(body, body.model, 0), scenario);
      return sendJson(res, 200, chatCompletion(body, body.model), { 'x-request-id': crypto.randomUUID() });
    }
    sendJson(res, 200, {
      echo: { method: req.method, path: url.pathname, query: url.search, bodyBytes: raw.length },
    }, { 'x-request-id': crypto.randomUUID() });
  }

  mock.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const url = new URL(req.url, 'http://upstream.invalid');
      const entry = {
        method: req.method, path: url.pathname, query: url.searchParams, url: req.url,
        headers: req.headers, body: raw, connection: req.socket.mockId,
        sha256: crypto.createHash('sha256').update(raw).digest('hex'),
        closedAt: 0,  // when the connection that carried it closed
      };
      mock.requests.push(entry);
      req.socket.entries.push(entry);
      const serve = url.pathname.startsWith('/openai/') ? serveAzure : serveOpenAI;
      serve(req, res, url, raw).catch((error) => {
        if (!res.headersSent) sendJson(res, 500, azureError('MockFailure', String(error)));
        else res.destroy();
      });
    });
  });
  let connections = 0;
  mock.server.on('connection', (socket) => {
    socket.mockId = ++connections;
    socket.entries = [];
    mock.openConnections++;
    socket.on('close', () => {
      mock.openConnections--;
      for (const entry of socket.entries) entry.closedAt ||= Date.now();
    });
  });

  mock.listen = (port = 0, host = '127.0.0.1') => new Promise((resolve) => {
    mock.server.listen(port, host, () => {
      const address = mock.server.address();
      mock.url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
      resolve(mock.url);
    });
  });
  mock.close = () => new Promise((resolve) => {
    for (const res of hanging) res.destroy();
    mock.server.closeAllConnections();
    mock.server.close(() => resolve());
  });
  mock.lastRequest = () => mock.requests[mock.requests.length - 1];
  return mock;
}

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mock = createAzureMock({ apiKey: option('--api-key', 'demo-key') });
  const url = await mock.listen(Number(option('--port', '0')), option('--host', '127.0.0.1'));
  console.log(`azure-mock: listening on ${url} (api-key: ${option('--api-key', 'demo-key')})`);
  const stop = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// The Azure stand-in's Responses API (issue 24): POST /openai/v1/responses and
// /openai/responses?api-version= (2025-03-01-preview and later previews), answering as
// Azure does -- the answer object with reasoning items, messages and function calls, usage
// with reasoning tokens, and the stream as named SSE events, each with its sequence_number,
// no [DONE]. Responses-only deployments (codex, *-pro) refuse chat/completions with Azure's
// OperationNotSupported body. azure-mock.mjs hooks it in; the answers are built here.
//
// What the model "does", deterministically:
//   - answers "Hello from the mock! You said: <last user text>" (" (N images)" when the
//     last user message had image parts);
//   - calls a function when the request has tools and the last user text says
//     "call <tool name>" (or tool_choice names one or is "required"), with arguments
//     made from the tool's parameter schema;
//   - after a function_call_output, answers "The tool said: <output>";
//   - with text.format json_schema, answers JSON made from the schema;
//   - reasoning deployments (o-series, gpt-5 family) think first: a reasoning item (with a
//     summary when reasoning.summary is asked for) and REASONING_TOKENS reasoning tokens;
//   - max_output_tokens smaller than what it would write: status incomplete
//     (max_output_tokens), the text cut.
// It checks what Azure checks: the deployment, unknown parameters, max_output_tokens >= 16,
// function tools in the flat shape, a function_call_output's call_id, temperature and top_p
// on reasoning models.
//
// Scenarios (x-mock-scenario) for the bridge's hostile tests, streams only:
//   responses-break         three events, then the connection is reset
//   responses-unknown       unknown event types and fields among the usual ones
//   responses-huge-delta    one output_text.delta of x-mock-bytes bytes (default 10 MiB)
//   responses-bad-json      an event whose data is not JSON, mid-stream
//   responses-failed        response.failed (server_error) after some text
//   responses-error-event   an `error` event (rate_limit_exceeded) after some text

import crypto from 'node:crypto';

// mystery-responder: in no documented family (the bridge's tests: it learns it from the 400).
export const RESPONSES_ONLY_DEPLOYMENTS = ['gpt-5-codex', 'o3-pro', 'gpt-5-pro', 'mystery-responder'];
export const RESPONSES_API_VERSIONS = new Set(['2025-03-01-preview', '2025-04-01-preview', 'preview']);
export const REASONING_TOKENS = 64;

export function chatNotSupported(deployment) {
  return { error: { code: 'OperationNotSupported', message: `The chatCompletion operation does not work with the specified model, ${deployment}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.` } };
}

const KNOWN_PARAMETERS = new Set(['model', 'input', 'instructions', 'tools', 'tool_choice', 'text', 'max_output_tokens',
  'reasoning', 'parallel_tool_calls', 'user', 'metadata', 'store', 'stream', 'stream_options', 'temperature', 'top_p',
  'service_tier', 'prompt_cache_key', 'safety_identifier', 'previous_response_id', 'include', 'truncation', 'background',
  'max_tool_calls', 'top_logprobs', 'conversation', 'prompt', 'prompt_cache_options', 'prompt_cache_retention',
  'moderation', 'context_management', 'image', 'access_programs']);

const isReasoning = (deployment) => /^(o\d|gpt-5)/.test(deployment);
const invalid = (message, param, code) => ({ error: { message, type: 'invalid_request_error', param, code } });
const newId = (prefix) => prefix + crypto.randomBytes(12).toString('hex');
const tokens = (text) => (text ? text.split(/\s+/).filter(Boolean).length : 0);

function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((part) => typeof part.text === 'string').map((part) => part.text).join(' ');
}

function inputItems(json) {
  return typeof json.input === 'string' ? [{ role: 'user', content: json.input }] : json.input;
}

// Azure's 400 for a body it does not take, or null.
function refusal(json, deployment) {
  for (const name of Object.keys(json))
    if (!KNOWN_PARAMETERS.has(name)) return invalid(`Unknown parameter: '${name}'.`, name, 'unknown_parameter');
  if (typeof json.input !== 'string' && !Array.isArray(json.input))
    return invalid("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  if (json.max_output_tokens != null && json.max_output_tokens < 16)
    return invalid(`Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${json.max_output_tokens} instead.`, 'max_output_tokens', 'integer_below_min_value');
  for (const name of ['temperature', 'top_p'])
    if (isReasoning(deployment) && json[name] != null && json[name] !== 1)
      return invalid(`Unsupported parameter: '${name}' is not supported with this model.`, name, 'unsupported_parameter');
  for (const [i, tool] of (json.tools || []).entries())
    if (tool.type === 'function' && typeof tool.name !== 'string')
      return invalid(`Missing required parameter: 'tools[${i}].name'.`, `tools[${i}].name`, 'missing_required_parameter');
  const items = inputItems(json);
  const calls = new Set(items.filter((item) => item.type === 'function_call').map((item) => item.call_id));
  for (const item of items)
    if (item.type === 'function_call_output' && !calls.has(item.call_id))
      return invalid(`No tool call found for function call output with call_id ${item.call_id}.`, 'input', null);
  return null;
}

// A value the schema takes: the first of an enum, else one of its type.
function sampleFor(schema = {}) {
  if (Array.isArray(schema.enum)) return schema.enum[0];
  switch (schema.type) {
    case 'object': return Object.fromEntries(Object.entries(schema.properties || {}).map(([key, value]) => [key, sampleFor(value)]));
    case 'array': return [sampleFor(schema.items)];
    case 'integer': return 1;
    case 'number': return 1.5;
    case 'boolean': return true;
    default: return 'Paris';
  }
}

// What the model decides to do: a function call, or text.
function decide(json) {
  const items = inputItems(json);
  const last = items[items.length - 1] || {};
  const tools = (json.tools || []).filter((tool) => tool.type === 'function');
  if (last.type === 'function_call_output') return { text: `The tool said: ${last.output}` };
  const said = textOf(last.content);
  const choice = json.tool_choice;
  const named = choice && typeof choice === 'object' && choice.type === 'function' ? choice.name : null;
  const asked = tools.find((tool) => tool.name === named) || tools.find((tool) => said.includes(`call ${tool.name}`)) ||
                (choice === 'required' ? tools[0] : null);
  if (asked && choice !== 'none') return { call: { name: asked.name, arguments: JSON.stringify(sampleFor(asked.parameters)) } };
  const format = json.text && json.text.format;
  if (format && format.type === 'json_schema') return { text: JSON.stringify(sampleFor(format.schema)) };
  if (format && format.type === 'json_object') return { text: JSON.stringify({ answer: said }) };
  const images = Array.isArray(last.content) ? last.content.filter((part) => part.type === 'input_image').length : 0;
  return { text: `Hello from the mock! You said: ${said}${images ? ` (${images} image${images > 1 ? 's' : ''})` : ''}` };
}

// The whole answer, as response.completed (or .incomplete) carries it.
export function responseFor(json, deployment) {
  const reasoning = isReasoning(deployment);
  const decision = decide(json);
  const budget = json.max_output_tokens ?? Infinity;
  const thinking = reasoning ? Math.min(REASONING_TOKENS, budget) : 0;
  let text = decision.text;
  let status = 'completed';
  if (text !== undefined && thinking + tokens(text) > budget) {
    status = 'incomplete';
    text = text.split(/(?<= )/).slice(0, Math.max(0, budget - thinking)).join('');
  } else if (decision.call && thinking + 8 > budget) {
    status = 'incomplete';
  }
  const output = [];
  const summaryAsked = json.reasoning && json.reasoning.summary;
  if (reasoning) output.push({ id: newId('rs_'), type: 'reasoning', summary: summaryAsked ? [{ type: 'summary_text', text: '**Answering the user**\n\nThe user said something; I answer it.' }] : [] });
  if (text) output.push({ id: newId('msg_'), type: 'message', status, role: 'assistant', content: [{ type: 'output_text', annotations: [], logprobs: [], text }] });
  if (decision.call && status === 'completed') output.push({ id: newId('fc_'), type: 'function_call', status: 'completed', arguments: decision.call.arguments, call_id: newId('call_'), name: decision.call.name });
  const instructions = typeof json.instructions === 'string' ? json.instructions : '';
  const inputTokens = tokens(instructions) + inputItems(json).reduce((sum, item) => sum + tokens(textOf(item.content) || item.output || item.arguments || ''), 0);
  const outputTokens = thinking + tokens(text) + (decision.call && status === 'completed' ? 8 : 0);
  return {
    id: newId('resp_'), object: 'response', created_at: Math.floor(Date.now() / 1000), status, background: false,
    error: null, incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: json.instructions ?? null, max_output_tokens: json.max_output_tokens ?? null, max_tool_calls: null,
    model: deployment, output, parallel_tool_calls: json.parallel_tool_calls ?? true, previous_response_id: null,
    prompt_cache_key: null, reasoning: reasoning ? { effort: json.reasoning?.effort ?? 'medium', summary: summaryAsked ?? null } : { effort: null, summary: null },
    safety_identifier: null, service_tier: 'default', store: json.store ?? true, temperature: json.temperature ?? 1,
    text: { format: json.text?.format ?? { type: 'text' }, verbosity: json.text?.verbosity ?? 'medium' },
    tool_choice: json.tool_choice ?? 'auto', tools: json.tools ?? [], top_logprobs: 0, top_p: json.top_p ?? 1,
    truncation: 'disabled', usage: {
      input_tokens: inputTokens, input_tokens_details: { cached_tokens: 0 },
      output_tokens: outputTokens, output_tokens_details: { reasoning_tokens: thinking }, total_tokens: inputTokens + outputTokens,
    },
    user: json.user ?? null, metadata: json.metadata ?? {},
  };
}

const pieces = (text) => text.match(/.{1,12}/gs) || [];

// The events of one output item, from output_item.added to output_item.done.
function* itemEvents(item, index) {
  const base = { output_index: index, item_id: item.id };
  if (item.type === 'reasoning') {
    yield { type: 'response.output_item.added', output_index: index, item: { ...item, summary: [] } };
    for (const [i, part] of item.summary.entries()) {
      yield { type: 'response.reasoning_summary_part.added', ...base, summary_index: i, part: { type: 'summary_text', text: '' } };
      for (const delta of pieces(part.text)) yield { type: 'response.reasoning_summary_text.delta', ...base, summary_index: i, delta };
      yield { type: 'response.reasoning_summary_text.done', ...base, summary_index: i, text: part.text };
      yield { type: 'response.reasoning_summary_part.done', ...base, summary_index: i, part };
    }
  } else if (item.type === 'message') {
    const part = item.content[0];
    yield { type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', content: [] } };
    yield { type: 'response.content_part.added', ...base, content_index: 0, part: { ...part, text: '' } };
    for (const delta of pieces(part.text)) yield { type: 'response.output_text.delta', ...base, content_index: 0, delta, logprobs: [] };
    yield { type: 'response.output_text.done', ...base, content_index: 0, text: part.text, logprobs: [] };
    yield { type: 'response.content_part.done', ...base, content_index: 0, part };
  } else if (item.type === 'function_call') {
    yield { type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', arguments: '' } };
    for (const delta of pieces(item.arguments)) yield { type: 'response.function_call_arguments.delta', ...base, delta };
    yield { type: 'response.function_call_arguments.done', ...base, arguments: item.arguments };
  }
  yield { type: 'response.output_item.done', output_index: index, item };
}

const FAILURE = { code: 'server_error', message: 'The server had an error processing your request. Sorry about that! You can retry your request, or contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if you keep seeing this error.' };

// The events of a stream, in Azure's order; `scenario` bends it for the hostile tests.
function* responseEvents(response, scenario, hugeBytes) {
  const opening = { ...response, status: 'in_progress', output: [], usage: null, incomplete_details: null };
  yield { type: 'response.created', response: opening };
  yield { type: 'response.in_progress', response: opening };
  if (scenario === 'responses-huge-delta') {
    const item = { id: newId('msg_'), type: 'message', status: 'in_progress', role: 'assistant', content: [] };
    yield { type: 'response.output_item.added', output_index: 0, item };
    yield { type: 'response.output_text.delta', output_index: 0, item_id: item.id, content_index: 0, delta: 'x'.repeat(hugeBytes), logprobs: [] };
  }
  let sent = 0;
  for (const [index, item] of response.output.entries()) {
    for (const event of itemEvents(item, index)) {
      if (scenario === 'responses-unknown' && sent === 2) yield { type: 'response.mock_future_event', output_index: index, novelty: { nested: [1, { deep: true }] } };
      if (scenario === 'responses-bad-json' && sent === 3) { yield '{"type":"response.output_text.delta","delta":"cut'; }
      if ((scenario === 'responses-failed' || scenario === 'responses-error-event') && event.type === 'response.output_text.done') {
        if (scenario === 'responses-error-event') yield { type: 'error', code: 'rate_limit_exceeded', message: 'Rate limit reached. Please retry after 1 second.', param: null };
        else yield { type: 'response.failed', response: { ...opening, status: 'failed', error: FAILURE } };
        return;
      }
      sent++;
      yield scenario === 'responses-unknown' ? { ...event, mock_extra_field: { a: [1, 2, 3] } } : event;
    }
  }
  yield { type: response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', response };
}

function* sseOf(events) {
  let sequence = 0;
  for (const event of events) {
    if (typeof event === 'string') { yield `event: response.output_text.delta\ndata: ${event}\n\n`; continue; }
    yield `event: ${event.type}\ndata: ${JSON.stringify({ ...event, sequence_number: sequence++ })}\n\n`;
  }
}

// `isDeployment(name)`, `scenarioOf(req)`, and azure-mock.mjs's applyScenario and streamEvents, shared.
export function createResponsesStandIn({ isDeployment, applyScenario, streamEvents, scenarioOf = (req) => req.headers['x-mock-scenario'] || '' }) {
  const store = new Map();
  const send = (res, status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': crypto.randomUUID() });
    res.end(text);
  };

  // True when it answered: POST /responses, GET /responses/{id}; `path` is below /openai or /openai/v1.
  return async function serve({ req, res, url, v1, path, json }) {
    const retrieve = req.method === 'GET' && path.match(/^\/responses\/([^/]+)$/);
    if (!(req.method === 'POST' && path === '/responses') && !retrieve) return false;
    if (!v1 && !RESPONSES_API_VERSIONS.has(url.searchParams.get('api-version'))) {
      send(res, 404, { error: { code: '404', message: 'Resource not found' } });
      return true;
    }
    if (retrieve) {
      const response = store.get(retrieve[1]);
      send(res, response ? 200 : 404, response || invalid(`Response with id '${retrieve[1]}' not found.`, null, null));
      return true;
    }
    if (!json || !isDeployment(json.model)) {
      send(res, 404, { error: { code: 'DeploymentNotFound', message: `The API deployment ${json?.model} does not exist.` } });
      return true;
    }
    const scenario = scenarioOf(req);
    if (applyScenario(scenario, req, res)) return true;
    const refused = refusal(json, json.model);
    if (refused) { send(res, 400, refused); return true; }
    const response = responseFor(json, json.model);
    if (json.store !== false) store.set(response.id, response);
    if (!json.stream) { send(res, 200, response); return true; }
    const events = sseOf(responseEvents(response, scenario, Number(req.headers['x-mock-bytes'] || 10 * 1024 * 1024)));
    if (scenario === 'responses-break') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      for (let i = 0; i < 3; i++) res.write(events.next().value);
      setTimeout(() => req.socket.resetAndDestroy(), 100);
      return true;
    }
    await streamEvents(req, res, events, scenario, false);
    return true;
  };
}

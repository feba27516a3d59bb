// Models that are not OpenAI's, deployed in Azure AI Foundry, as the tests' Azure stand-in
// serves them on Chat Completions (the v1 API's /openai/v1/chat/completions with the
// deployment as the body's model, and the deployments route /openai/deployments/{name}/...,
// which Foundry's documentation also shows for them). Their deployments are named after the
// model by default, dots included ("Llama-3.3-70B-Instruct").
//
//   DeepSeek-R1             a reasoning model that shows its reasoning: `reasoning_content`
//                           beside `content` in the message and in the stream's deltas (the
//                           OpenAI-shaped API; the model inference API puts it in <think>
//                           tags instead), the usage on the last chunk, the one with the
//                           finish reason, asked or not; no Azure first frame. It takes
//                           max_tokens and temperature; tools are refused with Azure's 400
//                           `UnsupportedToolUse`.
//   Llama-3.3-70B-Instruct  tool calls, the arguments streamed in pieces
//   Mistral-Large-2411      tool calls with Mistral's 9-character ids, each call whole in one delta
//   grok-3                  plain chat, the usage with completion_tokens_details
//
// azure-mock.mjs asks foundryAnswer() before answering a chat request.
import crypto from 'node:crypto';

export const FOUNDRY_DEPLOYMENTS = ['DeepSeek-R1', 'Llama-3.3-70B-Instruct', 'Mistral-Large-2411', 'grok-3'];

const REASONING = 'Okay, the user greets me. I should answer briefly and kindly.';

function lastMessage(json) {
  const messages = Array.isArray(json.messages) ? json.messages : [];
  return messages[messages.length - 1] || {};
}

function textOf(content) {
  if (typeof content === 'string') return content;
  return Array.isArray(content) ? content.map((part) => part.text || '').join(' ') : '';
}

const words = (text) => (text ? text.split(/\s+/).length : 0);

// A tool call's id as each family writes it.
const callId = (deployment) => (deployment.startsWith('Mistral')
  ? crypto.randomBytes(6).toString('base64url').slice(0, 9)
  : `call_${crypto.randomBytes(12).toString('hex')}`);

// What the model answers: a tool call when tools are offered and no tool result came back
// yet; otherwise text (after a tool result, the text names it).
function decide(json, deployment) {
  const last = lastMessage(json);
  const tools = Array.isArray(json.tools) ? json.tools : [];
  if (tools.length && last.role !== 'tool' && json.tool_choice !== 'none')
    return { call: { id: callId(deployment), type: 'function', function: { name: tools[0].function.name, arguments: '{"location": "Paris"}' } } };
  const said = last.role === 'tool' ? `the tool said ${textOf(last.content)}` : `you said: ${textOf(last.content)}`;
  return { text: `Hello from ${deployment}, ${said}` };
}

function usage(json, deployment, decision) {
  const prompt = (json.messages || []).reduce((sum, m) => sum + words(textOf(m.content)) + 4, 0);
  const reasoning = deployment === 'DeepSeek-R1' ? words(REASONING) : 0;
  const completion = reasoning + (decision.text ? words(decision.text) : 12);
  return {
    prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
    completion_tokens_details: { reasoning_tokens: reasoning },
  };
}

function refusal(code, message) {
  return { status: 400, body: { error: { code, message, status: 400 } } };
}

function message(deployment, decision) {
  const out = { role: 'assistant' };
  if (deployment === 'DeepSeek-R1') out.reasoning_content = REASONING;
  out.content = decision.text ?? null;
  out.tool_calls = decision.call ? [decision.call] : null;
  return out;
}

function* streamEvents(json, deployment, decision) {
  const id = crypto.randomBytes(16).toString('hex');
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta, finish = null, extra = {}) => `data: ${JSON.stringify({
    id, object: 'chat.completion.chunk', created, model: deployment,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...extra,
  })}\n\n`;
  const reasoner = deployment === 'DeepSeek-R1';
  if (reasoner) {
    const [first, ...rest] = REASONING.split(/(?<= )/);
    yield chunk({ role: 'assistant', reasoning_content: first, content: '' });
    for (const piece of rest) yield chunk({ reasoning_content: piece, content: '' });
  } else {
    yield chunk({ role: 'assistant', content: '' });
  }
  if (decision.text) {
    for (const piece of decision.text.split(/(?<= )/)) yield chunk(reasoner ? { reasoning_content: null, content: piece } : { content: piece });
  } else {
    const { id: callIdText, type, function: fn } = decision.call;
    const pieces = deployment.startsWith('Mistral') ? [fn.arguments] : fn.arguments.match(/.{1,6}/gs);
    yield chunk({ tool_calls: [{ index: 0, id: callIdText, type, function: { name: fn.name, arguments: pieces[0] } }] });
    for (const piece of pieces.slice(1)) yield chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] });
  }
  const finish = decision.call ? 'tool_calls' : 'stop';
  // Foundry's models put the usage on the finish reason's chunk, whether it was asked or not.
  yield chunk(reasoner ? { reasoning_content: '', content: '' } : { content: '' }, finish, { usage: usage(json, deployment, decision) });
}

// Azure's answer to a chat request for a Foundry deployment: { status, body } or { events }
// (an event stream), or null for any other deployment.
export function foundryAnswer(deployment, json) {
  if (!FOUNDRY_DEPLOYMENTS.includes(deployment)) return null;
  if (deployment === 'DeepSeek-R1' && Array.isArray(json.tools) && json.tools.length)
    return refusal('UnsupportedToolUse', 'Request included unsupported tool use.');
  const decision = decide(json, deployment);
  if (json.stream) return { events: streamEvents(json, deployment, decision) };
  return {
    status: 200,
    body: {
      id: crypto.randomBytes(16).toString('hex'), object: 'chat.completion', created: Math.floor(Date.now() / 1000),
      model: deployment,
      choices: [{ index: 0, message: message(deployment, decision), finish_reason: decision.call ? 'tool_calls' : 'stop', logprobs: null }],
      usage: usage(json, deployment, decision),
    },
  };
}

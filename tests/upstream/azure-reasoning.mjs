// Reasoning deployments of the tests' Azure stand-in: on Chat Completions they refuse what
// Azure's o-series and gpt-5 deployments refuse, with Azure's 400 bodies (the first
// parameter found, `param` naming it): max_tokens ("unsupported_parameter", use
// max_completion_tokens), temperature and top_p other than 1 ("unsupported_value"),
// penalties other than 0, logprobs true, top_logprobs, logit_bias. `mystery-reasoner` is a
// deployment whose name no rule knows: it refuses max_tokens only (the learned case).
// azure-mock.mjs asks reasoningRefusal() before answering a chat request.

const ALL = ['max_tokens', 'temperature', 'top_p', 'presence_penalty', 'frequency_penalty', 'logprobs', 'top_logprobs', 'logit_bias'];

export const REASONING_DEPLOYMENTS = new Map([
  ['o3-mini', ALL],
  ['gpt-5-mini', ALL],
  ['mystery-reasoner', ['max_tokens']],
]);

const DEFAULTS = { temperature: 1, top_p: 1, presence_penalty: 0, frequency_penalty: 0, logprobs: false };

function refusal(code, param, message) {
  return { error: { message, type: 'invalid_request_error', param, code } };
}

// Azure's 400 body for the first parameter `deployment` refuses in `json`, or null.
export function reasoningRefusal(deployment, json) {
  const refused = REASONING_DEPLOYMENTS.get(deployment);
  if (!refused || !json || typeof json !== 'object') return null;
  for (const param of refused) {
    const value = json[param];
    if (value === undefined || value === null) continue;
    if (param === 'max_tokens')
      return refusal('unsupported_parameter', param, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.");
    if (param in DEFAULTS) {
      if (value === DEFAULTS[param]) continue;
      return refusal('unsupported_value', param, `Unsupported value: '${param}' does not support ${JSON.stringify(value)} with this model. Only the default (${DEFAULTS[param]}) value is supported.`);
    }
    return refusal('unsupported_parameter', param, `Unsupported parameter: '${param}' is not supported with this model.`);
  }
  return null;
}

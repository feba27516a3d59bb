// Parameters a reasoning model refuses (o1, o3, o4-mini, the gpt-5 family), fixed in the
// body before Azure sees it: max_tokens becomes max_completion_tokens, sampling
// parameters other than their default are dropped. Which parameters a model gets fixed
// comes from the built-in families, the routing file's "parameters" overrides, and what
// Azure's 400 answers taught (the shared state keeps that). Pure: text in, text out.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

// A set of the parameters the proxy knows how to fix, one bit each.
using ParamSet = uint32_t;

// Not a parameter: the bit that says a target takes the Responses API only (bridge_choice.h),
// kept beside the parameters it refused (the shared state's one word per target) and the
// routing file's value "responses".
constexpr ParamSet kResponsesOnly = ParamSet(1) << 31;

// The bit of a parameter the proxy can fix ("max_tokens", "temperature", ...), else 0.
ParamSet param_bit(std::string_view name);
// Every parameter the documented reasoning families refuse: what "reasoning" fixes.
ParamSet reasoning_params();
// The names of a set, comma-separated, in the table's order (for --check-config).
std::string param_names(ParamSet params);

// A name of a documented reasoning family: o1, o3, o4-mini, gpt-5 (gpt-5.1, gpt-5-mini,
// ...), alone or followed by '-' and a suffix or date ("o3-mini", "gpt-5-2025-08-07").
// gpt-5-chat is not one (it takes sampling parameters). Case does not matter.
bool reasoning_family(std::string_view name);

// The routing file's "parameters": a model or deployment name -> the set fixed for it
// ("reasoning": every one, "none": nothing, or a list of names).
using ParamOverrides = std::map<std::string, ParamSet>;

// One value of the routing file's "parameters": "reasoning", "none", "responses" (the
// model takes the Responses API only: chat requests are bridged, kResponsesOnly), or a
// list of parameter names the proxy fixes. Empty when right, else what is wrong with it.
struct cJSON;
std::string read_param_override(const cJSON* value, ParamSet& out);

// What is fixed for a request to `deployment` for the client's `model`: an override for
// the model, else one for the deployment, else the built-in families (either name may
// say it: a deployment is often named after its model, a client's model name may be
// mapped to a deployment with any name).
ParamSet params_to_fix(std::string_view model, std::string_view deployment, const ParamOverrides* overrides);

// Fixes the parameters of `fixes` in a strict JSON object's text, every other byte kept:
// max_tokens renamed max_completion_tokens (dropped when that is there already), the
// others dropped unless null or their default value (temperature 1, top_p 1, penalties
// 0, logprobs false). With "reasoning_effort": "none" (gpt-5.1 and later take sampling
// parameters then) only max_tokens is fixed. Appends what changed to `rewrites`
// ("max_tokens>max_completion_tokens,-temperature"); returns the set changed.
ParamSet fix_parameters(std::string& json, ParamSet fixes, std::string& rewrites);

// Adds `what` to the comma-separated list of a request's rewrites (the access log's field).
void add_rewrite(std::string& rewrites, const std::string& what);

// Azure's 400 for a parameter: {"error":{"code":"unsupported_parameter" or
// "unsupported_value","param":"max_tokens",...}}. The bit of that parameter when the proxy
// knows how to fix it, else 0 (any other code, a parameter it cannot fix, not JSON).
ParamSet fixable_refusal(const std::string& body);

// Deciding to bridge: whether a Chat Completions request goes to its deployment as a
// Responses API request (chat_to_responses.h), and the upstream's word that it must.
// A chat request is bridged when its deployment or the client's model name is
//   - marked in the routing file: "parameters": {"<model or deployment>": "responses"}
//     (the operator's word stands: any other value there means chat, and nothing is
//     learned for that name);
//   - else of a documented Responses-only family (responses_only_family);
//   - else learned: Azure once answered its chat request 400 OperationNotSupported (the
//     shared state keeps kResponsesOnly among the target's refused parameters).
// Pure: names and text in, a decision out.
#pragma once

#include <string_view>

#include "reasoning_params.h"

// A documented Responses-only family (Azure's model list and reasoning models page): the
// codex models (codex-mini, gpt-5-codex, gpt-5.1-codex-max, ...: a name with a segment
// "codex"), the pro reasoning models (o1-pro, o3-pro, gpt-5-pro, gpt-5.2-pro, with a date
// or suffix after), computer-use-preview. Case does not matter.
bool responses_only_family(std::string_view name);

// Whether a chat request for the client's `model`, sent to `deployment`, is bridged: the
// routing file's word on the model, else on the deployment (kResponsesOnly in its value),
// else either name of a Responses-only family, else what the host learned for the target
// (`learned`: the shared state's word for it).
bool bridge_to_responses(std::string_view model, std::string_view deployment, const ParamOverrides* overrides,
                         ParamSet learned);

// Azure's answer to a chat request for a deployment that takes the Responses API only:
// 400 {"error":{"code":"OperationNotSupported","message":"The chatCompletion operation does
// not work with the specified model, ..."}}.
bool chat_not_supported(long status, std::string_view body);

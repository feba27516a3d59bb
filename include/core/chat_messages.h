// The pieces of a Chat Completions request that become Responses API input, for the
// Chat→Responses bridge (chat_to_responses.h says what becomes what): the messages, a
// function tool, a tool_choice. cJSON trees in, cJSON trees out; limits as
// chat_to_responses.h states them.
#pragma once

#include <cjson/cJSON.h>

#include "chat_to_responses.h"

// Adds to `out` its "input" (and "instructions" when any system or developer message has
// text). False with `refusal` filled when a message cannot be bridged.
bool messages_to_responses(const cJSON* messages, cJSON* out, BridgeRefusal& refusal);

// {type:function, function:{name, description, parameters, strict}} → the flat Responses
// tool, `strict` false and `parameters` an empty object schema when not given (the
// Responses API would make strict true); null when `tool` is not such a tool.
cJSON* function_tool_to_responses(const cJSON* tool);

// "none" | "auto" | "required" | {type:function, function:{name}} |
// {type:allowed_tools, allowed_tools:{mode, tools}} → the Responses shape; null otherwise.
cJSON* tool_choice_to_responses(const cJSON* choice);

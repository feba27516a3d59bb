// The Chat→Responses bridge's way out: a Chat Completions request body rebuilt as the
// Responses API body a Responses-only deployment takes (POST /openai/v1/responses). The way
// back is responses_answer.h (a whole answer) and responses_stream.h (a stream).
//
// What becomes what:
//   messages: system and developer messages → `instructions` (their texts in order, joined
//     by a blank line "\n\n"); user → an input message (text parts → input_text, image_url
//     parts → input_image with its detail, file parts → input_file); assistant text →
//     an assistant input message, its tool_calls → `function_call` items; tool messages →
//     `function_call_output` items. A message's `name` has no Responses field and is left
//     out (it never changed what a model answers in a way a client relies on).
//   tools (function tools) → flat {type,name,description,parameters,strict}; tool_choice
//     → its Responses shape; response_format (json_schema, json_object, text) →
//     text.format; verbosity → text.verbosity; max_completion_tokens (or max_tokens) →
//     max_output_tokens (1 to 15 raised to 16, the least the Responses API takes: a
//     client's probe with max_tokens 1 would otherwise fail); reasoning_effort →
//     reasoning.effort; model, stream, temperature, top_p, parallel_tool_calls, user,
//     metadata, store, service_tier, prompt_cache_key, prompt_cache_options,
//     prompt_cache_retention, safety_identifier, moderation → the same. `store` defaults to
//     false, as Chat Completions does (Responses would keep the answer otherwise).
//   Text parts of one system, developer, assistant or tool message are joined by "\n".
//   stream_options.include_usage → BridgedRequest::include_usage (the stream translator
//     honours it; the Responses body has no such field).
// A parameter with no Responses equivalent is refused (never dropped) unless its value is
// the default, which means nothing: n 1, logprobs false, top_logprobs 0, empty logit_bias,
// stop, modalities ["text"], penalties 0, null for any of them. Unknown parameters are
// refused too. The caller answers a refusal with 400 and OpenAI's error shape.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// The limits, checked before any tree is built: above them the request is refused.
constexpr size_t kMaxBridgedBody = 32 * 1024 * 1024;  // bytes (images as data URLs are large)
constexpr size_t kMaxBridgedDepth = 64;               // nesting of objects and arrays
constexpr size_t kMaxBridgedMessages = 4096;
constexpr size_t kMaxBridgedParts = 512;              // content parts in one message
constexpr size_t kMaxBridgedTools = 512;              // tools, and tool calls in one message
constexpr int kLeastOutputTokens = 16;                // the Responses API's least max_output_tokens

// Why a request cannot be bridged. `param` names the client's parameter (a path such as
// "messages[3].content[0].type" when the fault is inside); `code` is OpenAI's word:
// "unsupported_parameter" (no Responses equivalent), "unsupported_value" (a value the
// bridge does not take), "invalid_value" (not what Chat Completions defines),
// "request_too_large" (above a limit), "invalid_json".
struct BridgeRefusal {
    std::string param;    // empty: the body as a whole
    std::string message;  // a sentence for the client; client values quoted short (quote_value)
    std::string code;
};

struct BridgedRequest {
    bool ok = false;
    std::string body;            // the Responses API JSON body (ok)
    bool stream = false;         // the client asked for a stream
    bool include_usage = false;  // stream_options.include_usage was true
    BridgeRefusal refusal;       // !ok
};

// `chat_body`: the client's body. Checked here before a tree is built: its size, strict JSON
// (json_model.h's check_json: UTF-8, no \u0000 in a string, which cJSON would cut), its
// depth. Work and memory are linear in its size.
BridgedRequest chat_to_responses(std::string_view chat_body);

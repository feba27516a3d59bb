// The Chat→Responses bridge's way back for an answer that is not streamed: a Responses API
// answer made the `chat.completion` a Chat Completions client reads (streams:
// responses_stream.h).
//
//   output message items' output_text → message.content (joined, in order; null when
//     none), their url_citation annotations → message.annotations, refusal parts →
//     message.refusal; function_call items → message.tool_calls; reasoning items are left
//     out (Chat Completions has no place for them; their tokens are counted in usage).
//   status + incomplete_details.reason → finish_reason (chat_chunks.h's chat_finish_reason).
//   usage: input_tokens → prompt_tokens, output_tokens → completion_tokens, cached and
//     reasoning tokens into their details; id "resp_x" → "chatcmpl-x"; created_at → created;
//     model kept (the client's model when the answer names none); service_tier kept.
// An answer that is no success is never made to look like one: an upstream error body keeps
// its status and words; `status: failed` (or cancelled, or a response not finished) → 502
// with the upstream's code and words; an answer that is not the Responses shape → 502.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "chat_chunks.h"
#include "response.h"

constexpr size_t kMaxBridgedAnswer = 64 * 1024 * 1024;  // a larger answer is refused (502)

struct ChatAnswer {
    bool ok = false;
    std::string body;   // the chat.completion JSON (ok)
    TokenUsage usage;   // what the answer reported (-1: not), for limits and metrics
    ProxyError error;   // !ok: what the client gets, OpenAI's shape (error_body())
};

// `upstream_status`: the HTTP status the upstream answered with; `client_model`: the
// model the client named (escaped or not: it is written through a JSON library).
ChatAnswer responses_to_chat_answer(std::string_view responses_body, int upstream_status, const std::string& client_model);

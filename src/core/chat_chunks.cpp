// Tests: tests/unit/responses_stream_test.cpp (the chunks as the bridge writes them),
// tests/unit/responses_answer_test.cpp (what a whole answer shares with them).
#include "chat_chunks.h"

#include <algorithm>

std::string chat_id_for(std::string_view response_id) {
    if (response_id.substr(0, 5) == "resp_") response_id.remove_prefix(5);
    return "chatcmpl-" + std::string(response_id);
}

const char* chat_finish_reason(bool incomplete, std::string_view incomplete_reason, bool tool_calls) {
    if (incomplete) return incomplete_reason == "content_filter" ? "content_filter" : "length";
    return tool_calls ? "tool_calls" : "stop";
}

void ChatChunks::identify(std::string_view response_id, std::string_view model, long long created) {
    if (!response_id.empty()) id_ = chat_id_for(response_id);
    if (!model.empty()) model_ = model;
    if (created >= 0) created_ = created;
}

std::string ChatChunks::start() const {
    return "data: {\"id\":\"" + id_ + "\",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(created_) +
           ",\"model\":\"" + model_ + "\",\"choices\":[";
}

void ChatChunks::ensure_started(std::string& out) {
    if (started_) return;
    started_ = true;
    write(out, "\"role\":\"assistant\",\"content\":\"\",\"refusal\":null");
}

void ChatChunks::write(std::string& out, const std::string& delta, const char* finish_reason) {
    ensure_started(out);
    out += start();
    out += "{\"index\":0,\"delta\":{" + delta + "},\"logprobs\":null,\"finish_reason\":";
    out += finish_reason ? "\"" + std::string(finish_reason) + "\"" : std::string("null");
    out += "}]}\n\n";
}

void ChatChunks::open(std::string& out, const std::string& delta_opening) {
    ensure_started(out);
    out += start() + "{\"index\":0,\"delta\":{" + delta_opening;
}

const char* ChatChunks::closing(bool tool_call) {
    return tool_call ? "\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                     : "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
}

std::string chat_usage_json(const TokenUsage& usage) {
    long long input = std::max(usage.input_tokens, 0LL), output = std::max(usage.output_tokens, 0LL);
    return "{\"prompt_tokens\":" + std::to_string(input) + ",\"completion_tokens\":" + std::to_string(output) +
           ",\"total_tokens\":" + std::to_string(input + output) + ",\"prompt_tokens_details\":{\"cached_tokens\":" +
           std::to_string(std::max(usage.cached_tokens, 0LL)) + "},\"completion_tokens_details\":{\"reasoning_tokens\":" +
           std::to_string(std::max(usage.reasoning_tokens, 0LL)) + "}}";
}

void ChatChunks::finish(std::string& out, const char* finish_reason, const TokenUsage* usage) {
    write(out, "", finish_reason);
    if (usage) out += start() + "],\"usage\":" + chat_usage_json(*usage) + "}\n\n";
    out += "data: [DONE]\n\n";
}

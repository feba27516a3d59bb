// The text of a Chat Completions stream as OpenAI writes it: `chat.completion.chunk`
// events (the first naming the role), a last one with the usage when the client asked for
// it, then `data: [DONE]`. Used where the proxy makes such a stream itself (the
// Chat→Responses bridge, responses_stream.h), and what a whole answer shares with them
// (responses_answer.h). Strings given here are already the inside of
// a JSON string (escaped).
#pragma once

#include <string>
#include <string_view>
#include <utility>

struct TokenUsage {
    long long input_tokens = -1;  // -1: not reported
    long long output_tokens = -1;
    long long cached_tokens = -1;
    long long reasoning_tokens = -1;
};

// What a Responses API answer's id becomes as a Chat Completions id: "resp_x" → "chatcmpl-x".
std::string chat_id_for(std::string_view response_id);
// The finish reason of a response that ended `completed` or `incomplete` (with its
// incomplete_details.reason): "length" (max_output_tokens), "content_filter", else
// "tool_calls" when it called a function, else "stop".
const char* chat_finish_reason(bool incomplete, std::string_view incomplete_reason, bool tool_calls);
// Chat Completions' usage object (prompt/completion/total tokens with their details); a
// count not reported is 0.
std::string chat_usage_json(const TokenUsage& usage);

class ChatChunks {
public:
    ChatChunks(std::string model_inside, long long created) : model_(std::move(model_inside)), created_(created) {}
    // What the upstream said of its response: "resp_x" becomes the chunks' id "chatcmpl-x".
    void identify(std::string_view response_id, std::string_view model, long long created);

    // A chunk whose choice's delta holds `delta` (the object's inside); the role chunk first.
    void write(std::string& out, const std::string& delta, const char* finish_reason = nullptr);
    // The opening of such a chunk up to `delta_opening`, for a delta whose text follows in
    // pieces; `delta_closing` then ends it.
    void open(std::string& out, const std::string& delta_opening);
    static const char* closing(bool tool_call);
    // The end: the finish reason's chunk, the usage chunk when `usage` is given, [DONE].
    void finish(std::string& out, const char* finish_reason, const TokenUsage* usage);

private:
    std::string start() const;
    void ensure_started(std::string& out);

    std::string id_ = "chatcmpl-bridge";
    std::string model_;
    long long created_;
    bool started_ = false;
};

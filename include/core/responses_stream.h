// The Chat→Responses bridge's way back for streams: a Responses API event stream, as it
// arrives in pieces, made into the Chat Completions stream a chat client reads
// (`chat.completion.chunk` events ending in `data: [DONE]`), event by event.
//
// Memory stays bounded whatever the upstream sends: an event is read without being kept
// (json_stream.h) — `response.completed` carries the whole answer again and is only looked
// through for its status and usage — and a text delta is held at most kHeldDelta bytes
// before it goes out in pieces. Whatever is faulty (an event that is not strict JSON, a
// stream cut before its response completed, an `error` event, `response.failed`) ends the
// client's stream with an `event: error` (the proxy's mid-stream error, relay.cpp), never
// with a [DONE] that would make a cut answer look whole.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "chat_chunks.h"
#include "response.h"

struct ChatStreamOptions {
    std::string model;           // the client's model: the chunks' "model" until the upstream names one
    bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
    long long created = 0;       // the chunks' "created" until response.created says
};

using ResponsesStreamUsage = TokenUsage;

constexpr size_t kHeldDelta = 64 * 1024;  // a delta larger than this goes out in pieces
constexpr size_t kMaxToolCalls = 256;     // function calls in one response

class ResponsesToChatStream {
public:
    explicit ResponsesToChatStream(ChatStreamOptions options);
    ~ResponsesToChatStream();
    ResponsesToChatStream(const ResponsesToChatStream&) = delete;
    ResponsesToChatStream& operator=(const ResponsesToChatStream&) = delete;

    // Appends to `out` what the client gets for this piece of the upstream's stream. False
    // once the stream has ended (completed, or faulty: `out` then ends with the error event);
    // later pieces are ignored.
    bool feed(std::string_view piece, std::string& out);
    // The upstream's stream ended: appends the error event if it ended before its response
    // completed (nothing otherwise: the end went out with the terminal event).
    void finish(std::string& out);

    bool completed() const;                  // the client's stream ended with [DONE]
    const ProxyError* error() const;         // what ended it otherwise (null: nothing)
    const ResponsesStreamUsage& usage() const;

    struct State;

private:
    std::unique_ptr<State> state_;
};

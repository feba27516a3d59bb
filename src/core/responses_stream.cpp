// Tests: tests/unit/responses_stream_test.cpp; fuzzed by fuzz/fuzz_responses_stream.cpp.
#include "responses_stream.h"

#include <utility>
#include <vector>

#include "chat_chunks.h"
#include "json_stream.h"
#include "sse_reader.h"
#include "text.h"

namespace {

enum class EventKind { Other, Created, TextDelta, RefusalDelta, ItemAdded, ArgumentsDelta, Completed, Incomplete, Failed, Error };

EventKind kind_of(std::string_view type) {
    static const std::pair<std::string_view, EventKind> kKinds[] = {
        {"response.created", EventKind::Created},
        {"response.output_text.delta", EventKind::TextDelta},
        {"response.refusal.delta", EventKind::RefusalDelta},
        {"response.output_item.added", EventKind::ItemAdded},
        {"response.function_call_arguments.delta", EventKind::ArgumentsDelta},
        {"response.completed", EventKind::Completed},
        {"response.incomplete", EventKind::Incomplete},
        {"response.failed", EventKind::Failed},
        {"error", EventKind::Error},
    };
    for (const auto& [name, kind] : kKinds)
        if (name == type) return kind;
    return EventKind::Other;
}

constexpr size_t kMaxField = 1024;     // an id, a name, a status: longer is a fault
constexpr size_t kMaxMessage = 512;    // an upstream error's words: longer are cut
constexpr size_t kMaxEventName = 128;

// What one event said that the bridge needs; reset for each event.
struct EventFields {
    std::string type;
    long long output_index = -1;
    std::string item_type, call_id, name;
    std::string response_id, response_model, status, incomplete_reason;
    long long created_at = -1;
    std::string error_code, error_message, error_param;
    ResponsesStreamUsage usage;
    std::string delta;            // held, raw
    bool delta_seen = false;
    bool delta_streaming = false; // its start went out; the rest follows as it comes
};

}  // namespace

struct ResponsesToChatStream::State : JsonVisitor, SseListener {
    explicit State(ChatStreamOptions chosen)
        : options(std::move(chosen)), chunks(json_string_inside(options.model), options.created), reader(*this) {
    }

    // The whole stream's.
    ChatStreamOptions options;
    ChatChunks chunks;
    bool ended = false, done = false;
    std::unique_ptr<ProxyError> error;
    ResponsesStreamUsage usage;
    std::vector<std::pair<long long, size_t>> tools;  // output_index → the tool call's index
    std::string* out = nullptr;                       // during feed()

    SseReader sse{*this};
    bool in_event = false;       // a data line was seen since the last blank line
    bool holding = false;        // the data's first bytes wait in data_start
    std::string data_start;      // until they are known not to be "[DONE]"
    std::string event_name_seen;

    // The event being read.
    JsonStreamReader reader;
    EventFields event;
    bool field_fault = false;

    void string_piece(const JsonStreamReader& at, std::string_view raw, bool end) override;
    void scalar(const JsonStreamReader& at, std::string_view text) override;
    bool keep(std::string& into, std::string_view raw, size_t limit);
    std::string_view event_type() const {
        return event.type.empty() ? std::string_view(event_name_seen) : std::string_view(event.type);
    }
    // The event's type is not yet known, or is one whose delta the client gets.
    bool may_be_delta() const {
        EventKind kind = kind_of(event_type());
        return event_type().empty() || kind == EventKind::TextDelta || kind == EventKind::RefusalDelta ||
               kind == EventKind::ArgumentsDelta;
    }

    bool data(std::string_view bytes, bool line_start) override;
    void event_name(std::string_view name) override { event_name_seen.assign(name); }
    bool event_end() override;
    bool bytes_to_reader(std::string_view bytes);
    void act(EventKind kind);

    bool delta_envelope_ready(EventKind kind, std::string& prefix);
    void stream_delta_piece(std::string_view raw);
    void end_delta(EventKind kind);
    void tool_call_started();
    void terminal(EventKind kind);
    void fault(ProxyError made);
};

namespace {

ProxyError stream_fault(const std::string& why) {
    return make_error(502, "The upstream's Responses stream " + why, "upstream_protocol_error", "", "api_error");
}

}  // namespace

bool ResponsesToChatStream::State::keep(std::string& into, std::string_view raw, size_t limit) {
    if (into.size() + raw.size() > limit) {
        into.append(raw.substr(0, limit - into.size()));
        return false;
    }
    into.append(raw);
    return true;
}

void ResponsesToChatStream::State::string_piece(const JsonStreamReader& at, std::string_view raw, bool) {
    if (at.at_path({"type"})) {
        field_fault |= !keep(event.type, raw, kMaxEventName);
    } else if (at.at_path({"delta"})) {
        if (!may_be_delta()) return;  // a delta of something not translated (reasoning): read past
        event.delta_seen = true;
        if (event.delta_streaming) return stream_delta_piece(raw);
        event.delta.append(raw);
        if (event.delta.size() > kHeldDelta) stream_delta_piece({});
    } else if (at.at_path({"item", "type"})) {
        field_fault |= !keep(event.item_type, raw, kMaxField);
    } else if (at.at_path({"item", "call_id"})) {
        field_fault |= !keep(event.call_id, raw, kMaxField);
    } else if (at.at_path({"item", "name"})) {
        field_fault |= !keep(event.name, raw, kMaxField);
    } else if (at.at_path({"response", "id"})) {
        field_fault |= !keep(event.response_id, raw, kMaxField);
    } else if (at.at_path({"response", "model"})) {
        field_fault |= !keep(event.response_model, raw, kMaxField);
    } else if (at.at_path({"response", "status"})) {
        field_fault |= !keep(event.status, raw, kMaxField);
    } else if (at.at_path({"response", "incomplete_details", "reason"})) {
        field_fault |= !keep(event.incomplete_reason, raw, kMaxField);
    } else if (at.at_path({"code"}) || at.at_path({"error", "code"}) || at.at_path({"response", "error", "code"})) {
        keep(event.error_code, raw, kMaxField);
    } else if (at.at_path({"message"}) || at.at_path({"error", "message"}) || at.at_path({"response", "error", "message"})) {
        keep(event.error_message, raw, kMaxMessage);
    } else if (at.at_path({"param"})) {
        keep(event.error_param, raw, kMaxField);
    }
}

void ResponsesToChatStream::State::scalar(const JsonStreamReader& at, std::string_view text) {
    long long number = digits_value(text, 15);  // a count of tokens, a time: -1 when not one
    if (at.at_path({"output_index"})) event.output_index = number;
    else if (at.at_path({"response", "created_at"})) event.created_at = number;
    else if (at.at_path({"response", "usage", "input_tokens"})) event.usage.input_tokens = number;
    else if (at.at_path({"response", "usage", "output_tokens"})) event.usage.output_tokens = number;
    else if (at.at_path({"response", "usage", "input_tokens_details", "cached_tokens"})) event.usage.cached_tokens = number;
    else if (at.at_path({"response", "usage", "output_tokens_details", "reasoning_tokens"})) event.usage.reasoning_tokens = number;
}

// ---- the events -------------------------------------------------------------------------

// A data line's bytes go to the event's reader as they come; the first few wait until they
// are known not to be "[DONE]" (no Responses event, but ignored if an upstream sends it).
bool ResponsesToChatStream::State::data(std::string_view bytes, bool line_start) {
    if (!in_event) {
        in_event = true;
        holding = true;
        event = EventFields{};
        field_fault = false;
        reader.reset();
        data_start.clear();
    } else if (line_start && !holding && !bytes_to_reader("\n")) {  // data lines join with a newline
        return false;
    }
    if (holding) {
        data_start.append(bytes);
        std::string_view seen = data_start;
        if (!seen.empty() && seen[0] == ' ') seen.remove_prefix(1);
        if (std::string_view("[DONE]").substr(0, seen.size()) == seen) return true;
        holding = false;
        return bytes_to_reader(seen);
    }
    return bytes_to_reader(bytes);
}

bool ResponsesToChatStream::State::bytes_to_reader(std::string_view bytes) {
    if (!reader.feed(bytes)) {
        fault(stream_fault("sent an event that is not strict JSON."));
        return false;
    }
    if (field_fault) {
        fault(stream_fault("sent an event with a field longer than the proxy takes."));
        return false;
    }
    return !ended;
}

// A blank line: the event is complete.
bool ResponsesToChatStream::State::event_end() {
    if (!in_event) {
        event_name_seen.clear();
        return true;
    }
    in_event = false;
    std::string name = std::move(event_name_seen);  // the next event names itself anew
    event_name_seen.clear();
    if (holding) {  // all its data was held: "[DONE]", or short
        holding = false;
        std::string_view seen = data_start;
        if (!seen.empty() && seen[0] == ' ') seen.remove_prefix(1);
        if (seen == "[DONE]") return true;
        if (!bytes_to_reader(seen)) return false;
    }
    if (!reader.finish()) {
        fault(stream_fault("sent an event that is not strict JSON."));
        return false;
    }
    event_name_seen = std::move(name);
    act(kind_of(event_type()));
    event_name_seen.clear();
    return !ended;
}

void ResponsesToChatStream::State::act(EventKind kind) {
    switch (kind) {
    case EventKind::Created:
        chunks.identify(event.response_id, event.response_model, event.created_at);
        return;
    case EventKind::TextDelta:
    case EventKind::RefusalDelta:
    case EventKind::ArgumentsDelta:
        return end_delta(kind);
    case EventKind::ItemAdded:
        if (event.item_type == "function_call") tool_call_started();
        return;
    case EventKind::Completed:
    case EventKind::Incomplete:
    case EventKind::Failed:
    case EventKind::Error:
        return terminal(kind);
    case EventKind::Other:
        return;
    }
}

// ---- what the client gets -----------------------------------------------------------------

static long long tool_index_for(const std::vector<std::pair<long long, size_t>>& tools, long long output_index) {
    for (const auto& [at, index] : tools)
        if (at == output_index) return static_cast<long long>(index);
    return -1;
}

// The opening of a delta's chunk, up to its string's opening quote; false when the event
// does not make one (an arguments delta for no known function call).
bool ResponsesToChatStream::State::delta_envelope_ready(EventKind kind, std::string& prefix) {
    if (kind == EventKind::Other) kind = kind_of(event_type());
    std::string inner;
    if (kind == EventKind::TextDelta) {
        inner = "\"content\":\"";
    } else if (kind == EventKind::RefusalDelta) {
        inner = "\"refusal\":\"";
    } else if (kind == EventKind::ArgumentsDelta) {
        long long index = tool_index_for(tools, event.output_index);
        if (index < 0) return false;
        inner = "\"tool_calls\":[{\"index\":" + std::to_string(index) + ",\"function\":{\"arguments\":\"";
    } else {
        return false;
    }
    prefix = std::move(inner);
    return true;
}

// A delta too large to hold: its chunk opens now and the rest follows as it comes.
void ResponsesToChatStream::State::stream_delta_piece(std::string_view raw) {
    if (!event.delta_streaming) {
        std::string prefix;
        if (!delta_envelope_ready(EventKind::Other, prefix)) {
            field_fault = true;  // too large to hold, and nowhere to send it yet
            return;
        }
        chunks.open(*out, prefix);
        *out += event.delta;
        event.delta.clear();
        event.delta.shrink_to_fit();
        event.delta_streaming = true;
    }
    *out += raw;
}

void ResponsesToChatStream::State::end_delta(EventKind kind) {
    if (event.delta_streaming) {
        *out += ChatChunks::closing(kind == EventKind::ArgumentsDelta);
        return;
    }
    std::string prefix;
    if (!event.delta_seen || !delta_envelope_ready(kind, prefix)) return;
    chunks.open(*out, prefix);
    *out += event.delta;
    *out += ChatChunks::closing(kind == EventKind::ArgumentsDelta);
}

void ResponsesToChatStream::State::tool_call_started() {
    if (tool_index_for(tools, event.output_index) >= 0) return;
    if (tools.size() >= kMaxToolCalls) return fault(stream_fault("named more function calls than the proxy takes."));
    size_t index = tools.size();
    tools.emplace_back(event.output_index, index);
    chunks.write(*out, "\"tool_calls\":[{\"index\":" + std::to_string(index) + ",\"id\":\"" + event.call_id +
                "\",\"type\":\"function\",\"function\":{\"name\":\"" + event.name + "\",\"arguments\":\"\"}}]");
}

// The response is over: its finish reason, its usage when asked for, [DONE]; or the error.
void ResponsesToChatStream::State::terminal(EventKind kind) {
    if (kind == EventKind::Failed || kind == EventKind::Error) {
        std::string code = event.error_code.empty() ? "upstream_failed" : json_string_words(event.error_code);
        std::string words = event.error_message.empty() ? "The upstream's response failed." : json_string_words(event.error_message);
        return fault(make_error(502, words, code, json_string_words(event.error_param), "api_error"));
    }
    usage = event.usage;
    chunks.finish(*out, chat_finish_reason(kind == EventKind::Incomplete, event.incomplete_reason, !tools.empty()),
                  options.include_usage ? &usage : nullptr);
    ended = done = true;
}

// The client's stream ends with the proxy's mid-stream error event (relay.cpp's shape).
void ResponsesToChatStream::State::fault(ProxyError made) {
    if (ended) return;
    if (event.delta_streaming) {  // a chunk is open: closed first, so the stream stays readable
        *out += reader.open_escape_completion();
        *out += ChatChunks::closing(kind_of(event_type()) == EventKind::ArgumentsDelta);
        event.delta_streaming = false;
    }
    *out += "event: error\ndata: " + error_body(made) + "\n\n";
    error = std::make_unique<ProxyError>(std::move(made));
    ended = true;
}

// ---- the public face --------------------------------------------------------------------

ResponsesToChatStream::ResponsesToChatStream(ChatStreamOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}
ResponsesToChatStream::~ResponsesToChatStream() = default;

bool ResponsesToChatStream::feed(std::string_view piece, std::string& out) {
    if (state_->ended) return false;
    state_->out = &out;
    state_->sse.feed(piece);
    state_->out = nullptr;
    return !state_->ended;
}

void ResponsesToChatStream::finish(std::string& out) {
    if (state_->ended) return;
    state_->out = &out;
    state_->fault(stream_fault("ended before its response completed."));
    state_->out = nullptr;
}

bool ResponsesToChatStream::completed() const { return state_->done; }
const ProxyError* ResponsesToChatStream::error() const { return state_->error.get(); }
const ResponsesStreamUsage& ResponsesToChatStream::usage() const { return state_->usage; }

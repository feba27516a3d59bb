// The upstream's answer on its way to the client: relayed unchanged but for hop-by-hop
// headers, with event streams kept well formed (the blank line Azure omits after the
// last event is added) and idle ones given a heartbeat between events.
#pragma once

#include <string>

#include "config.h"
#include "request.h"
#include "response_writer.h"
#include "upstream.h"

class Relay {
public:
    Relay(ResponseWriter& writer, ProxyMode mode) : writer_(writer), mode_(mode) {}

    // `replace`: headers the proxy sets instead of the upstream's of the same names.
    bool head(long status, const FieldViews& upstream_headers, const Headers& replace = {});
    // All of it, or (when the client cannot take it yet) none of it: Later.
    Taken data(const char* data, size_t size);

    bool event_stream() const { return event_stream_; }
    // lighttpd and Apache notice a client that left only when they next write to it; an
    // SSE comment on an idle stream makes them write, so the upstream transfer stops.
    // Written only between events, never inside one; false when it was not the time.
    bool heartbeat();
    // Azure omits the blank line that ends the last event; event-source parsers wait
    // for it. Like the seed, add it.
    void finish_event_stream();
    // The upstream failed mid-answer: an event stream gets an `error` event in OpenAI's
    // shape (after ending any event it was inside); other answers get nothing more.
    void fail_event_stream(const ProxyError& error);
    // AZURE_OPENAI_PROXY_STREAM_USAGE added include_usage to a stream the client did not
    // ask it of: its usage chunk ("choices":[] with a "usage" object) is left out. Events
    // are then relayed whole, as each completes (a partial one waits for its end).
    void leave_out_usage_chunk() { strip_usage_ = true; }

private:
    static constexpr size_t kKeptFields = 64;
    ResponseWriter& writer_;
    ProxyMode mode_;
    char tail_[2] = {'\n', '\n'};  // the last two bytes relayed: "\n\n" ends an event
    bool event_stream_ = false;
    bool strip_usage_ = false;
    std::string held_;  // stripping: the start of an event not yet complete

    bool write(const char* data, size_t size);
    Taken data_without_usage(const char* data, size_t size);
};

#include "relay.h"

#include "text.h"

// The headers are picked, not copied: the head is written before any of them goes. Each
// field is looked at once (answer_field), into a list the thread keeps for its next heads.
bool Relay::head(long status, const FieldViews& upstream_headers, const Headers& replace) {
    // nginx: do not buffer this answer, whatever fastcgi_buffering says.
    static const FieldView kNoBuffering{"X-Accel-Buffering", "no"};
    thread_local FieldViews headers;
    headers.clear();
    const FieldView* length = nullptr;  // the first Content-Length field
    size_t lengths = 0;
    for (const FieldView& header : upstream_headers) {
        AnswerField kind = answer_field(header, mode_);
        if (kind == AnswerField::ContentLength && lengths++ == 0) length = &header;
        if (kind == AnswerField::Dropped || kind == AnswerField::ContentLength) continue;
        if (!replace.empty() && find_header(replace, header.name)) continue;
        if (kind == AnswerField::EventStream) event_stream_ = true;
        headers.push_back(header);
    }
    // A known length lets clients show progress; an event stream gets an extra line at
    // its end, so it goes without one.
    if (lengths == 1 && !event_stream_) headers.push_back(*length);
    if (lengths > 1 && !event_stream_)
        for (const FieldView& header : upstream_headers)
            if (is_content_length(header.name)) headers.push_back(header);
    for (const Header& header : replace) headers.push_back({header.name, header.value});
    headers.push_back(kNoBuffering);
    bool written = writer_.head_from(static_cast<int>(status), headers);
    if (headers.capacity() > kKeptFields) FieldViews().swap(headers);  // a head of a thousand fields
    return written;
}

Taken Relay::data(const char* data, size_t size) {
    if (size == 0) return Taken::All;
    if (strip_usage_ && event_stream_) return data_without_usage(data, size);
    if (!writer_.can_take(size)) return Taken::Later;
    return write(data, size) ? Taken::All : Taken::Refused;
}

bool Relay::write(const char* data, size_t size) {
    if (size == 0) return true;
    if (size >= 2) {
        tail_[0] = data[size - 2];
    } else {
        tail_[0] = tail_[1];
    }
    tail_[1] = data[size - 1];
    return writer_.body(data, size);
}

namespace {

bool is_usage_chunk(std::string_view event) {
    return event.find("\"choices\":[]") != std::string_view::npos && event.find("\"usage\":{") != std::string_view::npos;
}

}  // namespace

// Whole events only, the usage chunk left out; what is held is the start of the next.
Taken Relay::data_without_usage(const char* data, size_t size) {
    std::string text = held_;
    text.append(data, size);
    std::string out;
    size_t start = 0;
    for (size_t end; (end = text.find("\n\n", start)) != std::string::npos; start = end + 2) {
        std::string_view event(text.data() + start, end + 2 - start);
        if (!is_usage_chunk(event)) out.append(event);
    }
    if (!writer_.can_take(out.size())) return Taken::Later;
    held_ = text.substr(start);
    return write(out.data(), out.size()) ? Taken::All : Taken::Refused;
}

bool Relay::heartbeat() {
    static const char kHeartbeat[] = ": keep-alive\n\n";
    if (!event_stream_ || tail_[0] != '\n' || tail_[1] != '\n') return false;
    if (!writer_.can_take(sizeof kHeartbeat - 1)) return false;
    return writer_.body(kHeartbeat, sizeof kHeartbeat - 1);
}

void Relay::finish_event_stream() {
    if (!event_stream_) return;
    // What was held is the last event (Azure's [DONE] comes without its blank line).
    if (!held_.empty() && !(strip_usage_ && is_usage_chunk(held_))) write(held_.data(), held_.size());
    held_.clear();
    writer_.body("\n", 1);
}

void Relay::fail_event_stream(const ProxyError& error) {
    if (!event_stream_) return;
    std::string event = tail_[1] != '\n' ? "\n\n" : tail_[0] != '\n' ? "\n" : "";
    event += "event: error\ndata: " + error_body(error) + "\n\n";
    writer_.body(event.data(), event.size());
}

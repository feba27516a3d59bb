// Tests: tests/unit/sse_reader_test.cpp; fuzzed by fuzz/fuzz_responses_stream.cpp.
#include "sse_reader.h"

#include <algorithm>

bool SseReader::feed(std::string_view piece) {
    const char* at = piece.data();
    const char* end = at + piece.size();
    while (at < end && !stopped_)
        if (!line_byte(at, end)) stopped_ = true;
    return !stopped_;
}

bool SseReader::line_byte(const char*& at, const char* end) {
    char c = *at;
    if (c == '\n' && after_cr_) {  // the LF of a CRLF
        after_cr_ = false;
        ++at;
        return true;
    }
    after_cr_ = c == '\r';
    if (c == '\r' || c == '\n') {
        ++at;
        return line_ended();
    }
    switch (line_) {
    case Line::Start:
        line_ = c == ':' ? Line::Comment : Line::Name;
        return line_byte(at, end);
    case Line::Name:
        ++at;
        if (c == ':') line_ = Line::ValueStart;
        else if (field_.size() < 16) field_ += c;
        return true;
    case Line::ValueStart:
        line_ = Line::Value;
        if (c == ' ') ++at;  // one space after the colon is not part of the value
        if (field_ == "data") return listener_.data({}, true);
        return true;
    default:
        return value_run(at, end);
    }
}

// A value's bytes to the line's end or the piece's.
bool SseReader::value_run(const char*& at, const char* end) {
    const char* from = at;
    while (at < end && *at != '\n' && *at != '\r') ++at;
    std::string_view value(from, static_cast<size_t>(at - from));
    if (line_ == Line::Comment) return true;
    if (field_ == "data") return listener_.data(value, false);
    if (field_ == "event") event_name_.append(value.substr(0, kMaxSseEventName - std::min(event_name_.size(), kMaxSseEventName)));
    return true;
}

bool SseReader::line_ended() {
    Line ended = line_;
    line_ = Line::Start;
    bool go_on = true;
    if (ended == Line::Start) {
        go_on = listener_.event_end();
    } else if (field_ == "data" && (ended == Line::Name || ended == Line::ValueStart)) {
        go_on = listener_.data({}, true);  // "data" or "data:" alone: an empty line of data
    } else if (field_ == "event") {
        listener_.event_name(event_name_);
    }
    field_.clear();
    event_name_.clear();
    return go_on;
}

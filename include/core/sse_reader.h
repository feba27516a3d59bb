// Server-sent events read as they arrive in pieces cut anywhere (the WHATWG framing: lines
// ended by LF, CR or CRLF; "field: value"; a comment line starts with ':'; a blank line ends
// an event), holding nothing but a field's name: a data line's value goes to the listener
// piece by piece, however long it is.
#pragma once

#include <string>
#include <string_view>

class SseListener {
public:
    virtual ~SseListener() = default;
    // A data line's value (the one space after the colon left out), in pieces; `line_start`
    // on the first piece of each data line. False: stop reading.
    virtual bool data(std::string_view bytes, bool line_start) = 0;
    // An event line's value, whole (cut at kMaxSseEventName bytes).
    virtual void event_name(std::string_view name) = 0;
    // A blank line. False: stop reading.
    virtual bool event_end() = 0;
};

constexpr size_t kMaxSseEventName = 128;

class SseReader {
public:
    explicit SseReader(SseListener& listener) : listener_(listener) {}
    // False once the listener said stop (then it reads nothing more).
    bool feed(std::string_view piece);

private:
    enum class Line { Start, Name, ValueStart, Value, Comment };
    bool line_byte(const char*& at, const char* end);
    bool value_run(const char*& at, const char* end);
    bool line_ended();

    SseListener& listener_;
    Line line_ = Line::Start;
    std::string field_;       // cut at 16 bytes: longer names are no field this reader knows
    std::string event_name_;
    bool after_cr_ = false;
    bool stopped_ = false;
};

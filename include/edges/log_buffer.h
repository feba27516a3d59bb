// The access-log buffer of one event loop: lines gather and go to stderr in one write
// (log_buffer.cpp).
#pragma once

#include <limits.h>

#include <cstdint>
#include <string>

#include "deadline_queue.h"
#include "event_loop.h"

namespace engine_detail {

// Access-log lines gather for up to kDelayMs, or until PIPE_BUF bytes, and go out in one
// write: under load one write carries many requests' lines (as nginx's `access_log
// buffer=` does). Writes of at most PIPE_BUF bytes to a pipe are never split: every
// loop's lines stay whole. Nothing waits when nothing is logged.
class LogBuffer : public TimerSource {
public:
    static const int64_t kDelayMs = 50;

    void add(const std::string& line, int64_t now_ms) {
        add_with([&line](std::string& lines) { lines += line; }, now_ms);
    }
    // One line that `append_line(lines)` writes straight at the buffer's end: it needs no
    // string of its own (an allocation and a copy a request).
    template <typename AppendLine>
    void add_with(AppendLine append_line, int64_t now_ms) {
        size_t before = lines_.size();
        append_line(lines_);
        if (before == 0) first_ms_ = now_ms;
        else if (lines_.size() > PIPE_BUF) write_before(before, now_ms);
    }
    void write();
    int64_t next_due_ms() const override { return lines_.empty() ? DeadlineQueue::kNever : first_ms_ + kDelayMs; }
    void fire(int64_t) override { write(); }

private:
    void write_out(size_t size);
    void write_before(size_t line_start, int64_t now_ms);

    std::string lines_;
    int64_t first_ms_ = 0;
};

}  // namespace engine_detail

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

    void add(const std::string& line, int64_t now_ms);
    void write();
    int64_t next_due_ms() const override { return lines_.empty() ? DeadlineQueue::kNever : first_ms_ + kDelayMs; }
    void fire(int64_t) override { write(); }

private:
    std::string lines_;
    int64_t first_ms_ = 0;
};

}  // namespace engine_detail

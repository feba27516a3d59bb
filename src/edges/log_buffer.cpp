// The access-log buffer (log_buffer.h): one loop's lines, written to stderr together.
#include "log_buffer.h"

#include <errno.h>
#include <unistd.h>

namespace engine_detail {

void LogBuffer::add(const std::string& line, int64_t now_ms) {
    if (!lines_.empty() && lines_.size() + line.size() > PIPE_BUF) write();
    if (lines_.empty()) first_ms_ = now_ms;
    lines_ += line;
}

void LogBuffer::write() {
    // A write cut short goes on with the rest; one that fails drops the lines, as
    // there is no other place to say so.
    for (size_t at = 0; at < lines_.size();) {
        ssize_t put = ::write(STDERR_FILENO, lines_.data() + at, lines_.size() - at);
        if (put > 0) at += static_cast<size_t>(put);
        else if (put == 0 || errno != EINTR) break;
    }
    lines_.clear();
}

}  // namespace engine_detail

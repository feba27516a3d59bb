// The access-log buffer (log_buffer.h): one loop's lines, written to stderr together.
#include "log_buffer.h"

#include <errno.h>
#include <unistd.h>

namespace engine_detail {

void LogBuffer::write() {
    write_out(lines_.size());
    lines_.clear();
}

// The line just added would take the buffer past PIPE_BUF: the lines before it go out
// alone, and it waits, first in the buffer.
void LogBuffer::write_before(size_t line_start, int64_t now_ms) {
    write_out(line_start);
    lines_.erase(0, line_start);
    first_ms_ = now_ms;
}

// The buffer's first `size` bytes to stderr. A write cut short goes on with the rest; one
// that fails drops the lines, as there is no other place to say so.
void LogBuffer::write_out(size_t size) {
    for (size_t at = 0; at < size;) {
        ssize_t put = ::write(STDERR_FILENO, lines_.data() + at, size - at);
        if (put > 0) at += static_cast<size_t>(put);
        else if (put == 0 || errno != EINTR) break;
    }
}

}  // namespace engine_detail

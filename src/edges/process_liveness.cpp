// Whether a process still runs: its state and start time read from /proc/PID/stat (a pid
// reused later has another start time), or, without /proc, only whether the pid is taken.
#include "process_liveness.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "unique_fd.h"

namespace {

// The state (field 3) and start time (field 22) of /proc/PID/stat; false when unreadable.
bool read_process_stat(pid_t pid, char& state, uint64_t& start_time) {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return false;
    char text[1024];
    ssize_t length = read(fd.get(), text, sizeof text - 1);
    if (length <= 0) return false;
    text[length] = '\0';
    const char* at = std::strrchr(text, ')');  // the command before it may hold anything
    if (!at || at[1] != ' ' || !at[2]) return false;
    state = at[2];
    at += 2;
    for (int field = 3; field < 22 && at; ++field) {
        at = std::strchr(at, ' ');
        if (at) ++at;
    }
    if (!at) return false;
    start_time = std::strtoull(at, nullptr, 10);
    return true;
}

}  // namespace

uint64_t process_start_time(pid_t pid) {
    char state;
    uint64_t start_time = 0;
    return read_process_stat(pid, state, start_time) ? start_time : 0;
}

bool process_alive(pid_t pid, uint64_t start_time) {
    if (pid <= 0) return false;
    static const bool have_proc = access("/proc/self/stat", R_OK) == 0;
    char state;
    uint64_t started = 0;
    if (read_process_stat(pid, state, started))
        return state != 'Z' && state != 'X' && (start_time == 0 || started == start_time);
    if (have_proc) return false;
    return kill(pid, 0) == 0 || errno == EPERM;  // no /proc: only whether the pid is taken
}

// A process's identity and liveness, from /proc/PID/stat: its start time (with the pid it
// names one process) and whether it still runs. The shared state's rows are named so, and
// freed when their process died.
#pragma once

#include <sys/types.h>

#include <cstdint>

// A process's start time in clock ticks since boot (/proc/PID/stat, field 22); 0 when
// unknown. With the pid it names one process: a pid reused later has another start.
uint64_t process_start_time(pid_t pid);
// Whether the process that had this pid and start time still runs (a zombie does not).
bool process_alive(pid_t pid, uint64_t start_time);

// Inside the state file (state_file.cpp): the SIGBUS handler that survives a state file
// truncated under the processes. Each mapping of a file registers its range; a fault in
// one extends the file again (the access then reads zeros) and marks the range faulted.
#pragma once

#include <atomic>
#include <cstddef>

namespace state_file_internal {

// The range's entry (-1: none: no descriptor, no handler, or more files than entries).
int register_fault_range(void* begin, size_t size, int fd);
void unregister_fault_range(int index);
// Set once an access in the range has faulted.
const std::atomic<int>& fault_flag(int index);

}  // namespace state_file_internal

// The SIGBUS handler of the state files: an access beyond the end of a file truncated
// under the processes extends it again and marks its mapping damaged; any other SIGBUS
// goes where it would have gone.
// Tested by state_file_test.cpp (a_file_truncated_under_the_processes_is_survived_and_rebuilt).
#include "state_fault.h"

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>

namespace state_file_internal {

namespace {

// The mappings the SIGBUS handler may extend again. Ordinary code claims an entry (begin
// 0 -> 1), fills it, then publishes `begin`; the handler only reads.
struct FaultRange {
    std::atomic<uintptr_t> begin{0};
    std::atomic<size_t> size{0};
    std::atomic<int> fd{-1};
    std::atomic<int> faulted{0};
};
FaultRange g_fault_ranges[64];
struct sigaction g_previous_sigbus;

// A SIGBUS that is not about a state file goes where it would have gone.
void chain_sigbus(int signal_number, siginfo_t* info, void* context) {
    const struct sigaction& previous = g_previous_sigbus;
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(signal_number, info, context);
        return;
    }
    if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal_number);
        return;
    }
    // The default action: a fault recurs when the access runs again; a signal that was
    // sent is sent again (it is delivered once this handler returns).
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal_number, &fallback, nullptr);
    if (info->si_code <= 0) raise(signal_number);
}

// An access beyond the end of a state file that was truncated: the file is extended again
// (ftruncate is async-signal-safe), so the access runs again and reads zeros, and the
// mapping is marked damaged for the next check of its header.
void on_sigbus(int signal_number, siginfo_t* info, void* context) {
    int saved_errno = errno;
    if (info->si_code > 0) {
        uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
        for (FaultRange& range : g_fault_ranges) {
            uintptr_t begin = range.begin.load(std::memory_order_acquire);
            size_t size = range.size.load(std::memory_order_relaxed);
            if (begin <= 1 || address < begin || address - begin >= size) continue;
            range.faulted.store(1);
            int fd = range.fd.load();
            if (fd >= 0 && ftruncate(fd, static_cast<off_t>(size)) == 0) {
                errno = saved_errno;
                return;
            }
            break;
        }
    }
    chain_sigbus(signal_number, info, context);
}

bool install_sigbus_handler() {
    static std::once_flag once;
    static bool installed = false;
    std::call_once(once, [] {
        struct sigaction action = {};
        action.sa_sigaction = on_sigbus;
        action.sa_flags = SA_SIGINFO;
        sigemptyset(&action.sa_mask);
        installed = sigaction(SIGBUS, &action, &g_previous_sigbus) == 0;
        if (!installed)
            std::fprintf(stderr, "azure-openai-proxy: warning: no SIGBUS handler (%s): a truncated state file ends the process\n",
                         std::strerror(errno));
    });
    return installed;
}

}  // namespace

int register_fault_range(void* begin, size_t size, int fd) {
    if (fd < 0 || !install_sigbus_handler()) return -1;
    for (int i = 0; i < static_cast<int>(std::size(g_fault_ranges)); ++i) {
        FaultRange& range = g_fault_ranges[i];
        uintptr_t free_entry = 0;
        if (!range.begin.compare_exchange_strong(free_entry, 1)) continue;
        range.size.store(size);
        range.fd.store(fd);
        range.faulted.store(0);
        range.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
        return i;
    }
    return -1;  // more state files at once than entries: this one is not protected
}

void unregister_fault_range(int index) {
    if (index < 0) return;
    FaultRange& range = g_fault_ranges[index];
    range.begin.store(1);
    range.fd.store(-1);
    range.size.store(0);
    range.begin.store(0, std::memory_order_release);
}

const std::atomic<int>& fault_flag(int index) { return g_fault_ranges[index].faulted; }

}  // namespace state_file_internal

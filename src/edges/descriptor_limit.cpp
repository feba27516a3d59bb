// The descriptor limit (descriptor_limit.h).
#include "descriptor_limit.h"

#include <sys/resource.h>

#include <cstdio>

long items_within_descriptors(long wanted, long per_item, const char* what, const char* variable) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        std::perror("azure-openai-proxy: cannot read the descriptor limit (getrlimit)");
        return wanted;
    }
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = {limit.rlim_max, limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
        else std::perror("azure-openai-proxy: cannot raise the descriptor limit to its maximum (setrlimit)");
    }
    const rlim_t reserve = 64;  // listening socket, loops, logs, libraries' own
    const rlim_t each = static_cast<rlim_t>(per_item);
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= reserve + each * static_cast<rlim_t>(wanted)) return wanted;
    long fits = limit.rlim_cur > reserve + each ? static_cast<long>((limit.rlim_cur - reserve) / each) : 1;
    std::fprintf(stderr,
                 "azure-openai-proxy: the descriptor limit (%llu) allows %ld %s, not %s=%ld; raise LimitNOFILE / "
                 "ulimit -n\n",
                 static_cast<unsigned long long>(limit.rlim_cur), fits, what, variable, wanted);
    return fits;
}

// A broken invariant stops the fuzzer with the condition that failed.
#pragma once

#include <cstdio>
#include <cstdlib>

#define REQUIRE(condition)                                                      \
    do {                                                                        \
        if (!(condition)) {                                                     \
            std::fprintf(stderr, "invariant broken: %s (%s:%d)\n", #condition,  \
                         __FILE__, __LINE__);                                   \
            std::abort();                                                       \
        }                                                                       \
    } while (0)

// Whether a process still runs (process_liveness.cpp): this one does under its own start
// time and not under another (a reused pid); one that exited does not, a zombie or reaped.
#include <boost/test/unit_test.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process_liveness.h"

BOOST_AUTO_TEST_SUITE(process_liveness)

BOOST_AUTO_TEST_CASE(this_process_runs_under_its_own_start_time_only) {
    uint64_t start = process_start_time(getpid());
    BOOST_TEST(start != 0u);
    BOOST_TEST(process_alive(getpid(), start));
    BOOST_TEST(process_alive(getpid(), 0), "no start time known: the pid alone");
    BOOST_TEST(!process_alive(getpid(), start + 1), "another process under a reused pid");
    BOOST_TEST(!process_alive(0, 0));
    BOOST_TEST(!process_alive(-1, 0));
}

BOOST_AUTO_TEST_CASE(a_process_that_exited_does_not_run_zombie_or_reaped) {
    pid_t child = fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) _exit(0);
    siginfo_t info;
    BOOST_REQUIRE(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);  // a zombie now
    uint64_t start = process_start_time(child);
    BOOST_TEST(start != 0u, "a zombie still has its /proc entry");
    BOOST_TEST(!process_alive(child, start), "a zombie does not run");
    BOOST_REQUIRE(waitpid(child, nullptr, 0) == child);
    BOOST_TEST(!process_alive(child, start), "reaped");
    BOOST_TEST(process_start_time(child) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

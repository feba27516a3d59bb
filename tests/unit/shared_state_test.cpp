// The shared state's life in a process (shared_state.cpp): a file overwritten under the
// processes is rebuilt and every one moves to it; the host's id is one for every process
// and kept across a rebuild; the last process to leave removes the file unless told to
// keep it; without a path the state is the process's own.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <string>

#include "config.h"
#include "state_test_support.h"

using namespace state_test;

BOOST_AUTO_TEST_SUITE(shared_state)

BOOST_AUTO_TEST_CASE(a_file_overwritten_under_the_processes_is_rebuilt_and_every_one_moves) {
    StateDir dir;
    std::unique_ptr<SharedState> first = open_state(dir.path);
    std::unique_ptr<SharedState> second = open_state(dir.path);
    std::vector<Target> t = one_target();
    first->add("aop_requests_total", 5);
    ino_t before = inode_of(dir.path);
    overwrite_with_garbage(dir.path);
    BOOST_TEST(in_child([&] {
        bool chose = first->choose(t, std::vector<bool>(1, false), wall_clock_ms()).index == 0;
        bool rebuilt = inode_of(dir.path) != before && valid_state_file(dir.path);
        // Both processes' state is one again, in the rebuilt file (the counters started again).
        second->add("aop_requests_total", 2);
        first->add("aop_requests_total", 1);
        return chose && rebuilt && value_of(*first, "aop_requests_total") == 3 &&
               value_of(*second, "aop_requests_total") == 3;
    }));
}

// The host's name in Redis is one for all its processes, and a rebuilt file keeps it: a
// new name would leave the old one's share in Redis for the host to wait out.
BOOST_AUTO_TEST_CASE(the_host_id_is_shared_by_every_process_and_kept_across_a_rebuild) {
    StateDir dir;
    std::unique_ptr<SharedState> first = open_state(dir.path);
    std::unique_ptr<SharedState> second = open_state(dir.path);
    uint64_t id = first->host_id();
    BOOST_TEST(id != 0u);
    second->tend(wall_clock_ms());  // its once-a-second look: it learns the id
    std::vector<Target> t = one_target();
    ino_t before = inode_of(dir.path);
    overwrite_with_garbage(dir.path);
    BOOST_TEST(in_child([&] {
        // The process that rebuilds never asked for the id: it learned it when it joined.
        second->choose(t, std::vector<bool>(1, false), wall_clock_ms());  // finds the damage, rebuilds
        std::unique_ptr<SharedState> newcomer = open_state(dir.path);
        return inode_of(dir.path) != before && newcomer->host_id() == id && first->host_id() == id &&
               second->host_id() == id;
    }));
    StateDir elsewhere;
    BOOST_TEST(open_state(elsewhere.path)->host_id() != id);
}

BOOST_AUTO_TEST_CASE(the_last_process_to_leave_removes_the_file_unless_told_to_keep_it) {
    StateDir dir;
    {
        std::unique_ptr<SharedState> first = open_state(dir.path);
        std::unique_ptr<SharedState> second = open_state(dir.path);
        first.reset();
        BOOST_TEST(valid_state_file(dir.path), "another process still has its row");
    }
    BOOST_TEST(inode_of(dir.path) == 0u, "the last one removed it");
    open_state(dir.path, true).reset();
    BOOST_TEST(valid_state_file(dir.path), "kept (plain CGI)");
}

BOOST_AUTO_TEST_CASE(without_a_path_or_a_usable_one_the_state_is_the_processs_own) {
    std::string warning;
    std::unique_ptr<SharedState> own = SharedState::open("", warning);
    BOOST_REQUIRE(own);
    BOOST_TEST(warning.empty());
    BOOST_TEST(!own->shared());
    ClientKey key;
    key.name = "alone";
    key.limits.concurrent = 1;
    BOOST_TEST(own->admit_key(key, wall_clock_ms(), 0).allowed);
    BOOST_TEST(!own->admit_key(key, wall_clock_ms(), 0).allowed, "its limits still apply");
    std::unique_ptr<SharedState> fallback = SharedState::open("/nonexistent-aop-dir/state", warning);
    BOOST_REQUIRE(fallback);
    BOOST_TEST(!fallback->shared());
    BOOST_TEST(warning.find("this process's alone") != std::string::npos, warning);
}

BOOST_AUTO_TEST_CASE(the_default_file_is_one_per_user_and_configuration) {
    Config config;
    config.config_file = "/etc/azure-openai-proxy.conf";
    config.endpoint = "https://east.example";
    std::string path = state_file_path(config);
    BOOST_TEST(path == SharedState::default_path(config.config_file, config.endpoint));
    BOOST_TEST(path.find("/azure-openai-proxy-" + std::to_string(getuid()) + "-") != std::string::npos, path);
    BOOST_TEST(path != SharedState::default_path(config.config_file, "https://west.example"));
    config.state_file = "/run/aop/state";
    BOOST_TEST(state_file_path(config) == "/run/aop/state");
    config.state_file = "none";
    BOOST_TEST(state_file_path(config).empty());
}

BOOST_AUTO_TEST_CASE(the_shared_state_is_one_for_every_process) {
    state_test::StateDir dir;
    const std::string& path = dir.path;
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning);
    BOOST_REQUIRE(state);
    BOOST_TEST(state->shared());
    std::vector<Target> t(1);
    t[0].name = "t0";
    RetryPolicy policy;
    ClientKey key;
    key.name = "k";
    key.limits.concurrent = 1;
    pid_t child = fork();
    if (child == 0) {
        // Another process: a 429 cools the target for both; a request left in flight
        // counts until the process has gone.
        std::string w;
        std::unique_ptr<SharedState> other = SharedState::open(path, w);
        std::vector<bool> tried(1, false);
        Pick pick = other->choose(t, tried, 1000);
        other->report(t[0], TryResult::RateLimited, 5000, pick.trial_token, 1000, policy);
        other->add("aop_requests_total", 3);
        other->admit_key(key, 1000, 0);
        _exit(pick.index == 0 ? 0 : 1);  // no destructors: as if it died
    }
    int status = 0;
    BOOST_REQUIRE(waitpid(child, &status, 0) == child);
    BOOST_TEST(WEXITSTATUS(status) == 0);
    std::vector<bool> tried(1, false);
    Pick pick = state->choose(t, tried, 2000);
    BOOST_TEST(pick.index == -1);
    BOOST_TEST(pick.retry_after_ms == 4000);
    state->add("aop_requests_total", 1);
    double total = 0;
    for (const SeriesValue& s : state->series())
        if (s.series == "aop_requests_total") total = s.value;
    BOOST_TEST(total == 4);
    // The dead child's slot is taken over by the next process to come: its key's place in
    // flight is forgotten, its counters are kept.
    pid_t next = fork();
    if (next == 0) {
        std::string w;
        std::unique_ptr<SharedState> third = SharedState::open(path, w);
        bool admitted = third->admit_key(key, 3000, 0).allowed;
        third->release_key(key, 0, -1, 3000);
        double seen = 0;
        for (const SeriesValue& s : third->series())
            if (s.series == "aop_requests_total") seen = s.value;
        _exit(admitted && seen == 4 ? 0 : 1);
    }
    BOOST_REQUIRE(waitpid(next, &status, 0) == next);
    BOOST_TEST(WEXITSTATUS(status) == 0);
    state.reset();
    BOOST_TEST(access(path.c_str(), F_OK) != 0, "the last process to leave removes the file");
}

BOOST_AUTO_TEST_SUITE_END()

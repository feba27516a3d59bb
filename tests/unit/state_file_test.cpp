// The state file (state_file.cpp, and the SIGBUS handler of state_fault.cpp): a file of
// another size or version, one truncated under the processes, or a lock no process can
// take is rebuilt; a lock whose holder died is given back, one held for ever never hangs
// a process. And the mapping itself: created 0600 with its header, a foreign file refused,
// private memory.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>

#include "state_test_support.h"
#include "unique_fd.h"

using namespace state_test;

BOOST_AUTO_TEST_SUITE(state_file)

BOOST_FIXTURE_TEST_CASE(a_lock_held_by_a_process_that_died_is_given_back, OneTarget) {
    in_dying_child([&] { return pthread_mutex_lock(mapped_lock(dir.path)) == 0; });
    ino_t before = inode_of(dir.path);
    BOOST_TEST(in_child([&] { return state->choose(t, std::vector<bool>(1, false), wall_clock_ms()).index == 0; }));
    BOOST_TEST(inode_of(dir.path) == before, "a dead holder is no damage");
}

BOOST_FIXTURE_TEST_CASE(a_lock_no_process_can_take_gets_the_file_rebuilt, OneTarget) {
    // One process dies holding the lock; the next one to take it gives it back without
    // making it consistent: no process can take it again (ENOTRECOVERABLE).
    in_dying_child([&] { return pthread_mutex_lock(mapped_lock(dir.path)) == 0; });
    in_dying_child([&] {
        pthread_mutex_t* mutex = mapped_lock(dir.path);
        return pthread_mutex_lock(mutex) == EOWNERDEAD && pthread_mutex_unlock(mutex) == 0;
    });
    ino_t before = inode_of(dir.path);
    BOOST_TEST(in_child([&] {
        return state->choose(t, std::vector<bool>(1, false), wall_clock_ms()).index == 0 &&
               inode_of(dir.path) != before && valid_state_file(dir.path);
    }));
}

BOOST_FIXTURE_TEST_CASE(a_lock_held_for_ever_never_hangs_a_process, OneTarget) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0);
    pid_t holder = fork();
    if (holder == 0) {  // takes the lock and never gives it back, as a stuck process would
        pthread_mutex_lock(mapped_lock(dir.path));
        char byte = 1;
        if (write(ready[1], &byte, 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    char byte;
    BOOST_REQUIRE(read(ready[0], &byte, 1) == 1);
    ino_t before = inode_of(dir.path);
    bool served = in_child([&] {
        return state->choose(t, std::vector<bool>(1, false), wall_clock_ms()).index == 0 &&
               inode_of(dir.path) != before && valid_state_file(dir.path);
    });
    kill(holder, SIGKILL);
    waitpid(holder, nullptr, 0);
    close(ready[0]);
    close(ready[1]);
    BOOST_TEST(served);
}

BOOST_AUTO_TEST_CASE(a_file_of_another_size_or_version_is_rebuilt_not_refused) {
    StateDir dir;
    int fd = open(dir.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(write(fd, "not a state file at all", 23) == 23);
    close(fd);
    ino_t garbage = inode_of(dir.path);
    {
        std::unique_ptr<SharedState> state = open_state(dir.path, true);
        BOOST_TEST(state->shared());
        BOOST_TEST(inode_of(dir.path) != garbage, "a fresh file in its place");
        BOOST_TEST(valid_state_file(dir.path));
    }
    // A file of the right size from another layout version.
    fd = open(dir.path.c_str(), O_WRONLY | O_CLOEXEC);
    uint32_t older = 5;
    BOOST_REQUIRE(pwrite(fd, &older, sizeof older, offsetof(StateHeader, version)) == sizeof older);
    close(fd);
    ino_t old_version = inode_of(dir.path);
    std::unique_ptr<SharedState> state = open_state(dir.path);
    BOOST_TEST(state->shared());
    BOOST_TEST(inode_of(dir.path) != old_version);
    BOOST_TEST(valid_state_file(dir.path));
}

BOOST_AUTO_TEST_CASE(a_file_truncated_under_the_processes_is_survived_and_rebuilt) {
    // Cut whole, or after the header (only the fault tells then).
    for (off_t length : {off_t{0}, off_t{4096}}) {
        StateDir dir;
        std::unique_ptr<SharedState> state = open_state(dir.path);
        std::vector<Target> t = one_target();
        state->add("aop_requests_total", 1);
        ino_t before = inode_of(dir.path);
        BOOST_REQUIRE(truncate(dir.path.c_str(), length) == 0);
        BOOST_TEST(in_child([&] {
            state->add("aop_requests_total", 1);  // its page is gone: SIGBUS, survived
            bool chose = state->choose(t, std::vector<bool>(1, false), wall_clock_ms()).index == 0;
            double counted = std::max(0.0, value_of(*state, "aop_requests_total"));  // (since the move)
            state->add("aop_requests_total", 1);
            return chose && inode_of(dir.path) != before && valid_state_file(dir.path) &&
                   value_of(*state, "aop_requests_total") == counted + 1;
        }), "cut to " << length);
    }
}

BOOST_AUTO_TEST_CASE(a_file_is_created_for_this_user_alone_with_its_header) {
    StateDir dir;
    std::string error;
    std::unique_ptr<StateMapping> mapping = StateMapping::attach(dir.path, 8192, 3, error);
    BOOST_REQUIRE(mapping);
    BOOST_TEST(error.empty(), error);
    mapping->release_file_lock();
    struct stat info;
    BOOST_REQUIRE(stat(dir.path.c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 0777) == 0600u);
    BOOST_TEST(info.st_size == 8192);
    BOOST_TEST(valid_state_file(dir.path));
    BOOST_TEST(static_cast<StateHeader*>(mapping->base())->version == 3u);
    BOOST_TEST(mapping->shared());
    BOOST_TEST(mapping->intact());
    BOOST_TEST(mapping->at_path());
    {
        StateLock locked(*mapping);
        BOOST_TEST(static_cast<bool>(locked));
    }
    StateLock again(*mapping);
    BOOST_TEST(static_cast<bool>(again), "given back when its scope ended");
    BOOST_TEST(static_cast<bool>(StateMapping::attach_existing(dir.path, 8192, 3)));
    BOOST_TEST(!StateMapping::attach_existing(dir.path, 8192, 4), "another version");
    BOOST_TEST(!StateMapping::attach_existing(dir.path, 4096, 3), "another size");
    BOOST_TEST(!StateMapping::attach_existing(dir.path + ".missing", 8192, 3));
}

BOOST_AUTO_TEST_CASE(a_file_others_may_use_is_refused_not_rebuilt) {
    StateDir dir;
    int fd = open(dir.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(write(fd, "someone else's", 14) == 14);
    BOOST_REQUIRE(fchmod(fd, 0644) == 0);
    close(fd);
    ino_t before = inode_of(dir.path);
    std::string error;
    BOOST_TEST(!StateMapping::attach(dir.path, 8192, 3, error));
    BOOST_TEST(error.find("belongs to another user or others may use it") != std::string::npos, error);
    BOOST_TEST(!StateMapping::attach_existing(dir.path, 8192, 3));
    BOOST_TEST(inode_of(dir.path) == before, "left as it was");
    BOOST_TEST(size_of(dir.path) == 14);
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(dir.path, warning);
    BOOST_REQUIRE(state);
    BOOST_TEST(!state->shared(), "the process's own state instead");
    BOOST_TEST(!warning.empty());
}

BOOST_AUTO_TEST_CASE(private_memory_is_no_file) {
    std::unique_ptr<StateMapping> mapping = StateMapping::private_memory(8192, 3);
    BOOST_REQUIRE(mapping);
    BOOST_TEST(!mapping->shared());
    BOOST_TEST(mapping->intact());
    BOOST_TEST(!mapping->at_path());
    BOOST_TEST(!mapping->hold_file_lock_at_path());
    StateLock locked(*mapping);
    BOOST_TEST(static_cast<bool>(locked));
}

BOOST_AUTO_TEST_CASE(a_replaced_file_is_retired_and_the_fresh_one_is_at_the_path) {
    StateDir dir;
    std::string error;
    std::unique_ptr<StateMapping> old = StateMapping::attach(dir.path, 8192, 3, error);
    BOOST_REQUIRE(old);
    old->release_file_lock();
    ino_t before = inode_of(dir.path);
    old->replace_at_path();  // (says "rebuilt" on stderr)
    BOOST_TEST(inode_of(dir.path) != before);
    BOOST_TEST(valid_state_file(dir.path));
    BOOST_TEST(!old->at_path());
    BOOST_TEST(old->intact(), "until retired, only the path has moved on");
    old->retire();
    BOOST_TEST(!old->intact(), "marked retired: those still on it move too");
    BOOST_TEST(!old->shared());
    BOOST_TEST(static_cast<bool>(StateMapping::attach_existing(dir.path, 8192, 3)));
    UniqueFd fresh(open(dir.path.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_TEST(same_file(dir.path, fresh.get()));
    BOOST_TEST(!same_file(dir.path + ".missing", fresh.get()));
}

BOOST_AUTO_TEST_SUITE_END()

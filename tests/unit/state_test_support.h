// What the shared state's and the state file's unit tests share: a directory of its own
// for each test's state file, states opened there, children that check or die as if
// killed, a circuit opened and a trial taken by a process that dies, a file overwritten
// with garbage, the file's lock as another process maps it.
#pragma once

#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "shared_state.h"
#include "state_file.h"

namespace state_test {

// A directory of its own for each test's state file (a rebuild puts its fresh file beside).
struct StateDir {
    std::string dir, path;
    StateDir() {
        char name[] = "/tmp/aop-state-XXXXXX";
        BOOST_REQUIRE(mkdtemp(name));
        dir = name;
        path = dir + "/state";
    }
    ~StateDir() {
        if (DIR* d = opendir(dir.c_str())) {
            while (dirent* entry = readdir(d))
                if (entry->d_name[0] != '.') unlink((dir + "/" + entry->d_name).c_str());
            closedir(d);
        }
        rmdir(dir.c_str());
    }
};

inline std::unique_ptr<SharedState> open_state(const std::string& path, bool keep_file = false) {
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning, keep_file);
    BOOST_REQUIRE(state);
    BOOST_TEST(warning.empty(), warning);
    return state;
}

inline ino_t inode_of(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
}

inline off_t size_of(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0 ? info.st_size : -1;
}

// The file at `path` is a whole state file of this program's: its header's size is the file's.
inline bool valid_state_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    StateHeader header;
    bool read_whole = pread(fd, &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header);
    close(fd);
    return read_whole && std::memcmp(&header.magic, "AOPSTATE", 8) == 0 && header.retired == 0 &&
           static_cast<off_t>(header.size) == size_of(path);
}

// Runs `check` in a child process, killed by SIGALRM after `seconds`: a hang or a crash
// (SIGBUS) fails the test instead of stopping the suite.
inline bool in_child(const std::function<bool()>& check, unsigned seconds = 20) {
    pid_t child = fork();
    if (child == 0) {
        alarm(seconds);
        _exit(check() ? 0 : 1);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child) return false;
    if (WIFSIGNALED(status)) BOOST_TEST_MESSAGE("child ended by signal " << WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Runs `body` in a child that then exits without destructors, as if killed.
inline void in_dying_child(const std::function<bool()>& body) {
    pid_t child = fork();
    if (child == 0) _exit(body() ? 0 : 1);
    int status = 0;
    BOOST_REQUIRE(waitpid(child, &status, 0) == child);
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

inline std::vector<Target> one_target(const std::string& name = "east/gpt-4o") {
    Target t;
    t.name = name;
    return {t};
}

inline double value_of(SharedState& state, const std::string& series) {
    for (const SeriesValue& s : state.series())
        if (s.series == series) return s.value;
    return -1;
}

// A circuit opened by one failure, for `circuit_open_s`.
inline RetryPolicy open_circuit(SharedState& state, const std::vector<Target>& t, int64_t now_ms, long circuit_open_s = 1) {
    RetryPolicy policy;
    policy.circuit_failures = 1;
    policy.circuit_open_s = circuit_open_s;
    std::vector<bool> tried(t.size(), false);
    Pick first = state.choose(t, tried, now_ms);
    BOOST_REQUIRE(first.index == 0);
    state.report(t[0], TryResult::Failed, -1, first.trial_token, now_ms, policy);
    BOOST_REQUIRE(state.choose(t, tried, now_ms + 1, false).index == -1);
    return policy;
}

// A circuit opened at `now`, whose trial another process took (with a long lease) and died
// holding; until a reader notices the death (at most a second later), the trial is out.
inline void trial_taken_by_a_dying_process(SharedState& state, const std::string& path, const std::vector<Target>& t,
                                           int64_t now) {
    open_circuit(state, t, now);
    std::vector<bool> tried(1, false);
    in_dying_child([&] {
        SharedState* other = open_state(path).release();  // never left: as if killed
        Pick trial = other->choose(t, tried, now + 1500, true, 600000);
        return trial.index == 0 && trial.trial;
    });
    BOOST_TEST(state.choose(t, tried, now + 1600).index == -1, "the trial is out");
}

inline void overwrite_with_garbage(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    std::mt19937_64 random(20);
    std::vector<uint64_t> garbage(size_of(path) / 8);
    for (uint64_t& word : garbage) word = random();
    BOOST_REQUIRE(pwrite(fd, garbage.data(), garbage.size() * 8, 0) == static_cast<ssize_t>(garbage.size() * 8));
    close(fd);
}

// The state file's lock, as another process maps it.
inline pthread_mutex_t* mapped_lock(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    void* memory = mmap(nullptr, sizeof(StateHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    BOOST_REQUIRE(memory != MAP_FAILED);
    return &static_cast<StateHeader*>(memory)->mutex;
}

// One process's state in a directory of its own, and a model with one target.
struct OneTarget {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    std::vector<Target> t = one_target();
    std::vector<bool> tried = std::vector<bool>(1, false);
    int64_t now = wall_clock_ms();
};

}  // namespace state_test

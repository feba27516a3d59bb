// The shared state across processes: what a process that died held (a circuit's trial,
// places in flight, the lock) is given back; a trial has its own lease; a damaged state
// file (another size or version, overwritten, truncated, a lock no one can take) is
// rebuilt; names are stored whole or refused and counted; a full series table is counted;
// /metrics escapes label values and never cuts a line.
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>

#include "bounds.h"
#include "metrics.h"
#include "shared_state.h"
#include "state_file.h"

namespace {

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

std::unique_ptr<SharedState> open_state(const std::string& path, bool keep_file = false) {
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning, keep_file);
    BOOST_REQUIRE(state);
    BOOST_TEST(warning.empty(), warning);
    return state;
}

ino_t inode_of(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
}

off_t size_of(const std::string& path) {
    struct stat info;
    return stat(path.c_str(), &info) == 0 ? info.st_size : -1;
}

// The file at `path` is a whole state file of this program's: its header's size is the file's.
bool valid_state_file(const std::string& path) {
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
bool in_child(const std::function<bool()>& check, unsigned seconds = 20) {
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
void in_dying_child(const std::function<bool()>& body) {
    pid_t child = fork();
    if (child == 0) _exit(body() ? 0 : 1);
    int status = 0;
    BOOST_REQUIRE(waitpid(child, &status, 0) == child);
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

std::vector<Target> one_target(const std::string& name = "east/gpt-4o") {
    Target t;
    t.name = name;
    return {t};
}

double value_of(SharedState& state, const std::string& series) {
    for (const SeriesValue& s : state.series())
        if (s.series == series) return s.value;
    return -1;
}

// A circuit opened by one failure, for `circuit_open_s`.
RetryPolicy open_circuit(SharedState& state, const std::vector<Target>& t, int64_t now_ms, long circuit_open_s = 1) {
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
void trial_taken_by_a_dying_process(SharedState& state, const std::string& path, const std::vector<Target>& t,
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

void overwrite_with_garbage(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    std::mt19937_64 random(20);
    std::vector<uint64_t> garbage(size_of(path) / 8);
    for (uint64_t& word : garbage) word = random();
    BOOST_REQUIRE(pwrite(fd, garbage.data(), garbage.size() * 8, 0) == static_cast<ssize_t>(garbage.size() * 8));
    close(fd);
}

// The state file's lock, as another process maps it.
pthread_mutex_t* mapped_lock(const std::string& path) {
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

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_state)

BOOST_FIXTURE_TEST_CASE(a_trial_held_by_a_process_that_died_is_given_back, OneTarget) {
    trial_taken_by_a_dying_process(*state, dir.path, t, now);
    // The next reader a second later notices the death: its request is the trial, long
    // before the lease would have passed.
    Pick next = state->choose(t, tried, now + 2600);
    BOOST_TEST(next.index == 0);
    BOOST_TEST(next.trial);
}

BOOST_FIXTURE_TEST_CASE(the_supervisors_reclaim_gives_a_dead_processs_trial_back_at_once, OneTarget) {
    trial_taken_by_a_dying_process(*state, dir.path, t, now);
    state->reclaim_dead_processes();
    BOOST_TEST(state->choose(t, tried, now + 1700).trial);
}

BOOST_AUTO_TEST_CASE(a_trials_lease_is_its_timeout_else_the_circuits_time_at_most_30_s) {
    RetryPolicy policy;
    BOOST_TEST(trial_lease_ms(policy) == 30000);
    policy.circuit_open_s = 5;
    BOOST_TEST(trial_lease_ms(policy) == 5000);
    policy.circuit_open_s = 600;
    BOOST_TEST(trial_lease_ms(policy) == 30000);
    policy.trial_timeout_s = 90;
    BOOST_TEST(trial_lease_ms(policy) == 90000);
}

BOOST_FIXTURE_TEST_CASE(a_trial_that_hangs_holds_the_circuit_only_for_its_lease, OneTarget) {
    RetryPolicy policy = open_circuit(*state, t, now);
    Pick hung = state->choose(t, tried, now + 1000, true, 5000);
    BOOST_TEST(hung.trial);
    BOOST_TEST(state->choose(t, tried, now + 5999).index == -1);
    Pick second = state->choose(t, tried, now + 6001, true, 5000);
    BOOST_TEST(second.index == 0);
    BOOST_TEST(second.trial);
    BOOST_TEST(second.trial_token != hung.trial_token);
    // The first trial's late failure is a plain try now: the second still holds the circuit.
    state->report(t[0], TryResult::Failed, -1, hung.trial_token, now + 6100, policy);
    BOOST_TEST(state->choose(t, tried, now + 6200).index == -1);
    state->report(t[0], TryResult::Success, -1, second.trial_token, now + 6300, policy);
    Pick closed = state->choose(t, tried, now + 6400);
    BOOST_TEST(closed.index == 0);
    BOOST_TEST(!closed.trial);
}

BOOST_AUTO_TEST_CASE(a_process_that_died_stops_counting_in_flight) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    std::vector<Target> t = one_target();
    std::vector<bool> tried(1, false);
    ClientKey key;
    key.name = "bob";
    key.limits.concurrent = 1;
    int64_t now = wall_clock_ms();
    in_dying_child([&] {
        SharedState* other = open_state(dir.path).release();
        return other->admit_key(key, now, 0).allowed && other->choose(t, tried, now).index == 0;
    });
    BOOST_TEST(state->admit_key(key, now + 1500, 0).allowed, "the dead process's place is forgotten");
    std::vector<TargetView> views = state->targets();
    BOOST_REQUIRE(views.size() == 1u);
    BOOST_TEST(views[0].health.in_flight == 0);
    BOOST_TEST(value_of(*state, "aop_state_in_flight{table=\"keys\"}") == 1);  // this process's own
    BOOST_TEST(value_of(*state, "aop_state_in_flight{table=\"targets\"}") == 0);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"processes\"}") == 1);
}

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

BOOST_AUTO_TEST_CASE(a_name_longer_than_its_slot_is_refused_whole_and_counted_never_cut) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    int64_t now = wall_clock_ms();
    ClientKey long_key;
    long_key.name = std::string(kLongestKeyName + 1, 'k');
    long_key.limits.concurrent = 1;
    std::vector<Target> long_target = one_target(std::string(kLongestTargetName + 1, 't'));
    std::vector<bool> tried(1, false);
    for (int i = 0; i < 1100; ++i) {
        state->admit_key(long_key, now, 0);
        state->choose(long_target, tried, now);
    }
    // The tables were not used up: names at their bound have their slots and limits.
    ClientKey key;
    key.name = std::string(kLongestKeyName, 'b');
    key.limits.concurrent = 1;
    BOOST_TEST(state->admit_key(key, now, 0).allowed);
    BOOST_TEST(!state->admit_key(key, now, 0).allowed, "its limit applies");
    std::vector<Target> t = one_target(std::string(kLongestTargetName, 'e'));
    RetryPolicy policy;
    Pick pick = state->choose(t, tried, now);
    BOOST_TEST(pick.index == 0);
    state->report(t[0], TryResult::RateLimited, 5000, pick.trial_token, now, policy);
    BOOST_TEST(state->choose(t, tried, now + 1).index == -1, "its cooldown applies");
    BOOST_TEST(value_of(*state, "aop_state_refused_total{table=\"keys\"}") == 1100);
    BOOST_TEST(value_of(*state, "aop_state_refused_total{table=\"targets\"}") == 1100);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"keys\"}") == 1);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"targets\"}") == 1);
    std::vector<TargetView> views = state->targets();
    BOOST_REQUIRE(views.size() == 1u);
    BOOST_TEST(views[0].name == t[0].name, "stored whole");
}

BOOST_AUTO_TEST_CASE(a_full_series_table_is_counted_and_its_series_still_count) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    for (size_t i = 0; i < kStateSeries + 100; ++i) state->count("aop_requests_total", {{"key", "k" + std::to_string(i)}});
    state->count("aop_requests_total", {{"key", "k0"}});
    BOOST_TEST(value_of(*state, "aop_requests_total{key=\"k0\"}") == 2);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"series\"}") == kStateSeries);
    BOOST_TEST(value_of(*state, "aop_metric_series_dropped_total") == 100);
    // A series without a slot is remembered as such: each update is counted, none searched for.
    state->count("aop_requests_total", {{"key", "k" + std::to_string(kStateSeries + 50)}});
    BOOST_TEST(value_of(*state, "aop_metric_series_dropped_total") == 101);
    std::string page = render_metrics(state->series(), state->targets(), wall_clock_ms());
    BOOST_TEST(page.find("# TYPE aop_metric_series_dropped_total counter\naop_metric_series_dropped_total 101\n") !=
               std::string::npos);
}

namespace {

// A line of the text exposition format: a comment, or a series (labels quoted with \\, \"
// and \n as the only escapes) and a number.
bool well_formed(const std::string& line) {
    if (line.empty() || line[0] == '#') return !line.empty();
    size_t at = 0;
    while (at < line.size() && (std::isalnum(static_cast<unsigned char>(line[at])) || line[at] == '_')) ++at;
    if (at == 0) return false;
    if (at < line.size() && line[at] == '{') {
        for (++at; at < line.size() && line[at] != '}';) {
            size_t equals = line.find("=\"", at);
            if (equals == std::string::npos) return false;
            for (at = equals + 2; at < line.size() && line[at] != '"'; ++at)
                if (line[at] == '\\' && (++at >= line.size() || std::strchr("\\\"n", line[at]) == nullptr)) return false;
            if (++at < line.size() && line[at] == ',') ++at;
        }
        if (at++ >= line.size()) return false;
    }
    if (at >= line.size() || line[at] != ' ') return false;
    char* end = nullptr;
    std::strtod(line.c_str() + at + 1, &end);
    return end && *end == '\0' && end != line.c_str() + at + 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(label_values_are_escaped_and_no_line_is_ever_cut) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    // Every byte escaped: the longest series there can be.
    std::string model(kLongestConfiguredModel, '"'), target(kLongestTargetName, '\\'), key(kLongestKeyName, '\n');
    state->count("aop_requests_total", {{"route", "audio/transcriptions"}, {"model", model}, {"target", target},
                                        {"key", key}, {"status", "1234567"}});
    std::string longest = series_name("aop_requests_total", {{"route", "audio/transcriptions"}, {"model", model},
                                                             {"target", target}, {"key", key}, {"status", "1234567"}});
    BOOST_TEST(longest.size() == kLongestSeries);
    BOOST_TEST(value_of(*state, longest) == 1, "stored whole");
    // A value that ends the way a bucket's bound begins does not confuse the order.
    state->observe("aop_time_to_first_token_seconds", {{"model", "xle="}}, 0.3);
    TargetView view;
    view.name = target;
    std::string page = render_metrics(state->series(), {view}, wall_clock_ms());
    size_t lines = 0;
    for (size_t at = 0, end; at < page.size(); at = end + 1, ++lines) {
        end = page.find('\n', at);
        BOOST_REQUIRE(end != std::string::npos);
        BOOST_TEST(well_formed(page.substr(at, end - at)), page.substr(at, end - at));
    }
    BOOST_TEST(lines > 20u);
    std::string escaped_model, escaped_target;
    for (size_t i = 0; i < kLongestConfiguredModel; ++i) escaped_model += "\\\"";
    for (size_t i = 0; i < kLongestTargetName; ++i) escaped_target += "\\\\";
    BOOST_TEST(page.find(",model=\"" + escaped_model + "\",") != std::string::npos);
    BOOST_TEST(page.find("aop_target_in_flight{target=\"" + escaped_target + "\"} 0\n") != std::string::npos);
    size_t b05 = page.find("{model=\"xle=\",le=\"0.05\"}"), b1 = page.find("{model=\"xle=\",le=\"1\"}"),
           inf = page.find("{model=\"xle=\",le=\"+Inf\"}"), sum = page.find("aop_time_to_first_token_seconds_sum");
    BOOST_TEST((b05 < b1 && b1 < inf && inf < sum && sum != std::string::npos));
}

BOOST_AUTO_TEST_SUITE_END()

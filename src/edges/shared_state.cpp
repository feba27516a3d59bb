// The shared state's life in a process: opening (the file at a path, or the process's own
// memory), the current mapping and its lock, the move from a damaged file to the rebuilt
// one, the once-a-second look at the path and at dead processes, leaving, and the host's
// id. Its jobs over the mapped layout (shared_state_layout.h) are in shared_state_rows.cpp,
// _targets.cpp, _keys.cpp, _series.cpp and _slots.cpp. Decisions are taken under the file's
// robust process-shared mutex (state_file.h, which also rebuilds a damaged file); metric
// values are per process and lock-free.
#include "shared_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstdio>
#include <random>

#include "config.h"
#include "process_liveness.h"
#include "shared_state_layout.h"
#include "state_file.h"

using namespace shared_state_internal;

namespace {

const int64_t kCheckEveryMs = 1000;   // the path and dead processes are looked at this often
const int kMoveAttempts = 3;  // files tried in a row before the state becomes the process's own

}  // namespace

int64_t wall_clock_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string SharedState::default_path(const std::string& config_file, const std::string& endpoint) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(config_file + "\n" + endpoint)));
    struct stat info;
    std::string dir = stat("/dev/shm", &info) == 0 && S_ISDIR(info.st_mode) ? "/dev/shm" : "/tmp";
    return dir + "/azure-openai-proxy-" + std::to_string(getuid()) + "-" + std::string(hash, 12);
}

std::unique_ptr<SharedState> SharedState::open(const std::string& path, std::string& warning, bool keep_file) {
    std::unique_ptr<SharedMapping> mapping = path.empty() ? nullptr : open_mapping(path, warning);
    bool shared = mapping != nullptr;
    if (!mapping) {
        mapping = private_mapping();
        if (!mapping) return nullptr;
        if (!warning.empty()) warning += "; limits, cooldowns and metrics are this process's alone";
    }
    return std::unique_ptr<SharedState>(new SharedState(std::move(mapping), shared ? path : "", keep_file));
}

SharedState::SharedState(std::unique_ptr<SharedMapping> first, std::string path, bool keep_file)
    : current_(first.get()), path_(std::move(path)), keep_file_(keep_file) {
    keep_host_id(*first->layout);
    mappings_.push_back(std::move(first));
}

// What it held in flight is over; its counters are kept. The last process to leave
// removes the file (under its flock, so that no process joins meanwhile).
SharedState::~SharedState() {
    SharedMapping& m = *current_.load();
    bool at_path = m.file->hold_file_lock_at_path();
    std::optional<std::vector<ProcessSlot>> rows = leave_row(m);
    bool others = !rows || std::any_of(rows->begin(), rows->end(), [](const ProcessSlot& row) {
        return process_alive(row.pid, row.start_time);
    });
    if (at_path && !others && !keep_file_) unlink(path_.c_str());
    m.file->release_file_lock();
}

bool SharedState::shared() const { return current_.load()->file->shared(); }

SharedMapping& SharedState::current() {
    SharedMapping* m = current_.load(std::memory_order_acquire);
    if (m->file->intact()) return *m;
    move_from(m, false);
    return *current_.load(std::memory_order_acquire);
}

HeldState SharedState::hold() {
    for (int attempt = 0;; ++attempt) {
        SharedMapping* m = current_.load(std::memory_order_acquire);
        if (m->file->lock()) return HeldState(*m);
        move_from(m, attempt >= kMoveAttempts);
    }
}

// This process leaves a damaged file for the one at the path (rebuilt first if the
// damaged one is still there); after attempts in a row that fail, for its own memory.
void SharedState::move_from(SharedMapping* damaged, bool last_resort) {
    std::lock_guard<std::mutex> moving(move_mutex_);
    if (current_.load() != damaged) return;  // another thread has moved already
    std::string error;
    std::unique_ptr<SharedMapping> next;
    if (!path_.empty() && !last_resort) {
        damaged->file->replace_at_path();
        next = open_mapping(path_, error);
    }
    if (!next) {
        next = private_mapping();
        if (!next) return;  // no memory for even that: the damaged mapping is asked again
        std::fprintf(stderr, "azure-openai-proxy: warning: the state file %s cannot be used (%s): limits, cooldowns and metrics are this process's alone\n",
                     path_.c_str(), error.empty() ? "it keeps being damaged" : error.c_str());
        path_.clear();
    }
    damaged->file->retire();
    keep_host_id(*next->layout);
    current_.store(next.get(), std::memory_order_release);
    mappings_.push_back(std::move(next));
}

// At most once a second per process: the file still at the path (else the process moves
// to the one there), and, once a second for the host, the rows of dead processes.
void SharedState::every_second(int64_t now_ms) {
    int64_t due = next_check_ms_.load(std::memory_order_relaxed);
    if (now_ms < due && due - now_ms <= kCheckEveryMs) return;
    if (!next_check_ms_.compare_exchange_strong(due, now_ms + kCheckEveryMs)) return;
    SharedMapping* m = &current();
    if (m->file->shared() && !m->file->at_path()) {
        move_from(m, false);
        m = &current();
    }
    if (m->file->intact()) keep_host_id(*m->layout);  // never an id read from a damaged file
    int64_t& last = m->layout->last_sweep_ms;
    int64_t seen = __atomic_load_n(&last, __ATOMIC_RELAXED);
    if (now_ms >= seen && now_ms - seen < kCheckEveryMs) return;
    if (__atomic_compare_exchange_n(&last, &seen, now_ms, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) reclaim_dead(*m);
}

void SharedState::reclaim_dead_processes() { reclaim_dead(current()); }

// Every process learns the host's id when it joins a file and once a second, and gives it
// to a rebuilt file that has none yet: the host keeps its name in Redis (its share there
// stays its own) across a rebuild, whichever process then talks to Redis.
uint64_t SharedState::keep_host_id(SharedLayout& l) {
    uint64_t id = __atomic_load_n(&l.host_id, __ATOMIC_ACQUIRE);
    uint64_t known = known_host_id_.load(std::memory_order_relaxed);
    if (id == 0 && known != 0 &&
        __atomic_compare_exchange_n(&l.host_id, &id, known, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        id = known;
    if (id != 0) known_host_id_.store(id, std::memory_order_relaxed);
    return id;
}

uint64_t SharedState::host_id() {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    uint64_t id = keep_host_id(l);
    if (id == 0) {  // the first process of the host to ask: a new name
        std::random_device random;
        id = (static_cast<uint64_t>(random()) << 32 | random()) | 1;
        __atomic_store_n(&l.host_id, id, __ATOMIC_RELEASE);
        known_host_id_.store(id, std::memory_order_relaxed);
    }
    return id;
}
std::string state_file_path(const Config& config) {
    std::string path = config.state_file;
    if (path.empty()) path = SharedState::default_path(config.config_file, config.endpoint);
    return path == "none" ? "" : path;
}

std::unique_ptr<SharedState> open_shared_state(const Config& config, bool keep_file) {
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(state_file_path(config), warning, keep_file);
    if (!state) std::fprintf(stderr, "azure-openai-proxy: cannot map memory for the shared state\n");
    else if (!warning.empty()) std::fprintf(stderr, "azure-openai-proxy: warning: %s\n", warning.c_str());
    return state;
}

void reclaim_dead_processes(const Config& config) {
    std::string path = state_file_path(config);
    std::unique_ptr<StateMapping> file =
        path.empty() ? nullptr : StateMapping::attach_existing(path, sizeof(SharedLayout), kLayoutVersion);
    if (!file) return;
    std::unique_ptr<SharedMapping> m = make_mapping(std::move(file));
    reclaim_dead(*m);
}

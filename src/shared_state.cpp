// The shared state's edge: a file mapped by every process, a robust process-shared mutex
// for the decisions (a process that dies holding it does not block the others), and
// lock-free per-process metric values.
#include "shared_state.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "config.h"
#include "metrics.h"
#include "unique_fd.h"

namespace {

const uint64_t kMagic = 0x414f50535441545ULL;  // layout version 5
const int64_t kRemoteFreshMs = 3000;  // Redis's counts stand in for this host's this long
const int kProcesses = 256;
const int kTargets = 256;
const int kKeys = 1024;
const int kSeries = 4096;

uint64_t fnv1a(const std::string& text) {
    uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
    return hash;
}

template <size_t N>
bool name_is(const char (&stored)[N], const std::string& name) {
    return name.size() < N && std::strncmp(stored, name.c_str(), N) == 0;
}

template <size_t N>
void set_name(char (&stored)[N], const std::string& name) {
    std::memset(stored, 0, N);
    std::memcpy(stored, name.data(), std::min(name.size(), N - 1));
}

void add_double(double& target, double amount) {
    uint64_t* bits = reinterpret_cast<uint64_t*>(&target);
    uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
    do {
        double value;
        std::memcpy(&value, &old, sizeof value);
        value += amount;
        std::memcpy(&next, &value, sizeof next);
    } while (!__atomic_compare_exchange_n(bits, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

double load_double(const double& source) {
    uint64_t bits = __atomic_load_n(reinterpret_cast<const uint64_t*>(&source), __ATOMIC_RELAXED);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

std::atomic<uint64_t> generations{0};

// What this thread knows of one mapping's series, by name: emptied when another mapping
// (another generation) is asked about.
template <typename Value>
std::unordered_map<std::string, Value>& thread_cache(uint64_t generation) {
    thread_local std::unordered_map<std::string, Value> known;
    thread_local uint64_t known_for = 0;
    if (known_for != generation) known.clear(), known_for = generation;
    return known;
}

// A series name built in a buffer each thread reuses.
std::string& thread_series_name(const char* family, Labels labels) {
    thread_local std::string name;
    name.clear();
    append_series(name, family, labels);
    return name;
}

}  // namespace

struct ProcessSlot {
    int32_t pid;
};

struct TargetSlot {
    char name[128];
    int64_t cooldown_until_ms, circuit_open_until_ms;
    int32_t failures, trial_out;
    int64_t remaining_requests, remaining_tokens;  // +1: 0 means never reported
};

struct KeySlot {
    char name[64];
    RateWindow requests, tokens;                  // this host's
    RateWindow pending_requests, pending_tokens;  // this host's, not yet added in Redis
    RateWindow remote_requests, remote_tokens;    // every host's, as Redis last said
    int64_t remote_at_ms;
};

struct SeriesSlot {
    uint32_t ready;  // the name is complete (set last, with release order)
    uint32_t gauge;
    char name[248];
};

struct SharedLayout {
    uint64_t magic;
    pthread_mutex_t mutex;
    ProcessSlot processes[kProcesses];
    TargetSlot targets[kTargets];
    KeySlot keys[kKeys];
    SeriesSlot series[kSeries];
    double retired[kSeries];  // counters of processes that have gone
    // Per process, in rows: a process touches only its own pages (the file stays sparse),
    // and what is summed over processes is summed over the live ones.
    int32_t target_in_flight[kProcesses][kTargets];
    int32_t key_in_flight[kProcesses][kKeys];
    double values[kProcesses][kSeries];
};

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

namespace {

void init_mutex(pthread_mutex_t* mutex) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
}

// Opens the file and takes its flock, which every process holds while it joins or
// leaves: the last to leave removes the file, so one that joins meanwhile finds the name
// gone from under its descriptor, and opens the new file.
UniqueFd open_locked(const std::string& path, std::string& error) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd.valid()) {
            error = "cannot open " + path + ": " + std::strerror(errno);
            return fd;
        }
        if (flock(fd.get(), LOCK_EX) != 0) {
            error = "cannot lock " + path + ": " + std::strerror(errno);
            return UniqueFd();
        }
        struct stat opened, named;
        if (fstat(fd.get(), &opened) != 0) break;
        // In a shared directory such as /dev/shm, another user could have made the file
        // first: only one of this user's own, that no one else may read or write, is used.
        if (opened.st_uid != geteuid() || (opened.st_mode & 077) != 0 || !S_ISREG(opened.st_mode)) {
            error = path + " belongs to another user or others may use it";
            return UniqueFd();
        }
        if (stat(path.c_str(), &named) == 0 && opened.st_ino == named.st_ino && opened.st_dev == named.st_dev)
            return fd;
    }
    error = "cannot open " + path + ": it keeps being removed";
    return UniqueFd();
}

// Maps the file (flock held), sizing and initialising it when this process is the first.
SharedLayout* map_file(int fd, const std::string& path, std::string& error) {
    struct stat info;
    if (fstat(fd, &info) != 0 || (info.st_size != 0 && info.st_size != static_cast<off_t>(sizeof(SharedLayout)))) {
        error = path + " is not this version's state file (remove it, with every proxy stopped)";
        return nullptr;
    }
    if (info.st_size == 0 && ftruncate(fd, sizeof(SharedLayout)) != 0) {
        error = "cannot size " + path + ": " + std::strerror(errno);
        return nullptr;
    }
    void* memory = mmap(nullptr, sizeof(SharedLayout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED) {
        error = "cannot map " + path + ": " + std::strerror(errno);
        return nullptr;
    }
    auto* layout = static_cast<SharedLayout*>(memory);
    if (layout->magic != kMagic) {
        init_mutex(&layout->mutex);
        __atomic_store_n(&layout->magic, kMagic, __ATOMIC_RELEASE);
    }
    return layout;
}

SharedLayout* map_private() {
    void* memory = mmap(nullptr, sizeof(SharedLayout), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    auto* layout = static_cast<SharedLayout*>(memory);
    init_mutex(&layout->mutex);
    layout->magic = kMagic;
    return layout;
}

// Adds to a window of changes (which, unlike a count, may go below zero).
RateWindow moved(RateWindow window, long long amount, int64_t now_ms) {
    window = rolled(window, now_ms);
    window.current += amount;
    return window;
}

// Only what is not zero is written: a fresh file stays sparse.
template <typename T>
void clear(T& value) {
    if (value != 0) value = 0;
}

}  // namespace

std::unique_ptr<SharedState> SharedState::open(const std::string& path, std::string& warning, bool keep_file) {
    UniqueFd fd = path.empty() ? UniqueFd() : open_locked(path, warning);
    SharedLayout* layout = fd.valid() ? map_file(fd.get(), path, warning) : nullptr;
    bool shared = layout != nullptr;
    if (!layout) {
        fd.reset();
        layout = map_private();
        if (!layout) return nullptr;
        if (!warning.empty()) warning += "; limits, cooldowns and metrics are this process's alone";
    }
    std::unique_ptr<SharedState> state(new SharedState(layout, sizeof(SharedLayout), shared));
    state->claim_process_slot();
    if (shared) {
        if (!keep_file) state->path_ = path;
        flock(fd.get(), LOCK_UN);
        state->fd_ = fd.release();
    }
    return state;
}

SharedState::SharedState(SharedLayout* layout, size_t size, bool shared)
    : layout_(layout), size_(size), shared_(shared), generation_(++generations) {}

// What it held in flight is over; its counters are kept. The last process to leave
// removes the file.
SharedState::~SharedState() {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
    lock();
    release_slot(process_);
    bool others = false;
    for (const ProcessSlot& slot : layout_->processes)
        if (slot.pid && (kill(slot.pid, 0) == 0 || errno != ESRCH)) others = true;
    unlock();
    if (fd_ >= 0 && !others && !path_.empty()) unlink(path_.c_str());
    munmap(layout_, size_);
    if (fd_ >= 0) ::close(fd_);  // and its flock
}

// A slot left by its process: its places in flight and gauges go, its counters are kept.
void SharedState::release_slot(int slot) {
    clear(layout_->processes[slot].pid);
    for (int32_t& count : layout_->target_in_flight[slot]) clear(count);
    for (int32_t& count : layout_->key_in_flight[slot]) clear(count);
    for (int i = 0; i < kSeries; ++i) {
        double& value = layout_->values[slot][i];
        if (value == 0) continue;
        if (!layout_->series[i].gauge) add_double(layout_->retired[i], value);
        value = 0;
    }
}

void SharedState::lock() {
    if (pthread_mutex_lock(&layout_->mutex) == EOWNERDEAD) pthread_mutex_consistent(&layout_->mutex);
}

void SharedState::unlock() { pthread_mutex_unlock(&layout_->mutex); }

// The slot of a process that has gone is taken over (after release_slot).
void SharedState::claim_process_slot() {
    pid_t self = getpid();
    lock();
    int chosen = kProcesses - 1;  // all taken: the last slot is shared by the overflow
    for (int i = 0; i < kProcesses; ++i) {
        pid_t pid = layout_->processes[i].pid;
        bool free = pid == 0 || pid == self || (kill(pid, 0) != 0 && errno == ESRCH);
        if (free) {
            chosen = i;
            break;
        }
    }
    process_ = chosen;
    if (layout_->processes[chosen].pid != 0 || chosen == kProcesses - 1) release_slot(chosen);
    layout_->processes[chosen].pid = self;
    unlock();
}

// Open addressing by name hash over a table of named slots; the caller holds the lock.
template <typename Slot, size_t N>
int find_named(Slot (&slots)[N], const std::string& name, bool create) {
    const int count = static_cast<int>(N);
    for (int probe = 0, i = static_cast<int>(fnv1a(name) % N); probe < count; ++probe, i = (i + 1) % count) {
        Slot& slot = slots[i];
        if (name_is(slot.name, name)) return i;
        if (slot.name[0] == 0) {
            if (!create) return -1;
            set_name(slot.name, name);
            return i;
        }
    }
    return -1;
}

int SharedState::find_target(const std::string& name, bool create) { return find_named(layout_->targets, name, create); }

int SharedState::find_key(const std::string& name, bool create) { return find_named(layout_->keys, name, create); }

long SharedState::target_in_flight(int slot) const {
    long total = 0;
    for (int p = 0; p < kProcesses; ++p)
        if (layout_->processes[p].pid) total += layout_->target_in_flight[p][slot];
    return total;
}

long SharedState::key_in_flight(int slot) const {
    long total = 0;
    for (int p = 0; p < kProcesses; ++p)
        if (layout_->processes[p].pid) total += layout_->key_in_flight[p][slot];
    return total;
}

Pick SharedState::choose(const std::vector<Target>& targets, const std::vector<bool>& tried, int64_t now_ms, bool take) {
    std::vector<TargetHealth> health(targets.size());
    std::vector<int> slots(targets.size(), -1);
    lock();
    for (size_t i = 0; i < targets.size(); ++i) {
        int slot = slots[i] = find_target(targets[i].name, true);
        if (slot < 0) continue;  // table full: the target is always healthy
        const TargetSlot& s = layout_->targets[slot];
        health[i] = {s.cooldown_until_ms, s.circuit_open_until_ms, s.failures, s.trial_out != 0, target_in_flight(slot)};
    }
    Pick pick = pick_target(targets, health, tried, now_ms, static_cast<uint64_t>(now_ms) * 2654435761ULL + getpid());
    if (take && pick.index >= 0 && slots[pick.index] >= 0) {
        TargetSlot& s = layout_->targets[slots[pick.index]];
        ++layout_->target_in_flight[process_][slots[pick.index]];
        if (pick.trial) s.trial_out = 1;
    }
    unlock();
    return pick;
}

void SharedState::report(const Target& target, TryResult result, int64_t retry_after, bool trial, int64_t now_ms,
                         const RetryPolicy& policy) {
    lock();
    int slot = find_target(target.name, false);
    if (slot >= 0) {
        TargetSlot& s = layout_->targets[slot];
        TargetHealth h{s.cooldown_until_ms, s.circuit_open_until_ms, s.failures, s.trial_out != 0, 0};
        h = after_try(h, result, retry_after, trial, now_ms, policy);
        s.cooldown_until_ms = h.cooldown_until_ms;
        s.circuit_open_until_ms = h.circuit_open_until_ms;
        s.failures = h.failures;
        s.trial_out = h.trial_out;
        if (layout_->target_in_flight[process_][slot] > 0) --layout_->target_in_flight[process_][slot];
    }
    unlock();
}

void SharedState::remember_headroom(const Target& target, long long requests, long long tokens) {
    if (requests < 0 && tokens < 0) return;
    lock();
    int slot = find_target(target.name, false);
    if (slot >= 0) {
        if (requests >= 0) layout_->targets[slot].remaining_requests = requests + 1;
        if (tokens >= 0) layout_->targets[slot].remaining_tokens = tokens + 1;
    }
    unlock();
}

std::vector<TargetView> SharedState::targets() {
    std::vector<TargetView> out;
    lock();
    for (int i = 0; i < kTargets; ++i) {
        const TargetSlot& s = layout_->targets[i];
        if (!s.name[0]) continue;
        TargetView view;
        view.name.assign(s.name, strnlen(s.name, sizeof s.name));
        view.health = {s.cooldown_until_ms, s.circuit_open_until_ms, s.failures, s.trial_out != 0, target_in_flight(i)};
        view.remaining_requests = s.remaining_requests - 1;
        view.remaining_tokens = s.remaining_tokens - 1;
        out.push_back(std::move(view));
    }
    unlock();
    return out;
}

KeyDecision SharedState::admit_key(const ClientKey& key, int64_t now_ms, long long tokens) {
    lock();
    int slot = find_key(key.name, true);
    if (slot < 0) {
        unlock();
        return KeyDecision();  // table full: unlimited rather than refused
    }
    KeySlot& s = layout_->keys[slot];
    KeyUsage usage{s.requests, s.tokens, 0};
    if (now_ms - s.remote_at_ms < kRemoteFreshMs) {  // every host's count, through Redis
        usage.requests = combined(s.remote_requests, s.pending_requests, now_ms);
        usage.tokens = combined(s.remote_tokens, s.pending_tokens, now_ms);
    }
    usage.in_flight = key_in_flight(slot);
    KeyDecision decision = decide_key(key.limits, usage, now_ms, tokens);
    if (decision.allowed) {
        s.requests = added(s.requests, 1, now_ms);
        s.tokens = added(s.tokens, tokens, now_ms);
        s.pending_requests = moved(s.pending_requests, 1, now_ms);
        s.pending_tokens = moved(s.pending_tokens, tokens, now_ms);
        ++layout_->key_in_flight[process_][slot];
    }
    unlock();
    return decision;
}

void SharedState::release_key(const ClientKey& key, long long estimated, long long used, int64_t now_ms) {
    lock();
    int slot = find_key(key.name, false);
    if (slot >= 0) {
        KeySlot& s = layout_->keys[slot];
        int32_t& mine = layout_->key_in_flight[process_][slot];
        if (mine > 0) --mine;
        if (used >= 0) {
            s.tokens = added(s.tokens, used - estimated, now_ms);
            s.pending_tokens = moved(s.pending_tokens, used - estimated, now_ms);
        }
    }
    unlock();
}

// Counts taken for Redis stay counted, as every host's, until Redis's totals (which then
// include them) replace them in apply_remote(): admissions in the meantime still see
// them. `sign` -1: given back, Redis could not take them.
static void count_as_every_hosts(KeySlot& s, const KeyPending& p, int sign, int64_t now_ms) {
    auto scaled = [sign](RateWindow w) {
        if (sign < 0) w.current = saturating_sub(0, w.current), w.previous = saturating_sub(0, w.previous);
        return w;
    };
    s.remote_requests = combined(s.remote_requests, scaled(p.requests), now_ms);
    s.remote_tokens = combined(s.remote_tokens, scaled(p.tokens), now_ms);
}

std::vector<KeyPending> SharedState::take_pending(int64_t now_ms) {
    std::vector<KeyPending> out;
    lock();
    for (KeySlot& s : layout_->keys) {
        if (!s.name[0]) continue;
        KeyPending pending{std::string(s.name, strnlen(s.name, sizeof s.name)), rolled(s.pending_requests, now_ms),
                           rolled(s.pending_tokens, now_ms)};
        s.pending_requests = s.pending_tokens = RateWindow();
        count_as_every_hosts(s, pending, 1, now_ms);
        out.push_back(std::move(pending));
    }
    unlock();
    return out;
}

void SharedState::return_pending(const std::vector<KeyPending>& pending, int64_t now_ms) {
    lock();
    for (const KeyPending& p : pending) {
        int slot = find_key(p.name, false);
        if (slot < 0) continue;
        KeySlot& s = layout_->keys[slot];
        s.pending_requests = combined(s.pending_requests, p.requests, now_ms);
        s.pending_tokens = combined(s.pending_tokens, p.tokens, now_ms);
        count_as_every_hosts(s, p, -1, now_ms);
    }
    unlock();
}

void SharedState::apply_remote(const std::string& key, RateWindow requests, RateWindow tokens, int64_t now_ms) {
    lock();
    int slot = find_key(key, true);  // before this host's first request: it must see the others' counts
    if (slot >= 0) {
        KeySlot& s = layout_->keys[slot];
        s.remote_requests = requests;
        s.remote_tokens = tokens;
        s.remote_at_ms = now_ms;
    }
    unlock();
}

void SharedState::merge_cooldown(const std::string& target, int64_t until_ms) {
    lock();
    int slot = find_target(target, true);
    if (slot >= 0 && layout_->targets[slot].cooldown_until_ms < until_ms) layout_->targets[slot].cooldown_until_ms = until_ms;
    unlock();
}

// Series are found without the lock once known: each thread remembers their slots, and a
// slot's name never changes once `ready` is set.
int SharedState::find_series(const std::string& name, bool gauge, bool create) {
    std::unordered_map<std::string, int>& known = thread_cache<int>(generation_);
    auto it = known.find(name);
    if (it != known.end()) return it->second;
    int found = -1;
    lock();
    for (int probe = 0, i = static_cast<int>(fnv1a(name) % kSeries); probe < kSeries; ++probe, i = (i + 1) % kSeries) {
        SeriesSlot& slot = layout_->series[i];
        if (slot.ready && name_is(slot.name, name)) {
            found = i;
            break;
        }
        if (!slot.ready) {
            if (!create) break;
            set_name(slot.name, name);
            slot.gauge = gauge;
            __atomic_store_n(&slot.ready, 1, __ATOMIC_RELEASE);
            found = i;
            break;
        }
    }
    unlock();
    if (found >= 0) known.emplace(name, found);
    return found;
}

void SharedState::count(const char* family, Labels labels, double amount) {
    add(thread_series_name(family, labels), amount);
}

void SharedState::observe(const char* family, Labels labels, double value) {
    struct Slots {
        std::vector<int> buckets;
        int count, sum;
    };
    std::unordered_map<std::string, Slots>& known = thread_cache<Slots>(generation_);
    const std::string& key = thread_series_name(family, labels);
    auto it = known.find(key);
    if (it == known.end()) {
        HistogramSeries names = histogram_series(family, labels);
        Slots slots;
        for (const std::string& bucket : names.buckets) slots.buckets.push_back(find_series(bucket, false, true));
        slots.count = find_series(names.count, false, true);
        slots.sum = find_series(names.sum, false, true);
        it = known.emplace(key, std::move(slots)).first;
    }
    double* values = layout_->values[process_];
    const Slots& slots = it->second;
    for (size_t i = first_bucket(value); i < slots.buckets.size(); ++i)
        if (slots.buckets[i] >= 0) add_double(values[slots.buckets[i]], 1);
    if (slots.count >= 0) add_double(values[slots.count], 1);
    if (slots.sum >= 0) add_double(values[slots.sum], value);
}

void SharedState::add(const std::string& series, double amount, bool gauge) {
    int slot = find_series(series, gauge, true);
    if (slot >= 0) add_double(layout_->values[process_][slot], amount);
}

std::vector<SeriesValue> SharedState::series() {
    std::vector<int> live;
    lock();
    for (int p = 0; p < kProcesses; ++p)
        if (layout_->processes[p].pid) live.push_back(p);
    unlock();
    std::vector<SeriesValue> out;
    for (int i = 0; i < kSeries; ++i) {
        const SeriesSlot& slot = layout_->series[i];
        if (!__atomic_load_n(&slot.ready, __ATOMIC_ACQUIRE)) continue;
        SeriesValue value;
        value.series.assign(slot.name, strnlen(slot.name, sizeof slot.name));
        value.gauge = slot.gauge;
        value.value = slot.gauge ? 0 : load_double(layout_->retired[i]);
        for (int p : live) value.value += load_double(layout_->values[p][i]);
        out.push_back(std::move(value));
    }
    return out;
}

std::unique_ptr<SharedState> open_shared_state(const Config& config, bool keep_file) {
    std::string path = config.state_file;
    if (path.empty()) path = SharedState::default_path(config.config_file, config.endpoint);
    if (path == "none") path.clear();
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning, keep_file);
    if (!state) std::fprintf(stderr, "azure-openai-proxy: cannot map memory for the shared state\n");
    else if (!warning.empty()) std::fprintf(stderr, "azure-openai-proxy: warning: %s\n", warning.c_str());
    return state;
}

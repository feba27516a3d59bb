// The shared state's logic over the mapped layout: the processes' rows, targets' health
// and trials, keys' counters, metric series. Decisions are taken under the file's robust
// process-shared mutex (state_file.h, which also rebuilds a damaged file); metric values
// are per process and lock-free.
#include "shared_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <unordered_map>

#include "bounds.h"
#include "config.h"
#include "metrics.h"
#include "state_file.h"

namespace {

const uint32_t kLayoutVersion = 7;
const int64_t kRemoteFreshMs = 3000;  // Redis's counts stand in for this host's this long
const int64_t kCheckEveryMs = 1000;   // the path and dead processes are looked at this often
const int kProcesses = static_cast<int>(kStateProcesses);
const int kTargets = static_cast<int>(kStateTargets);
const int kKeys = static_cast<int>(kStateKeys);
// The series table is twice what it may hold: half empty at most, a new series finds its
// place within a few probes, and never further than kSeriesProbes.
const int kSeriesSlots = static_cast<int>(2 * kStateSeries);
const int kSeriesProbes = 64;
const int kMoveAttempts = 3;  // files tried in a row before the state becomes the process's own
// Values read from the file are kept in these ranges: a file overwritten under a process
// yields nonsense, never arithmetic that overflows.
const int64_t kLatestMs = int64_t{1} << 52;
const long long kMostCount = 1LL << 50;
const int32_t kMostInFlight = 1 << 24;

uint64_t fnv1a(std::string_view text) {
    uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
    return hash;
}

}  // namespace

struct ProcessSlot {
    int32_t pid;  // 0: free
    int32_t unused;
    uint64_t start_time;  // with the pid, names one process (a reused pid has another)
};

struct TrialOwner {
    int32_t row, pid;
    uint64_t start_time;
};

struct TargetSlot {
    uint64_t hash;
    char name[kLongestTargetName + 1];
    int64_t cooldown_until_ms, circuit_open_until_ms;
    int32_t failures;
    uint32_t trial_token;     // the open circuit's trial out (0: none), until trial_until_ms
    int64_t trial_until_ms;   // its lease
    TrialOwner trial_owner;   // the process that holds it: its death gives it back
    uint32_t trial_serial, unused;
    int64_t remaining_requests, remaining_tokens;  // +1: 0 means never reported
};

struct KeySlot {
    uint64_t hash;
    char name[kLongestKeyName + 1];
    RateWindow requests, tokens;                  // this host's
    RateWindow pending_requests, pending_tokens;  // this host's, not yet added in Redis
    RateWindow remote_requests, remote_tokens;    // every host's, as Redis last said
    int64_t remote_at_ms;
};

struct SeriesSlot {
    uint32_t ready;  // the name is complete (set last, with release order)
    uint32_t gauge;
    uint64_t hash;
    char name[1024];
};

static_assert(sizeof(TargetSlot::name) > kLongestTargetName, "a target slot holds the longest target name");
static_assert(sizeof(KeySlot::name) > kLongestKeyName, "a key slot holds the longest key name");
static_assert(sizeof(SeriesSlot::name) > kLongestSeries, "a series slot holds the longest series");

struct SharedLayout {
    StateHeader header;
    int64_t last_sweep_ms;    // when dead processes were last looked for
    uint32_t series_used;     // at most kStateSeries
    uint32_t said;            // what was logged once (Said bits)
    uint32_t rows_high;       // rows below it were ever taken (they are taken lowest first)
    uint32_t unused;
    uint64_t series_dropped;  // metric updates that found no series slot
    uint64_t refused[2];      // names given no slot: targets, keys
    uint64_t host_id;         // this host's name among those sharing Redis (0: none yet)
    ProcessSlot processes[kProcesses];
    TargetSlot targets[kTargets];
    KeySlot keys[kKeys];
    SeriesSlot series[kSeriesSlots];
    double retired[kSeriesSlots];  // counters of processes that have gone
    // Per process, in rows: a process touches only its own pages (the file stays sparse),
    // and what is summed over processes is summed over the live ones.
    int32_t target_in_flight[kProcesses][kTargets];
    int32_t key_in_flight[kProcesses][kKeys];
    double values[kProcesses][kSeriesSlots];
};

static_assert(offsetof(SharedLayout, header) == 0, "the file opens with its header");

// One mapping of the state: a process has one at a time, and moves to another when its
// file is damaged and rebuilt.
struct SharedMapping {
    std::unique_ptr<StateMapping> file;
    SharedLayout* layout = nullptr;
    int process = -1;         // this process's row (-1: none, the supervisor's reclaim)
    uint64_t generation = 0;  // tells this mapping's series (in threads' caches) from another's
};

// The mapping's mutex, held for one decision.
class HeldState {
public:
    explicit HeldState(SharedMapping& mapping) : mapping_(mapping) {}
    ~HeldState() { mapping_.file->unlock(); }
    HeldState(const HeldState&) = delete;
    HeldState& operator=(const HeldState&) = delete;
    SharedMapping& mapping() { return mapping_; }
    SharedLayout& layout() { return *mapping_.layout; }
    int process() const { return mapping_.process; }

private:
    SharedMapping& mapping_;
};

namespace {

std::atomic<uint64_t> generations{0};

// Said once per file, whichever process meets it first.
enum Said : uint32_t {
    kSaidLongTarget = 1, kSaidTargetsFull = 2, kSaidLongKey = 4, kSaidKeysFull = 8,
    kSaidLongSeries = 16, kSaidSeriesFull = 32, kSaidProcessesFull = 64,
};

void say_once(SharedLayout& layout, Said what, const std::string& message) {
    if (__atomic_fetch_or(&layout.said, static_cast<uint32_t>(what), __ATOMIC_RELAXED) & what) return;
    std::fprintf(stderr, "azure-openai-proxy: warning: %s\n", message.c_str());
}

int64_t sane_ms(int64_t ms) { return std::clamp<int64_t>(ms, 0, kLatestMs); }

long long sane_count(long long count) { return std::clamp(count, -kMostCount, kMostCount); }

RateWindow sane(RateWindow window) {
    if (window.minute < 0 || window.minute > kLatestMs) return RateWindow();
    window.current = sane_count(window.current);
    window.previous = sane_count(window.previous);
    return window;
}

// Adds to a window of changes (which, unlike a count, may go below zero).
RateWindow moved(RateWindow window, long long amount, int64_t now_ms) {
    window = rolled(sane(window), now_ms);
    window.current = sane_count(window.current + sane_count(amount));
    return window;
}

void add_in_flight(int32_t& count, int amount) {
    count = std::clamp(count + (count >= 0 && count < kMostInFlight ? amount : 0), 0, kMostInFlight);
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

// Only what is not zero is written: a fresh file stays sparse.
template <typename T>
void clear(T& value) {
    if (value != 0) value = 0;
}

// What this thread knows of one mapping's series, by name (a miss too): emptied when
// another mapping (another generation) is asked about.
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

// A name a slot of `size` bytes stores whole: never cut, so it is found again.
bool storable(std::string_view name, size_t size) {
    return !name.empty() && name.size() < size && name.find('\0') == std::string_view::npos;
}

template <size_t N>
bool holds(const char (&stored)[N], std::string_view name) {
    return name.size() < N && stored[name.size()] == 0 && std::memcmp(stored, name.data(), name.size()) == 0;
}

template <size_t N>
void set_name(char (&stored)[N], std::string_view name) {
    std::memset(stored, 0, N);
    std::memcpy(stored, name.data(), name.size());  // storable(): shorter than N
}

// Open addressing by name hash over a table of named slots; the caller holds the lock.
template <typename Slot, size_t N>
int find_named(Slot (&slots)[N], std::string_view name, bool create) {
    uint64_t hash = fnv1a(name);
    for (size_t probe = 0, i = hash % N; probe < N; ++probe, i = (i + 1) % N) {
        Slot& slot = slots[i];
        if (slot.name[0] == 0) {
            if (!create) return -1;
            slot.hash = hash;
            set_name(slot.name, name);
            return static_cast<int>(i);
        }
        if (slot.hash == hash && holds(slot.name, name)) return static_cast<int>(i);
    }
    return -1;
}

// A name with a slot, or -1: too long for one, or the table full (counted, said once).
template <typename Slot, size_t N>
int find_or_refuse(SharedLayout& l, Slot (&slots)[N], int table, std::string_view name, bool create) {
    static const char* const kTables[] = {"target", "key"};
    static const char* const kEffects[] = {"its health and requests in flight are not shared",
                                           "its limits do not apply"};
    bool fits = storable(name, sizeof(Slot::name));
    int slot = fits ? find_named(slots, name, create) : -1;
    if (slot >= 0 || !create) return slot;
    __atomic_add_fetch(&l.refused[table], 1, __ATOMIC_RELAXED);
    if (!fits)
        say_once(l, table == 0 ? kSaidLongTarget : kSaidLongKey,
                 std::string("a ") + kTables[table] + " name of " + std::to_string(name.size()) +
                     " bytes does not fit the shared state's slot (" + std::to_string(sizeof(Slot::name) - 1) +
                     " at most): " + kEffects[table] + " (aop_state_refused_total counts each time)");
    else
        say_once(l, table == 0 ? kSaidTargetsFull : kSaidKeysFull,
                 std::string("the shared state's ") + kTables[table] + " table is full (" + std::to_string(N) +
                     "): a new " + kTables[table] + " gets no slot, " + kEffects[table] +
                     " (aop_state_refused_total counts each time)");
    return -1;
}

int find_target(SharedLayout& l, std::string_view name, bool create) {
    return find_or_refuse(l, l.targets, 0, name, create);
}

int find_key(SharedLayout& l, std::string_view name, bool create) { return find_or_refuse(l, l.keys, 1, name, create); }

// Rows are taken lowest first: what is summed over processes stops at the highest ever taken.
int rows_in_use(const SharedLayout& l) {
    return static_cast<int>(std::min<uint32_t>(__atomic_load_n(&l.rows_high, __ATOMIC_RELAXED), kProcesses));
}

ProcessSlot load_row(const ProcessSlot& slot) {
    ProcessSlot seen{};
    seen.pid = __atomic_load_n(&slot.pid, __ATOMIC_ACQUIRE);
    seen.start_time = __atomic_load_n(&slot.start_time, __ATOMIC_RELAXED);
    return seen;
}

// What a row's process held is given back: its places in flight, its trials and gauges;
// its counters are kept. The caller holds the lock.
void release_row(SharedLayout& l, int row) {
    clear(l.processes[row].pid);
    clear(l.processes[row].start_time);
    for (int32_t& count : l.target_in_flight[row]) clear(count);
    for (int32_t& count : l.key_in_flight[row]) clear(count);
    for (int i = 0; i < kSeriesSlots; ++i) {
        double& value = l.values[row][i];
        if (value == 0) continue;
        if (!l.series[i].gauge) add_double(l.retired[i], value);
        value = 0;
    }
    for (TargetSlot& target : l.targets)
        if (target.trial_token && target.trial_owner.row == row) target.trial_token = 0;
}

// Rows whose process has died are released: found without the lock (a look at /proc per
// live process), released under it if no one took them meanwhile.
void reclaim_dead(SharedMapping& m) {
    std::vector<std::pair<int, ProcessSlot>> dead;
    for (int row = 0, rows = rows_in_use(*m.layout); row < rows; ++row) {
        ProcessSlot seen = load_row(m.layout->processes[row]);
        if (row != m.process && seen.pid != 0 && !process_alive(seen.pid, seen.start_time)) dead.emplace_back(row, seen);
    }
    if (dead.empty()) return;
    StateLock locked(*m.file);
    if (!locked) return;
    for (const auto& [row, seen] : dead) {
        const ProcessSlot& now = m.layout->processes[row];
        if (now.pid == seen.pid && now.start_time == seen.start_time) release_row(*m.layout, row);
    }
}

// This process's row is given back; the rows still taken (none known: the lock could not
// be had).
std::optional<std::vector<ProcessSlot>> leave_row(SharedMapping& m) {
    StateLock locked(*m.file);
    if (!locked) return std::nullopt;
    release_row(*m.layout, m.process);
    std::vector<ProcessSlot> rows;
    for (const ProcessSlot& row : m.layout->processes)
        if (row.pid) rows.push_back(row);
    return rows;
}

// Under the lock: a free row for this process, or on the `last` attempt the last row,
// shared. The row; kNoFreeRow; or kNotLocked.
const int kNoFreeRow = -1, kNotLocked = -2;
int take_row(SharedMapping& m, const ProcessSlot& self, bool last) {
    StateLock locked(*m.file);
    if (!locked) return kNotLocked;
    SharedLayout& l = *m.layout;
    int row = 0;
    while (row < kProcesses && l.processes[row].pid != 0) ++row;
    if (row == kProcesses && !last) return kNoFreeRow;
    if (row == kProcesses) {  // every row is a live process's: the last is shared
        row = kProcesses - 1;
        say_once(l, kSaidProcessesFull, "more than " + std::to_string(kProcesses) +
                                            " processes share the state: the last row is shared by the others");
    }
    l.processes[row] = self;
    if (l.rows_high <= static_cast<uint32_t>(row)) __atomic_store_n(&l.rows_high, row + 1, __ATOMIC_RELAXED);
    m.process = row;
    return row;
}

// This process takes a free row (those of dead processes are freed first when none is).
bool claim_row(SharedMapping& m) {
    ProcessSlot self{static_cast<int32_t>(getpid()), 0, process_start_time(getpid())};
    for (int attempt = 0; attempt < 2; ++attempt) {
        int row = take_row(m, self, attempt == 1);
        if (row == kNotLocked) return false;
        if (row >= 0) return true;
        reclaim_dead(m);
    }
    return false;
}

std::unique_ptr<SharedMapping> make_mapping(std::unique_ptr<StateMapping> file) {
    auto m = std::make_unique<SharedMapping>();
    m->layout = static_cast<SharedLayout*>(file->base());
    m->file = std::move(file);
    m->generation = ++generations;
    return m;
}

// The file at `path`, joined: mapped, with a row for this process.
std::unique_ptr<SharedMapping> open_mapping(const std::string& path, std::string& error) {
    std::unique_ptr<StateMapping> file = StateMapping::attach(path, sizeof(SharedLayout), kLayoutVersion, error);
    if (!file) return nullptr;
    std::unique_ptr<SharedMapping> m = make_mapping(std::move(file));
    bool claimed = claim_row(*m);
    m->file->release_file_lock();
    if (!claimed) error = path + " has a lock no process can take";
    return claimed ? std::move(m) : nullptr;
}

std::unique_ptr<SharedMapping> private_mapping() {
    std::unique_ptr<StateMapping> file = StateMapping::private_memory(sizeof(SharedLayout), kLayoutVersion);
    if (!file) return nullptr;
    std::unique_ptr<SharedMapping> m = make_mapping(std::move(file));
    m->layout->processes[0].pid = static_cast<int32_t>(getpid());
    m->layout->rows_high = 1;
    m->process = 0;
    return m;
}

// Requests in flight at one target or key, summed over the live processes' rows.
template <size_t N>
long in_flight(const SharedLayout& l, const int32_t (&rows)[kProcesses][N], int column) {
    long total = 0;
    for (int p = 0, used = rows_in_use(l); p < used; ++p)
        if (l.processes[p].pid) total += std::clamp(rows[p][column], 0, kMostInFlight);
    return total;
}

// The trial is still out: its lease runs, and the process that took it still has its row.
bool trial_held(const SharedLayout& l, const TargetSlot& s, int64_t now_ms) {
    const TrialOwner& owner = s.trial_owner;
    if (s.trial_token == 0 || s.trial_until_ms <= now_ms || owner.row < 0 || owner.row >= kProcesses) return false;
    const ProcessSlot& holder = l.processes[owner.row];
    return holder.pid == owner.pid && holder.start_time == owner.start_time;
}

TargetHealth health_of(const SharedLayout& l, int slot, int64_t now_ms) {
    const TargetSlot& s = l.targets[slot];
    TargetHealth h;
    h.cooldown_until_ms = sane_ms(s.cooldown_until_ms);
    h.circuit_open_until_ms = sane_ms(s.circuit_open_until_ms);
    h.failures = std::clamp(s.failures, 0, kMostInFlight);
    h.trial_out = trial_held(l, s, now_ms);
    h.in_flight = in_flight(l, l.target_in_flight, slot);
    return h;
}

uint32_t take_trial(SharedLayout& l, int slot, int row, int64_t until_ms) {
    TargetSlot& s = l.targets[slot];
    if (++s.trial_serial == 0) ++s.trial_serial;
    s.trial_token = s.trial_serial;
    s.trial_until_ms = until_ms;
    s.trial_owner = {row, l.processes[row].pid, l.processes[row].start_time};
    return s.trial_token;
}

// Where a series is, looked for without the lock (a ready slot never changes): found, or
// the first empty slot on its way (-1: none within reach).
struct SeriesProbe {
    int found = -1;
    int empty = -1;
};

SeriesProbe probe_series(const SharedLayout& l, std::string_view name, uint64_t hash) {
    SeriesProbe probe;
    for (int n = 0, i = static_cast<int>(hash % kSeriesSlots); n < kSeriesProbes; ++n, i = (i + 1) % kSeriesSlots) {
        const SeriesSlot& slot = l.series[i];
        if (!__atomic_load_n(&slot.ready, __ATOMIC_ACQUIRE)) {
            probe.empty = i;
            break;
        }
        if (slot.hash == hash && holds(slot.name, name)) {
            probe.found = i;
            break;
        }
    }
    return probe;
}

const int kSeriesLater = -2;  // the lock could not be taken: asked again next time

// Under the lock, the series' slot: placed in the free slot found, unless another process
// placed it meanwhile. -1: no room; kSeriesLater: the lock could not be taken.
int store_series(SharedMapping& m, const std::string& name, uint64_t hash, bool gauge) {
    StateLock locked(*m.file);
    if (!locked) return kSeriesLater;
    SharedLayout& l = *m.layout;
    SeriesProbe probe = probe_series(l, name, hash);
    if (probe.found >= 0 || probe.empty < 0 || l.series_used >= kStateSeries) return probe.found;
    SeriesSlot& slot = l.series[probe.empty];
    slot.hash = hash;
    slot.gauge = gauge;
    set_name(slot.name, name);
    ++l.series_used;
    __atomic_store_n(&slot.ready, 1, __ATOMIC_RELEASE);
    return probe.empty;
}

// The series' slot, placed when new: under the lock only to place it. -1: no room (said
// once), or a name too long for a slot.
int place_series(SharedMapping& m, const std::string& name, bool gauge) {
    SharedLayout& l = *m.layout;
    if (!storable(name, sizeof(SeriesSlot::name))) {
        say_once(l, kSaidLongSeries, "a metric series of " + std::to_string(name.size()) + " bytes is longer than a slot (" +
                                         std::to_string(sizeof(SeriesSlot::name) - 1) +
                                         "): it is not shown (aop_metric_series_dropped_total counts what is lost)");
        return -1;
    }
    uint64_t hash = fnv1a(name);
    SeriesProbe probe = probe_series(l, name, hash);
    if (probe.found >= 0 || probe.empty < 0) return probe.found;
    probe.found = store_series(m, name, hash, gauge);
    if (probe.found == -1)
        say_once(l, kSaidSeriesFull, "the metric series table is full (" + std::to_string(kStateSeries) +
                                         " series): new series are not shown (aop_metric_series_dropped_total counts what they lose)");
    return probe.found;
}

// The series' slot in `m`, remembered by this thread (a miss too: a full table is not
// searched again for it).
int find_series(SharedMapping& m, const std::string& name, bool gauge) {
    std::unordered_map<std::string, int>& known = thread_cache<int>(m.generation);
    auto it = known.find(name);
    if (it != known.end()) return it->second;
    int found = place_series(m, name, gauge);
    if (found != kSeriesLater) known.emplace(name, found);
    return found;
}

void count_dropped(SharedLayout& l) { __atomic_add_fetch(&l.series_dropped, 1, __ATOMIC_RELAXED); }

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

Pick SharedState::choose(const std::vector<Target>& targets, const std::vector<bool>& tried, int64_t now_ms, bool take,
                         int64_t trial_lease_ms) {
    every_second(now_ms);
    std::vector<TargetHealth> health(targets.size());
    std::vector<int> slots(targets.size(), -1);
    HeldState held = hold();
    SharedLayout& l = held.layout();
    for (size_t i = 0; i < targets.size(); ++i) {
        int slot = slots[i] = find_target(l, targets[i].name, true);
        if (slot >= 0) health[i] = health_of(l, slot, now_ms);  // (no slot: the target is always healthy)
    }
    uint64_t seed = static_cast<uint64_t>(now_ms) * 2654435761ULL + static_cast<uint64_t>(held.process());  // (no syscall)
    Pick pick = pick_target(targets, health, tried, now_ms, seed);
    if (take && pick.index >= 0 && slots[pick.index] >= 0) {
        int slot = slots[pick.index];
        add_in_flight(l.target_in_flight[held.process()][slot], 1);
        if (pick.trial) pick.trial_token = take_trial(l, slot, held.process(), now_ms + trial_lease_ms);
    }
    return pick;
}

void SharedState::report(const Target& target, TryResult result, int64_t retry_after, uint32_t trial, int64_t now_ms,
                         const RetryPolicy& policy) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target.name, false);
    if (slot < 0) return;
    TargetSlot& s = l.targets[slot];
    // A trial whose lease passed and that another request took over is a plain try now.
    bool owns_trial = trial != 0 && s.trial_token == trial;
    TargetHealth h = after_try(health_of(l, slot, now_ms), result, retry_after, owns_trial, now_ms, policy);
    s.cooldown_until_ms = h.cooldown_until_ms;
    s.circuit_open_until_ms = h.circuit_open_until_ms;
    s.failures = h.failures;
    if (owns_trial) s.trial_token = 0;
    add_in_flight(l.target_in_flight[held.process()][slot], -1);
}

void SharedState::remember_headroom(const Target& target, long long requests, long long tokens) {
    if (requests < 0 && tokens < 0) return;
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target.name, false);
    if (slot < 0) return;
    if (requests >= 0) l.targets[slot].remaining_requests = sane_count(requests) + 1;
    if (tokens >= 0) l.targets[slot].remaining_tokens = sane_count(tokens) + 1;
}

std::vector<TargetView> SharedState::targets() {
    int64_t now_ms = wall_clock_ms();
    every_second(now_ms);
    std::vector<TargetView> out;
    HeldState held = hold();
    SharedLayout& l = held.layout();
    for (int i = 0; i < kTargets; ++i) {
        const TargetSlot& s = l.targets[i];
        if (!s.name[0]) continue;
        TargetView view;
        view.name.assign(s.name, strnlen(s.name, sizeof s.name));
        view.health = health_of(l, i, now_ms);
        view.remaining_requests = std::max(-1LL, sane_count(s.remaining_requests) - 1);
        view.remaining_tokens = std::max(-1LL, sane_count(s.remaining_tokens) - 1);
        out.push_back(std::move(view));
    }
    return out;
}

KeyDecision SharedState::admit_key(const ClientKey& key, int64_t now_ms, long long tokens) {
    every_second(now_ms);
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key.name, true);
    if (slot < 0) return KeyDecision();  // no slot (counted, said once): unlimited rather than refused
    KeySlot& s = l.keys[slot];
    KeyUsage usage{sane(s.requests), sane(s.tokens), 0};
    if (now_ms - sane_ms(s.remote_at_ms) < kRemoteFreshMs) {  // every host's count, through Redis
        usage.requests = combined(sane(s.remote_requests), sane(s.pending_requests), now_ms);
        usage.tokens = combined(sane(s.remote_tokens), sane(s.pending_tokens), now_ms);
    }
    usage.in_flight = in_flight(l, l.key_in_flight, slot);
    KeyDecision decision = decide_key(key.limits, usage, now_ms, tokens);
    if (decision.allowed) {
        s.requests = added(sane(s.requests), 1, now_ms);
        s.tokens = added(sane(s.tokens), tokens, now_ms);
        s.pending_requests = moved(s.pending_requests, 1, now_ms);
        s.pending_tokens = moved(s.pending_tokens, tokens, now_ms);
        add_in_flight(l.key_in_flight[held.process()][slot], 1);
    }
    return decision;
}

void SharedState::release_key(const ClientKey& key, long long estimated, long long used, int64_t now_ms) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key.name, false);
    if (slot < 0) return;
    KeySlot& s = l.keys[slot];
    add_in_flight(l.key_in_flight[held.process()][slot], -1);
    if (used >= 0) {
        long long settled = sane_count(used) - sane_count(estimated);
        s.tokens = added(sane(s.tokens), settled, now_ms);
        s.pending_tokens = moved(s.pending_tokens, settled, now_ms);
    }
}

// Counts taken for Redis stay counted, as every host's, until Redis's totals (which then
// include them) replace them in apply_remote(): admissions in the meantime still see
// them. `sign` -1: given back, Redis could not take them.
static void count_as_every_hosts(KeySlot& s, const KeyPending& p, int sign, int64_t now_ms) {
    auto scaled = [sign](RateWindow w) {
        if (sign < 0) w.current = saturating_sub(0, w.current), w.previous = saturating_sub(0, w.previous);
        return w;
    };
    s.remote_requests = combined(sane(s.remote_requests), scaled(p.requests), now_ms);
    s.remote_tokens = combined(sane(s.remote_tokens), scaled(p.tokens), now_ms);
}

std::vector<KeyPending> SharedState::take_pending(int64_t now_ms) {
    std::vector<KeyPending> out;
    HeldState held = hold();
    for (KeySlot& s : held.layout().keys) {
        if (!s.name[0]) continue;
        KeyPending pending{std::string(s.name, strnlen(s.name, sizeof s.name)), rolled(sane(s.pending_requests), now_ms),
                           rolled(sane(s.pending_tokens), now_ms)};
        s.pending_requests = s.pending_tokens = RateWindow();
        count_as_every_hosts(s, pending, 1, now_ms);
        out.push_back(std::move(pending));
    }
    return out;
}

void SharedState::return_pending(const std::vector<KeyPending>& pending, int64_t now_ms) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    for (const KeyPending& p : pending) {
        int slot = find_key(l, p.name, false);
        if (slot < 0) continue;
        KeySlot& s = l.keys[slot];
        s.pending_requests = combined(sane(s.pending_requests), sane(p.requests), now_ms);
        s.pending_tokens = combined(sane(s.pending_tokens), sane(p.tokens), now_ms);
        count_as_every_hosts(s, p, -1, now_ms);
    }
}

void SharedState::apply_remote(const std::string& key, RateWindow requests, RateWindow tokens, int64_t now_ms) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key, true);  // before this host's first request: it must see the others' counts
    if (slot < 0) return;
    KeySlot& s = l.keys[slot];
    s.remote_requests = sane(requests);
    s.remote_tokens = sane(tokens);
    s.remote_at_ms = now_ms;
}

void SharedState::merge_cooldown(const std::string& target, int64_t until_ms) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target, true);
    if (slot >= 0 && sane_ms(l.targets[slot].cooldown_until_ms) < until_ms) l.targets[slot].cooldown_until_ms = sane_ms(until_ms);
}

void SharedState::count(const char* family, Labels labels, double amount) {
    add(thread_series_name(family, labels), amount);
}

void SharedState::observe(const char* family, Labels labels, double value) {
    struct Slots {
        std::vector<int> buckets;
        int count, sum;
    };
    SharedMapping& m = current();
    std::unordered_map<std::string, Slots>& known = thread_cache<Slots>(m.generation);
    const std::string& key = thread_series_name(family, labels);
    auto it = known.find(key);
    if (it == known.end()) {
        HistogramSeries names = histogram_series(family, labels);
        Slots slots;
        for (const std::string& bucket : names.buckets) slots.buckets.push_back(find_series(m, bucket, false));
        slots.count = find_series(m, names.count, false);
        slots.sum = find_series(m, names.sum, false);
        bool later = slots.count == kSeriesLater || slots.sum == kSeriesLater ||
                     std::count(slots.buckets.begin(), slots.buckets.end(), kSeriesLater) > 0;
        if (later) return;  // (the state is being moved: this one observation is lost)
        it = known.emplace(key, std::move(slots)).first;
    }
    double* values = m.layout->values[m.process];
    const Slots& slots = it->second;
    bool dropped = slots.count < 0 || slots.sum < 0;
    for (size_t i = first_bucket(value); i < slots.buckets.size(); ++i) {
        if (slots.buckets[i] >= 0) add_double(values[slots.buckets[i]], 1);
        else dropped = true;
    }
    if (slots.count >= 0) add_double(values[slots.count], 1);
    if (slots.sum >= 0) add_double(values[slots.sum], value);
    if (dropped) count_dropped(*m.layout);
}

void SharedState::add(const std::string& series, double amount, bool gauge) {
    SharedMapping& m = current();
    int slot = find_series(m, series, gauge);
    if (slot >= 0) add_double(m.layout->values[m.process][slot], amount);
    else if (slot == -1) count_dropped(*m.layout);
}

namespace {

// The state's own gauges and counters, for /metrics and the fault runs: the caller holds
// the lock.
void append_state_series(const SharedLayout& l, const std::vector<int>& live, std::vector<SeriesValue>& out) {
    auto used = [](const auto& slots) {
        return static_cast<double>(std::count_if(std::begin(slots), std::end(slots), [](const auto& s) { return s.name[0] != 0; }));
    };
    double processes = static_cast<double>(live.size());
    auto add = [&](const char* family, const char* table, double value, bool gauge = true) {
        out.push_back({series_name(family, {{"table", table}}), gauge, value});
    };
    add("aop_state_slots_used", "processes", processes);
    add("aop_state_slots_used", "targets", used(l.targets));
    add("aop_state_slots_used", "keys", used(l.keys));
    add("aop_state_slots_used", "series", l.series_used);
    long targets = 0, keys = 0;
    for (int t = 0; t < kTargets; ++t) targets += in_flight(l, l.target_in_flight, t);
    for (int k = 0; k < kKeys; ++k) keys += in_flight(l, l.key_in_flight, k);
    add("aop_state_in_flight", "targets", static_cast<double>(targets));
    add("aop_state_in_flight", "keys", static_cast<double>(keys));
    add("aop_state_refused_total", "targets", static_cast<double>(l.refused[0]), false);
    add("aop_state_refused_total", "keys", static_cast<double>(l.refused[1]), false);
    out.push_back({"aop_metric_series_dropped_total", false, static_cast<double>(l.series_dropped)});
}

}  // namespace

// Each series summed over the live processes (a gauge's row never below zero: a row that
// moved files mid-request may have given back more than it took there).
std::vector<SeriesValue> SharedState::series() {
    every_second(wall_clock_ms());
    std::vector<SeriesValue> state;
    std::vector<int> live;
    SharedMapping* m;
    {
        HeldState held = hold();
        m = &held.mapping();
        for (int p = 0, used = rows_in_use(*m->layout); p < used; ++p)
            if (m->layout->processes[p].pid) live.push_back(p);
        append_state_series(*m->layout, live, state);
    }
    const SharedLayout& l = *m->layout;
    std::vector<SeriesValue> out;
    for (int i = 0; i < kSeriesSlots; ++i) {
        const SeriesSlot& slot = l.series[i];
        if (!__atomic_load_n(&slot.ready, __ATOMIC_ACQUIRE)) continue;
        SeriesValue value;
        value.series.assign(slot.name, strnlen(slot.name, sizeof slot.name));
        value.gauge = slot.gauge;
        value.value = slot.gauge ? 0 : load_double(l.retired[i]);
        for (int p : live) value.value += slot.gauge ? std::max(0.0, load_double(l.values[p][i])) : load_double(l.values[p][i]);
        out.push_back(std::move(value));
    }
    out.insert(out.end(), state.begin(), state.end());
    return out;
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

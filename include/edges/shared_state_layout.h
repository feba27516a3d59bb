// Inside the shared state (shared_state*.cpp only; callers use shared_state.h): the mapped
// file's layout, one mapping of it and its held lock, and the helpers the state's files
// share (named slots, values read back in range, the processes' rows), in the namespace
// shared_state_internal.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bounds.h"
#include "key_limits.h"
#include "metrics.h"
#include "state_file.h"

namespace shared_state_internal {

const uint32_t kLayoutVersion = 9;
const int kProcesses = static_cast<int>(kStateProcesses);
const int kTargets = static_cast<int>(kStateTargets);
const int kKeys = static_cast<int>(kStateKeys);
// The series table is twice what it may hold: half empty at most, a new series finds its
// place within a few probes (shared_state_series.cpp).
const int kSeriesSlots = static_cast<int>(2 * kStateSeries);
// Values read from the file are kept in this range: a file overwritten under a process
// yields nonsense, never arithmetic that overflows.
const int32_t kMostInFlight = 1 << 24;
// Entra ID tokens: one row per identity for the host (shared_state_tokens.cpp).
const int kTokens = 16;
const size_t kLongestAuthorization = 16383;  // "Authorization: Bearer " and the token
const size_t kLongestTokenError = 511;

}  // namespace shared_state_internal

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
    uint32_t trial_serial;
    uint32_t refused_params;  // parameters it refused (reasoning_params.h), learned
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

// One identity's token for every process of the host, and the lease of the one process
// that asks Entra for the next (its death, or the end of `lease_until_ms`, frees it).
struct TokenSlot {
    uint64_t hash;  // of the identity's text (never a secret); 0: free
    int64_t expires_at_ms, renew_at_ms, retry_at_ms;
    int32_t failures, refused;  // refused: the last failure was definitive (credential.h)
    int64_t lease_until_ms;
    TrialOwner lease;  // row unused
    uint64_t serial;   // grows with each token stored
    char source[48];   // the identity's first line, its source: a metric label
    char error[shared_state_internal::kLongestTokenError + 1];
    char authorization[shared_state_internal::kLongestAuthorization + 1];
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
    ProcessSlot processes[shared_state_internal::kProcesses];
    TargetSlot targets[shared_state_internal::kTargets];
    KeySlot keys[shared_state_internal::kKeys];
    SeriesSlot series[shared_state_internal::kSeriesSlots];
    TokenSlot tokens[shared_state_internal::kTokens];
    double retired[shared_state_internal::kSeriesSlots];  // counters of processes that have gone
    // Per process, in rows: a process touches only its own pages (the file stays sparse),
    // and what is summed over processes is summed over the live ones.
    int32_t target_in_flight[shared_state_internal::kProcesses][shared_state_internal::kTargets];
    int32_t key_in_flight[shared_state_internal::kProcesses][shared_state_internal::kKeys];
    int32_t key_sessions[shared_state_internal::kProcesses][shared_state_internal::kKeys];  // realtime, open
    double values[shared_state_internal::kProcesses][shared_state_internal::kSeriesSlots];
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

namespace shared_state_internal {

// Said once per file, whichever process meets it first.
enum Said : uint32_t {
    kSaidLongTarget = 1, kSaidTargetsFull = 2, kSaidLongKey = 4, kSaidKeysFull = 8,
    kSaidLongSeries = 16, kSaidSeriesFull = 32, kSaidProcessesFull = 64,
};

// Values and names (shared_state_slots.cpp).
uint64_t fnv1a(std::string_view text);
void say_once(SharedLayout& layout, Said what, const std::string& message);
int64_t sane_ms(int64_t ms);
long long sane_count(long long count);
RateWindow sane(RateWindow window);
void add_in_flight(int32_t& count, int amount);
void add_double(double& target, double amount);
double load_double(const double& source);
// A name a slot of `size` bytes stores whole: never cut, so it is found again.
bool storable(std::string_view name, size_t size);
// A target's or key's slot, made when `create`; -1: none (too long, or the table full:
// counted, said once). The caller holds the lock.
int find_target(SharedLayout& l, std::string_view name, bool create);
int find_key(SharedLayout& l, std::string_view name, bool create);

template <size_t N>
bool holds(const char (&stored)[N], std::string_view name) {
    return name.size() < N && stored[name.size()] == 0 && std::memcmp(stored, name.data(), name.size()) == 0;
}

template <size_t N>
void set_name(char (&stored)[N], std::string_view name) {
    std::memset(stored, 0, N);
    std::memcpy(stored, name.data(), name.size());  // storable(): shorter than N
}

// aop_entra_token_expiry_seconds{source}: per source, the soonest a token of the host
// expires (shared_state_tokens.cpp). The caller holds the lock.
void append_token_series(const SharedLayout& l, int64_t now_ms, std::vector<SeriesValue>& out);

// The processes' rows (shared_state_rows.cpp).
int rows_in_use(const SharedLayout& l);
void reclaim_dead(SharedMapping& m);
std::optional<std::vector<ProcessSlot>> leave_row(SharedMapping& m);
std::unique_ptr<SharedMapping> make_mapping(std::unique_ptr<StateMapping> file);
std::unique_ptr<SharedMapping> open_mapping(const std::string& path, std::string& error);
std::unique_ptr<SharedMapping> private_mapping();

// Requests in flight at one target or key, summed over the live processes' rows.
template <size_t N>
long in_flight(const SharedLayout& l, const int32_t (&rows)[kProcesses][N], int column) {
    long total = 0;
    for (int p = 0, used = rows_in_use(l); p < used; ++p)
        if (l.processes[p].pid) total += std::clamp(rows[p][column], 0, kMostInFlight);
    return total;
}

}  // namespace shared_state_internal

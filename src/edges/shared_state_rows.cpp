// The shared state's rows, one per process: claimed when a process joins a file (those of
// dead processes freed first when none is free), released when it leaves, and reclaimed
// when its process died (its places in flight, trials and gauges given back; its counters
// kept). Also the mappings a process joins: a file's, or its own memory.
#include "shared_state_layout.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <utility>

#include "process_liveness.h"

namespace shared_state_internal {

// Rows are taken lowest first: what is summed over processes stops at the highest ever taken.
int rows_in_use(const SharedLayout& l) {
    return static_cast<int>(std::min<uint32_t>(__atomic_load_n(&l.rows_high, __ATOMIC_RELAXED), kProcesses));
}

namespace {

std::atomic<uint64_t> generations{0};

// Only what is not zero is written: a fresh file stays sparse.
template <typename T>
void clear(T& value) {
    if (value != 0) value = 0;
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
    for (int32_t& count : l.key_sessions[row]) clear(count);
    for (int i = 0; i < kSeriesSlots; ++i) {
        double& value = l.values[row][i];
        if (value == 0) continue;
        if (!l.series[i].gauge) add_double(l.retired[i], value);
        value = 0;
    }
    for (TargetSlot& target : l.targets)
        if (target.trial_token && target.trial_owner.row == row) target.trial_token = 0;
}

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace shared_state_internal

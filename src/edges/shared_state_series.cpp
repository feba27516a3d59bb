// The shared state's metric series: each placed once in the file's table (found without
// the lock, placed under it), remembered per thread, and added to lock-free in this
// process's row; read back summed over the live processes, with the state's own series.
#include "shared_state.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics.h"
#include "shared_state_layout.h"

using namespace shared_state_internal;

namespace {

const int kSeriesProbes = 64;  // a new series is never placed further than this from its hash

// A series name built in a buffer each thread reuses.
std::string& thread_series_name(const char* family, Labels labels) {
    thread_local std::string name;
    name.clear();
    append_series(name, family, labels);
    return name;
}

// A series' family and labels as a key of a thread's cache, cheaper to build than its
// name (no quotes, no escaping; every request counts a few series): each label's name,
// and its value whole after its length, so that two different sets never meet. Holds
// NUL bytes, which no series name does, so where the labels do not fit the room the
// name itself is the key. Built on the caller's stack and looked up as a view: the
// cache copies it only when it remembers a new series.
struct SeriesKeyRoom {
    char bytes[512];
};

std::string_view series_key(const char* family, Labels labels, SeriesKeyRoom& room) {
    size_t used = 0;
    auto put = [&](const void* data, size_t size) {
        if (size > sizeof room.bytes - used) return false;
        if (size) std::memcpy(room.bytes + used, data, size);  // an empty value's data may be null
        used += size;
        return true;
    };
    bool fits = put(family, std::strlen(family) + 1);
    for (const auto& [name, value] : labels) {
        size_t size = value.size();
        fits = fits && put(name, std::strlen(name) + 1) && put(&size, sizeof size) && put(value.data(), size);
    }
    return fits ? std::string_view(room.bytes, used) : std::string_view(thread_series_name(family, labels));
}

// A family's series as a key of a thread's cache: the static family's address, then each
// value whole after its length. Empty where the values do not fit the room.
std::string_view family_key(const SeriesFamily& family, LabelValues values, SeriesKeyRoom& room) {
    const SeriesFamily* address = &family;
    std::memcpy(room.bytes, &address, sizeof address);
    size_t used = sizeof address;
    for (std::string_view value : values) {
        size_t size = value.size();
        if (size > sizeof room.bytes - used - sizeof size) return {};
        std::memcpy(room.bytes + used, &size, sizeof size);
        if (size) std::memcpy(room.bytes + used + sizeof size, value.data(), size);  // an empty value's data may be null
        used += sizeof size + size;
    }
    return std::string_view(room.bytes, used);
}

// What this thread knows of one mapping's series (a miss too), by their names, by
// series_key's labels or by family_key's values (`Kind` keeps them apart): the keys'
// bytes kept in a deque (they never move), the map holding views of them. Emptied when
// another mapping (another generation) is asked about.
enum class SeriesKey { Name, Labels, Family };

template <typename Value, SeriesKey Kind = SeriesKey::Labels>
class KeyedSeries {
public:
    static KeyedSeries& of_thread(uint64_t generation) {
        thread_local KeyedSeries known;
        if (known.generation_ != generation) known.clear(), known.generation_ = generation;
        return known;
    }
    Value* find(std::string_view key) {
        auto it = map_.find(key);
        return it != map_.end() ? &it->second : nullptr;
    }
    Value& remember(std::string_view key, Value value) {
        keys_.emplace_back(key);
        return map_.emplace(keys_.back(), std::move(value)).first->second;
    }

private:
    void clear() {
        map_.clear();
        keys_.clear();
    }
    std::deque<std::string> keys_;
    std::unordered_map<std::string_view, Value> map_;
    uint64_t generation_ = 0;
};

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
    KeyedSeries<int, SeriesKey::Name>& known = KeyedSeries<int, SeriesKey::Name>::of_thread(m.generation);
    if (const int* slot = known.find(name)) return *slot;
    int found = place_series(m, name, gauge);
    if (found != kSeriesLater) known.remember(name, found);
    return found;
}

void count_dropped(SharedLayout& l) { __atomic_add_fetch(&l.series_dropped, 1, __ATOMIC_RELAXED); }

// A slot find_series gave: added to, or counted as lost (-1; kSeriesLater: lost silently).
void add_to_slot(SharedMapping& m, int slot, double amount) {
    if (slot >= 0) add_double(m.layout->values[m.process][slot], amount);
    else if (slot == -1) count_dropped(*m.layout);
}

// The counter's slot remembered under `key` by this thread; the first time, found by the
// series' name (`name()` builds it only then).
template <SeriesKey Kind, typename Name>
int remembered_counter(SharedMapping& m, std::string_view key, Name name) {
    KeyedSeries<int, Kind>& known = KeyedSeries<int, Kind>::of_thread(m.generation);
    if (const int* slot = known.find(key)) return *slot;
    int found = find_series(m, name(), false);
    if (found != kSeriesLater) known.remember(key, found);
    return found;
}

}  // namespace

// The series' slot remembered by its labels: its name is built only the first time.
void SharedState::count(const char* family, Labels labels, double amount) {
    SharedMapping& m = current();
    SeriesKeyRoom room;
    std::string_view key = series_key(family, labels, room);  // (it may be thread_series_name's)
    add_to_slot(m, remembered_counter<SeriesKey::Labels>(m, key, [&] { return series_name(family, labels); }), amount);
}

void SharedState::count(const SeriesFamily& family, LabelValues values, double amount) {
    SharedMapping& m = current();
    SeriesKeyRoom room;
    std::string_view key = family_key(family, values, room);
    auto name = [&] { return series_name(family, values); };
    add_to_slot(m, key.empty() ? find_series(m, name(), false) : remembered_counter<SeriesKey::Family>(m, key, name), amount);
}

void SharedState::observe(const char* family, Labels labels, double value) {
    struct Slots {
        std::vector<int> buckets;
        int count, sum;
    };
    SharedMapping& m = current();
    SeriesKeyRoom room;
    std::string_view key = series_key(family, labels, room);
    KeyedSeries<Slots>& known = KeyedSeries<Slots>::of_thread(m.generation);
    const Slots* found = known.find(key);
    if (!found) {
        HistogramSeries names = histogram_series(family, labels);
        Slots slots;
        for (const std::string& bucket : names.buckets) slots.buckets.push_back(find_series(m, bucket, false));
        slots.count = find_series(m, names.count, false);
        slots.sum = find_series(m, names.sum, false);
        bool later = slots.count == kSeriesLater || slots.sum == kSeriesLater ||
                     std::count(slots.buckets.begin(), slots.buckets.end(), kSeriesLater) > 0;
        if (later) return;  // (the state is being moved: this one observation is lost)
        found = &known.remember(key, std::move(slots));
    }
    double* values = m.layout->values[m.process];
    const Slots& slots = *found;
    bool dropped = slots.count < 0 || slots.sum < 0;
    for (size_t i = first_bucket(value, family); i < slots.buckets.size(); ++i) {
        if (slots.buckets[i] >= 0) add_double(values[slots.buckets[i]], 1);
        else dropped = true;
    }
    if (slots.count >= 0) add_double(values[slots.count], 1);
    if (slots.sum >= 0) add_double(values[slots.sum], value);
    if (dropped) count_dropped(*m.layout);
}

void SharedState::add(const std::string& series, double amount, bool gauge) {
    SharedMapping& m = current();
    add_to_slot(m, find_series(m, series, gauge), amount);
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
        append_token_series(*m->layout, wall_clock_ms(), state);
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

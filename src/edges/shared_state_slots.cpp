// The shared state's named slots and values as read back from the file: a target's or a
// key's slot found by its name's hash (or refused whole, counted, said once), numbers kept
// in range, and the lock-free additions to per-process values.
#include "shared_state_layout.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace shared_state_internal {

namespace {

// Values read from the file are kept in these ranges: a file overwritten under a process
// yields nonsense, never arithmetic that overflows.
const int64_t kLatestMs = int64_t{1} << 52;
const long long kMostCount = 1LL << 50;

}  // namespace

uint64_t fnv1a(std::string_view text) {
    uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
    return hash;
}

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

// A name a slot of `size` bytes stores whole: never cut, so it is found again.
bool storable(std::string_view name, size_t size) {
    return !name.empty() && name.size() < size && name.find('\0') == std::string_view::npos;
}

namespace {

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

}  // namespace

int find_target(SharedLayout& l, std::string_view name, bool create) {
    return find_or_refuse(l, l.targets, 0, name, create);
}

int find_key(SharedLayout& l, std::string_view name, bool create) { return find_or_refuse(l, l.keys, 1, name, create); }

}  // namespace shared_state_internal

// The shared state's keys: a key's limits decided and counted under the lock (this host's
// counts, or every host's while Redis's are fresh), and what this host counted since the
// last sync with Redis, taken for it or given back.
#include "shared_state.h"

#include <cstring>
#include <string>
#include <vector>

#include "shared_state_layout.h"

using namespace shared_state_internal;

namespace {

const int64_t kRemoteFreshMs = 3000;  // Redis's counts stand in for this host's this long

// Adds to a window of changes (which, unlike a count, may go below zero).
RateWindow moved(RateWindow window, long long amount, int64_t now_ms) {
    window = rolled(sane(window), now_ms);
    window.current = sane_count(window.current + sane_count(amount));
    return window;
}

// What a key used, as its admission sees it: this host's counts, or every host's while
// Redis's are fresh. The caller holds the lock.
KeyUsage usage_of(const SharedLayout& l, const KeySlot& s, int slot, int64_t now_ms) {
    KeyUsage usage{sane(s.requests), sane(s.tokens), in_flight(l, l.key_in_flight, slot), in_flight(l, l.key_sessions, slot)};
    if (now_ms - sane_ms(s.remote_at_ms) < kRemoteFreshMs) {  // every host's count, through Redis
        usage.requests = combined(sane(s.remote_requests), sane(s.pending_requests), now_ms);
        usage.tokens = combined(sane(s.remote_tokens), sane(s.pending_tokens), now_ms);
    }
    return usage;
}

// One request admitted, estimated at `tokens`: this host's count and what Redis is owed.
void count_request(KeySlot& s, long long tokens, int64_t now_ms) {
    s.requests = added(sane(s.requests), 1, now_ms);
    s.tokens = added(sane(s.tokens), tokens, now_ms);
    s.pending_requests = moved(s.pending_requests, 1, now_ms);
    s.pending_tokens = moved(s.pending_tokens, tokens, now_ms);
}

}  // namespace

KeyDecision SharedState::admit_key(const ClientKey& key, int64_t now_ms, long long tokens) {
    every_second(now_ms);
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key.name, true);
    if (slot < 0) return KeyDecision();  // no slot (counted, said once): unlimited rather than refused
    KeyDecision decision = decide_key(key.limits, usage_of(l, l.keys[slot], slot, now_ms), now_ms, tokens);
    if (decision.allowed) {
        count_request(l.keys[slot], tokens, now_ms);
        add_in_flight(l.key_in_flight[held.process()][slot], 1);
    }
    return decision;
}

KeyDecision SharedState::admit_session(const std::string& key_name, const KeyLimits& limits, long default_sessions,
                                       int64_t now_ms) {
    every_second(now_ms);
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key_name, true);
    if (slot < 0) return KeyDecision();  // as admit_key: unlimited rather than refused
    KeyDecision decision = decide_session(limits, default_sessions, usage_of(l, l.keys[slot], slot, now_ms), now_ms);
    if (decision.allowed) {
        count_request(l.keys[slot], 0, now_ms);
        add_in_flight(l.key_sessions[held.process()][slot], 1);
    }
    return decision;
}

void SharedState::end_session(const std::string& key_name) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_key(l, key_name, false);
    if (slot >= 0) add_in_flight(l.key_sessions[held.process()][slot], -1);
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

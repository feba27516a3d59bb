// The shared state's Entra ID tokens: one row per identity for every process of the host,
// found by the hash of the identity's text (source, authority, tenant, client, scope,
// endpoints: never a secret), holding the Authorization line, its expiry and renewal time,
// the failures in a row, and the lease of the one process that asks Entra for the next
// token. A crowd of processes at start, or at a renewal, makes one token request: the
// others keep their token, or wait for the lease holder's. A lease ends with its holder's
// report, its time, or its holder's death (process_liveness.h).
// Tests: shared_state_tokens_test.cpp.
#include "shared_state.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "process_liveness.h"
#include "shared_state_layout.h"

using namespace shared_state_internal;

namespace {

const int64_t kKeptBackMs = 1000;  // as credential.cpp's token_usable: a token this close to its end is not sent

template <size_t N>
std::string text_of(const char (&stored)[N]) {
    return std::string(stored, strnlen(stored, N));
}

template <size_t N>
void store_text(char (&stored)[N], const std::string& text) {
    size_t length = std::min(text.size(), N - 1);
    std::memcpy(stored, text.data(), length);
    stored[length] = '\0';
}

// The identity's row (made when `create`); nullptr when the table is full.
TokenSlot* find_token(SharedLayout& l, const std::string& identity, bool create) {
    uint64_t hash = fnv1a(identity) | 1;  // never 0, the free row's mark
    for (int probe = 0, i = static_cast<int>(hash % kTokens); probe < kTokens; ++probe, i = (i + 1) % kTokens) {
        TokenSlot& slot = l.tokens[i];
        if (slot.hash == hash) return &slot;
        if (slot.hash == 0) {
            if (!create) return nullptr;
            std::memset(&slot, 0, sizeof slot);
            slot.hash = hash;
            store_text(slot.source, identity.substr(0, identity.find('\n')));
            return &slot;
        }
    }
    return nullptr;
}

bool mine(const TrialOwner& owner) { return owner.pid == static_cast<int32_t>(getpid()); }

// Another live process asks Entra now.
bool leased_to_another(const TokenSlot& s, int64_t now_ms) {
    if (s.lease.pid == 0 || mine(s.lease) || sane_ms(s.lease_until_ms) <= now_ms) return false;
    return process_alive(s.lease.pid, s.lease.start_time);
}

// None, dropped, near its end, or its renewal due.
bool token_due(const TokenSlot& s, int64_t now_ms) {
    int64_t expires = sane_ms(s.expires_at_ms);
    return s.authorization[0] == 0 || expires - now_ms <= kKeptBackMs || sane_ms(s.renew_at_ms) <= now_ms;
}

void end_lease_if_mine(TokenSlot& s) {
    if (!mine(s.lease)) return;
    s.lease = TrialOwner{};
    s.lease_until_ms = 0;
}

}  // namespace

SharedToken SharedState::token_turn(const std::string& identity, int64_t now_ms, int64_t lease_ms) {
    SharedToken out;
    HeldState held = hold();
    TokenSlot* s = find_token(held.layout(), identity, true);
    if (!s) return out;
    out.stored = true;
    if (lease_ms > 0 && token_due(*s, now_ms) && sane_ms(s->retry_at_ms) <= now_ms && !leased_to_another(*s, now_ms)) {
        s->lease = TrialOwner{-1, static_cast<int32_t>(getpid()), process_start_time(getpid())};
        s->lease_until_ms = now_ms + lease_ms;
        out.lease = true;
    }
    out.authorization = text_of(s->authorization);
    out.expires_at_ms = sane_ms(s->expires_at_ms);
    out.renew_at_ms = sane_ms(s->renew_at_ms);
    out.failures = std::max(0, s->failures);
    out.retry_at_ms = sane_ms(s->retry_at_ms);
    out.error = text_of(s->error);
    out.refused = out.failures > 0 && s->refused != 0;
    out.lease_until_ms = out.lease || !leased_to_another(*s, now_ms) ? 0 : sane_ms(s->lease_until_ms);
    out.serial = s->serial;
    return out;
}

bool SharedState::token_obtained(const std::string& identity, const std::string& authorization, int64_t expires_at_ms,
                                 int64_t renew_at_ms) {
    HeldState held = hold();
    TokenSlot* s = find_token(held.layout(), identity, true);
    if (!s) return false;
    end_lease_if_mine(*s);
    if (authorization.size() > kLongestAuthorization) return false;  // never cut: this process keeps it alone
    store_text(s->authorization, authorization);
    s->expires_at_ms = expires_at_ms;
    s->renew_at_ms = renew_at_ms;
    s->failures = 0;
    s->refused = 0;
    s->retry_at_ms = 0;
    s->error[0] = '\0';
    ++s->serial;
    return true;
}

void SharedState::token_failed(const std::string& identity, const std::string& error, int64_t retry_at_ms,
                               bool refused) {
    HeldState held = hold();
    TokenSlot* s = find_token(held.layout(), identity, true);
    if (!s) return;
    end_lease_if_mine(*s);
    s->failures = std::max(0, s->failures) + 1;
    s->retry_at_ms = retry_at_ms;
    s->refused = refused ? 1 : 0;
    store_text(s->error, error);
}

void SharedState::token_abandoned(const std::string& identity) {
    HeldState held = hold();
    if (TokenSlot* s = find_token(held.layout(), identity, false)) end_lease_if_mine(*s);
}

void SharedState::token_refused(const std::string& identity, const std::string& authorization) {
    HeldState held = hold();
    TokenSlot* s = find_token(held.layout(), identity, false);
    if (!s || text_of(s->authorization) != authorization) return;  // renewed since
    s->authorization[0] = '\0';
    s->expires_at_ms = s->renew_at_ms = 0;
}

namespace shared_state_internal {

void append_token_series(const SharedLayout& l, int64_t now_ms, std::vector<SeriesValue>& out) {
    std::map<std::string, double> soonest;
    for (const TokenSlot& s : l.tokens) {
        if (s.hash == 0) continue;
        double left = s.authorization[0] ? std::max<int64_t>(0, sane_ms(s.expires_at_ms) - now_ms) / 1000.0 : 0;
        auto [at, added] = soonest.emplace(text_of(s.source), left);
        if (!added) at->second = std::min(at->second, left);
    }
    for (const auto& [source, left] : soonest)
        out.push_back({series_name("aop_entra_token_expiry_seconds", {{"source", source}}), true, left});
}

}  // namespace shared_state_internal

// Per-key limits (requests/minute, tokens/minute, requests at once, expiry): pure
// decisions over counters the shared state keeps for all processes of the host.
#pragma once

#include <cstdint>
#include <string>

#include "client_keys.h"

// A sliding minute, approximated from two fixed ones: what the last 60 s counted is the
// current minute's count plus the previous minute's, weighted by how much of it is
// still inside the last 60 s.
struct RateWindow {
    int64_t minute = 0;  // which minute (since the epoch) `current` counts
    long long current = 0;
    long long previous = 0;
};

// Sums that stop at the ends of a long long instead of overflowing: counts may come from
// other hosts, through Redis.
long long saturating_add(long long a, long long b);
long long saturating_sub(long long a, long long b);

// Rolls the window forward to `now_ms`'s minute.
RateWindow rolled(RateWindow window, int64_t now_ms);
// What the last 60 s counted.
long long counted(const RateWindow& window, int64_t now_ms);
// Adds to the current minute (negative amounts settle an estimate; never below zero).
RateWindow added(RateWindow window, long long amount, int64_t now_ms);
// How much of the previous minute's count is still inside the sliding minute at `now_ms`
// (1 at the minute's start, falling to 0 at its end).
double previous_minute_weight(int64_t now_ms);
// Two windows' counts as one (both rolled to `now_ms`'s minute): what other hosts counted
// (from Redis) and what this host counted since.
RateWindow combined(RateWindow a, RateWindow b, int64_t now_ms);

// Counts from Redis are taken within [0, kMostSharedCount]: a negative one as 0, a larger
// one as kMostSharedCount (beyond any limit the configuration accepts, so it refuses).
constexpr long long kMostSharedCount = 1LL << 40;
long long shared_count(long long value);
// The window a host admits against while Redis's counts are fresh: every host's counts
// and, for a key with a `limit` of which this host was given a `share` (redis_sync.h),
// the rest of the limit as used, so that this host admits at most its share. A share
// below 0: none given (no limit of this kind), every host's counts alone.
RateWindow window_with_share(RateWindow every_host, long long limit, long long share, int64_t now_ms);

struct KeyUsage {
    RateWindow requests;
    RateWindow tokens;
    long in_flight = 0;
    long sessions = 0;  // realtime WebSocket sessions open (the companion's)
};

struct KeyDecision {
    bool allowed = true;
    int status = 200;             // 429 (a limit) or 401 (expired) when refused
    std::string code, message;    // the OpenAI-shaped error when refused
    int64_t retry_after_ms = 0;
    // For x-ratelimit-* headers: -1 where the key has no such limit.
    long long limit_requests = -1, remaining_requests = -1;
    long long limit_tokens = -1, remaining_tokens = -1;
};

// Whether the key has any limit the shared state must count (expiry aside).
bool counts_usage(const KeyLimits& limits);
bool key_expired(const KeyLimits& limits, int64_t now_ms);

// Whether one more request, estimated at `tokens`, fits the key's limits now. When it
// does, the caller counts it (the request, its estimate, and one in flight).
KeyDecision decide_key(const KeyLimits& limits, const KeyUsage& usage, int64_t now_ms, long long tokens);

// Whether one more realtime WebSocket session fits: refused (429 session_limit_exceeded, no
// wait given: a session may last an hour) when the key has its sessions open — its own
// `realtime_sessions`, else `default_sessions` (0: no limit) — else decided as one request
// against its expiry and requests_per_minute. `concurrent` counts HTTP requests, which a
// session is not, and its tokens are not known to the proxy: neither applies.
KeyDecision decide_session(const KeyLimits& limits, long default_sessions, const KeyUsage& usage, int64_t now_ms);
// The sessions a key may have open at once: its own, else the default (0: no limit).
long session_limit(const KeyLimits& limits, long default_sessions);
// Whether a key's sessions are counted in the shared state: a session limit or a rate to keep.
bool counts_sessions(const KeyLimits& limits, long default_sessions);

// A rough count of prompt tokens from the request body's size: about four bytes a token
// for English text and JSON; settled with the answer's `usage` when it comes.
long long estimate_prompt_tokens(long long body_bytes);

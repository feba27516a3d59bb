#include "key_limits.h"

#include <algorithm>
#include <limits>

namespace {

const int64_t kMinuteMs = 60000;

// How long until the window's count falls by `excess`: the previous minute's share fades
// linearly, the current minute's goes at the next minute plus the fade.
int64_t wait_for(const RateWindow& window, long long excess, int64_t now_ms) {
    if (excess <= 0) return 0;
    int64_t into = now_ms - window.minute * kMinuteMs;
    if (window.previous > 0) {
        // previous * (1 - t/60000) must fall by `excess`: t grows by excess / previous
        // minutes. Compared as a double: a large excess would not fit an integer.
        double fade = static_cast<double>(excess) / static_cast<double>(window.previous) * kMinuteMs;
        if (static_cast<double>(into) + fade <= kMinuteMs) return std::max<int64_t>(static_cast<int64_t>(fade), 1000);
    }
    return std::max<int64_t>(kMinuteMs - into, 1000);
}

}  // namespace

long long saturating_add(long long a, long long b) {
    long long sum;
    if (!__builtin_add_overflow(a, b, &sum)) return sum;
    return b > 0 ? std::numeric_limits<long long>::max() : std::numeric_limits<long long>::min();
}

long long saturating_sub(long long a, long long b) {
    long long difference;
    if (!__builtin_sub_overflow(a, b, &difference)) return difference;
    return b < 0 ? std::numeric_limits<long long>::max() : std::numeric_limits<long long>::min();
}

RateWindow rolled(RateWindow window, int64_t now_ms) {
    int64_t minute = now_ms / kMinuteMs;
    if (minute == window.minute) return window;
    window.previous = minute == window.minute + 1 ? window.current : 0;
    window.current = 0;
    window.minute = minute;
    return window;
}

double previous_minute_weight(int64_t now_ms) {
    return 1.0 - static_cast<double>(now_ms % kMinuteMs) / kMinuteMs;
}

long long counted(const RateWindow& window, int64_t now_ms) {
    RateWindow w = rolled(window, now_ms);
    // |previous * weight| <= |previous|: it fits, and so does the sum once saturated.
    return saturating_add(w.current, static_cast<long long>(static_cast<double>(w.previous) * previous_minute_weight(now_ms)));
}

RateWindow added(RateWindow window, long long amount, int64_t now_ms) {
    window = rolled(window, now_ms);
    window.current = std::max(0LL, saturating_add(window.current, amount));
    return window;
}

bool counts_usage(const KeyLimits& limits) {
    return limits.requests_per_minute || limits.tokens_per_minute || limits.concurrent;
}

bool key_expired(const KeyLimits& limits, int64_t now_ms) {
    return limits.expires_at && now_ms / 1000 >= limits.expires_at;
}

RateWindow combined(RateWindow a, RateWindow b, int64_t now_ms) {
    a = rolled(a, now_ms);
    b = rolled(b, now_ms);
    a.current = saturating_add(a.current, b.current);
    a.previous = saturating_add(a.previous, b.previous);
    return a;
}

long long shared_count(long long value) { return std::min(std::max(value, 0LL), kMostSharedCount); }

RateWindow window_with_share(RateWindow every_host, long long limit, long long share, int64_t now_ms) {
    if (limit <= 0 || share < 0) return every_host;
    // What this host must leave: the rest of the limit beyond its share (the other hosts'
    // shares, and what is not handed out yet), counted as used now.
    long long used = counted(every_host, now_ms);
    long long rest = limit - std::min(share, limit);
    if (used < rest) every_host.current = saturating_add(every_host.current, saturating_sub(rest, used));
    return every_host;
}

KeyDecision decide_key(const KeyLimits& limits, const KeyUsage& usage, int64_t now_ms, long long tokens) {
    KeyDecision d;
    if (key_expired(limits, now_ms)) {
        d.allowed = false;
        d.status = 401;
        d.code = "expired_api_key";
        d.message = "This API key has expired. Ask the operator of this proxy for a new one.";
        return d;
    }
    long long requests = counted(usage.requests, now_ms);
    long long used_tokens = counted(usage.tokens, now_ms);
    // Counts may be as large as a long long holds: every sum below saturates.
    long long requests_after = saturating_add(requests, 1), tokens_after = saturating_add(used_tokens, tokens);
    if (limits.requests_per_minute) {
        d.limit_requests = limits.requests_per_minute;
        d.remaining_requests = std::max(0LL, saturating_sub(limits.requests_per_minute, requests_after));
    }
    if (limits.tokens_per_minute) {
        d.limit_tokens = limits.tokens_per_minute;
        d.remaining_tokens = std::max(0LL, saturating_sub(limits.tokens_per_minute, tokens_after));
    }
    auto refuse = [&](const std::string& code, const std::string& message, int64_t wait) {
        d.allowed = false;
        d.status = 429;
        d.code = code;
        d.message = message;
        d.retry_after_ms = wait;
        return d;
    };
    if (limits.concurrent && usage.in_flight >= limits.concurrent)
        return refuse("concurrency_limit_exceeded",
                      "This key has " + std::to_string(limits.concurrent) +
                          " requests in flight, its limit; retry when one has finished.", 1000);
    if (limits.requests_per_minute && requests_after > limits.requests_per_minute)
        return refuse("rate_limit_exceeded",
                      "Rate limit reached for this key: " + std::to_string(limits.requests_per_minute) +
                          " requests per minute.",
                      wait_for(rolled(usage.requests, now_ms), requests_after - limits.requests_per_minute, now_ms));
    // A request bigger than the whole budget could never pass: it is let through when
    // nothing else was used in the last minute, so it is not refused forever.
    if (limits.tokens_per_minute && tokens_after > limits.tokens_per_minute && used_tokens > 0)
        return refuse("tokens_limit_exceeded",
                      "Token rate limit reached for this key: " + std::to_string(limits.tokens_per_minute) +
                          " tokens per minute.",
                      wait_for(rolled(usage.tokens, now_ms), tokens_after - limits.tokens_per_minute, now_ms));
    return d;
}

long session_limit(const KeyLimits& limits, long default_sessions) {
    return limits.realtime_sessions > 0 ? limits.realtime_sessions : std::max(0L, default_sessions);
}

bool counts_sessions(const KeyLimits& limits, long default_sessions) {
    return session_limit(limits, default_sessions) > 0 || limits.requests_per_minute > 0;
}

KeyDecision decide_session(const KeyLimits& limits, long default_sessions, const KeyUsage& usage, int64_t now_ms) {
    KeyLimits as_request = limits;
    as_request.concurrent = 0;
    as_request.tokens_per_minute = 0;
    long sessions = session_limit(limits, default_sessions);
    if (sessions == 0 || usage.sessions < sessions || key_expired(limits, now_ms))
        return decide_key(as_request, usage, now_ms, 0);
    KeyDecision d;
    d.allowed = false;
    d.status = 429;
    d.code = "session_limit_exceeded";
    d.message = "This key has " + std::to_string(sessions) +
                " realtime sessions open, its limit; open another when one has ended.";
    return d;
}

long long estimate_prompt_tokens(long long body_bytes) { return body_bytes <= 0 ? 0 : (body_bytes + 3) / 4; }

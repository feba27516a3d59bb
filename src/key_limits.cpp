#include "key_limits.h"

#include <algorithm>

namespace {

const int64_t kMinuteMs = 60000;

// How long until the window's count falls by `excess`: the previous minute's share fades
// linearly, the current minute's goes at the next minute plus the fade.
int64_t wait_for(const RateWindow& window, long long excess, int64_t now_ms) {
    if (excess <= 0) return 0;
    int64_t into = now_ms - window.minute * kMinuteMs;
    if (window.previous > 0) {
        // previous * (1 - t/60000) must fall by `excess`: t grows by excess / previous minutes.
        int64_t fade = static_cast<int64_t>(static_cast<double>(excess) / window.previous * kMinuteMs);
        if (into + fade <= kMinuteMs) return std::max<int64_t>(fade, 1000);
    }
    return std::max<int64_t>(kMinuteMs - into, 1000);
}

}  // namespace

RateWindow rolled(RateWindow window, int64_t now_ms) {
    int64_t minute = now_ms / kMinuteMs;
    if (minute == window.minute) return window;
    window.previous = minute == window.minute + 1 ? window.current : 0;
    window.current = 0;
    window.minute = minute;
    return window;
}

long long counted(const RateWindow& window, int64_t now_ms) {
    RateWindow w = rolled(window, now_ms);
    double left = 1.0 - static_cast<double>(now_ms - w.minute * kMinuteMs) / kMinuteMs;
    return w.current + static_cast<long long>(w.previous * left);
}

RateWindow added(RateWindow window, long long amount, int64_t now_ms) {
    window = rolled(window, now_ms);
    window.current = std::max(0LL, window.current + amount);
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
    a.current += b.current;
    a.previous += b.previous;
    return a;
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
    if (limits.requests_per_minute) {
        d.limit_requests = limits.requests_per_minute;
        d.remaining_requests = std::max(0LL, limits.requests_per_minute - requests - 1);
    }
    if (limits.tokens_per_minute) {
        d.limit_tokens = limits.tokens_per_minute;
        d.remaining_tokens = std::max(0LL, limits.tokens_per_minute - used_tokens - tokens);
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
    if (limits.requests_per_minute && requests + 1 > limits.requests_per_minute)
        return refuse("rate_limit_exceeded",
                      "Rate limit reached for this key: " + std::to_string(limits.requests_per_minute) +
                          " requests per minute.",
                      wait_for(rolled(usage.requests, now_ms), requests + 1 - limits.requests_per_minute, now_ms));
    // A request bigger than the whole budget could never pass: it is let through when
    // nothing else was used in the last minute, so it is not refused forever.
    if (limits.tokens_per_minute && used_tokens + tokens > limits.tokens_per_minute && used_tokens > 0)
        return refuse("tokens_limit_exceeded",
                      "Token rate limit reached for this key: " + std::to_string(limits.tokens_per_minute) +
                          " tokens per minute.",
                      wait_for(rolled(usage.tokens, now_ms), used_tokens + tokens - limits.tokens_per_minute, now_ms));
    return d;
}

long long estimate_prompt_tokens(long long body_bytes) { return body_bytes <= 0 ? 0 : (body_bytes + 3) / 4; }

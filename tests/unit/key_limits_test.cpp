// Per-key limits with counts from other hosts (through Redis): whatever the counts, the
// arithmetic saturates (no overflow: the sanitizer build aborts on one), and a host given
// a share of a key's requests admits at most that share.
#include <boost/test/unit_test.hpp>

#include <limits>

#include "key_limits.h"

namespace {

const long long kMost = std::numeric_limits<long long>::max();
const long long kLeast = std::numeric_limits<long long>::min();
const int64_t kMinute = 60000 * 1000;  // a minute's start, in ms

// How many requests one after another `decide_key` admits against `usage`.
int admitted(const KeyLimits& limits, KeyUsage usage, int64_t now) {
    int count = 0;
    while (count < 1000 && decide_key(limits, usage, now, 0).allowed) {
        usage.requests = added(usage.requests, 1, now);
        ++count;
    }
    return count;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(key_limits)

BOOST_AUTO_TEST_CASE(sums_saturate) {
    BOOST_TEST(saturating_add(kMost, 1) == kMost);
    BOOST_TEST(saturating_add(kLeast, -1) == kLeast);
    BOOST_TEST(saturating_add(2, 3) == 5);
    BOOST_TEST(saturating_sub(kLeast, 1) == kLeast);
    BOOST_TEST(saturating_sub(0, kLeast) == kMost);
    BOOST_TEST(saturating_sub(5, 3) == 2);
}

BOOST_AUTO_TEST_CASE(extreme_counts_decide_without_overflow) {
    KeyLimits limits;
    limits.requests_per_minute = 6;
    limits.tokens_per_minute = 1000;
    for (long long count : {kMost, kLeast, kMost - 1, kLeast + 1}) {
        KeyUsage usage;
        usage.requests = usage.tokens = {kMinute / 60000, count, count};
        RateWindow both = combined(usage.requests, usage.requests, kMinute + 30000);
        BOOST_TEST((counted(both, kMinute + 30000) == (count > 0 ? kMost : kLeast)));
        KeyDecision d = decide_key(limits, usage, kMinute + 30000, kMost);
        if (count > 0) {
            BOOST_TEST(!d.allowed);
            BOOST_TEST(d.retry_after_ms >= 1000);
            BOOST_TEST(d.retry_after_ms <= 60000);
        }
        BOOST_TEST(d.remaining_requests >= 0);
        BOOST_TEST(d.remaining_tokens >= 0);
        BOOST_TEST(added(usage.requests, kMost, kMinute).current >= 0);
    }
}

BOOST_AUTO_TEST_CASE(counts_from_redis_are_clamped) {
    BOOST_TEST(shared_count(-1) == 0);
    BOOST_TEST(shared_count(kLeast) == 0);
    BOOST_TEST(shared_count(kMost) == kMostSharedCount);
    BOOST_TEST(shared_count(12) == 12);
}

BOOST_AUTO_TEST_CASE(a_host_admits_its_share) {
    KeyLimits limits;
    limits.requests_per_minute = 10;
    int64_t now = kMinute + 15000;  // a quarter into the minute: 3/4 of the previous counts
    KeyUsage usage;
    usage.requests = window_with_share({now / 60000, 2, 0}, 10, 3, now);
    BOOST_TEST(admitted(limits, usage, now) == 3);
    // The share is all that is left: counts decide.
    usage.requests = window_with_share({now / 60000, 2, 4}, 10, 8, now);
    BOOST_TEST(admitted(limits, usage, now) == 5);  // 10 - 2 - 4 * 3/4
    // Nothing shared: none; no limit (share -1): the counts as they are.
    usage.requests = window_with_share({now / 60000, 0, 0}, 10, 0, now);
    BOOST_TEST(admitted(limits, usage, now) == 0);
    RateWindow counts{now / 60000, 2, 4};
    RateWindow as_is = window_with_share(counts, 10, -1, now);
    BOOST_TEST(as_is.current == 2);
    BOOST_TEST(as_is.previous == 4);
    BOOST_TEST(previous_minute_weight(now) == 0.75);
}

BOOST_AUTO_TEST_CASE(key_limits_count_a_sliding_minute) {
    KeyLimits limits;
    limits.requests_per_minute = 3;
    KeyUsage usage;
    int64_t now = 60000 * 100;
    for (int i = 0; i < 3; ++i) {
        KeyDecision d = decide_key(limits, usage, now, 0);
        BOOST_TEST(d.allowed);
        BOOST_TEST(d.remaining_requests == 2 - i);
        usage.requests = added(usage.requests, 1, now);
    }
    KeyDecision refused = decide_key(limits, usage, now, 0);
    BOOST_TEST(!refused.allowed);
    BOOST_TEST(refused.status == 429);
    BOOST_TEST(refused.code == "rate_limit_exceeded");
    BOOST_TEST(refused.retry_after_ms > 0);
    BOOST_TEST(refused.retry_after_ms <= 60000);
    // Half a minute into the next one, half of the previous minute's count is left.
    BOOST_TEST(counted(usage.requests, now + 90000) == 1);
    BOOST_TEST(decide_key(limits, usage, now + 90000, 0).allowed);
    BOOST_TEST(counted(usage.requests, now + 120000) == 0);
}

BOOST_AUTO_TEST_CASE(key_limits_tokens_concurrency_and_expiry) {
    KeyLimits limits;
    limits.tokens_per_minute = 1000;
    limits.concurrent = 2;
    KeyUsage usage;
    BOOST_TEST(decide_key(limits, usage, 0, 5000).allowed);  // alone, larger than the budget
    usage.tokens = added(usage.tokens, 900, 0);
    KeyDecision d = decide_key(limits, usage, 0, 200);
    BOOST_TEST(d.code == "tokens_limit_exceeded");
    usage.tokens = added(usage.tokens, -850, 0);  // settled with the real usage
    BOOST_TEST(decide_key(limits, usage, 0, 200).allowed);
    usage.in_flight = 2;
    BOOST_TEST(decide_key(limits, usage, 0, 0).code == "concurrency_limit_exceeded");
    limits.expires_at = 100;
    BOOST_TEST(decide_key(limits, {}, 100000, 0).status == 401);
    BOOST_TEST(key_expired(limits, 100000));
    BOOST_TEST(!key_expired(limits, 99999));
    BOOST_TEST(estimate_prompt_tokens(400) == 100);
}

BOOST_AUTO_TEST_CASE(a_realtime_session_is_held_to_the_keys_sessions_and_rate_not_its_concurrency) {
    KeyLimits limits;
    limits.concurrent = 1;  // HTTP requests: a session is none
    KeyUsage usage;
    usage.in_flight = 5;
    usage.sessions = 2;
    BOOST_TEST(decide_session(limits, 0, usage, 0).allowed, "no session limit: any number");
    BOOST_TEST(!counts_sessions(limits, 0));
    KeyDecision refused = decide_session(limits, 2, usage, 0);  // the host's default
    BOOST_TEST(refused.status == 429);
    BOOST_TEST(refused.code == "session_limit_exceeded");
    BOOST_TEST(refused.retry_after_ms == 0, "no wait is meaningful: a session may last an hour");
    limits.realtime_sessions = 3;  // the key's own wins over the default
    BOOST_TEST(session_limit(limits, 2) == 3);
    BOOST_TEST(decide_session(limits, 2, usage, 0).allowed);
    usage.sessions = 3;
    BOOST_TEST(!decide_session(limits, 2, usage, 0).allowed);

    KeyLimits rated;
    rated.requests_per_minute = 1;  // one request a session
    rated.tokens_per_minute = 1;
    BOOST_TEST(counts_sessions(rated, 0));
    KeyUsage used;
    used.tokens = added(used.tokens, 100, 0);
    BOOST_TEST(decide_session(rated, 0, used, 0).allowed, "tokens are not known for a session");
    used.requests = added(used.requests, 1, 0);
    KeyDecision too_fast = decide_session(rated, 0, used, 0);
    BOOST_TEST(too_fast.code == "rate_limit_exceeded");
    BOOST_TEST(too_fast.retry_after_ms > 0);
    rated.expires_at = 1;
    BOOST_TEST(decide_session(rated, 0, {}, 5000).status == 401);
}

BOOST_AUTO_TEST_CASE(windows_from_two_sources_add_up) {
    int64_t now = 60000 * 10 + 30000;
    RateWindow redis{10, 4, 2}, pending{9, 3, 0};  // pending is a minute old: its count is now "previous"
    RateWindow both = combined(redis, pending, now);
    BOOST_TEST(both.minute == 10);
    BOOST_TEST(both.current == 4);
    BOOST_TEST(both.previous == 5);
    BOOST_TEST(counted(both, now) == 6);  // 4 + half of 5
}

BOOST_AUTO_TEST_SUITE_END()

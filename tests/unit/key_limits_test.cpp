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

BOOST_AUTO_TEST_SUITE_END()

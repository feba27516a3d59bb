// target_choice.cpp: a model's targets chosen by priority, load and weight; what a try's result does to a target's health.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "target_choice.h"
#include "routing.h"
#include "request.h"

namespace {

std::vector<Target> targets(std::initializer_list<std::pair<int, int>> priority_weight) {
    std::vector<Target> out;
    for (auto [priority, weight] : priority_weight) {
        Target t;
        t.priority = priority;
        t.weight = weight;
        t.name = "t" + std::to_string(out.size());
        out.push_back(t);
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(target_choice)

BOOST_AUTO_TEST_CASE(pick_prefers_the_first_priority_group_then_the_least_loaded_per_weight) {
    std::vector<Target> t = targets({{0, 1}, {0, 3}, {1, 1}});
    std::vector<TargetHealth> h(3);
    std::vector<bool> tried(3, false);
    h[0].in_flight = 1;
    h[1].in_flight = 2;  // 2/3 < 1/1
    BOOST_TEST(pick_target(t, h, tried, 1000, 7).index == 1);
    h[1].in_flight = 3;  // 1 == 1: a tie, either
    int index = pick_target(t, h, tried, 1000, 7).index;
    BOOST_TEST((index == 0 || index == 1));
    h[0].cooldown_until_ms = h[1].cooldown_until_ms = 5000;
    BOOST_TEST(pick_target(t, h, tried, 1000, 7).index == 2);  // spill-over
    tried[2] = true;
    Pick none = pick_target(t, h, tried, 1000, 7);
    BOOST_TEST(none.index == -1);
    BOOST_TEST(none.retry_after_ms == 4000);
    BOOST_TEST(none.cooling);
    BOOST_TEST(pick_target(t, h, tried, 5000, 7).index >= 0);  // expired exactly on time
}

BOOST_AUTO_TEST_CASE(weights_share_ties_in_proportion) {
    std::vector<Target> t = targets({{0, 1}, {0, 3}});
    std::vector<TargetHealth> h(2);
    std::vector<bool> tried(2, false);
    int second = 0;
    for (uint64_t r = 0; r < 4000; ++r) second += pick_target(t, h, tried, 0, r * 0x9E3779B97F4A7C15ULL) .index == 1;
    BOOST_TEST(second > 2700);
    BOOST_TEST(second < 3300);
}

BOOST_AUTO_TEST_CASE(a_circuit_opens_after_failures_and_one_trial_closes_it) {
    RetryPolicy policy;
    policy.circuit_failures = 2;
    policy.circuit_open_s = 10;
    TargetHealth h;
    h = after_try(h, TryResult::Failed, -1, false, 0, policy);
    BOOST_TEST(h.circuit_open_until_ms == 0);
    h = after_try(h, TryResult::Failed, -1, false, 0, policy);
    BOOST_TEST(h.circuit_open_until_ms == 10000);
    std::vector<Target> t = targets({{0, 1}});
    std::vector<bool> tried(1, false);
    BOOST_TEST(pick_target(t, {h}, tried, 9999, 0).index == -1);
    Pick trial = pick_target(t, {h}, tried, 10000, 0);
    BOOST_TEST(trial.index == 0);
    BOOST_TEST(trial.trial);
    h.trial_out = true;
    BOOST_TEST(pick_target(t, {h}, tried, 10001, 0).index == -1);  // one trial at a time
    TargetHealth reopened = after_try(h, TryResult::Failed, -1, true, 10500, policy);
    BOOST_TEST(reopened.circuit_open_until_ms == 20500);
    BOOST_TEST(!reopened.trial_out);
    TargetHealth closed = after_try(h, TryResult::Success, -1, true, 10500, policy);
    BOOST_TEST(closed.circuit_open_until_ms == 0);
    BOOST_TEST(closed.failures == 0);
}

BOOST_AUTO_TEST_CASE(a_429_cools_down_for_its_retry_after_capped) {
    RetryPolicy policy;
    policy.cooldown_cap_s = 60;
    policy.default_cooldown_s = 10;
    BOOST_TEST(after_try({}, TryResult::RateLimited, 1500, false, 1000, policy).cooldown_until_ms == 2500);
    BOOST_TEST(after_try({}, TryResult::RateLimited, 86400000, false, 0, policy).cooldown_until_ms == 60000);
    BOOST_TEST(after_try({}, TryResult::RateLimited, -1, false, 0, policy).cooldown_until_ms == 10000);
    BOOST_TEST(after_try({}, TryResult::RateLimited, 1000, false, 0, policy).failures == 0);
    FieldViews headers{{"Retry-After", "7"}};
    BOOST_TEST(retry_after_ms(headers) == 7000);
    headers.push_back({"Retry-After-Ms", "1234"});
    BOOST_TEST(retry_after_ms(headers) == 1234);
    BOOST_TEST(retry_after_ms({{"Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT"}}) == -1);
    BOOST_TEST((result_of_status(429) == TryResult::RateLimited));
    BOOST_TEST((result_of_status(503) == TryResult::Failed));
    BOOST_TEST((result_of_status(400) == TryResult::Success));
}

BOOST_AUTO_TEST_SUITE_END()

// tickets.cpp: what a request holds in the shared state comes back when its ticket is
// destroyed, and only then: a gauge's one, a key's place in its limits, a try's place in
// flight and how the try went.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "fakes.h"
#include "tickets.h"

namespace {

// A shared state of its own, and what it says of series and targets.
struct State : TempSharedState {
    double value(const std::string& series) {
        for (const SeriesValue& value : state->series())
            if (value.series == series) return value.value;
        return -1;  // absent
    }
    TargetHealth health(const std::string& target) {
        for (const TargetView& view : state->targets())
            if (view.name == target) return view.health;
        return {};
    }
};

Target target_named(const std::string& name) {
    Target target;
    target.name = name;
    target.deployment = "gpt-4o";
    return target;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tickets, State)

BOOST_AUTO_TEST_CASE(a_gauge_is_up_by_one_while_its_ticket_lives) {
    {
        GaugeTicket first(*state, kRequestsInFlight);
        GaugeTicket second(*state, kRequestsInFlight);
        BOOST_TEST(value(kRequestsInFlight) == 2);
    }
    BOOST_TEST(value(kRequestsInFlight) == 0);
}

BOOST_AUTO_TEST_CASE(a_keys_place_comes_back_with_its_ticket) {
    ClientKey key{"alice", "sk-alice-123", {}};
    key.limits.concurrent = 1;
    BOOST_REQUIRE(state->admit_key(key, wall_clock_ms(), 10).allowed);
    {
        KeyTicket ticket(*state, key, 10);
        BOOST_TEST(!state->admit_key(key, wall_clock_ms(), 10).allowed);  // its one place is taken
    }
    BOOST_TEST(state->admit_key(key, wall_clock_ms(), 10).allowed);
    KeyTicket again(*state, key, 10);
}

BOOST_AUTO_TEST_CASE(a_try_is_in_flight_until_its_ticket_goes_then_counted_by_result) {
    std::vector<Target> targets = {target_named("east/gpt-4o")};
    RetryPolicy policy;
    Pick pick = state->choose(targets, {false}, wall_clock_ms());
    BOOST_REQUIRE(pick.index == 0);
    {
        TryTicket ticket(*state, targets[0], pick.trial_token, policy);
        BOOST_TEST(health("east/gpt-4o").in_flight == 1);
        ticket.set_result(TryResult::Failed, -1);
    }
    BOOST_TEST(health("east/gpt-4o").in_flight == 0);
    BOOST_TEST(health("east/gpt-4o").failures == 1);
    BOOST_TEST(value(R"(aop_upstream_tries_total{target="east/gpt-4o",result="failed"})") == 1);
}

BOOST_AUTO_TEST_CASE(an_abandoned_try_says_nothing_of_its_target) {
    std::vector<Target> targets = {target_named("west/gpt-4o")};
    RetryPolicy policy;
    for (int i = 0; i < 3; ++i) {
        Pick pick = state->choose(targets, {false}, wall_clock_ms());
        TryTicket ticket(*state, targets[0], pick.trial_token, policy);  // no result set: abandoned
    }
    BOOST_TEST(health("west/gpt-4o").in_flight == 0);
    BOOST_TEST(health("west/gpt-4o").failures == 0);
    BOOST_TEST(value(R"(aop_upstream_tries_total{target="west/gpt-4o",result="abandoned"})") == 3);
}

BOOST_AUTO_TEST_SUITE_END()

// The shared state's targets (shared_state_targets.cpp): an open circuit's trial holds it
// only for its lease (the lease itself is routing.cpp's trial_lease_ms, checked here with
// the trial it bounds), a late report of a trial taken over is a plain try; a try that goes
// on past its report (a realtime session) stays in flight until it ends.
#include <boost/test/unit_test.hpp>

#include "state_test_support.h"

using namespace state_test;

BOOST_AUTO_TEST_SUITE(shared_state_targets)

BOOST_AUTO_TEST_CASE(a_trials_lease_is_its_timeout_else_the_circuits_time_at_most_30_s) {
    RetryPolicy policy;
    BOOST_TEST(trial_lease_ms(policy) == 30000);
    policy.circuit_open_s = 5;
    BOOST_TEST(trial_lease_ms(policy) == 5000);
    policy.circuit_open_s = 600;
    BOOST_TEST(trial_lease_ms(policy) == 30000);
    policy.trial_timeout_s = 90;
    BOOST_TEST(trial_lease_ms(policy) == 90000);
}

BOOST_FIXTURE_TEST_CASE(a_trial_that_hangs_holds_the_circuit_only_for_its_lease, OneTarget) {
    RetryPolicy policy = open_circuit(*state, t, now);
    Pick hung = state->choose(t, tried, now + 1000, true, 5000);
    BOOST_TEST(hung.trial);
    BOOST_TEST(state->choose(t, tried, now + 5999).index == -1);
    Pick second = state->choose(t, tried, now + 6001, true, 5000);
    BOOST_TEST(second.index == 0);
    BOOST_TEST(second.trial);
    BOOST_TEST(second.trial_token != hung.trial_token);
    // The first trial's late failure is a plain try now: the second still holds the circuit.
    state->report(t[0], TryResult::Failed, -1, hung.trial_token, now + 6100, policy);
    BOOST_TEST(state->choose(t, tried, now + 6200).index == -1);
    state->report(t[0], TryResult::Success, -1, second.trial_token, now + 6300, policy);
    Pick closed = state->choose(t, tried, now + 6400);
    BOOST_TEST(closed.index == 0);
    BOOST_TEST(!closed.trial);
}

BOOST_FIXTURE_TEST_CASE(a_try_that_goes_on_past_its_report_stays_in_flight_until_it_ends, OneTarget) {
    auto in_flight = [&] { return state->targets().at(0).health.in_flight; };
    RetryPolicy policy;
    Pick session = state->choose(t, tried, now);  // a realtime session, relayed once answered
    state->report(t[0], TryResult::Success, -1, session.trial_token, now + 10, policy, false);
    BOOST_TEST(in_flight() == 1);
    Pick request = state->choose(t, tried, now + 20);
    state->report(t[0], TryResult::Success, -1, request.trial_token, now + 30, policy);
    BOOST_TEST(in_flight() == 1);
    state->end_try(t[0]);
    BOOST_TEST(in_flight() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

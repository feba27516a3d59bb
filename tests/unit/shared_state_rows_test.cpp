// The shared state's rows (shared_state_rows.cpp): what a process that died held (a
// circuit's trial, places in flight) is given back, by the next reader's once-a-second
// sweep or at once by the supervisor's reclaim; its row is no longer counted.
#include <boost/test/unit_test.hpp>

#include "state_test_support.h"

using namespace state_test;

BOOST_AUTO_TEST_SUITE(shared_state_rows)

BOOST_FIXTURE_TEST_CASE(a_trial_held_by_a_process_that_died_is_given_back, OneTarget) {
    trial_taken_by_a_dying_process(*state, dir.path, t, now);
    // The next reader a second later notices the death: its request is the trial, long
    // before the lease would have passed.
    Pick next = state->choose(t, tried, now + 2600);
    BOOST_TEST(next.index == 0);
    BOOST_TEST(next.trial);
}

BOOST_FIXTURE_TEST_CASE(the_supervisors_reclaim_gives_a_dead_processs_trial_back_at_once, OneTarget) {
    trial_taken_by_a_dying_process(*state, dir.path, t, now);
    state->reclaim_dead_processes();
    BOOST_TEST(state->choose(t, tried, now + 1700).trial);
}

BOOST_AUTO_TEST_CASE(a_process_that_died_stops_counting_in_flight) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    std::vector<Target> t = one_target();
    std::vector<bool> tried(1, false);
    ClientKey key;
    key.name = "bob";
    key.limits.concurrent = 1;
    int64_t now = wall_clock_ms();
    in_dying_child([&] {
        SharedState* other = open_state(dir.path).release();
        return other->admit_key(key, now, 0).allowed && other->choose(t, tried, now).index == 0;
    });
    BOOST_TEST(state->admit_key(key, now + 1500, 0).allowed, "the dead process's place is forgotten");
    std::vector<TargetView> views = state->targets();
    BOOST_REQUIRE(views.size() == 1u);
    BOOST_TEST(views[0].health.in_flight == 0);
    BOOST_TEST(value_of(*state, "aop_state_in_flight{table=\"keys\"}") == 1);  // this process's own
    BOOST_TEST(value_of(*state, "aop_state_in_flight{table=\"targets\"}") == 0);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"processes\"}") == 1);
}

BOOST_AUTO_TEST_CASE(a_process_that_died_gives_back_its_realtime_sessions) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    KeyLimits limits;
    limits.realtime_sessions = 1;
    int64_t now = wall_clock_ms();
    in_dying_child([&] {
        SharedState* other = open_state(dir.path).release();
        return other->admit_session("carol", limits, 0, now).allowed;
    });
    BOOST_TEST(state->admit_session("carol", limits, 0, now + 1500).allowed, "the dead process's session is forgotten");
    BOOST_TEST(!state->admit_session("carol", limits, 0, now + 1500).allowed, "this process's own still counts");
    state->end_session("carol");
    BOOST_TEST(state->admit_session("carol", limits, 0, now + 1500).allowed, "an ended session's place is free");
}

BOOST_AUTO_TEST_SUITE_END()

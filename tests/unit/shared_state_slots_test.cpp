// The shared state's named slots (shared_state_slots.cpp): a name longer than its slot is
// refused whole and counted, never cut, and does not use up the table.
#include <boost/test/unit_test.hpp>

#include "bounds.h"

#include "state_test_support.h"

using namespace state_test;

BOOST_AUTO_TEST_SUITE(shared_state_slots)

BOOST_AUTO_TEST_CASE(a_name_longer_than_its_slot_is_refused_whole_and_counted_never_cut) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    int64_t now = wall_clock_ms();
    ClientKey long_key;
    long_key.name = std::string(kLongestKeyName + 1, 'k');
    long_key.limits.concurrent = 1;
    std::vector<Target> long_target = one_target(std::string(kLongestTargetName + 1, 't'));
    std::vector<bool> tried(1, false);
    for (int i = 0; i < 1100; ++i) {
        state->admit_key(long_key, now, 0);
        state->choose(long_target, tried, now);
    }
    // The tables were not used up: names at their bound have their slots and limits.
    ClientKey key;
    key.name = std::string(kLongestKeyName, 'b');
    key.limits.concurrent = 1;
    BOOST_TEST(state->admit_key(key, now, 0).allowed);
    BOOST_TEST(!state->admit_key(key, now, 0).allowed, "its limit applies");
    std::vector<Target> t = one_target(std::string(kLongestTargetName, 'e'));
    RetryPolicy policy;
    Pick pick = state->choose(t, tried, now);
    BOOST_TEST(pick.index == 0);
    state->report(t[0], TryResult::RateLimited, 5000, pick.trial_token, now, policy);
    BOOST_TEST(state->choose(t, tried, now + 1).index == -1, "its cooldown applies");
    BOOST_TEST(value_of(*state, "aop_state_refused_total{table=\"keys\"}") == 1100);
    BOOST_TEST(value_of(*state, "aop_state_refused_total{table=\"targets\"}") == 1100);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"keys\"}") == 1);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"targets\"}") == 1);
    std::vector<TargetView> views = state->targets();
    BOOST_REQUIRE(views.size() == 1u);
    BOOST_TEST(views[0].name == t[0].name, "stored whole");
}

BOOST_AUTO_TEST_SUITE_END()

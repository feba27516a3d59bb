// The shared state's keys (shared_state_keys.cpp): Redis's counts apply to a key this host
// has not seen yet, and what a round takes to Redis stays counted until Redis's totals
// replace it.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

#include "key_limits.h"
#include "shared_state.h"

namespace {

const int64_t kMinute = 60000 * 1000;  // a minute's start, in ms

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_state_keys)

// The shared state's side: Redis's counts apply to a key this host has not seen yet, and
// what a round takes to Redis stays counted until Redis's totals replace it.
BOOST_AUTO_TEST_CASE(the_shared_state_counts_what_is_on_its_way_to_redis) {
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open("", warning);
    BOOST_REQUIRE(state);
    ClientKey key;
    key.name = "newcomer";
    key.limits.requests_per_minute = 3;
    int64_t now = kMinute + 1000, minute = now / 60000;
    state->apply_remote("newcomer", {minute, 3, 0}, {minute, 0, 0}, now);
    BOOST_TEST(!state->admit_key(key, now, 0).allowed);  // the other hosts used it all

    key.name = "busy";
    key.limits.requests_per_minute = 6;
    state->apply_remote("busy", {minute, 0, 0}, {minute, 0, 0}, now);
    BOOST_TEST(state->admit_key(key, now, 0).remaining_requests == 5);
    BOOST_TEST(state->admit_key(key, now, 0).remaining_requests == 4);
    std::vector<KeyPending> taken = state->take_pending(now);  // a round starts with 2
    BOOST_TEST(taken.size() == 2u);
    BOOST_TEST(state->admit_key(key, now, 0).remaining_requests == 3);  // the 2 on their way count
    state->return_pending(taken, now);                                   // Redis did not take them
    BOOST_TEST(state->admit_key(key, now, 0).remaining_requests == 2);  // 3 so far, not 5
}

// A realtime session counts as one request of the key's rate, and its place among the
// key's sessions is given back when it ends; other keys' sessions are apart.
BOOST_AUTO_TEST_CASE(realtime_sessions_are_counted_per_key_and_as_requests) {
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open("", warning);
    BOOST_REQUIRE(state);
    KeyLimits limits;
    limits.requests_per_minute = 10;
    int64_t now = kMinute + 1000;
    BOOST_TEST(state->admit_session("dana", limits, 2, now).remaining_requests == 9);
    BOOST_TEST(state->admit_session("dana", limits, 2, now).remaining_requests == 8);
    KeyDecision third = state->admit_session("dana", limits, 2, now);
    BOOST_TEST(third.code == "session_limit_exceeded");
    BOOST_TEST(state->admit_session("erin", limits, 2, now).allowed, "another key's sessions are its own");
    state->end_session("dana");
    BOOST_TEST(state->admit_session("dana", limits, 2, now).remaining_requests == 7, "the refused one was not counted");
    ClientKey key{"dana", "", limits};
    BOOST_TEST(state->admit_key(key, now, 0).remaining_requests == 6, "HTTP requests and sessions share the rate");
}

BOOST_AUTO_TEST_SUITE_END()

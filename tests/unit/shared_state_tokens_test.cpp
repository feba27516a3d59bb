// The shared state's Entra ID tokens (shared_state_tokens.cpp): one process of the host
// holds the lease and asks, the others take its token; a lease ends with its report, its
// time or its holder's death; a failure holds every process back until its retry; a token
// Azure refused is dropped once; rows are named by a hash, never by the identity's text.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <iterator>

#include "state_test_support.h"

using namespace state_test;

namespace {

const std::string kIdentity = "client-secret\nhttps://login.example/\ntenant\nclient\nscope";
const std::string kBearer = "Authorization: Bearer eyJ0.eyJ1.c2ln";
const int64_t kLeaseMs = 35000;

struct TokenRow {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    int64_t now = wall_clock_ms();
};

// Another live process's turn at `at`: whether it got the lease, and the token it saw.
bool others_turn(const std::string& path, int64_t at, bool expect_lease, const std::string& expect_token) {
    return in_child([&] {
        std::unique_ptr<SharedState> other = open_state(path);
        SharedToken turn = other->token_turn(kIdentity, at, kLeaseMs);
        return turn.stored && turn.lease == expect_lease && turn.authorization == expect_token;
    });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_state_tokens)

BOOST_FIXTURE_TEST_CASE(the_first_asks_the_others_wait_then_take_its_token, TokenRow) {
    SharedToken first = state->token_turn(kIdentity, now, kLeaseMs);
    BOOST_TEST(first.stored);
    BOOST_TEST(first.lease);
    BOOST_TEST(first.authorization.empty());
    BOOST_TEST(others_turn(dir.path, now + 10, false, ""), "a second process waits for the lease holder");
    BOOST_TEST(state->token_obtained(kIdentity, kBearer, now + 60000, now + 30000));
    BOOST_TEST(others_turn(dir.path, now + 20, false, kBearer), "and then takes its token, asking nothing");
    SharedToken again = state->token_turn(kIdentity, now + 30, kLeaseMs);
    BOOST_TEST(!again.lease);
    BOOST_TEST(again.renew_at_ms == now + 30000);
    BOOST_TEST(again.expires_at_ms == now + 60000);
}

BOOST_FIXTURE_TEST_CASE(at_the_renewal_one_process_asks_and_the_others_keep_the_token, TokenRow) {
    BOOST_REQUIRE(state->token_turn(kIdentity, now, kLeaseMs).lease);
    state->token_obtained(kIdentity, kBearer, now + 4000, now + 2000);
    SharedToken due = state->token_turn(kIdentity, now + 2100, kLeaseMs);
    BOOST_TEST(due.lease);
    BOOST_TEST(due.authorization == kBearer, "the current token is still handed out");
    BOOST_TEST(others_turn(dir.path, now + 2200, false, kBearer));
}

BOOST_FIXTURE_TEST_CASE(a_lease_whose_holder_died_or_whose_time_passed_is_taken_over, TokenRow) {
    in_dying_child([&] {
        SharedState* other = open_state(dir.path).release();  // never left: as if killed
        return other->token_turn(kIdentity, now, kLeaseMs).lease;
    });
    BOOST_TEST(state->token_turn(kIdentity, now + 10, kLeaseMs).lease, "the dead holder's lease is taken over");
    // This process holds it now, for 1 s: a live process past that takes it.
    state->token_failed(kIdentity, "x", 0);
    BOOST_REQUIRE(state->token_turn(kIdentity, now + 20, 1000).lease);
    BOOST_TEST(others_turn(dir.path, now + 500, false, ""));
    BOOST_TEST(others_turn(dir.path, now + 1100, true, ""));
}

// A process that ends while it asks (a plain CGI call answered first) gives the lease back
// without a failure: the next process asks at once, and no one is held back.
BOOST_FIXTURE_TEST_CASE(a_lease_abandoned_is_no_failure_and_the_next_process_asks, TokenRow) {
    BOOST_REQUIRE(state->token_turn(kIdentity, now, kLeaseMs).lease);
    state->token_obtained(kIdentity, kBearer, now + 4000, now + 2000);
    BOOST_REQUIRE(state->token_turn(kIdentity, now + 2100, kLeaseMs).lease);
    state->token_abandoned(kIdentity);
    SharedToken after = state->token_turn(kIdentity, now + 2110, 0);
    BOOST_TEST(after.failures == 0);
    BOOST_TEST(after.error.empty());
    BOOST_TEST(after.retry_at_ms == 0);
    BOOST_TEST(after.authorization == kBearer, "the current token stays");
    BOOST_TEST(others_turn(dir.path, now + 2120, true, kBearer), "another process takes the lease at once");
}

BOOST_FIXTURE_TEST_CASE(a_failure_holds_every_process_back_until_its_retry_and_says_why, TokenRow) {
    BOOST_REQUIRE(state->token_turn(kIdentity, now, kLeaseMs).lease);
    state->token_failed(kIdentity, "the token endpoint answered 503: AADSTS90033", now + 1000);
    SharedToken held = state->token_turn(kIdentity, now + 500, kLeaseMs);
    BOOST_TEST(!held.lease);
    BOOST_TEST(held.failures == 1);
    BOOST_TEST(held.retry_at_ms == now + 1000);
    BOOST_TEST(held.error == "the token endpoint answered 503: AADSTS90033");
    BOOST_TEST(others_turn(dir.path, now + 600, false, ""));
    BOOST_TEST(state->token_turn(kIdentity, now + 1000, kLeaseMs).lease);
    state->token_failed(kIdentity, "again", now + 3000);
    BOOST_TEST(state->token_turn(kIdentity, now + 1100, kLeaseMs).failures == 2);
    BOOST_TEST(!state->token_turn(kIdentity, now + 1200, kLeaseMs).refused);
    state->token_turn(kIdentity, now + 3000, kLeaseMs);
    state->token_failed(kIdentity, "the token endpoint answered 401 invalid_client", now + 3000, true);
    BOOST_TEST(state->token_turn(kIdentity, now + 2500, kLeaseMs).refused, "a definitive refusal is told the others");
    state->token_turn(kIdentity, now + 3000, kLeaseMs);
    state->token_obtained(kIdentity, kBearer, now + 60000, now + 30000);
    SharedToken good = state->token_turn(kIdentity, now + 3100, kLeaseMs);
    BOOST_TEST(good.failures == 0);
    BOOST_TEST(good.error.empty());
    BOOST_TEST(!good.refused);
}

BOOST_FIXTURE_TEST_CASE(a_token_azure_refused_is_dropped_unless_renewed_since, TokenRow) {
    state->token_turn(kIdentity, now, kLeaseMs);
    state->token_obtained(kIdentity, kBearer, now + 60000, now + 30000);
    state->token_refused(kIdentity, "Authorization: Bearer an-older-one");
    BOOST_TEST(!state->token_turn(kIdentity, now + 10, kLeaseMs).lease, "a refusal of an older token changes nothing");
    state->token_refused(kIdentity, kBearer);
    SharedToken dropped = state->token_turn(kIdentity, now + 20, kLeaseMs);
    BOOST_TEST(dropped.lease, "the refused token is renewed, through the lease");
    BOOST_TEST(dropped.authorization.empty());
}

BOOST_FIXTURE_TEST_CASE(identities_have_rows_of_their_own_named_by_a_hash_and_the_table_is_bounded, TokenRow) {
    state->token_turn(kIdentity, now, kLeaseMs);
    state->token_obtained(kIdentity, kBearer, now + 60000, now + 30000);
    SharedToken other = state->token_turn(kIdentity + "-other", now, kLeaseMs);
    BOOST_TEST(other.lease);
    BOOST_TEST(other.authorization.empty());
    std::ifstream file(dir.path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    BOOST_TEST(bytes.find(kIdentity) == std::string::npos, "the identity's text is not in the file");
    BOOST_TEST(bytes.find(kBearer) != std::string::npos);
    int stored = 0;
    for (int i = 0; i < 40; ++i) stored += state->token_turn("identity " + std::to_string(i), now, kLeaseMs).stored;
    BOOST_TEST(stored == 14, "16 rows, two taken above");
    BOOST_TEST(!state->token_obtained(kIdentity, "Authorization: Bearer " + std::string(20000, 'a'), now + 60000,
                                      now + 30000),
               "a token longer than the row is not cut: the process keeps it alone");
}

BOOST_FIXTURE_TEST_CASE(the_metrics_show_per_source_the_soonest_expiry_and_nothing_of_the_token, TokenRow) {
    state->token_turn(kIdentity, now, kLeaseMs);
    BOOST_TEST(value_of(*state, "aop_entra_token_expiry_seconds{source=\"client-secret\"}") == 0, "none yet");
    state->token_obtained(kIdentity, kBearer, wall_clock_ms() + 60000, now + 30000);
    state->token_turn(kIdentity + "-second", now, kLeaseMs);
    state->token_obtained(kIdentity + "-second", kBearer + "2", wall_clock_ms() + 20000, now + 10000);
    double left = value_of(*state, "aop_entra_token_expiry_seconds{source=\"client-secret\"}");
    BOOST_TEST(left > 18);
    BOOST_TEST(left <= 20);
    for (const SeriesValue& s : state->series()) BOOST_TEST(s.series.find("eyJ") == std::string::npos, s.series);
}

BOOST_AUTO_TEST_SUITE_END()

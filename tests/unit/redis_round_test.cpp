// A Redis round's pure part, without a Redis server: which keys a round carries (watched
// or counted) and what of its share each may still use; the script call's words in the
// order the script reads them; the integers taken from replies, and what is not one.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "redis_internal.h"

using namespace redis_internal;

namespace {

// A reply as hiredis builds one, over `text` (which must outlive it).
redisReply string_reply(const char* text) {
    redisReply reply{};
    reply.type = REDIS_REPLY_STRING;
    reply.str = const_cast<char*>(text);
    reply.len = std::strlen(text);
    return reply;
}

KeyPending pending(const std::string& name, long long requests, long long previous_requests, long long tokens) {
    return KeyPending{name, RateWindow{0, requests, previous_requests}, RateWindow{0, tokens, 0}};
}

const KeyRound* round_of(const std::vector<KeyRound>& keys, const std::string& name) {
    for (const KeyRound& key : keys)
        if (key.counts.name == name) return &key;
    return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_round)

BOOST_AUTO_TEST_CASE(integers_are_taken_from_integer_replies_and_digit_strings) {
    long long out = 0;
    redisReply integer{};
    integer.type = REDIS_REPLY_INTEGER;
    integer.integer = -7;
    BOOST_TEST(integer_of(&integer, out));
    BOOST_TEST(out == -7);

    redisReply digits = string_reply("1234567890123");
    BOOST_TEST(integer_of(&digits, out));
    BOOST_TEST(out == 1234567890123LL);
    redisReply negative = string_reply("-42");
    BOOST_TEST(integer_of(&negative, out));
    BOOST_TEST(out == -42);
}

BOOST_AUTO_TEST_CASE(anything_else_is_not_an_integer) {
    long long out = 99;
    for (const char* text : {"", "-", "12a", " 12", "1.5", "+3", "123456789012345678901"}) {
        redisReply reply = string_reply(text);
        BOOST_TEST(!integer_of(&reply, out), "\"" << text << "\" taken for an integer");
    }
    redisReply nil{};
    nil.type = REDIS_REPLY_NIL;
    BOOST_TEST(!integer_of(&nil, out));
    redisReply status = string_reply("12");
    status.type = REDIS_REPLY_STATUS;
    BOOST_TEST(!integer_of(&status, out));
    BOOST_TEST(out == 99);  // untouched by a refusal before the number is read
    redisReply beyond = string_reply("99999999999999999999");  // 20 digits, past a long long
    BOOST_TEST(!integer_of(&beyond, out));
}

BOOST_AUTO_TEST_CASE(a_round_carries_watched_keys_and_counted_ones_only) {
    std::map<std::string, long> watched{{"limited", 100}, {"idle", 50}};
    std::vector<KeyPending> taken{pending("limited", 3, 0, 10), pending("unlimited", 2, 0, 0),
                                  pending("silent", 0, 0, 0)};
    std::vector<KeyRound> keys = plan_keys(watched, taken, {});

    BOOST_TEST(keys.size() == 3u);
    BOOST_TEST(!round_of(keys, "silent"));  // not watched, nothing to add
    const KeyRound* unlimited = round_of(keys, "unlimited");
    BOOST_REQUIRE(unlimited);
    BOOST_TEST(unlimited->limit == 0);
    BOOST_TEST(unlimited->counts.requests.current == 2);
    const KeyRound* idle = round_of(keys, "idle");  // watched, nothing counted: still asked
    BOOST_REQUIRE(idle);
    BOOST_TEST(idle->limit == 50);
    BOOST_TEST(idle->counts.requests.current == 0);
    const KeyRound* limited = round_of(keys, "limited");
    BOOST_REQUIRE(limited);
    BOOST_TEST(limited->limit == 100);
    BOOST_TEST(limited->counts.tokens.current == 10);
}

BOOST_AUTO_TEST_CASE(the_carry_is_what_is_left_of_the_share_in_force) {
    std::map<std::string, long> watched{{"a", 100}, {"b", 100}, {"c", 100}};
    std::map<std::string, long long> shares{{"a", 10}, {"b", 4}, {"free", 8}};
    std::vector<KeyPending> taken{pending("a", 3, 1, 0), pending("b", 5, 0, 0), pending("free", 1, 0, 0),
                                  pending("c", 1, 0, 0)};
    std::vector<KeyRound> keys = plan_keys(watched, taken, shares);
    BOOST_TEST(round_of(keys, "a")->carry == 6);     // 10 - (3 + 1)
    BOOST_TEST(round_of(keys, "b")->carry == 0);     // used beyond its share: none, not below
    BOOST_TEST(round_of(keys, "c")->carry == 0);     // no share yet
    BOOST_TEST(round_of(keys, "free")->carry == 0);  // no limit: no share to carry
}

BOOST_AUTO_TEST_CASE(the_script_call_names_the_minute_counters_in_the_scripts_order) {
    KeyRound key{pending("team", 3, 2, 40), 100, 6};
    key.counts.tokens.previous = 5;
    const int64_t now = 61 * 60000 + 15000;  // minute 61, a quarter in
    std::vector<std::string> words = script_call("abc123", "00000000000000ff", key, now);

    BOOST_REQUIRE(words.size() == 18u);
    std::vector<std::string> head{"EVALSHA", "abc123", "5", "aop:k:team:r:61", "aop:k:team:r:60",
                                  "aop:k:team:t:61", "aop:k:team:t:60", "aop:k:team:shares", "00000000000000ff",
                                  std::to_string(now)};
    BOOST_TEST(std::vector<std::string>(words.begin(), words.begin() + 10) == head, boost::test_tools::per_element());
    BOOST_TEST(std::stod(words[10]) == 0.75, boost::test_tools::tolerance(1e-9));  // the previous minute's weight
    std::vector<std::string> tail{"100", "6", "3", "2", "40", "5", "3500"};
    BOOST_TEST(std::vector<std::string>(words.begin() + 11, words.end()) == tail, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(counters_are_named_by_key_kind_and_minute) {
    BOOST_TEST(counter("k1", "t", 29000000) == "aop:k:k1:t:29000000");
}

BOOST_AUTO_TEST_CASE(the_script_reads_what_the_call_gives) {
    // The call passes 5 keys and 13 arguments; the script reads ARGV[10] (the share's
    // standing) and KEYS[5] (the shares): a call or script changed alone fails here.
    BOOST_TEST(std::strstr(kShareScript, "ARGV[10]") != nullptr);
    BOOST_TEST(std::strstr(kShareScript, "ARGV[11]") == nullptr);
    BOOST_TEST(std::strstr(kShareScript, "KEYS[5]") != nullptr);
}

BOOST_AUTO_TEST_CASE(no_routing_table_watches_nothing) {
    Config config;
    Watched watched = watched_names(config);
    BOOST_TEST(watched.keys.empty());
    BOOST_TEST(watched.targets.empty());
    BOOST_TEST(watched.cooldown_cap_s == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// client_keys.cpp: the keys clients present, read from a list or a file, matched exactly.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "client_keys.h"
#include "request.h"

BOOST_AUTO_TEST_SUITE(client_keys)

BOOST_AUTO_TEST_CASE(keys_are_read_named_or_numbered) {
    std::vector<ClientKey> keys;
    std::string error;
    BOOST_REQUIRE(parse_client_keys(" alice:sk-alice-123 , sk-anonymous-1,bob:sk-bob-4567 ", ',', keys, error));
    BOOST_REQUIRE(keys.size() == 3u);
    BOOST_TEST(keys[0].name == "alice");
    BOOST_TEST(keys[0].key == "sk-alice-123");
    BOOST_TEST(keys[1].name == "key-2");
    BOOST_TEST(keys[2].name == "bob");
}

BOOST_AUTO_TEST_CASE(a_key_file_skips_comments_and_blank_lines) {
    std::vector<ClientKey> keys;
    std::string error;
    BOOST_REQUIRE(parse_client_keys("# team keys\n\nalice:sk-alice-123\n  sk-second-key  \n", '\n', keys, error));
    BOOST_REQUIRE(keys.size() == 2u);
    BOOST_TEST(keys[1].name == "key-2");
    BOOST_TEST(keys[1].key == "sk-second-key");
}

BOOST_AUTO_TEST_CASE(bad_entries_are_named_without_showing_the_key) {
    std::vector<ClientKey> keys;
    std::string error;
    BOOST_TEST(!parse_client_keys("alice:short", ',', keys, error));
    BOOST_TEST(error.find("entry 1 (alice)") == 0u);
    BOOST_TEST(error.find("short") == std::string::npos);
    keys.clear();
    BOOST_TEST(!parse_client_keys("a:sk-same-key-1,b:sk-same-key-1", ',', keys, error));
    BOOST_TEST(error.find("sk-same") == std::string::npos);
    keys.clear();
    BOOST_TEST(!parse_client_keys("a b:sk-long-enough", ',', keys, error));
    keys.clear();
    BOOST_TEST(!parse_client_keys(" , ", ',', keys, error));
}

BOOST_AUTO_TEST_CASE(the_key_comes_from_bearer_or_api_key) {
    BOOST_TEST(presented_key(Headers{{"Authorization", "Bearer  sk-one "}}) == "sk-one");
    BOOST_TEST(presented_key(Headers{{"Authorization", "bearer sk-one"}}) == "sk-one");
    BOOST_TEST(presented_key(Headers{{"Api-Key", "sk-two"}}) == "sk-two");
    BOOST_TEST(presented_key(Headers{{"Authorization", "Basic abc"}, {"Api-Key", "sk-two"}}) == "sk-two");
    BOOST_TEST(presented_key(Headers{{"Content-Type", "x"}}).empty());
    // A request's headers, named as their params are: alike.
    BOOST_TEST(presented_key(RequestHeaders{{"AUTHORIZATION", "Bearer  sk-one "}}) == "sk-one");
    BOOST_TEST(presented_key(RequestHeaders{{"AUTHORIZATION", "Basic abc"}, {"API_KEY", "sk-two"}}) == "sk-two");
    BOOST_TEST(presented_key(RequestHeaders{{"CONTENT_TYPE", "x"}}).empty());
}

BOOST_AUTO_TEST_CASE(only_an_exact_key_matches) {
    std::vector<ClientKey> keys = {{"alice", "sk-alice-123", {}}, {"bob", "sk-bob-4567", {}}};
    BOOST_TEST(find_client_key(keys, "sk-bob-4567")->name == "bob");
    BOOST_TEST(!find_client_key(keys, "sk-bob-456"));
    BOOST_TEST(!find_client_key(keys, "sk-bob-45678"));
    BOOST_TEST(!find_client_key(keys, ""));
    BOOST_TEST(!find_client_key(keys, std::string("sk-bob-4567\0", 12)));
    BOOST_TEST(constant_time_equal("abc", "abc"));
    BOOST_TEST(!constant_time_equal("abd", "abc"));
}

BOOST_AUTO_TEST_SUITE_END()

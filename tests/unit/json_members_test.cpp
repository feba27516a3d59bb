// json_members.cpp: a JSON object's top-level members as spans, one removed with its comma.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "json_members.h"

BOOST_AUTO_TEST_SUITE(json_members_suite)

BOOST_AUTO_TEST_CASE(members_are_found_with_their_spans) {
    std::string json = R"( { "a" : [1,{"x":"}"}] , "b\"c":"v,}" ,"d":-1.5e3 } )";
    std::vector<JsonMember> members;
    size_t open = 0;
    BOOST_TEST(json_members(json, members, open));
    BOOST_TEST(open == 1u);
    BOOST_TEST(members.size() == 3u);
    BOOST_TEST(members[0].key_text(json) == "a");
    BOOST_TEST(json.substr(members[0].value, members[0].value_end - members[0].value) == R"([1,{"x":"}"}])");
    BOOST_TEST(members[1].key_text(json) == R"(b\"c)");
    BOOST_TEST(json.substr(members[2].value, members[2].value_end - members[2].value) == "-1.5e3");
    BOOST_TEST(!json_members("[1]", members, open));
    BOOST_TEST(!json_members(R"({"a":1)", members, open));
    BOOST_TEST(json_members("{}", members, open));
    BOOST_TEST(members.empty());
}

std::string removed(std::string json, std::vector<size_t> from_last) {
    std::vector<JsonMember> members;
    size_t open = 0;
    BOOST_REQUIRE(json_members(json, members, open));
    size_t next = members.size();
    for (size_t index : from_last) {
        remove_json_member(json, members, index, index + 1 < next);
        next = index;
    }
    return json;
}

BOOST_AUTO_TEST_CASE(a_member_goes_with_its_comma) {
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {1}) == R"({"a":1, "c":3})");
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {0}) == R"({"b":2, "c":3})");
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {2}) == R"({"a":1, "b":2})");
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {2, 1}) == R"({"a":1})");
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {2, 1, 0}) == R"({})");
    BOOST_TEST(removed(R"({"a":1, "b":2, "c":3})", {2, 0}) == R"({"b":2})");
    BOOST_TEST(removed(R"({ "a" : 1 })", {0}) == R"({  })");
}

BOOST_AUTO_TEST_SUITE_END()

// url_cut.cpp: an upstream URL cut into its origin and its request target, or left to libcurl's
// parser where it would change or refuse the path or the query.
#include <boost/test/unit_test.hpp>

#include "url_cut.h"

BOOST_AUTO_TEST_SUITE(url_cut)

BOOST_AUTO_TEST_CASE(a_plain_url_is_cut_at_its_path_and_its_query) {
    auto cut = cut_plain_url("https://r.openai.azure.com:8443/openai/deployments/gpt-4.1/chat/completions?api-version=2024-10-21&a=b?c");
    BOOST_REQUIRE(cut.has_value());
    BOOST_TEST(cut->origin == "https://r.openai.azure.com:8443");
    BOOST_TEST(cut->target == "/openai/deployments/gpt-4.1/chat/completions?api-version=2024-10-21&a=b?c");
    auto bare = cut_plain_url("http://127.0.0.1:9/v1/models");
    BOOST_REQUIRE(bare.has_value());
    BOOST_TEST(bare->origin == "http://127.0.0.1:9");
    BOOST_TEST(bare->target == "/v1/models");
    BOOST_TEST(cut_plain_url("http://h/a/.b/c../...").has_value());  // dots inside names are no dot segments
    BOOST_TEST(cut_plain_url("http://h/a?x=/../y").has_value());       // nor are they in the query
    BOOST_TEST(cut_plain_url("http://h/a?x?").has_value());            // a '?' of the query is plain
    BOOST_TEST(cut_plain_url("http://h/").has_value());
    auto v6 = cut_plain_url("HTTP://[::1]:8080/A/b?C=D");  // libcurl's parse of the origin serves any case
    BOOST_REQUIRE(v6.has_value());
    BOOST_TEST(v6->origin == "HTTP://[::1]:8080");
    BOOST_TEST(v6->target == "/A/b?C=D");
}

BOOST_AUTO_TEST_CASE(only_a_scheme_ends_at_the_first_colon_slash_slash) {
    BOOST_TEST(!cut_plain_url("h:80/a://x/y").has_value());  // not a scheme: a path's "://"
    BOOST_TEST(!cut_plain_url("1http://h/a").has_value());
    BOOST_TEST(!cut_plain_url("ht tp://h/a").has_value());
    BOOST_TEST(cut_plain_url("svc+h2.x-y://h/a").has_value());
    BOOST_TEST(!cut_plain_url("http://user:pw@h/a").has_value());  // user information: libcurl's own parse
}

BOOST_AUTO_TEST_CASE(what_libcurl_would_change_or_refuse_is_left_to_its_parser) {
    BOOST_TEST(!cut_plain_url("http://h/a/../b").has_value());       // dot segments resolved
    BOOST_TEST(!cut_plain_url("http://h/a/./b").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a/..").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a/..?q=1").has_value());
    BOOST_TEST(!cut_plain_url("http://h/./a").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a/.").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a/.?q").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a?q#f").has_value());
    BOOST_TEST(!cut_plain_url("http://h#f/a").has_value());
    BOOST_TEST(!cut_plain_url("http://h%/a").has_value());
    BOOST_TEST(!cut_plain_url("http://h x/a").has_value());        // libcurl says its own words
    BOOST_TEST(!cut_plain_url("http://h/a?x=..#frag").has_value());  // a fragment cut off
    BOOST_TEST(!cut_plain_url("http://h/a%2Fb").has_value());        // an escape's case
    BOOST_TEST(!cut_plain_url("http://h/a?q=%41").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a b").has_value());          // refused by libcurl
    BOOST_TEST(!cut_plain_url("http://h/a?q=\x01").has_value());
    BOOST_TEST(!cut_plain_url("http://h/\xc3\xa9").has_value());
    BOOST_TEST(!cut_plain_url("http://h/a?").has_value());           // a bare '?'
    BOOST_TEST(!cut_plain_url("http://[fe80::1%25eth0]:80/a").has_value());  // a zone
}

BOOST_AUTO_TEST_CASE(a_url_without_an_origin_and_a_path_is_left_to_libcurl) {
    BOOST_TEST(!cut_plain_url("http://h").has_value());
    BOOST_TEST(!cut_plain_url("http://h?q=1").has_value());
    BOOST_TEST(!cut_plain_url("http:///a").has_value());
    BOOST_TEST(!cut_plain_url("://h/a").has_value());
    BOOST_TEST(!cut_plain_url("h/a").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// usage.cpp: token usage read from an answer as it passes, whatever the cuts.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include "usage.h"

BOOST_AUTO_TEST_SUITE(usage)

BOOST_AUTO_TEST_CASE(usage_is_read_from_pieces_cut_anywhere) {
    std::string answer =
        R"({"id":"x","choices":[{"message":{"content":"\"prompt_tokens\": 999"}}],)"
        R"("usage":{"prompt_tokens": 12,"completion_tokens":345,"total_tokens":357,)"
        R"("prompt_tokens_details":{"cached_tokens":0}}})";
    for (size_t piece = 1; piece <= answer.size(); piece += 3) {
        UsageScanner scanner;
        for (size_t at = 0; at < answer.size(); at += piece)
            scanner.feed(answer.data() + at, std::min(piece, answer.size() - at));
        BOOST_TEST(scanner.prompt_tokens() == 12, "piece " << piece);
        BOOST_TEST(scanner.completion_tokens() == 345, "piece " << piece);
    }
    UsageScanner responses;
    std::string event = "data: {\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}\n\n";
    responses.feed(event.data(), event.size());
    BOOST_TEST(responses.prompt_tokens() == 5);
    BOOST_TEST(responses.completion_tokens() == 6);
    UsageScanner none;
    none.feed("{}", 2);
    BOOST_TEST(none.prompt_tokens() == -1);
}

BOOST_AUTO_TEST_SUITE_END()

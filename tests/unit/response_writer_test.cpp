// response_writer.cpp: the CGI head once, then the body as it comes, CORS headers by mode
// and origin, and what was sent remembered for the access line.
#include <boost/test/unit_test.hpp>

#include <string>

#include "fakes.h"
#include "response_writer.h"

BOOST_AUTO_TEST_SUITE(response_writer)

BOOST_AUTO_TEST_CASE(a_whole_answer_is_a_head_with_its_length_then_the_body) {
    FakeConnection connection;
    ResponseWriter writer(connection, ProxyMode::OpenAI);
    BOOST_TEST(!writer.head_sent());
    writer.complete(200, "application/json", "{\"ok\":true}", {{"X-Extra", "1"}});
    BOOST_TEST(connection.answer == "Status: 200 OK\r\nX-Extra: 1\r\nContent-Type: application/json\r\n"
                                    "Content-Length: 11\r\n\r\n{\"ok\":true}");
    BOOST_TEST(writer.head_sent());
    BOOST_TEST(writer.status() == 200);
    BOOST_TEST(writer.bytes() == 11);  // the body alone: what the access line counts
    BOOST_TEST(writer.error_code().empty());
}

BOOST_AUTO_TEST_CASE(azure_mode_adds_cors_to_every_answer_openai_mode_none) {
    FakeConnection azure_side;
    ResponseWriter azure(azure_side, ProxyMode::Azure);
    azure.head(204, {});
    BOOST_TEST(has(azure_side.answer, "Access-Control-Allow-Origin: *\r\n"));
    FakeConnection openai_side;
    ResponseWriter openai(openai_side, ProxyMode::OpenAI);
    openai.head(204, {});
    BOOST_TEST(!has(openai_side.answer, "Access-Control"));
}

BOOST_AUTO_TEST_CASE(named_origins_answer_only_a_listed_one) {
    Config config;
    config.cors_origins = {"https://app.example"};
    Request listed, other;
    listed.headers = {{"Origin", "https://app.example"}};
    other.headers = {{"Origin", "https://evil.example"}};
    FakeConnection to_listed, to_other;
    ResponseWriter a(to_listed, ProxyMode::Azure), b(to_other, ProxyMode::Azure);
    a.set_cors(config, listed);
    b.set_cors(config, other);
    a.head(200, {});
    b.head(200, {});
    BOOST_TEST(has(to_listed.answer, "Access-Control-Allow-Origin: https://app.example\r\n"));
    BOOST_TEST(!has(to_other.answer, "Access-Control-Allow-Origin"));
    BOOST_TEST(!has(to_other.answer, "Allow-Origin: *"));
}

BOOST_AUTO_TEST_CASE(an_error_is_openai_shaped_and_its_code_remembered) {
    FakeConnection connection;
    ResponseWriter writer(connection, ProxyMode::OpenAI);
    ProxyError error;
    error.status = 429;
    error.type = "rate_limit_error";
    error.code = "rate_limit_exceeded";
    error.message = "slow down";
    writer.error(error, {{"Retry-After", "3"}});
    BOOST_TEST(writer.status() == 429);
    BOOST_TEST(writer.error_code() == "rate_limit_exceeded");
    BOOST_TEST(has(connection.answer, "Status: 429 Too Many Requests\r\nRetry-After: 3\r\n"));
    BOOST_TEST(has(connection.body(), "\"message\":\"slow down\""));
    BOOST_TEST(has(connection.body(), "\"code\":\"rate_limit_exceeded\""));
}

BOOST_AUTO_TEST_CASE(a_gone_connection_says_so_and_a_cut_is_remembered) {
    FakeConnection connection;
    connection.gone = true;
    ResponseWriter writer(connection, ProxyMode::OpenAI);
    BOOST_TEST(!writer.head(200, {}));
    BOOST_TEST(!writer.body("x", 1));
    BOOST_TEST(!writer.cut());
    writer.cut_short();
    BOOST_TEST(writer.cut());
}

BOOST_AUTO_TEST_CASE(can_take_asks_the_connection) {
    FakeConnection connection;
    connection.room = 4;
    ResponseWriter writer(connection, ProxyMode::OpenAI);
    BOOST_TEST(writer.can_take(4));
    BOOST_TEST(!writer.can_take(5));
}

BOOST_AUTO_TEST_SUITE_END()

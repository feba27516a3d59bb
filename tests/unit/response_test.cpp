// response.cpp: the answers the proxy writes itself: error bodies, CGI heads, CORS, the models list.
#include <boost/test/unit_test.hpp>

#include <cjson/cJSON.h>

#include "access_log.h"
#include "json_model.h"
#include "response.h"

BOOST_AUTO_TEST_SUITE(response)

BOOST_AUTO_TEST_CASE(error_body_has_openai_shape) {
    ProxyError error;
    error.status = 400;
    error.message = "bad \"thing\"\n";
    error.param = "model";
    error.code = "missing_model";
    std::string text = error_body(error);
    cJSON* root = cJSON_Parse(text.c_str());
    BOOST_REQUIRE(root);
    const cJSON* body = cJSON_GetObjectItem(root, "error");
    BOOST_REQUIRE(body);
    BOOST_TEST(std::string(cJSON_GetObjectItem(body, "message")->valuestring) == "bad \"thing\"\n");
    BOOST_TEST(std::string(cJSON_GetObjectItem(body, "type")->valuestring) == "invalid_request_error");
    BOOST_TEST(std::string(cJSON_GetObjectItem(body, "param")->valuestring) == "model");
    BOOST_TEST(std::string(cJSON_GetObjectItem(body, "code")->valuestring) == "missing_model");
    cJSON_Delete(root);

    ProxyError bare;
    bare.message = "x";
    BOOST_TEST(error_body(bare).find("\"param\":null") != std::string::npos);
    BOOST_TEST(error_body(bare).find("\"code\":null") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cgi_head_carries_status_and_headers) {
    BOOST_TEST(cgi_head(404, {{"Content-Type", "application/json"}}) ==
               "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n");
    BOOST_TEST(cgi_head(299, {}) == "Status: 299\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_head_written_into_kept_room_replaces_what_the_room_held) {
    std::string room = "Status: 200 OK\r\nX-Longer-Earlier-Field: with a long value\r\n\r\n";
    Header type{"Content-Type", "text/plain"};
    cgi_head(room, 404, HeaderRefs{&type}, {});
    BOOST_TEST(room == "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
    cgi_head(room, 299, HeaderRefs{}, head_fields({{"Vary", "Origin"}}));
    BOOST_TEST(room == "Status: 299\r\nVary: Origin\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(fields_written_once_end_every_head_they_are_given_to) {
    std::string fields = head_fields({{"Vary", "Origin"}, {"Bad Name", "v"}, {"X-Cr", "a\rb"}});
    BOOST_TEST(fields == "Vary: Origin\r\nX-Cr: a b\r\n");
    BOOST_TEST(head_fields({}).empty());
    std::string room;
    Header type{"Content-Type", "text/plain"};
    cgi_head(room, 200, HeaderRefs{&type}, fields);
    BOOST_TEST(room == "Status: 200 OK\r\nContent-Type: text/plain\r\nVary: Origin\r\nX-Cr: a b\r\n\r\n");
    cgi_head(room, 204, HeaderRefs{}, std::string_view());
    BOOST_TEST(room == "Status: 204 No Content\r\n\r\n");
    BOOST_TEST(cors_fields() == head_fields(cors_headers()));
    BOOST_TEST(cors_fields().rfind("Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ", 0) == 0);
}

BOOST_AUTO_TEST_CASE(cgi_head_turns_control_bytes_in_values_into_spaces) {
    using namespace std::string_literals;
    Headers upstream = {
        {"X-Bare-Cr", "before\rafter"},
        {"X-Hidden", "one\rSet-Cookie: injected=1"},
        {"X-Lf", "a\nb"},
        {"X-Nul", "a\0b"s},
        {"X-Controls", "\x01" "a\tb\x1f\x7f"},
        {"X-Plain", "caf\xc3\xa9, \"quoted\" (fine)"},  // obs-text and delimiters stay
    };
    BOOST_TEST(cgi_head(200, upstream) ==
               "Status: 200 OK\r\nX-Bare-Cr: before after\r\nX-Hidden: one Set-Cookie: injected=1\r\n"
               "X-Lf: a b\r\nX-Nul: a b\r\nX-Controls:  a\tb  \r\n"
               "X-Plain: caf\xc3\xa9, \"quoted\" (fine)\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(cgi_head_drops_a_field_whose_name_is_not_a_token) {
    using namespace std::string_literals;
    Headers upstream = {
        {"X Spaced", "v"}, {"X(Paren)", "v"}, {"", "no name"}, {"X\rY", "v"}, {"X-Nul\0"s, "v"},
        {"X-Colon:", "v"}, {"X/Slash", "v"}, {"X\xc3\xa9", "v"},
        {"X-Kept!#$%&'*+-.^_`|~09", "v"},
    };
    BOOST_TEST(cgi_head(200, upstream, {{"Bad Name", "v"}, {"Vary", "Origin"}}) ==
               "Status: 200 OK\r\nX-Kept!#$%&'*+-.^_`|~09: v\r\nVary: Origin\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(hop_by_hop_response_headers_are_not_relayed) {
    for (const char* name : {"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade",
                             "Trailer", "Proxy-Authenticate", "Status", "Content-Length"})
        BOOST_TEST(!is_relayed_response_header(name, ProxyMode::Azure), name);
    for (const char* name : {"Content-Type", "retry-after", "retry-after-ms", "x-ratelimit-remaining-tokens",
                             "apim-request-id", "x-request-id", "x-ms-region"})
        BOOST_TEST(is_relayed_response_header(name, ProxyMode::Azure), name);
    BOOST_TEST(!is_relayed_response_header("Access-Control-Allow-Origin", ProxyMode::Azure));
    BOOST_TEST(is_relayed_response_header("Access-Control-Allow-Origin", ProxyMode::OpenAI));
    for (const char* name : {"status", "CONTENT-LENGTH", "access-control-", "ACCESS-CONTROL-MAX-AGE"})
        BOOST_TEST(!is_relayed_response_header(name, ProxyMode::Azure), name);  // in any case, by length
    for (const char* name : {"Statu", "Statuses", "Content-Lengths", "access-control", "X-Status"})
        BOOST_TEST(is_relayed_response_header(name, ProxyMode::Azure), name);
}

BOOST_AUTO_TEST_CASE(a_length_and_an_event_stream_are_told_in_any_case) {
    BOOST_TEST(is_content_length("content-length"));
    BOOST_TEST(!is_content_length("Content-Length2"));
    BOOST_TEST(is_event_stream({"CONTENT-TYPE", "text/event-stream; charset=utf-8"}));
    BOOST_TEST(!is_event_stream({"Content-Type", "application/json"}));
    BOOST_TEST(!is_event_stream({"X-Content-Type", "text/event-stream"}));
}

BOOST_AUTO_TEST_CASE(preflight_allows_what_the_browser_asks) {
    Request request;
    request.headers = {{"Access-Control-Request-Method", "POST"},
                       {"Access-Control-Request-Headers", "authorization, x-stainless-os"}};
    Headers headers = preflight_headers(request);
    BOOST_TEST(*find_header(headers, "Access-Control-Allow-Methods") == "POST");
    BOOST_TEST(*find_header(headers, "Access-Control-Allow-Headers") == "authorization, x-stainless-os");
    BOOST_TEST(*find_header(cors_headers(), "Access-Control-Allow-Origin") == "*");
}

BOOST_AUTO_TEST_CASE(models_list_has_openai_shape_and_mapper_models) {
    Config config;
    config.model_mapper = {{"my-model", "dep"}};
    config.listed_models = {"gpt-4o"};
    cJSON* root = cJSON_Parse(models_list_json(config).c_str());
    BOOST_REQUIRE(root);
    BOOST_TEST(std::string(cJSON_GetObjectItem(root, "object")->valuestring) == "list");
    const cJSON* data = cJSON_GetObjectItem(root, "data");
    BOOST_TEST(cJSON_GetArraySize(data) == 2);
    const cJSON* first = cJSON_GetArrayItem(data, 0);
    BOOST_TEST(std::string(cJSON_GetObjectItem(first, "object")->valuestring) == "model");
    cJSON_Delete(root);
    BOOST_TEST(is_listed_model(config, "my-model"));
    BOOST_TEST(!is_listed_model(config, "dep"));
}

BOOST_AUTO_TEST_CASE(azure_model_list_becomes_openai_shape) {
    std::string out;
    BOOST_REQUIRE(azure_models_to_openai(
        R"({"data":[{"id":"gpt-4o-2024-08-06","created_at":1723000000,"status":"succeeded","capabilities":{"chat_completion":true},"object":"model"},{"status":"x"}],"object":"list"})",
        out));
    BOOST_TEST(out == R"({"object":"list","data":[{"id":"gpt-4o-2024-08-06","object":"model","created":1723000000,"owned_by":"azure"}]})");
    BOOST_REQUIRE(azure_models_to_openai(R"({"id":"gpt-4o","created_at":5,"object":"model"})", out));
    BOOST_TEST(out == R"({"id":"gpt-4o","object":"model","created":5,"owned_by":"azure"})");
    BOOST_TEST(!azure_models_to_openai("[]", out));
    BOOST_TEST(!azure_models_to_openai("{\"error\":{}}", out));
}

BOOST_AUTO_TEST_SUITE_END()

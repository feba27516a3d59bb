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
    FieldView type{"Content-Type", "text/plain"};
    cgi_head(room, 404, FieldViews{type}, {});
    BOOST_TEST(room == "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
    cgi_head(room, 299, FieldViews{}, head_fields({{"Vary", "Origin"}}));
    BOOST_TEST(room == "Status: 299\r\nVary: Origin\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(fields_written_once_end_every_head_they_are_given_to) {
    std::string fields = head_fields({{"Vary", "Origin"}, {"Bad Name", "v"}, {"X-Cr", "a\rb"}});
    BOOST_TEST(fields == "Vary: Origin\r\nX-Cr: a b\r\n");
    BOOST_TEST(head_fields({}).empty());
    std::string room;
    FieldView type{"Content-Type", "text/plain"};
    cgi_head(room, 200, FieldViews{type}, fields);
    BOOST_TEST(room == "Status: 200 OK\r\nContent-Type: text/plain\r\nVary: Origin\r\nX-Cr: a b\r\n\r\n");
    cgi_head(room, 204, FieldViews{}, std::string_view());
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

// Wherever it sits in a value checked sixteen bytes a step (each place of a first step, a
// second, the tail, and values shorter than one step), a control byte still becomes a space.
BOOST_AUTO_TEST_CASE(cgi_head_turns_a_control_byte_into_a_space_at_every_place) {
    int wrong = 0;
    for (size_t size = 1; size <= 36; ++size)
        for (size_t at = 0; at < size; ++at)
            for (char bad : {'\r', '\n', '\0', '\x1f', '\x7f'}) {
                std::string value(size, 'v');
                value[at] = bad;
                std::string spaced(size, 'v');
                spaced[at] = ' ';
                if (cgi_head(200, {{"X-V", value}}) != "Status: 200 OK\r\nX-V: " + spaced + "\r\n\r\n") ++wrong;
            }
    BOOST_TEST(wrong == 0);
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

// An upstream head kept in one text as libcurl hands it over, a line at a time.
BOOST_AUTO_TEST_CASE(an_answer_head_sees_its_fields_trimmed_in_the_order_they_came) {
    AnswerHead head;
    BOOST_TEST(head.add_line("Content-Type:  application/json "));
    BOOST_TEST(!head.add_line("no colon here"));
    BOOST_TEST(head.add_line("X-Empty:"));
    BOOST_TEST(head.add_line("x-request-id: abc"));
    head.fold("  more of it ");  // obsolete folding: onto the last field
    for (int i = 0; i < 100; ++i) BOOST_TEST(head.add_line("X-Many-" + std::to_string(i) + ": value " + std::to_string(i)));
    const FieldViews& fields = head.fields();  // the text moved as it grew: the fields with it
    BOOST_REQUIRE(fields.size() == 103u);
    BOOST_TEST(fields[0].name == "Content-Type");
    BOOST_TEST(fields[0].value == "application/json");
    BOOST_TEST(fields[1].name == "X-Empty");
    BOOST_TEST(fields[1].value == "");
    BOOST_TEST(fields[2].value == "abc more of it");
    BOOST_TEST(fields[102].name == "X-Many-99");
    BOOST_TEST(fields[102].value == "value 99");
    BOOST_TEST(*find_field(fields, "X-REQUEST-ID") == "abc more of it");
    BOOST_TEST(!find_field(fields, "X-Missing"));
    head.clear();  // a new head (after a 1xx): none of the last one's fields
    BOOST_TEST(head.empty());
    head.fold("nothing to fold onto");
    BOOST_TEST(head.add_line("X-Empty:"));
    head.fold("filled");
    BOOST_TEST(head.fields().size() == 1u);
    BOOST_TEST(head.fields()[0].value == " filled");  // as a folded empty value always was
}

BOOST_AUTO_TEST_CASE(an_answer_field_is_told_apart_by_its_length_and_first_byte_first) {
    for (const char* name : {"Connection", "keep-alive", "TRANSFER-ENCODING", "Upgrade", "Trailer", "Te", "Host", "Expect",
                             "Accept-Encoding", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "status",
                             "Access-Control-Allow-Origin", "access-control-a-name-longer-than-thirty-two-bytes"})
        BOOST_TEST((answer_field({name, "v"}, ProxyMode::Azure) == AnswerField::Dropped), name);
    for (const char* name : {"x-request-id", "apim-request-id", "Date", "x-ms-region", "", "Content-Types", "Statuses",
                             "access-control", "Cache-Control", "retry-after"})
        BOOST_TEST((answer_field({name, "v"}, ProxyMode::Azure) == AnswerField::Relayed), name);
    BOOST_TEST((answer_field({"Access-Control-Allow-Origin", "*"}, ProxyMode::OpenAI) == AnswerField::Relayed));
    BOOST_TEST((answer_field({"content-length", "12"}, ProxyMode::Azure) == AnswerField::ContentLength));
    BOOST_TEST((answer_field({"Content-Type", "TEXT/EVENT-STREAM; charset=utf-8"}, ProxyMode::Azure) == AnswerField::EventStream));
    BOOST_TEST((answer_field({"content-type", "application/json"}, ProxyMode::Azure) == AnswerField::Relayed));
}

// Every byte, anywhere in a short or a long name, is told token or not as RFC 9110 does.
BOOST_AUTO_TEST_CASE(every_byte_of_a_name_is_told_token_or_not_wherever_it_stands) {
    auto token_byte = [](int c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    };
    for (const std::string base : {"ab", "X-Ms-Reg", "x-request-id", "x-ratelimit-remaining-tokens"})
        for (size_t at = 0; at <= base.size(); at += base.size() / 2 ? base.size() / 2 : 1)
            for (int c = 0; c < 256; ++c) {
                std::string name = base;
                name.insert(at, 1, static_cast<char>(c));
                bool kept = !head_fields({{name, "v"}}).empty();
                BOOST_TEST(kept == token_byte(c), "byte " << c << " at " << at << " of " << base);
            }
}

BOOST_AUTO_TEST_SUITE_END()

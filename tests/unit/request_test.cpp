// request.cpp: a request read from FastCGI params (headers, path, length), line breaks noticed.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <type_traits>

#include "request.h"

BOOST_AUTO_TEST_SUITE(request)

BOOST_AUTO_TEST_CASE(header_names_come_back_from_params) {
    BOOST_TEST(header_name_from_param("HTTP_X_STAINLESS_OS") == "X-Stainless-Os");
    BOOST_TEST(header_name_from_param("HTTP_AUTHORIZATION") == "Authorization");
    std::string line = "x";
    append_header_name(line, "content-TYPE");
    BOOST_TEST(line == "xContent-Type");
}

// A request header keeps its param's name: it matches the header's name in any case,
// '_' for '-', and nothing longer, shorter or otherwise spelled.
BOOST_AUTO_TEST_CASE(request_header_names_match_header_names) {
    BOOST_TEST(header_names_match("X_STAINLESS_OS", "X-Stainless-Os"));
    BOOST_TEST(header_names_match("CONTENT_TYPE", "content-type"));
    BOOST_TEST(header_names_match("Content-Type", "Content-Type"));
    BOOST_TEST(!header_names_match("CONTENT_TYPE", "Content-Typ"));
    BOOST_TEST(!header_names_match("CONTENT_TYPES", "Content-Type"));
    BOOST_TEST(!header_names_match("CONTENTXTYPE", "Content-Type"));
    BOOST_TEST(!header_names_match("X_1", "X-!"));  // only letters match in either case
}

// A caller that scanned the params already (FastCgiInput::params_plain) has them not
// scanned again; one that did not has each looked at.
BOOST_AUTO_TEST_CASE(params_known_plain_are_not_scanned_again) {
    Config config;
    CgiParams params = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}, {"HTTP_X_A", "a\rb"}};
    BOOST_TEST(request_from_params(params, config).malformed_param == "HTTP_X_A");
    params.pop_back();
    BOOST_TEST(request_from_params(params, config, true).malformed_param.empty());
}

// Nothing is copied: the headers are views into the params (which outlive the request).
BOOST_AUTO_TEST_CASE(request_headers_view_their_params) {
    Config config;
    CgiParams params = {{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/v1/chat/completions"},
                        {"CONTENT_TYPE", "application/json; charset=utf-8"}, {"HTTP_X_TRACE_ID", "abc"}};
    Request r = request_from_params(params, config);
    BOOST_REQUIRE(r.headers.size() == 2u);
    BOOST_TEST(static_cast<const void*>(r.headers[0].value.data()) == static_cast<const void*>(params[3].second.data()));
    BOOST_TEST(*find_header(r.headers, "X-Trace-Id") == "abc");
    BOOST_TEST(*find_header(r.headers, "Content-Type") == "application/json; charset=utf-8");
}

// Once kept, the headers are the request's own: the params they came from may go (a
// stream gives them back at its start), and the request moved reads the same bytes (a
// request is moved, never copied: its headers' room is its own).
BOOST_AUTO_TEST_CASE(kept_headers_outlive_their_params) {
    Config config;
    std::string trace = "abc", agent = "OpenAI/Python 1.99.0 (a user agent longer than a short string)";
    auto params = std::make_unique<CgiParams>(CgiParams{{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/v1/chat/completions"},
                                                        {"HTTP_X_TRACE_ID", trace}, {"HTTP_USER_AGENT", agent}});
    Request r = request_from_params(*params, config);
    keep_own_headers(r);
    params.reset();
    trace.assign("xyz");
    agent.assign(agent.size(), '!');
    Request moved = std::move(r);
    BOOST_REQUIRE(moved.headers.size() == 2u);
    BOOST_TEST(*find_header(moved.headers, "X-Trace-Id") == "abc");
    BOOST_TEST(*find_header(moved.headers, "User-Agent") == "OpenAI/Python 1.99.0 (a user agent longer than a short string)");
    static_assert(!std::is_copy_constructible_v<Request>, "a copy's views would point into the original's room");
}

// A request without headers makes no room for them.
BOOST_AUTO_TEST_CASE(a_request_without_headers_keeps_no_room) {
    Config config;
    CgiParams params{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}};
    Request r = request_from_params(params, config);
    keep_own_headers(r);
    BOOST_TEST(r.headers.empty());
    BOOST_TEST(!r.header_bytes);
}

BOOST_AUTO_TEST_CASE(absolute_form_targets_route_on_their_path) {
    std::string path, query;
    split_request_target("http://api.openai.com/v1/chat/completions?a=1", path, query);
    BOOST_TEST(path == "/v1/chat/completions");
    BOOST_TEST(query == "a=1");
    split_request_target("https://api.openai.com", path, query);
    BOOST_TEST(path == "/");
    split_request_target("/v1/models?x=http://y", path, query);
    BOOST_TEST(path == "/v1/models");
    BOOST_TEST(query == "x=http://y");
    split_request_target("/v1/models?a=1#part", path, query);
    BOOST_TEST(query == "a=1");
    split_request_target("v1/models", path, query);
    BOOST_TEST(path == "/v1/models");
    BOOST_TEST(query == "");
    split_request_target("http://h?x=1", path, query);
    BOOST_TEST(path == "/");
    BOOST_TEST(query == "x=1");
}

BOOST_AUTO_TEST_CASE(mount_prefix_is_stripped) {
    BOOST_TEST(strip_mount_prefix("/v1/models", "") == "/v1/models");
    BOOST_TEST(strip_mount_prefix("/openai-proxy/v1/models", "") == "/v1/models");
    BOOST_TEST(strip_mount_prefix("/openai-proxy/v1", "") == "/v1");
    BOOST_TEST(strip_mount_prefix("/a/v1x/models", "") == "/a/v1x/models");
    BOOST_TEST(strip_mount_prefix("/gw/models", "/gw") == "/models");
    BOOST_TEST(strip_mount_prefix("/gwx/models", "/gw") == "/gwx/models");
}

BOOST_AUTO_TEST_CASE(request_is_read_from_fastcgi_params) {
    Config config;
    CgiParams params = {{"REQUEST_METHOD", "POST"},
                        {"REQUEST_URI", "/proxy/v1/chat/completions?x=1"},
                        {"SCRIPT_NAME", "/proxy"},
                        {"PATH_INFO", "/v1/chat/completions"},
                        {"CONTENT_TYPE", "application/json"},
                        {"CONTENT_LENGTH", "42"},
                        {"HTTP_AUTHORIZATION", "Bearer k"}};
    Request r = request_from_params(params, config);
    BOOST_TEST(r.method == "POST");
    BOOST_TEST(r.path == "/v1/chat/completions");
    BOOST_TEST(r.query == "x=1");
    BOOST_TEST(r.content_length == 42);
    BOOST_TEST(r.has_body);
    BOOST_REQUIRE(find_header(r.headers, "content-type"));
    BOOST_TEST(*find_header(r.headers, "authorization") == "Bearer k");
}

BOOST_AUTO_TEST_CASE(a_request_keeps_its_path_and_mount_whether_or_not_one_is_stripped) {
    Config config;
    auto read = [&config](const char* target) { return request_from_params({{"REQUEST_URI", target}}, config); };
    Request plain = read("/v1/chat/completions?x=1");
    BOOST_TEST(plain.path == "/v1/chat/completions");
    BOOST_TEST(plain.mount == "");
    Request mounted = read("/proxy/v1/models");
    BOOST_TEST(mounted.path == "/v1/models");
    BOOST_TEST(mounted.mount == "/proxy");
    config.path_prefix = "/v1";  // configured: stripped even from a path that starts at /v1
    Request configured = read("/v1/v1/models");
    BOOST_TEST(configured.path == "/v1/models");
    BOOST_TEST(configured.mount == "/v1");
}

BOOST_AUTO_TEST_CASE(chunked_body_has_unknown_length) {
    Config config;
    Request r = request_from_params({{"REQUEST_METHOD", "POST"},
                                     {"REQUEST_URI", "/v1/embeddings"},
                                     {"HTTP_TRANSFER_ENCODING", "chunked"}},
                                    config);
    BOOST_TEST(r.has_body);
    BOOST_TEST(r.content_length == -1);
}

BOOST_AUTO_TEST_CASE(path_falls_back_to_script_name_and_path_info) {
    Config config;
    Request r = request_from_params({{"REQUEST_METHOD", "GET"},
                                     {"SCRIPT_NAME", "/v1"},
                                     {"PATH_INFO", "/models"},
                                     {"QUERY_STRING", "limit=2"}},
                                    config);
    BOOST_TEST(r.path == "/v1/models");
    BOOST_TEST(r.query == "limit=2");
    BOOST_TEST(!r.has_body);
}

BOOST_AUTO_TEST_CASE(a_header_sent_twice_counts_once_as_its_first_copy) {
    Config config;
    CgiParams params = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"},
                        {"HTTP_AUTHORIZATION", "Bearer first"}, {"HTTP_X_A", "1"},
                        {"HTTP_AUTHORIZATION", "Bearer second"}};
    Request request = request_from_params(params, config);
    BOOST_TEST(request.headers.size() == 2u);
    BOOST_TEST(*find_header(request.headers, "Authorization") == "Bearer first");
}

BOOST_AUTO_TEST_CASE(a_param_sent_twice_counts_as_its_first_copy_even_when_empty) {
    Config config;
    CgiParams params = {{"REQUEST_METHOD", "POST"}, {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", ""},
                        {"REQUEST_URI", "/v1/chat/completions"}, {"SCRIPT_NAME", "/v1"}, {"PATH_INFO", "/models"},
                        {"CONTENT_LENGTH", "12"}, {"CONTENT_LENGTH", "x"}};
    Request request = request_from_params(params, config);
    BOOST_TEST(request.method == "POST");
    BOOST_TEST(request.path == "/v1/models");  // an empty REQUEST_URI: SCRIPT_NAME + PATH_INFO
    BOOST_TEST(request.content_length == 12);
    BOOST_TEST(request.malformed_param.empty());
}

BOOST_AUTO_TEST_CASE(thousands_of_headers_each_count_once_in_order) {
    Config config;
    std::vector<std::string> names;
    for (int i = 0; i < 3000; ++i) names.push_back("HTTP_X_H" + std::to_string(i % 1500));
    CgiParams params = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}};
    for (const std::string& name : names) params.emplace_back(name, name);
    Request request = request_from_params(params, config);
    BOOST_TEST(request.headers.size() == 1500u);
    BOOST_TEST(request.headers[0].name == "X_H0");  // the param's name without "HTTP_"
    BOOST_TEST(request.headers[1499].name == "X_H1499");
    BOOST_TEST(*find_header(request.headers, "x-h1499") == "HTTP_X_H1499");
}

BOOST_AUTO_TEST_CASE(only_nginx_is_known_to_drop_requests_whose_client_left) {
    Config config;
    CgiParams nginx = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}, {"SERVER_SOFTWARE", "nginx/1.22.1"}};
    BOOST_TEST(request_from_params(nginx, config).server_notices_clients_leaving);
    for (const char* software : {"lighttpd/1.4.69", "Apache/2.4.71 (Debian)", ""}) {
        CgiParams other = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}, {"SERVER_SOFTWARE", software}};
        BOOST_TEST(!request_from_params(other, config).server_notices_clients_leaving, software);
    }
}

BOOST_AUTO_TEST_CASE(a_line_break_or_nul_in_any_param_is_noticed) {
    Config config;
    Request clean = request_from_params({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/v1/models"}}, config);
    BOOST_TEST(clean.malformed_param.empty());
    Request header = request_from_params({{"REQUEST_METHOD", "GET"}, {"HTTP_X_A", "1\r\nApi-Key: stolen"}}, config);
    BOOST_TEST(header.malformed_param == "HTTP_X_A");
    Request name = request_from_params({{"HTTP_X\nB", "1"}}, config);
    BOOST_TEST(name.malformed_param == "HTTP_X\nB");
    BOOST_TEST(!request_from_params({{"", "a\r\nb"}}, config).malformed_param.empty());
    Request space = request_from_params({{"REQUEST_URI", "/v1/files/a b"}}, config);
    BOOST_TEST(space.malformed_param == "REQUEST_URI");
    Request control = request_from_params({{"REQUEST_URI", "/v1/files?a=\x01"}}, config);
    BOOST_TEST(control.malformed_param == "REQUEST_URI");
    Request cgi = request_from_params({{"SCRIPT_NAME", "/v1"}, {"PATH_INFO", "/files/a b%"}}, config);
    BOOST_TEST(cgi.malformed_param.empty());
    // A NUL would cut a header short in libcurl: refused, in a value or a name, whether the
    // value lies right after its name (FastCGI's pairs, scanned at once) or apart.
    const std::string pair = std::string("HTTP_X_Aok\0Api-Key: x", 21);
    Request together = request_from_params({{std::string_view(pair).substr(0, 8), std::string_view(pair).substr(8)}}, config);
    BOOST_TEST(together.malformed_param == "HTTP_X_A");
    const std::string value("ok\0b", 4), tab_value("a\tb");
    BOOST_TEST(request_from_params({{"HTTP_X_A", value}}, config).malformed_param == "HTTP_X_A");
    BOOST_TEST(!request_from_params({{std::string_view("HTTP_X\0", 7), "v"}}, config).malformed_param.empty());
    BOOST_TEST(request_from_params({{"HTTP_X_A", tab_value}}, config).malformed_param.empty());
    const std::string clean_pair = "HTTP_X_Avalue";
    Request clean_together = request_from_params({{std::string_view(clean_pair).substr(0, 8), std::string_view(clean_pair).substr(8)}}, config);
    BOOST_TEST(clean_together.malformed_param.empty());
    BOOST_TEST(cgi.path == "/v1/files/a%20b%25");
}

BOOST_AUTO_TEST_SUITE_END()

// What the proxy makes of hostile input: client keys, strict JSON, unsafe paths and
// methods, line breaks in params, and how client values are quoted back.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "access_log.h"
#include "json_model.h"
#include "client_keys.h"
#include "config.h"
#include "request.h"
#include "response.h"
#include "api_routes.h"
#include "text.h"
#include "translate.h"

#include "azure_env.h"


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
    BOOST_TEST(presented_key({{"Authorization", "Bearer  sk-one "}}) == "sk-one");
    BOOST_TEST(presented_key({{"Authorization", "bearer sk-one"}}) == "sk-one");
    BOOST_TEST(presented_key({{"Api-Key", "sk-two"}}) == "sk-two");
    BOOST_TEST(presented_key({{"Authorization", "Basic abc"}, {"Api-Key", "sk-two"}}) == "sk-two");
    BOOST_TEST(presented_key({{"Content-Type", "x"}}).empty());
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

BOOST_AUTO_TEST_CASE(client_keys_need_a_server_key) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "sk-client-key-1"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_TOKEN") != std::string::npos);
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "sk-client-key-1"}, {"AZURE_OPENAI_TOKEN", "azure"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.client_keys.size() == 1u);
    BOOST_TEST(open_relay_warning(r.config).empty());
    BOOST_TEST(describe_config(r.config).find("sk-client") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(keys_come_from_a_file) {
    std::string path = "/tmp/aoai-unit-keys-" + std::to_string(::getpid());
    std::ofstream(path) << "alice:sk-alice-123\n";
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "@" + path}, {"AZURE_OPENAI_TOKEN", "t"}}));
    std::remove(path.c_str());
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.client_keys.at(0).name == "alice");
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "@/nonexistent/keys"}, {"AZURE_OPENAI_TOKEN", "t"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("/nonexistent/keys") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_server_key_without_client_keys_is_an_open_relay) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_TOKEN", "azure-key"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(open_relay_warning(r.config).find("open relay") != std::string::npos);
    BOOST_TEST(open_relay_warning(parse_config(azure()).config).empty());
}

BOOST_AUTO_TEST_CASE(cors_origins_are_origins) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "https://a.example, http://b.example:8080"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.cors_origins.size() == 2u);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "*"}})).config.cors_origins.empty());
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "https://a.example/path"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "a.example"}})).ok);

    std::string listed = "https://a.example";
    Headers allowed = cors_headers_for(r.config.cors_origins, &listed);
    BOOST_TEST(*find_header(allowed, "Access-Control-Allow-Origin") == "https://a.example");
    std::string other = "https://evil.example";
    BOOST_TEST(!find_header(cors_headers_for(r.config.cors_origins, &other), "Access-Control-Allow-Origin"));
    BOOST_TEST(*find_header(cors_headers_for(r.config.cors_origins, nullptr), "Vary") == "Origin");
}

BOOST_AUTO_TEST_CASE(the_allow_list_holds_models_and_where_they_go) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_ALLOWED_MODELS", "gpt-4o, gpt-4.1"},
                                         {"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(model_allowed(r.config, "gpt-4o", "prod-4o"));
    BOOST_TEST(model_allowed(r.config, "gpt-4.1", "gpt-41"));
    BOOST_TEST(model_allowed(r.config, "", "prod-4o"));   // /v1/deployments/prod-4o/...
    BOOST_TEST(!model_allowed(r.config, "", "gpt-4o"));   // not where gpt-4o goes
    BOOST_TEST(!model_allowed(r.config, "o3", "o3"));
    BOOST_TEST(model_allowed(parse_config(azure()).config, "o3", "o3"));
    BOOST_TEST(models_list_json(r.config).find("gpt-5") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_timeouts_are_settings) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_READ_TIMEOUT", "5"},
                                         {"AZURE_OPENAI_PROXY_WRITE_TIMEOUT", "6"},
                                         {"AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT", "7"},
                                         {"AZURE_OPENAI_PROXY_READ_IDLE_TIMEOUT", "2"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.read_timeout_s == 5);
    BOOST_TEST(r.config.write_timeout_s == 6);
    BOOST_TEST(r.config.first_byte_timeout_s == 7);
    BOOST_TEST(r.config.read_idle_timeout_s == 2);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_WRITE_TIMEOUT", "0"}})).ok);
}

BOOST_AUTO_TEST_CASE(an_upstream_proxy_is_shown_without_its_password) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_UPSTREAM_PROXY", "http://user:secret@proxy:3128"}}));
    BOOST_REQUIRE(r.ok);
    std::string shown = describe_config(r.config);
    BOOST_TEST(shown.find("secret") == std::string::npos);
    BOOST_TEST(shown.find("proxy:3128") != std::string::npos);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_CA_BUNDLE", "/nonexistent.pem"}})).ok);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(strict_json)

BOOST_AUTO_TEST_CASE(plain_json_is_valid) {
    JsonCheck c = check_json(R"( {"model":"gpt-4o","n":-1.5e+3,"a":[true,false,null,{}],"s":"\u00e9\n"} )");
    BOOST_TEST(c.valid);
    BOOST_TEST(c.model_keys == 1);
    BOOST_TEST(!c.model_ambiguous);
    BOOST_TEST(check_json("\"caf\xc3\xa9\"").valid);
    BOOST_TEST(check_json("[\"\xf0\x9f\x98\x80\"]").valid);
}

BOOST_AUTO_TEST_CASE(what_cjson_forgives_is_invalid) {
    BOOST_TEST(!check_json("{\"model\"\x01:\"a\"}").valid);     // a control byte as space
    BOOST_TEST(!check_json("{\"model\":\"a\x01\"}").valid);      // raw control in a string
    BOOST_TEST(!check_json("{\"model\":\"\xc3\x28\"}").valid);   // broken UTF-8
    BOOST_TEST(!check_json("{\"model\":\"\xe0\x80\xaf\"}").valid);  // overlong
    BOOST_TEST(!check_json("{\"model\":\"\xed\xa0\x80\"}").valid);  // a surrogate
    BOOST_TEST(!check_json("{\"a\":01}").valid);
    BOOST_TEST(!check_json("{\"a\":1,}").valid);
    BOOST_TEST(!check_json("{\"a\":1} x").valid);
    BOOST_TEST(!check_json("{\"a\":\"\\x\"}").valid);
    BOOST_TEST(!check_json("{\"a\":tru}").valid);
    BOOST_TEST(!check_json(std::string(600, '[') + std::string(600, ']')).valid);
    BOOST_TEST(check_json(std::string(500, '[') + std::string(500, ']')).valid);
    BOOST_TEST(!check_json("").valid);
    BOOST_TEST(!check_json(R"({"a":"\ud800"})").valid);        // a lone high surrogate (cJSON refuses it too)
    BOOST_TEST(!check_json(R"({"a":"\udc00"})").valid);        // a lone low one
    BOOST_TEST(check_json(R"({"a":"\ud83d\ude00"})").valid);  // a pair
}

BOOST_AUTO_TEST_CASE(the_model_and_stream_are_read_as_cjson_reads_them) {
    ModelField field = model_from_json(R"({"stream":true,"model":"caf\u00e9 \ud83d\ude00","stream":false})");
    BOOST_TEST((field.status == ModelField::Found));
    BOOST_TEST(field.model == "caf\xc3\xa9 \xf0\x9f\x98\x80");
    BOOST_TEST(field.stream);  // the first "stream"
    BOOST_TEST(!model_from_json(R"({"model":"a","stream":"true"})").stream);
    BOOST_TEST(model_from_json(R"({"model":"a","str\u0065am":true})").stream);
    BOOST_TEST((model_from_json("{\"model\":\"" + std::string(2000, 'm') + "\"}").status == ModelField::TooLong));
    BOOST_TEST((model_from_json(R"({"model":null})").status == ModelField::Missing));
    BOOST_TEST((model_from_json(R"({"model":false})").status == ModelField::NotAString));
    BOOST_TEST((model_from_json(R"([1])").status == ModelField::NotAnObject));
}

BOOST_AUTO_TEST_CASE(a_model_named_twice_or_in_disguise_is_ambiguous) {
    BOOST_TEST(check_json(R"({"model":"a","model":"../../x"})").model_keys == 2);
    BOOST_TEST(check_json(R"({"mod\u0065l":"a"})").model_ambiguous);
    BOOST_TEST(check_json(R"({"model":"gpt-4\u0000x"})").model_ambiguous);
    // A raw NUL is no JSON at all (raw control bytes are refused in every string).
    BOOST_TEST((model_from_json(std::string("{\"model\":\"gpt-4\0x\"}", 19)).status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json(R"({"model":"gpt-4\u0000x"})").status == ModelField::Ambiguous));
    BOOST_TEST(check_json(R"({"x":{"model":"a"},"model":"b"})").model_keys == 1);
    BOOST_TEST((model_from_json(R"({"model":"a","model":"b"})").status == ModelField::Ambiguous));
    BOOST_TEST((model_from_json("{\"model\"\x01:\"a\"}").status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json(R"({"model":"a"})").status == ModelField::Found));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hostile_requests)

BOOST_AUTO_TEST_CASE(segments_that_decode_to_separators_are_unsafe) {
    for (const char* path : {"/v1/files/a%2Fb", "/v1/files/a%5cb", "/v1/files/a\\b", "/v1/files/%2e%2E",
                             "/v1/files/a%00", "/v1/files/a%0d%0aX:1", "/v1/./models", "/v1/files/.."})
        BOOST_TEST(has_unsafe_segment(path), path);
    for (const char* path : {"/v1/files/file-abc", "/v1/models/gpt-4.1", "/v1/files/a%20b", "/v1/...x"})
        BOOST_TEST(!has_unsafe_segment(path), path);
    Config config;
    BOOST_TEST((route_request(config, "GET", "/v1/files/a%2Fb").kind == RouteKind::InvalidPath));
}

BOOST_AUTO_TEST_CASE(only_the_apis_methods_route) {
    Config config;
    for (const char* method : {"TRACE", "CONNECT", "PUT", "PATCH", "PROPFIND", "get", "POST\r\nX: 1", ""})
        BOOST_TEST((route_request(config, method, "/v1/files").kind == RouteKind::MethodNotAllowed), method);
    config.mode = ProxyMode::OpenAI;
    BOOST_TEST((route_request(config, "TRACE", "/v1/files").kind == RouteKind::MethodNotAllowed));
    BOOST_TEST((route_request(config, "DELETE", "/v1/files/f").kind == RouteKind::Upstream));
}

BOOST_AUTO_TEST_CASE(a_line_break_in_any_param_is_noticed) {
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
    BOOST_TEST(cgi.path == "/v1/files/a%20b%25");
}

BOOST_AUTO_TEST_CASE(client_values_are_quoted_short_and_ascii) {
    BOOST_TEST(quote_value("gpt-4o") == "gpt-4o");
    BOOST_TEST(quote_value(std::string(10000, 'a')).size() == 67u);
    BOOST_TEST(quote_value("a\xff\"\\\n") == "a\\xff\"\\x5c\\x0a");
}

BOOST_AUTO_TEST_CASE(the_log_names_the_key_and_quotes_the_error) {
    AccessLogEntry entry;
    entry.method = "POST";
    entry.path = "/v1/chat/completions";
    entry.status = 502;
    entry.outcome = "upstream-tls";
    entry.key = "alice";
    entry.error = "SSL certificate problem: \"self-signed\"";
    std::string line = format_access_log(entry, 0);
    BOOST_TEST(line.find(" key=alice error=\"SSL certificate problem: \\x22self-signed\\x22\"\n") != std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(json_log_lines_are_valid_json_whatever_the_client_sent) {
    AccessLogEntry entry;
    entry.method = "POST";
    entry.path = "/v1/files/\xff\"}";
    entry.model = "gpt\n4o";
    entry.status = 200;
    entry.upstream_status = 200;
    entry.outcome = "ok";
    entry.key = "alice";
    std::string line = format_access_log(entry, 0, LogFormat::Json);
    BOOST_TEST(line.back() == '\n');
    BOOST_TEST(check_json(line.substr(0, line.size() - 1)).valid, line);
    BOOST_TEST(line.find("\"time\":\"1970-01-01T00:00:00Z\"") != std::string::npos, line);
    BOOST_TEST(line.find("\"path\":\"/v1/files/\\\\xff\\\"}\"") != std::string::npos, line);
    BOOST_TEST(line.find("\"key\":\"alice\",\"target\":null,\"tries\":null,\"prompt_tokens\":null,"
                         "\"completion_tokens\":null,\"error\":null") != std::string::npos, line);
    entry.target = "east/gpt-4o";
    entry.tries = 2;
    entry.prompt_tokens = 9;
    entry.completion_tokens = 4;
    line = format_access_log(entry, 0, LogFormat::Json);
    BOOST_TEST(line.find("\"target\":\"east/gpt-4o\",\"tries\":2,\"prompt_tokens\":9,\"completion_tokens\":4") != std::string::npos, line);
    line = format_access_log(entry, 0, LogFormat::Text);
    BOOST_TEST(line.find(" key=alice target=east/gpt-4o tries=2 tokens=9+4\n") != std::string::npos, line);
    BOOST_TEST((parse_config(azure({{"AZURE_OPENAI_PROXY_LOG_FORMAT", "json"}})).config.log_format == LogFormat::Json));
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_LOG_FORMAT", "xml"}})).ok);
}

BOOST_AUTO_TEST_SUITE_END()

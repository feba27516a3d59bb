// realtime_socket.cpp: a WebSocket session's key, subprotocol, deployment, upstream URL,
// upstream credential, close codes and log line.
#include <boost/test/unit_test.hpp>

#include "realtime_socket.h"

namespace {

EndpointSettings azure(const std::string& endpoint = "https://res.openai.azure.com") {
    EndpointSettings settings;
    settings.endpoint = endpoint;
    return settings;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(realtime_socket)

BOOST_AUTO_TEST_CASE(the_key_comes_from_a_header_else_from_the_subprotocol) {
    BOOST_TEST(realtime_presented_key({{"Authorization", "Bearer sk-one"}}) == "sk-one");
    BOOST_TEST(realtime_presented_key({{"Api-Key", "sk-two"}}) == "sk-two");
    Headers browser{{"Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.sk-three"}};
    BOOST_TEST(realtime_presented_key(browser) == "sk-three");
    // a header wins over the subprotocol; a bare prefix is no key
    browser.push_back({"api-key", "sk-four"});
    BOOST_TEST(realtime_presented_key(browser) == "sk-four");
    BOOST_TEST(realtime_presented_key({{"Sec-WebSocket-Protocol", "openai-insecure-api-key."}}).empty());
    BOOST_TEST(realtime_presented_key({}).empty());
}

BOOST_AUTO_TEST_CASE(the_answer_names_realtime_never_the_key) {
    BOOST_TEST(realtime_answer_protocol({{"Sec-WebSocket-Protocol", "openai-insecure-api-key.sk-x,realtime"}}) ==
               "realtime");
    BOOST_TEST(realtime_answer_protocol({{"Sec-WebSocket-Protocol", "openai-insecure-api-key.sk-x"}}).empty());
    BOOST_TEST(realtime_answer_protocol({}).empty());
}

BOOST_AUTO_TEST_CASE(the_model_maps_to_its_deployment_and_must_fit_a_url) {
    EndpointSettings settings = azure();
    settings.model_mapper["gpt-realtime"] = "rt-prod";
    std::string deployment;
    ProxyError error;
    BOOST_TEST(realtime_deployment(settings, "gpt-realtime", deployment, error));
    BOOST_TEST(deployment == "rt-prod");
    BOOST_TEST(realtime_deployment(settings, "gpt-4o-mini-realtime-preview", deployment, error));
    BOOST_TEST(deployment == "gpt-4o-mini-realtime-preview");
    BOOST_TEST(!realtime_deployment(settings, "", deployment, error));
    BOOST_TEST(error.status == 400);
    BOOST_TEST(!realtime_deployment(settings, "a&api-version=x", deployment, error));
    BOOST_TEST(error.code == "invalid_model");
    BOOST_TEST(error.message.find("a&api-version=x") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_upstream_is_the_ga_route_or_the_preview_shape) {
    RealtimeUpstream upstream;
    std::string error;
    BOOST_TEST(realtime_upstream(azure(), "rt", "", upstream, error));
    BOOST_TEST(upstream.tls);
    BOOST_TEST(upstream.host == "res.openai.azure.com");
    BOOST_TEST(upstream.port == "443");
    BOOST_TEST(upstream.target == "/openai/v1/realtime?model=rt");
    BOOST_TEST(realtime_upstream(azure("http://127.0.0.1:9001/base"), "rt", "2024-10-01-preview", upstream, error));
    BOOST_TEST(!upstream.tls);
    BOOST_TEST(upstream.host == "127.0.0.1");
    BOOST_TEST(upstream.port == "9001");
    BOOST_TEST(upstream.target == "/base/openai/realtime?api-version=2024-10-01-preview&deployment=rt");
    BOOST_TEST(realtime_upstream(azure("http://[::1]:9002"), "rt", "", upstream, error));
    BOOST_TEST(upstream.host == "::1");
    BOOST_TEST(upstream.port == "9002");
    EndpointSettings openai = azure("https://api.openai.com");
    openai.mode = ProxyMode::OpenAI;
    BOOST_TEST(realtime_upstream(openai, "gpt-realtime", "", upstream, error));
    BOOST_TEST(upstream.target == "/v1/realtime?model=gpt-realtime");
    BOOST_TEST(!realtime_upstream(azure("ftp://x"), "rt", "", upstream, error));
}

BOOST_AUTO_TEST_CASE(the_server_key_goes_upstream_else_the_clients) {
    EndpointSettings settings = azure();
    settings.token = "server-key";
    Headers headers = realtime_upstream_headers(settings, "client-key");
    BOOST_TEST(headers.size() == 1u);
    BOOST_TEST(headers[0].name == "api-key");
    BOOST_TEST(headers[0].value == "server-key");
    settings.mode = ProxyMode::OpenAI;
    BOOST_TEST(realtime_upstream_headers(settings, "client-key")[0].value == "Bearer server-key");
    settings.token.clear();
    BOOST_TEST(realtime_upstream_headers(settings, "client-key")[0].value == "Bearer client-key");
    BOOST_TEST(realtime_upstream_headers(settings, "").empty());
}

BOOST_AUTO_TEST_CASE(close_codes_cross_unless_a_peer_may_not_send_them) {
    BOOST_TEST(relayed_close_code(1000, true) == 1000);
    BOOST_TEST(relayed_close_code(4001, false) == 4001);
    BOOST_TEST(relayed_close_code(1009, false) == 1009);
    BOOST_TEST(relayed_close_code(0, true) == 1011);     // Azure vanished
    BOOST_TEST(relayed_close_code(0, false) == 1001);    // the client vanished
    BOOST_TEST(relayed_close_code(1006, true) == 1011);
    BOOST_TEST(relayed_close_code(1005, false) == 1001);
    BOOST_TEST(relayed_close_code(1015, true) == 1011);
    BOOST_TEST(relayed_close_code(2000, true) == 1011);
}

BOOST_AUTO_TEST_CASE(the_log_line_names_the_key_and_escapes_client_values) {
    RealtimeSessionLog log;
    log.key_name = "alice";
    log.model = "gpt realtime\n";
    log.duration_ms = 1500;
    log.client_bytes = 4800;
    log.client_close = 1000;
    log.outcome = "closed";
    std::string line = realtime_session_line(log);
    BOOST_TEST(line.find("key=alice") != std::string::npos);
    BOOST_TEST(line.find('\n') == std::string::npos);
    BOOST_TEST(line.find("duration_ms=1500") != std::string::npos);
    BOOST_TEST(line.find("client_bytes=4800") != std::string::npos);
    BOOST_TEST(line.find("client_close=1000") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

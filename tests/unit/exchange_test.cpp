// The exchange's phases without a web server: a fake connection carries the request and
// keeps the answer, a fake host counts how the exchange ends, the upstream is libcurl on a
// loopback port where nothing listens. What a request held in the shared state (its place
// in flight, its key's place) is back once it has finished, however it ended.
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "azure_env.h"
#include "exchange.h"
#include "fakes.h"
#include "shared_state.h"

namespace {

// A loopback port with nothing behind it: a connection there is refused.
int closed_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    BOOST_REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    close(fd);
    return ntohs(address.sin_port);
}

// One proxy's loop: its configuration, shared state, upstream and heartbeats.
struct ProxyLoop {
    explicit ProxyLoop(Environment extra = {}) {
        char dir[] = "/tmp/aop-exchange-XXXXXX";
        BOOST_REQUIRE(mkdtemp(dir));
        state_dir = dir;
        extra["AZURE_OPENAI_ENDPOINT"] = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
        extra["AZURE_OPENAI_PROXY_STATE_FILE"] = state_dir + "/state";
        ConfigResult parsed = parse_config(extra);
        BOOST_REQUIRE_MESSAGE(parsed.ok, parsed.error);
        config = std::make_unique<Config>(std::move(parsed.config));
        std::string warning;
        state = SharedState::open(config->state_file, warning);
        BOOST_REQUIRE(state);
        upstream = std::make_unique<Upstream>(loop, *config, nullptr);
        services = std::make_unique<LoopServices>(LoopServices{loop, *upstream, heartbeats, *state});
    }
    ~ProxyLoop() {
        services.reset();
        upstream.reset();
        state.reset();
        unlink((state_dir + "/state").c_str());
        rmdir(state_dir.c_str());
    }
    // The gauge's value summed over the host's processes (0 when no series).
    double gauge(const std::string& series) {
        for (const SeriesValue& value : state->series())
            if (value.series == series) return value.value;
        return 0;
    }
    // Runs the loop until the host heard the end (at most ~5 s).
    void run_until(const FakeHost& host) {
        for (int i = 0; i < 500 && host.finishes == 0; ++i) loop.run_once(10);
    }

    std::string state_dir;
    std::unique_ptr<Config> config;
    EventLoop loop;
    DeadlineQueue heartbeats{15000};
    std::unique_ptr<SharedState> state;
    std::unique_ptr<Upstream> upstream;
    std::unique_ptr<LoopServices> services;
};

using Params = std::vector<std::pair<std::string, std::string>>;

Params get(const std::string& uri) { return {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", uri}, {"SCRIPT_NAME", ""}}; }

// A POST as a web server passes it: its length announced.
Params post(const std::string& uri, const std::string& type, const std::string& body) {
    return {{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", uri}, {"SCRIPT_NAME", ""},
            {"CONTENT_TYPE", type}, {"CONTENT_LENGTH", std::to_string(body.size())}};
}

Params post_json(const std::string& uri, const std::string& body) { return post(uri, "application/json", body); }

}  // namespace

BOOST_AUTO_TEST_SUITE(exchange)

BOOST_AUTO_TEST_CASE(a_local_answer_finishes_once_and_gives_its_place_back) {
    ProxyLoop proxy;
    FakeConnection connection(get("/healthz"));
    FakeHost host;
    {
        Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
        exchange.receive();
        BOOST_TEST(static_cast<int>(exchange.phase()) == static_cast<int>(Phase::Receiving));
        exchange.serve(*proxy.services);
        BOOST_TEST(exchange.finished());
        BOOST_TEST(!exchange.cut());
        exchange.client_gone();  // after the end: nothing more happens
        BOOST_TEST(exchange.log_entry().status == 200);
    }
    BOOST_TEST(host.finishes == 1);
    BOOST_TEST(connection.answer.find("Status: 200") != std::string::npos);
    BOOST_TEST(connection.answer.find("{\"status\":\"ok\"}") != std::string::npos);
    BOOST_TEST(proxy.gauge("aop_requests_in_flight") == 0);
}

BOOST_AUTO_TEST_CASE(a_client_without_its_key_hears_401_before_any_upstream_try) {
    ProxyLoop proxy(Environment{{"AZURE_OPENAI_PROXY_API_KEYS", "sk-test-one-1234"}, {"AZURE_OPENAI_TOKEN", "azure-key"}});
    FakeConnection connection(get("/v1/models"));
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(exchange.finished());
    BOOST_TEST(connection.answer.find("Status: 401") != std::string::npos);
    BOOST_TEST(connection.answer.find("invalid_api_key") != std::string::npos);
    BOOST_TEST(exchange.log_entry().outcome == "invalid_api_key");
}

BOOST_AUTO_TEST_CASE(a_body_over_the_limit_is_refused_unread) {
    ProxyLoop proxy(Environment{{"AZURE_OPENAI_PROXY_MAX_BODY_BYTES", "1024"}});
    std::string body(4096, ' ');
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(connection.answer.find("Status: 413") != std::string::npos);
    BOOST_TEST(connection.answer.find("request_too_large") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_unreachable_upstream_is_a_502_and_the_request_is_no_longer_in_flight) {
    ProxyLoop proxy;
    std::string body = R"({"model":"gpt-4o","messages":[]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(static_cast<int>(exchange.phase()) == static_cast<int>(Phase::Relaying));
    BOOST_TEST(proxy.gauge("aop_requests_in_flight") == 1);
    proxy.run_until(host);
    BOOST_TEST(host.finishes == 1);
    BOOST_TEST(exchange.finished());
    BOOST_TEST(connection.answer.find("Status: 502") != std::string::npos);
    BOOST_TEST(connection.answer.find("upstream_unreachable") != std::string::npos);
    BOOST_TEST(exchange.log_entry().outcome == "upstream-connect");
    BOOST_TEST(proxy.gauge("aop_requests_in_flight") == 0);
}

BOOST_AUTO_TEST_CASE(a_request_stopped_while_its_try_runs_gives_everything_back) {
    ProxyLoop proxy;
    std::string body = R"({"model":"gpt-4o","stream":true,"messages":[]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    {
        Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
        exchange.receive();
        exchange.serve(*proxy.services);
        exchange.stop();  // before the upstream answered
        BOOST_TEST(exchange.finished());
        BOOST_TEST(exchange.log_entry().outcome == "stopping");
    }
    BOOST_TEST(host.finishes == 1);
    BOOST_TEST(connection.answer.find("Status: 503") != std::string::npos);
    BOOST_TEST(connection.answer.find("proxy_stopping") != std::string::npos);
    BOOST_TEST(proxy.gauge("aop_requests_in_flight") == 0);
}

// Reasoning parameters (exchange_refusal.cpp). The try runs against a closed port, so the
// tests play Azure's answer through the listener's calls before the loop runs.
namespace {

const char* const kRefusal =
    R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",)"
    R"("type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})";

UpstreamResult completed(long status) {
    UpstreamResult result;
    result.outcome = UpstreamOutcome::Completed;
    result.status = status;
    result.answered = true;
    return result;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_reasoning_deployments_body_is_fixed_before_it_goes) {
    ProxyLoop proxy;
    std::string body = R"({"model":"o3-mini","max_tokens":9,"temperature":0.5,"messages":[]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(exchange.log_entry().rewrites == "max_tokens>max_completion_tokens,-temperature");
    BOOST_TEST(proxy.gauge("aop_parameter_rewrites_total{model=\"o3-mini\"}") == 1);
    proxy.run_until(host);
}

BOOST_AUTO_TEST_CASE(a_refusal_naming_a_fixable_parameter_is_held_fixed_sent_again_and_remembered) {
    ProxyLoop proxy;
    std::string body = R"({"model":"mystery","max_tokens":9,"messages":[]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(exchange.log_entry().rewrites.empty());
    BOOST_TEST(exchange.on_head(400, {{"Content-Type", "application/json"}}));
    BOOST_TEST((exchange.on_data(kRefusal, std::strlen(kRefusal)) == Taken::All));
    exchange.on_done(completed(400));
    BOOST_TEST(connection.answer.empty(), "the client heard nothing of the refusal");
    BOOST_TEST(!exchange.finished());
    BOOST_TEST(exchange.log_entry().rewrites == "max_tokens>max_completion_tokens");
    BOOST_TEST(proxy.state->refused_params("default/mystery") == param_bit("max_tokens"));
    // The same refusal again (the fix did not take): relayed as it came, no third try.
    BOOST_TEST(exchange.on_head(400, {{"Content-Type", "application/json"}}));
    BOOST_TEST((exchange.on_data(kRefusal, std::strlen(kRefusal)) == Taken::All));
    exchange.on_done(completed(400));
    BOOST_TEST(exchange.finished());
    BOOST_TEST(connection.answer.find("Status: 400") != std::string::npos);
    BOOST_TEST(connection.answer.find(kRefusal) != std::string::npos, "byte for byte");
}

BOOST_AUTO_TEST_CASE(a_refusal_the_proxy_cannot_fix_and_the_off_switch_relay_the_400) {
    const std::string refusal = R"({"error":{"code":"content_filter","param":"prompt","message":"filtered"}})";
    for (const char* fix : {"on", "off"}) {
        ProxyLoop proxy(Environment{{"AZURE_OPENAI_PROXY_FIX_PARAMETERS", fix}});
        std::string body = R"({"model":"o3-mini","max_tokens":9,"messages":[]})";
        FakeConnection connection(post_json("/v1/chat/completions", body), body);
        FakeHost host;
        Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
        exchange.receive();
        exchange.serve(*proxy.services);
        BOOST_TEST(exchange.log_entry().rewrites.empty() == (std::string(fix) == "off"));
        exchange.on_head(400, {{"Content-Type", "application/json"}});
        exchange.on_data(refusal.data(), refusal.size());
        exchange.on_done(completed(400));
        BOOST_TEST(exchange.finished(), fix);
        BOOST_TEST(connection.answer.find("Status: 400") != std::string::npos, fix);
        BOOST_TEST(connection.answer.find(refusal) != std::string::npos, fix);
    }
}

// Realtime's WebRTC calls: a body that cannot be a call is refused before any try; the
// session's model is mapped to its deployment before the try.
BOOST_AUTO_TEST_CASE(realtime_calls_are_checked_and_their_session_model_mapped_before_the_try) {
    ProxyLoop proxy(Environment{{"AZURE_OPENAI_MODEL_MAPPER", "voice=gpt-realtime"}});
    std::string json = R"({"sdp":"v=0"})";
    FakeConnection not_sdp(post("/v1/realtime/calls", "application/sdp", json), json);
    FakeHost host;
    Exchange refused(*proxy.config, not_sdp, host, EventLoop::clock_ms());
    refused.receive();
    refused.serve(*proxy.services);
    BOOST_TEST(refused.finished());
    BOOST_TEST(not_sdp.answer.find("Status: 400") != std::string::npos);
    BOOST_TEST(not_sdp.answer.find("invalid_realtime_call") != std::string::npos);

    std::string secrets = R"({"session":{"type":"realtime","model":"voice"}})";
    FakeConnection minting(post_json("/v1/realtime/client_secrets", secrets), secrets);
    FakeHost minting_host;
    Exchange tried(*proxy.config, minting, minting_host, EventLoop::clock_ms());
    tried.receive();
    tried.serve(*proxy.services);
    BOOST_TEST(static_cast<int>(tried.phase()) == static_cast<int>(Phase::Relaying));
    BOOST_TEST(tried.log_entry().deployment == "gpt-realtime");
    proxy.run_until(minting_host);
    BOOST_TEST(minting.answer.find("Status: 502") != std::string::npos);  // nothing listens there
}

// The Chat->Responses bridge (exchange_bridge.cpp): played as the refusal tests are.
BOOST_AUTO_TEST_CASE(operation_not_supported_is_learned_and_the_stream_translated_once_though_the_client_pauses) {
    ProxyLoop proxy;
    std::string body = R"({"model":"mystery","stream":true,"messages":[{"role":"user","content":"Hi"}]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(exchange.log_entry().rewrites.empty(), "a chat try first");
    const std::string refusal =
        R"({"error":{"code":"OperationNotSupported","message":"The chatCompletion operation does not work with the specified model, mystery."}})";
    BOOST_TEST(exchange.on_head(400, {{"Content-Type", "application/json"}}));
    BOOST_TEST((exchange.on_data(refusal.data(), refusal.size()) == Taken::All));
    exchange.on_done(completed(400));
    BOOST_TEST(connection.answer.empty(), "the client heard nothing of the refusal");
    BOOST_TEST(!exchange.finished());
    BOOST_TEST(exchange.log_entry().rewrites == "bridge:responses");
    BOOST_TEST((proxy.state->refused_params("default/mystery") & kResponsesOnly) != 0u);
    // The Responses stream in two pieces; the client takes nothing of the first at first,
    // and libcurl gives that piece again once it can.
    std::ifstream file(std::string(__FILE__).substr(0, std::string(__FILE__).rfind('/') + 1) + "fixtures/responses-o3-pro.sse");
    std::string sse((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    BOOST_TEST_REQUIRE(!sse.empty());
    BOOST_TEST(exchange.on_head(200, {{"Content-Type", "text/event-stream"}}));
    size_t half = sse.find("he mock! You");  // after the first text delta: chunks to write
    BOOST_TEST_REQUIRE(half != std::string::npos);
    connection.room = 0;
    BOOST_TEST((exchange.on_data(sse.data(), half) == Taken::Later));
    connection.room = static_cast<size_t>(-1);
    BOOST_TEST((exchange.on_data(sse.data(), half) == Taken::All));
    BOOST_TEST((exchange.on_data(sse.data() + half, sse.size() - half) == Taken::All));
    exchange.on_done(completed(200));
    BOOST_TEST(exchange.finished());
    std::string answer = connection.body();
    auto count = [&](const std::string& part) {
        size_t n = 0;
        for (size_t at = answer.find(part); at != std::string::npos; at = answer.find(part, at + 1)) ++n;
        return n;
    };
    BOOST_TEST(count("\"content\":\"Hello from t\"") == 1u, answer);
    BOOST_TEST(count("data: [DONE]") == 1u);
    BOOST_TEST(count("chat.completion.chunk") > 3u);
    BOOST_TEST(exchange.log_entry().completion_tokens > 0, "the translator's usage");
}

BOOST_AUTO_TEST_CASE(a_chat_request_the_bridge_cannot_carry_is_a_400_naming_the_parameter_without_a_try) {
    ProxyLoop proxy;
    std::string body = R"({"model":"gpt-5-codex","n":2,"messages":[{"role":"user","content":"Hi"}]})";
    FakeConnection connection(post_json("/v1/chat/completions", body), body);
    FakeHost host;
    Exchange exchange(*proxy.config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(*proxy.services);
    BOOST_TEST(exchange.finished());
    BOOST_TEST(has(connection.answer, "Status: 400"));
    BOOST_TEST(has(connection.body(), "\"param\":\"n\""), connection.body());
    BOOST_TEST(exchange.log_entry().upstream_status == 0, "no try");
}

BOOST_AUTO_TEST_SUITE_END()


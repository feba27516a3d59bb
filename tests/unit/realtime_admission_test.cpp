// realtime_admission.cpp: what a client's upgrade request gets before anything goes upstream.
#include <boost/test/unit_test.hpp>

#include "azure_env.h"
#include "realtime_admission.h"

namespace {

Config config_of(Environment extra) {
    ConfigResult parsed = parse_config(azure(std::move(extra)));
    BOOST_REQUIRE_MESSAGE(parsed.ok, parsed.error);
    return parsed.config;
}

// An upgrade with the WebSocket handshake's own headers, and `headers`.
RealtimeRequest upgrade(const std::string& target, Headers headers) {
    headers.push_back({"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="});
    headers.push_back({"Sec-WebSocket-Version", "13"});
    return RealtimeRequest{"GET", target, std::move(headers), true};
}

const Environment kKeys{{"AZURE_OPENAI_TOKEN", "server-key-123"},
                        {"AZURE_OPENAI_PROXY_API_KEYS", "alice:alice-key-123"},
                        {"AZURE_OPENAI_MODEL_MAPPER", "gpt-realtime=rt-prod"}};

int refusal(const Config& config, const RealtimeRequest& request) {
    RealtimeAdmission admission;
    ProxyError error;
    return admit_realtime(config, request, 0, admission, error) ? 0 : error.status;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(realtime_admission)

BOOST_AUTO_TEST_CASE(a_key_in_the_subprotocol_opens_the_mapped_deployment_with_the_server_key) {
    Config config = config_of(kKeys);
    RealtimeAdmission admission;
    ProxyError error;
    RealtimeRequest request = upgrade("/openai-proxy/v1/realtime?model=gpt-realtime",
                                      {{"Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.alice-key-123"}});
    BOOST_REQUIRE(admit_realtime(config, request, 0, admission, error));
    BOOST_TEST(admission.key_name == "alice");
    BOOST_TEST(admission.deployment == "rt-prod");
    BOOST_TEST(admission.answer_protocol == "realtime");
    BOOST_TEST(!admission.targets);  // no routing file: the environment's endpoint
    RealtimeUpstream upstream;
    Headers headers;
    BOOST_REQUIRE(realtime_destination(config, admission.deployment, "", admission.presented_key, "", upstream, headers,
                                       error));
    BOOST_TEST(upstream.target == "/openai/v1/realtime?model=rt-prod");
    BOOST_REQUIRE(headers.size() == 1u);
    BOOST_TEST(headers[0].value == "server-key-123");  // never the client's
    // the preview route, when the setting names its api-version
    BOOST_REQUIRE(realtime_destination(config, admission.deployment, "2024-10-01-preview", admission.presented_key, "",
                                       upstream, headers, error));
    BOOST_TEST(upstream.target == "/openai/realtime?api-version=2024-10-01-preview&deployment=rt-prod");
}

BOOST_AUTO_TEST_CASE(an_endpoint_with_an_identity_sends_its_token_and_without_one_nothing) {
    Config config = config_of({{"AZURE_OPENAI_PROXY_CREDENTIAL", "client-secret"}, {"AZURE_TENANT_ID", "t"},
                               {"AZURE_CLIENT_ID", "c"}, {"AZURE_CLIENT_SECRET", "s"}});
    RealtimeAdmission admission;
    ProxyError error;
    BOOST_REQUIRE(admit_realtime(config, upgrade("/v1/realtime?model=rt", {}), 0, admission, error));  // keyless
    RealtimeUpstream upstream;
    Headers headers;
    BOOST_REQUIRE(realtime_destination(config, admission.deployment, "", "", "Authorization: Bearer eyJ.tok", upstream,
                                       headers, error));
    BOOST_REQUIRE(headers.size() == 1u);
    BOOST_TEST(headers[0].name == "Authorization");
    BOOST_TEST(headers[0].value == "Bearer eyJ.tok");
    BOOST_TEST(!realtime_destination(config, admission.deployment, "", "client-key", "", upstream, headers, error));
    BOOST_TEST(error.status == 401);  // no token: never the client's key instead
}

BOOST_AUTO_TEST_CASE(keys_come_before_the_model_and_the_route_before_the_keys) {
    Config config = config_of(kKeys);
    BOOST_TEST(refusal(config, upgrade("/v1/realtime?model=gpt-realtime", {})) == 401);
    BOOST_TEST(refusal(config, upgrade("/v1/realtime", {{"Api-Key", "wrong-key-123"}})) == 401);
    BOOST_TEST(refusal(config, upgrade("/v1/realtime", {{"Api-Key", "alice-key-123"}})) == 400);
    BOOST_TEST(refusal(config, upgrade("/v1/chat/completions", {})) == 404);
    RealtimeRequest plain = upgrade("/v1/realtime?model=gpt-realtime", {{"Api-Key", "alice-key-123"}});
    plain.upgrade = false;
    BOOST_TEST(refusal(config, plain) == 426);
}

BOOST_AUTO_TEST_CASE(an_upgrade_without_a_websocket_key_or_version_13_is_refused_before_azure) {
    Config config = config_of(kKeys);
    auto with = [](Headers headers) {
        return RealtimeRequest{"GET", "/v1/realtime?model=gpt-realtime", std::move(headers), true};
    };
    Header key{"Api-Key", "alice-key-123"}, nonce{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="};
    BOOST_TEST(refusal(config, with({key, nonce, {"Sec-WebSocket-Version", "13"}})) == 0);
    BOOST_TEST(refusal(config, with({key, nonce})) == 426);
    BOOST_TEST(refusal(config, with({key, nonce, {"Sec-WebSocket-Version", "8"}})) == 426);
    BOOST_TEST(refusal(config, with({key, {"Sec-WebSocket-Version", "13"}})) == 400);
    BOOST_TEST(refusal(config, with({key, {"Sec-WebSocket-Key", "short=="}, {"Sec-WebSocket-Version", "13"}})) == 400);
    BOOST_TEST(refusal(config, with({key, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j!!=="}, {"Sec-WebSocket-Version", "13"}})) == 400);
}

BOOST_AUTO_TEST_CASE(allowed_models_hold_for_sessions_too) {
    Environment env = kKeys;
    env["AZURE_OPENAI_PROXY_ALLOWED_MODELS"] = "gpt-realtime";
    Config config = config_of(env);
    Headers key{{"Api-Key", "alice-key-123"}};
    BOOST_TEST(refusal(config, upgrade("/v1/realtime?model=gpt-realtime", key)) == 0);
    BOOST_TEST(refusal(config, upgrade("/v1/realtime?model=gpt-4o-realtime-preview", key)) == 403);
}

BOOST_AUTO_TEST_CASE(without_a_server_key_the_clients_key_goes_on) {
    Config config = config_of({});
    RealtimeAdmission admission;
    ProxyError error;
    BOOST_REQUIRE(admit_realtime(config, upgrade("/v1/realtime?model=rt", {{"Authorization", "Bearer azure-key-1"}}), 0,
                                 admission, error));
    RealtimeUpstream upstream;
    Headers headers;
    BOOST_REQUIRE(realtime_destination(config, admission.deployment, "", admission.presented_key, "", upstream, headers,
                                       error));
    BOOST_REQUIRE(headers.size() == 1u);
    BOOST_TEST(headers[0].value == "azure-key-1");
    BOOST_TEST(admission.answer_protocol.empty());
    BOOST_TEST(refusal(config, upgrade("/v1/realtime?model=rt", {})) == 401);  // no key to send at all
}

BOOST_AUTO_TEST_SUITE_END()

// realtime.cpp: the WebRTC calls' credential, session model, body kind, query and Location.
#include <boost/test/unit_test.hpp>

#include "kept_headers.h"

#include "realtime.h"

namespace {

Config azure() {
    Config config;
    config.endpoint = "https://res.openai.azure.com";
    return config;
}

// A POST /v1/realtime/calls with these headers (only they matter here).
Request call(Headers headers) {
    Request request;
    request.headers = kept_headers(std::move(headers));
    return request;
}

Route calls_route() { return route_request(azure(), "POST", "/v1/realtime/calls"); }

}  // namespace

BOOST_AUTO_TEST_SUITE(realtime)

BOOST_AUTO_TEST_CASE(an_sdp_call_with_a_bearer_carries_the_ephemeral_key) {
    Request sdp = call({{"Content-Type", "application/sdp"}, {"Authorization", "Bearer ek_abc"}, {"Api-Key", "client-1"}});
    BOOST_TEST(carries_ephemeral_key(sdp, calls_route()));
    // the proxy's own key then comes from api-key, never from the Bearer
    BOOST_TEST(presented_client_key(sdp, calls_route()) == "client-1");
    Request no_api_key = call({{"Content-Type", "application/sdp"}, {"Authorization", "Bearer ek_abc"}});
    BOOST_TEST(presented_client_key(no_api_key, calls_route()).empty());

    Request form = call({{"Content-Type", "multipart/form-data; boundary=x"}, {"Authorization", "Bearer client-1"}});
    BOOST_TEST(!carries_ephemeral_key(form, calls_route()));
    BOOST_TEST(presented_client_key(form, calls_route()) == "client-1");
    Request no_bearer = call({{"Content-Type", "application/sdp"}, {"Api-Key", "client-1"}});
    BOOST_TEST(!carries_ephemeral_key(no_bearer, calls_route()));
    // client_secrets: the Bearer is the proxy's key as on every route
    Route secrets = route_request(azure(), "POST", "/v1/realtime/client_secrets");
    BOOST_TEST(!carries_ephemeral_key(sdp, secrets));
    BOOST_TEST(presented_client_key(sdp, secrets) == "ek_abc");
}

BOOST_AUTO_TEST_CASE(a_call_body_is_sdp_or_a_form) {
    BOOST_TEST((call_body(call({{"Content-Type", "Application/SDP; charset=utf-8"}})) == CallBody::Sdp));
    BOOST_TEST((call_body(call({{"Content-Type", "multipart/form-data; boundary=b"}})) == CallBody::Form));
    BOOST_TEST((call_body(call({{"Content-Type", "application/json"}})) == CallBody::Other));
    BOOST_TEST((call_body(call({})) == CallBody::Other));
    BOOST_TEST(looks_like_sdp("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"));
    BOOST_TEST(looks_like_sdp("v=0\no=-"));
    BOOST_TEST(!looks_like_sdp("{\"sdp\":\"v=0\"}"));
    BOOST_TEST(!looks_like_sdp("v=01\r\n"));
    BOOST_TEST(!looks_like_sdp(""));
}

BOOST_AUTO_TEST_CASE(the_session_model_is_found_and_replaced_byte_for_byte) {
    std::string body = "{\"expires_after\":{\"anchor\":\"created_at\",\"seconds\":600},"
                       "\"session\": {\"type\":\"realtime\", \"model\":\"gpt-realtime\",\"x\":1.50}}";
    SessionModel session = session_model(body, true);
    BOOST_TEST((session.field.status == ModelField::Found));
    BOOST_TEST(session.field.model == "gpt-realtime");
    BOOST_TEST(with_session_model(body, session, "rt-deploy") ==
               "{\"expires_after\":{\"anchor\":\"created_at\",\"seconds\":600},"
               "\"session\": {\"type\":\"realtime\", \"model\":\"rt-deploy\",\"x\":1.50}}");
    // the form field: the session object itself
    std::string object = "{\"type\":\"realtime\",\"model\":\"gpt-4o-mini-realtime-preview\"}";
    SessionModel field = session_model(object, false);
    BOOST_TEST(field.field.model == "gpt-4o-mini-realtime-preview");
    BOOST_TEST(with_session_model(object, field, "mini") == "{\"type\":\"realtime\",\"model\":\"mini\"}");
}

BOOST_AUTO_TEST_CASE(a_session_that_could_be_read_two_ways_is_refused) {
    auto status = [](const std::string& body) { return session_model(body, true).field.status; };
    BOOST_TEST((status("{\"session\":{\"model\":\"a\"},\"session\":{\"model\":\"b\"}}") == ModelField::Ambiguous));
    BOOST_TEST((status("{\"sess\\u0069on\":{\"model\":\"b\"}}") == ModelField::Ambiguous));
    BOOST_TEST((status("{\"session\":{\"model\":\"a\",\"model\":\"b\"}}") == ModelField::Ambiguous));
    BOOST_TEST((status("{\"session\":{\"type\":\"realtime\"}}") == ModelField::Missing));
    BOOST_TEST((status("{\"model\":\"gpt-realtime\"}") == ModelField::Missing));
    BOOST_TEST((status("{\"session\":\"gpt-realtime\"}") == ModelField::NotAnObject));
    BOOST_TEST((status("{\"session\":{\"model\":7}}") == ModelField::NotAString));
    BOOST_TEST((status("{\"session\":{\"model\":\"a\"}") == ModelField::InvalidJson));
    BOOST_TEST((status("[1]") == ModelField::NotAnObject));
}

BOOST_AUTO_TEST_CASE(the_query_model_is_read_and_replaced) {
    BOOST_TEST(query_value("webrtcfilter=on&model=gpt-realtime", "model") == "gpt-realtime");
    BOOST_TEST(query_value("model=gpt%2Drealtime", "model") == "gpt-realtime");
    BOOST_TEST(query_value("models=x", "model").empty());
    // every "model" gets the deployment: no second value reaches Azure unmapped
    BOOST_TEST(with_query_value("model=a&x=1&model=b", "model", "dep") == "model=dep&x=1&model=dep");
}

BOOST_AUTO_TEST_CASE(azure_call_location_becomes_the_proxy_path) {
    const std::string endpoint = "https://res.openai.azure.com";
    BOOST_TEST(proxy_call_location("/openai/v1/realtime/calls/rtc_1", endpoint, "") == "/v1/realtime/calls/rtc_1");
    BOOST_TEST(proxy_call_location(endpoint + "/openai/v1/realtime/calls/rtc_1", endpoint, "/ai") ==
               "/ai/v1/realtime/calls/rtc_1");
    // anything else as it came
    BOOST_TEST(proxy_call_location("https://elsewhere/openai/v1/realtime/calls/rtc_1", endpoint, "") ==
               "https://elsewhere/openai/v1/realtime/calls/rtc_1");
    BOOST_TEST(proxy_call_location("/openai/v1/realtime/calls/", endpoint, "") == "/openai/v1/realtime/calls/");
}

BOOST_AUTO_TEST_SUITE_END()

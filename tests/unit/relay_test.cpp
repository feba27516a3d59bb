// relay.cpp: the upstream's answer relayed unchanged but for hop-by-hop headers, event
// streams kept well formed, heartbeats only between events, a paused client never
// handed a partial write, and the usage chunk left out when the proxy asked for it.
#include <boost/test/unit_test.hpp>

#include <string>

#include "fakes.h"
#include "relay.h"
#include "response_writer.h"

namespace {

// A relay whose writer writes to its own fake connection.
struct RelayTo {
    explicit RelayTo(ProxyMode mode = ProxyMode::OpenAI) : writer(connection, mode), relay(writer, mode) {}
    Taken data(const std::string& text) { return relay.data(text.data(), text.size()); }
    FakeConnection connection;
    ResponseWriter writer;
    Relay relay;
};

const FieldViews kStreamHead = {{"Content-Type", "text/event-stream"}};

}  // namespace

BOOST_AUTO_TEST_SUITE(relay)

BOOST_AUTO_TEST_CASE(hop_by_hop_headers_stay_behind_and_the_length_goes_with_a_whole_answer) {
    RelayTo to;
    to.relay.head(200, {{"Content-Type", "application/json"}, {"Connection", "close"},
                        {"Transfer-Encoding", "chunked"}, {"Content-Length", "2"}, {"x-request-id", "r1"}});
    const std::string& head = to.connection.answer;
    BOOST_TEST(!has(head, "Connection:"));
    BOOST_TEST(!has(head, "Transfer-Encoding"));
    BOOST_TEST(has(head, "Content-Length: 2\r\n"));
    BOOST_TEST(has(head, "x-request-id: r1\r\n"));
    BOOST_TEST(has(head, "X-Accel-Buffering: no\r\n"));
    BOOST_TEST(!to.relay.event_stream());
}

BOOST_AUTO_TEST_CASE(an_event_stream_goes_without_a_length_and_replaced_headers_win) {
    RelayTo to;
    to.relay.head(200, {{"Content-Type", "text/event-stream; charset=utf-8"}, {"Content-Length", "99"},
                        {"x-ratelimit-remaining-requests", "5"}},
                  {{"x-ratelimit-remaining-requests", "1"}});
    BOOST_TEST(to.relay.event_stream());
    BOOST_TEST(!has(to.connection.answer, "Content-Length"));
    BOOST_TEST(has(to.connection.answer, "x-ratelimit-remaining-requests: 1\r\n"));
    BOOST_TEST(!has(to.connection.answer, "x-ratelimit-remaining-requests: 5"));
}

BOOST_AUTO_TEST_CASE(azure_modes_own_cors_headers_replace_the_upstreams) {
    RelayTo to(ProxyMode::Azure);
    to.relay.head(200, {{"Access-Control-Allow-Origin", "https://upstream.example"}});
    BOOST_TEST(!has(to.connection.answer, "upstream.example"));
    BOOST_TEST(has(to.connection.answer, "Access-Control-Allow-Origin: *\r\n"));
}

BOOST_AUTO_TEST_CASE(a_client_without_room_gets_nothing_until_it_has_room) {
    RelayTo to;
    to.relay.head(200, kStreamHead);
    size_t head = to.connection.answer.size();
    to.connection.room = 3;
    BOOST_TEST((to.data("data: 1\n\n") == Taken::Later));
    BOOST_TEST(to.connection.answer.size() == head);  // all or nothing
    to.connection.room = 100;
    BOOST_TEST((to.data("data: 1\n\n") == Taken::All));
    BOOST_TEST(to.connection.body() == "data: 1\n\n");
    to.connection.gone = true;
    BOOST_TEST((to.data("data: 2\n\n") == Taken::Refused));
}

BOOST_AUTO_TEST_CASE(a_heartbeat_falls_only_between_events) {
    RelayTo to;
    to.relay.head(200, kStreamHead);
    BOOST_TEST(to.relay.heartbeat());  // nothing sent yet: between events
    to.data("data: {\"a\":");
    BOOST_TEST(!to.relay.heartbeat());  // inside an event
    to.data("1}\n\n");
    BOOST_TEST(to.relay.heartbeat());
    BOOST_TEST(to.connection.body() == ": keep-alive\n\ndata: {\"a\":1}\n\n: keep-alive\n\n");
    RelayTo plain;
    plain.relay.head(200, {{"Content-Type", "application/json"}});
    BOOST_TEST(!plain.relay.heartbeat());  // only event streams get one
}

BOOST_AUTO_TEST_CASE(the_last_event_gets_the_blank_line_azure_omits) {
    RelayTo to;
    to.relay.head(200, kStreamHead);
    to.data("data: [DONE]\n");
    to.relay.finish_event_stream();
    BOOST_TEST(to.connection.body() == "data: [DONE]\n\n");
}

BOOST_AUTO_TEST_CASE(a_failure_mid_stream_ends_the_event_then_sends_an_error_event) {
    RelayTo to;
    to.relay.head(200, kStreamHead);
    to.data("data: {\"partial\":");
    ProxyError error;
    error.status = 502;
    error.message = "upstream reset";
    to.relay.fail_event_stream(error);
    std::string body = to.connection.body();
    BOOST_TEST(has(body, "data: {\"partial\":\n\nevent: error\ndata: {"), body);
    BOOST_TEST(has(body, "upstream reset"));
    BOOST_TEST(body.substr(body.size() - 2) == "\n\n");
    RelayTo plain;
    plain.relay.head(200, {{"Content-Type", "application/json"}});
    plain.relay.fail_event_stream(error);
    BOOST_TEST(plain.connection.body().empty());  // a JSON answer is left cut, not patched
}

BOOST_AUTO_TEST_CASE(the_usage_chunk_the_proxy_asked_for_is_left_out_whatever_the_cuts) {
    const std::string stream = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
                               "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n"
                               "data: [DONE]\n";
    for (size_t cut = 1; cut < stream.size(); ++cut) {
        RelayTo to;
        to.relay.head(200, kStreamHead);
        to.relay.leave_out_usage_chunk();
        to.data(stream.substr(0, cut));
        to.data(stream.substr(cut));
        to.relay.finish_event_stream();
        BOOST_TEST(to.connection.body() == "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
                                           "data: [DONE]\n\n", "cut at " << cut);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// realtime_log.cpp: a session's access line as the FastCGI program's (time first, text or
// JSON), and the outcome's metric label.
#include <boost/test/unit_test.hpp>

#include <cjson/cJSON.h>

#include "json_ptr.h"
#include "realtime_log.h"

BOOST_AUTO_TEST_SUITE(realtime_log)

RealtimeSessionLog a_session() {
    RealtimeSessionLog log;
    log.key_name = "alice";
    log.model = "gpt-realtime";
    log.deployment = "rt \"prod\"";
    log.duration_ms = 5230;
    log.client_bytes = 640;
    log.upstream_bytes = 4800;
    log.client_close = 1000;
    log.outcome = "client closed";
    return log;
}

BOOST_AUTO_TEST_CASE(the_text_line_begins_with_the_time_as_the_fastcgi_programs) {
    std::string line = realtime_access_line(a_session(), 1764936000, LogFormat::Text);
    BOOST_TEST(line.rfind("2025-12-05T12:00:00Z realtime session key=alice model=gpt-realtime ", 0) == 0u, line);
    BOOST_TEST(line.find(" duration_ms=5230 client_bytes=640 upstream_bytes=4800 ") != std::string::npos, line);
    BOOST_TEST(line.find("client_close=1000 upstream_close=none outcome=\"client closed\"") != std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(the_json_line_has_the_same_fields_and_is_valid_json) {
    RealtimeSessionLog log = a_session();
    log.model = "gpt\x01\xff";  // a client's bytes: plain ASCII in the line
    JsonPtr line(cJSON_Parse(realtime_access_line(log, 1764936000, LogFormat::Json).c_str()));
    BOOST_REQUIRE(line);
    auto text = [&](const char* name) {
        const cJSON* item = cJSON_GetObjectItemCaseSensitive(line.get(), name);
        return cJSON_IsString(item) ? std::string(item->valuestring) : std::string("(none)");
    };
    auto number = [&](const char* name) { return cJSON_GetObjectItemCaseSensitive(line.get(), name)->valuedouble; };
    BOOST_TEST(text("time") == "2025-12-05T12:00:00Z");
    BOOST_TEST(text("key") == "alice");
    BOOST_TEST(text("deployment") == "rt \"prod\"");
    BOOST_TEST(text("model").find('\x01') == std::string::npos);
    BOOST_TEST(text("outcome") == "client closed");
    BOOST_TEST(number("ms") == 5230);
    BOOST_TEST(number("upstream_bytes") == 4800);
    BOOST_TEST(number("client_close") == 1000);
    BOOST_TEST(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(line.get(), "upstream_close")));  // none received
    log.key_name = "-";  // no client keys
    JsonPtr keyless(cJSON_Parse(realtime_access_line(log, 0, LogFormat::Json).c_str()));
    BOOST_TEST(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(keyless.get(), "key")));
}

BOOST_AUTO_TEST_CASE(an_outcomes_label_leaves_the_librarys_detail_out) {
    BOOST_TEST(realtime_outcome_label("client vanished (End of file)") == "client vanished");
    BOOST_TEST(realtime_outcome_label("client sent what WebSocket forbids (The WebSocket message exceeded the locally configured limit)") ==
               "client sent what WebSocket forbids");
    BOOST_TEST(realtime_outcome_label("idle") == "idle");
    BOOST_TEST(realtime_outcome_label("") == "unknown");
}

BOOST_AUTO_TEST_SUITE_END()

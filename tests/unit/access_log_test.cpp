// access_log.cpp: one line per request, escaped, as text or JSON.
#include <boost/test/unit_test.hpp>

#include <string>

#include "access_log.h"
#include "config.h"
#include "json_model.h"
#include "azure_env.h"

BOOST_AUTO_TEST_SUITE(access_log)

BOOST_AUTO_TEST_CASE(access_log_line_is_one_escaped_line) {
    AccessLogEntry entry;
    entry.method = "POST";
    entry.path = "/v1/chat/completions";
    entry.model = "evil\nmodel x";
    entry.deployment = "d";
    entry.status = 200;
    entry.upstream_status = 200;
    entry.bytes = 12;
    entry.duration_ms = 5;
    entry.outcome = "ok";
    std::string line = format_access_log(entry, 0);
    BOOST_TEST(line == "1970-01-01T00:00:00Z POST /v1/chat/completions model=evil\\x0amodel\\x20x "
                       "deployment=d status=200 upstream=200 bytes=12 ms=5 outcome=ok\n");
}

// A loop's buffer of lines takes the next line at its end, the lines before it untouched.
BOOST_AUTO_TEST_CASE(a_line_appended_to_a_buffer_is_the_formatted_line) {
    AccessLogEntry entry;
    entry.method = "GET";
    entry.path = "/v1/models";
    entry.status = 200;
    entry.outcome = "ok";
    for (LogFormat format : {LogFormat::Text, LogFormat::Json}) {
        std::string lines = "earlier line\n";
        append_access_log(lines, entry, 0, format);
        BOOST_TEST(lines == "earlier line\n" + format_access_log(entry, 0, format));
    }
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
    BOOST_TEST(line.find("rewrites") == std::string::npos, line);  // none made: no field
    entry.rewrites = "max_tokens>max_completion_tokens,-temperature";
    line = format_access_log(entry, 0, LogFormat::Text);
    BOOST_TEST(line.find(" tokens=9+4 rewrites=max_tokens>max_completion_tokens,-temperature\n") != std::string::npos, line);
    line = format_access_log(entry, 0, LogFormat::Json);
    BOOST_TEST(line.find("\"rewrites\":\"max_tokens>max_completion_tokens,-temperature\"") != std::string::npos, line);
    BOOST_TEST((parse_config(azure({{"AZURE_OPENAI_PROXY_LOG_FORMAT", "json"}})).config.log_format == LogFormat::Json));
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_LOG_FORMAT", "xml"}})).ok);
}

BOOST_AUTO_TEST_SUITE_END()

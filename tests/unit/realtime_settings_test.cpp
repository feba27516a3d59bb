// realtime_settings.cpp: the companion's address and limits from the environment.
#include <boost/test/unit_test.hpp>

#include "realtime_settings.h"

BOOST_AUTO_TEST_SUITE(realtime_settings)

BOOST_AUTO_TEST_CASE(defaults_hold_a_realtime_audio_session) {
    RealtimeSettings s;
    std::string error;
    BOOST_REQUIRE(parse_realtime_settings({{"AZURE_OPENAI_PROXY_REALTIME_ADDRESS", " /run/rt.sock "}}, "", s, error));
    BOOST_TEST(s.listen == "/run/rt.sock");
    BOOST_TEST(s.max_message_bytes == 16LL << 20);  // 24 kHz PCM16 is ~6.4 KiB of base64 per 100 ms
    BOOST_TEST(s.queue_bytes == 1LL << 20);
    BOOST_TEST(s.idle_timeout_s == 300);
    BOOST_TEST(s.handshake_timeout_s == 10);
    BOOST_TEST(s.max_sessions == 1000);
    BOOST_TEST(s.drain_timeout_s == 5);
    BOOST_TEST(describe_realtime_settings(s).find("listening on /run/rt.sock") != std::string::npos);
    BOOST_TEST(s.preview_api_version.empty());  // Azure's GA route
    BOOST_TEST(describe_realtime_settings(s).find("route GA") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_preview_route_is_chosen_by_its_api_version) {
    RealtimeSettings s;
    std::string error;
    BOOST_REQUIRE(parse_realtime_settings({{"AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION", "2024-10-01-preview"}}, "",
                                          s, error));
    BOOST_TEST(s.preview_api_version == "2024-10-01-preview");
    BOOST_TEST(describe_realtime_settings(s).find("api-version 2024-10-01-preview") != std::string::npos);
    BOOST_TEST(!parse_realtime_settings({{"AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION", "x&model=y"}}, "", s, error));
    BOOST_TEST(error.find("AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION") == 0u);
}

BOOST_AUTO_TEST_CASE(the_command_line_address_wins_and_limits_are_read) {
    RealtimeSettings s;
    std::string error;
    Environment env{{"AZURE_OPENAI_PROXY_REALTIME_ADDRESS", "/run/rt.sock"},
                    {"AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT", "30"},
                    {"AZURE_OPENAI_PROXY_REALTIME_MAX_MESSAGE_BYTES", "65536"},
                    {"AZURE_OPENAI_PROXY_REALTIME_QUEUE_BYTES", "4096"},
                    {"AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS", "2"},
                    {"AZURE_OPENAI_PROXY_REALTIME_SESSIONS_PER_KEY", "5"},
                    {"AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT", "3"},
                    {"AZURE_OPENAI_PROXY_REALTIME_DRAIN_TIMEOUT", "20"},
                    {"AZURE_OPENAI_PROXY_REALTIME_SOCKET_OWNER", "www-data"}};
    BOOST_REQUIRE(parse_realtime_settings(env, "127.0.0.1:8091", s, error));
    BOOST_TEST(s.listen == "127.0.0.1:8091");
    BOOST_TEST(s.idle_timeout_s == 30);
    BOOST_TEST(s.max_message_bytes == 65536);
    BOOST_TEST(s.queue_bytes == 4096);
    BOOST_TEST(s.max_sessions == 2);
    BOOST_TEST(s.sessions_per_key == 5);
    BOOST_TEST(describe_realtime_settings(s).find("(5 a key)") != std::string::npos);
    BOOST_TEST(s.handshake_timeout_s == 3);
    BOOST_TEST(s.drain_timeout_s == 20);
    BOOST_TEST(s.socket_owner == "www-data");
}

BOOST_AUTO_TEST_CASE(a_wrong_number_is_named_with_its_variable) {
    RealtimeSettings s;
    std::string error;
    BOOST_TEST(!parse_realtime_settings({{"AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT", "0"}}, "", s, error));
    BOOST_TEST(error.find("AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT") == 0u);
    BOOST_TEST(!parse_realtime_settings({{"AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS", "many"}}, "", s, error));
    BOOST_TEST(error.find("AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

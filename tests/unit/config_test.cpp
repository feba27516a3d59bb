#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "bounds.h"
#include "config.h"
#include "azure_env.h"


BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(the_environment_is_read_whole_split_at_the_first_equals_sign) {
    char one[] = "AZURE_OPENAI_TOKEN=a=b", two[] = "EMPTY=", three[] = "NO_SIGN";
    char* entries[] = {one, two, three, nullptr};
    Environment env = environment_of(entries);
    BOOST_TEST(env.size() == 2u);
    BOOST_TEST(env["AZURE_OPENAI_TOKEN"] == "a=b");
    BOOST_TEST(env.count("EMPTY") == 1u);
    BOOST_TEST(environment_of(nullptr).empty());
}

BOOST_AUTO_TEST_CASE(defaults_follow_the_seed_with_a_current_api_version) {
    ConfigResult r = parse_config(azure());
    BOOST_REQUIRE(r.ok);
    BOOST_TEST((r.config.mode == ProxyMode::Azure));
    BOOST_TEST(r.config.endpoint == "https://res.openai.azure.com");
    BOOST_TEST(r.config.api_version == "2024-10-21");
    BOOST_TEST(r.config.http_address == "0.0.0.0:8080");
    BOOST_TEST(r.config.model_mapper.at("gpt-3.5-turbo") == "gpt-35-turbo");
    BOOST_TEST(r.config.model_mapper.at("gpt-3.5-turbo-0301") == "gpt-35-turbo-0301");
    BOOST_TEST(r.config.token.empty());
    BOOST_TEST(r.config.fcgi_address.empty());
}

BOOST_AUTO_TEST_CASE(word_settings_take_any_case_and_name_their_words_when_wrong) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_MODE", " Azure "},
                                         {"AZURE_OPENAI_PROXY_STREAM_USAGE", "ON"},
                                         {"AZURE_OPENAI_PROXY_LOG_FORMAT", "JSON"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST((r.config.mode == ProxyMode::Azure));
    BOOST_TEST(r.config.stream_usage);
    BOOST_TEST((r.config.log_format == LogFormat::Json));
    for (const char* off : {"0", "off", "False", ""})
        BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_STREAM_USAGE", off}})).config.stream_usage);
    ConfigResult wrong = parse_config(azure({{"AZURE_OPENAI_PROXY_STREAM_USAGE", "yes"}}));
    BOOST_TEST(!wrong.ok);
    BOOST_TEST(wrong.error == "AZURE_OPENAI_PROXY_STREAM_USAGE: 'yes' is not on or off");
    wrong = parse_config(azure({{"AZURE_OPENAI_PROXY_MODE", "Bedrock"}}));
    BOOST_TEST(wrong.error == "AZURE_OPENAI_PROXY_MODE: 'bedrock' is not 'azure' or 'openai'");
    BOOST_TEST(r.config.fix_parameters);  // on unless turned off
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_FIX_PARAMETERS", "Off"}})).config.fix_parameters);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_FIX_PARAMETERS", "maybe"}})).error ==
               "AZURE_OPENAI_PROXY_FIX_PARAMETERS: 'maybe' is not on or off");
}

BOOST_AUTO_TEST_CASE(api_version_and_numbers_are_checked) {
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_APIVERSION", "2025-04-01-preview"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_APIVERSION", "2024&x=1"}})).ok);
    ConfigResult threads = parse_config(azure({{"AZURE_OPENAI_PROXY_THREADS", "0"}}));
    BOOST_TEST(!threads.ok);
    BOOST_TEST(threads.error.find("AZURE_OPENAI_PROXY_THREADS") == 0u);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT", "ten"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_THREADS", "65"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_MAX_REQUESTS", "0"}})).ok);
    ConfigResult defaults = parse_config(azure());
    BOOST_REQUIRE(defaults.ok);
    BOOST_TEST(defaults.config.threads == 0);  // one event loop per core
    BOOST_TEST(defaults.config.max_requests == 4096);
    ConfigResult good = parse_config(azure({{"AZURE_OPENAI_PROXY_THREADS", "64"},
                                            {"AZURE_OPENAI_PROXY_MAX_REQUESTS", "100"},
                                            {"AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT", "5"},
                                            {"AZURE_OPENAI_PROXY_MAX_BODY_BYTES", "1024"}}));
    BOOST_REQUIRE(good.ok);
    BOOST_TEST(good.config.threads == 64);
    BOOST_TEST(good.config.max_requests == 100);
    BOOST_TEST(good.config.upstream_timeout_s == 5);
    BOOST_TEST(good.config.max_body_bytes == 1024);
}

BOOST_AUTO_TEST_CASE(v1_api_and_models_source) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_APIVERSION", "v1"}, {"AZURE_OPENAI_PROXY_MODELS_SOURCE", "azure"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(uses_v1_api(r.config));
    BOOST_TEST(api_version_for(r.config, "responses") == "v1");
    BOOST_TEST(r.config.live_models);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_MODELS_SOURCE", "both"}})).ok);
}

BOOST_AUTO_TEST_CASE(http_address_is_host_and_port) {
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_ADDRESS", "8080"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_ADDRESS", "0.0.0.0:99999"}})).ok);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_ADDRESS", "[::1]:8080"}})).ok);
    std::string host;
    int port = 0;
    BOOST_TEST(split_host_port("[::1]:8081", host, port));
    BOOST_TEST(host == "::1");
    BOOST_TEST(port == 8081);
}

BOOST_AUTO_TEST_CASE(description_never_shows_the_token) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_TOKEN", "secret-key-123"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.token == "secret-key-123");
    BOOST_TEST(describe_config(r.config).find("secret-key-123") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(listed_models_can_be_replaced) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_MODELS", "a, b,,"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.listed_models.size() == 2u);
    BOOST_TEST(parse_config(azure()).config.listed_models.size() > 10u);
}

// Every name stored in a fixed slot of the shared state, or shown as a metric label, is
// checked where it enters: one line naming the variable and the limit.
BOOST_AUTO_TEST_CASE(names_longer_than_their_bounds_are_refused_naming_the_limit) {
    const std::string longest_key(kLongestKeyName, 'k'), key_too_long(kLongestKeyName + 1, 'k');
    for (const char* variable : {"AZURE_OPENAI_PROXY_API_KEYS", "AZURE_OPENAI_PROXY_ADMIN_KEYS"}) {
        ConfigResult r = parse_config(azure({{variable, key_too_long + ":sk-long-enough-1"}, {"AZURE_OPENAI_TOKEN", "t"}}));
        BOOST_TEST(!r.ok, variable);
        BOOST_TEST(r.error.find(std::string(variable) + ": entry 1") == 0u, r.error);
        BOOST_TEST(r.error.find("at most " + std::to_string(kLongestKeyName)) != std::string::npos, r.error);
        BOOST_TEST(r.error.find('\n') == std::string::npos);
        BOOST_TEST(parse_config(azure({{variable, longest_key + ":sk-long-enough-1"}, {"AZURE_OPENAI_TOKEN", "t"}})).ok);
    }
    std::string path = "/tmp/aoai-unit-long-keys-" + std::to_string(::getpid());
    std::ofstream(path) << std::string(1 << 20, 'n') << ":sk-long-enough-1\n";
    ConfigResult file = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "@" + path}, {"AZURE_OPENAI_TOKEN", "t"}}));
    std::remove(path.c_str());
    BOOST_TEST(!file.ok);
    BOOST_TEST(file.error.size() < 400u, "one short line, not the name: " << file.error.size());

    const std::string longest_model(kLongestConfiguredModel, 'm'), model_too_long(kLongestConfiguredModel + 1, 'm');
    for (const char* variable : {"AZURE_OPENAI_PROXY_MODELS", "AZURE_OPENAI_PROXY_ALLOWED_MODELS"}) {
        ConfigResult r = parse_config(azure({{variable, "gpt-4o," + model_too_long}}));
        BOOST_TEST(!r.ok, variable);
        BOOST_TEST(r.error.find(variable) == 0u, r.error);
        BOOST_TEST(r.error.find("at most " + std::to_string(kLongestConfiguredModel)) != std::string::npos, r.error);
        BOOST_TEST(parse_config(azure({{variable, "gpt-4o," + longest_model}})).ok);
        r = parse_config(azure({{variable, "gpt-4o,gpt\x01" "4o"}}));
        BOOST_TEST(!r.ok);
        BOOST_TEST(r.error.find("control character") != std::string::npos, r.error);
        BOOST_TEST(r.error.find('\x01') == std::string::npos, "the error quotes it escaped");
    }
    ConfigResult mapper = parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", model_too_long + "=deployment"}}));
    BOOST_TEST(!mapper.ok);
    BOOST_TEST(mapper.error.find("AZURE_OPENAI_MODEL_MAPPER") == 0u, mapper.error);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", longest_model + "=deployment"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "gpt\t4o=deployment"}})).ok);
}

// Each worker takes one of the shared state's process slots.
BOOST_AUTO_TEST_CASE(workers_fit_the_shared_states_process_slots) {
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_WORKERS", std::to_string(kStateProcesses)}})).ok);
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_WORKERS", std::to_string(kStateProcesses + 1)}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("from 1 to " + std::to_string(kStateProcesses)) != std::string::npos, r.error);
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

BOOST_AUTO_TEST_CASE(redis_urls_are_read_and_shown_without_their_password) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_REDIS_URL", "redis://:s3cret@10.0.0.5:6380/2"}}));
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(r.config.redis.host == "10.0.0.5");
    BOOST_TEST(r.config.redis.port == 6380);
    BOOST_TEST(r.config.redis.db == 2);
    BOOST_TEST(r.config.redis.password == "s3cret");
    BOOST_TEST(describe_config(r.config).find("s3cret") == std::string::npos);
    BOOST_TEST(describe_config(r.config).find("redis at 10.0.0.5:6380/2") != std::string::npos);
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_REDIS_URL", "redis://cache"}}));
    BOOST_TEST(r.config.redis.port == 6379);
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_REDIS_URL", "unix:///run/redis/redis.sock"}}));
    BOOST_TEST(r.config.redis.unix_path == "/run/redis/redis.sock");
    for (const char* bad : {"http://cache:6379", "redis://", "redis://cache:port", "redis://cache/x", "unix:relative"}) {
        ConfigResult refused = parse_config(azure({{"AZURE_OPENAI_PROXY_REDIS_URL", bad}}));
        BOOST_TEST(!refused.ok, bad);
        BOOST_TEST(refused.error.find("AZURE_OPENAI_PROXY_REDIS_URL") == 0u);
    }
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_REDIS_URL", "redis://:pw@x:1/zz"}})).error.find("pw") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_upstream_http_version_is_1_1_unless_2_is_asked) {
    BOOST_TEST(!parse_config(azure()).config.upstream_http2);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_UPSTREAM_HTTP", "1.1"}})).config.upstream_http2);
    ConfigResult two = parse_config(azure({{"AZURE_OPENAI_PROXY_UPSTREAM_HTTP", "2"}}));
    BOOST_REQUIRE(two.ok);
    BOOST_TEST(two.config.upstream_http2);
    BOOST_TEST(describe_config(two.config).find("upstream HTTP over TLS: 2 where offered") != std::string::npos);
    ConfigResult bad = parse_config(azure({{"AZURE_OPENAI_PROXY_UPSTREAM_HTTP", "3"}}));
    BOOST_TEST(!bad.ok);
    BOOST_TEST(bad.error.find("AZURE_OPENAI_PROXY_UPSTREAM_HTTP") == 0u, bad.error);
}

BOOST_AUTO_TEST_SUITE_END()

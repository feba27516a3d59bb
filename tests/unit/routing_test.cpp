// The routing table (AZURE_OPENAI_PROXY_CONFIG) as loaded, target choice and health,
// per-key limits, usage scanning, metrics text, and the shared state across processes.
// The file's mistakes are in routing_file_test.cpp.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>

#include "azure_env.h"
#include "target_choice.h"
#include "json_model.h"
#include "bounds.h"
#include "config.h"
#include "key_limits.h"
#include "metrics.h"
#include "routing.h"
#include "routing_file_env.h"
#include "shared_state.h"
#include "usage.h"

namespace {

const char* const kTable = R"({
  "endpoints": {
    "east": {"url": "https://east.example/", "key": "env:EAST_KEY", "api_version": "2025-01-01-preview", "weight": 3},
    "west": {"url": "https://west.example", "key": "inline-west-key", "priority": 1},
    "oai": {"url": "https://api.openai.com", "key": "env:OAI_KEY", "mode": "openai"}
  },
  "models": {
    "gpt-4o": ["east", {"endpoint": "west", "deployment": "gpt4o-west", "weight": 2}, "oai/gpt-4o"],
    "gpt-4.1": ["east"]
  },
  "keys": {"alice": {"key": "env:ALICE", "models": ["gpt-4o"], "requests_per_minute": 10, "expires": "2030-01-31"}},
  "retry": {"max_tries": 2}
})";

Environment table_env() { return {{"EAST_KEY", "east-secret"}, {"OAI_KEY", "sk-oai"}, {"ALICE", "alice-key-123"}}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(routing)

BOOST_AUTO_TEST_CASE(a_file_resolves_endpoints_targets_keys_and_retry) {
    ConfigResult r = with_file(kTable, table_env());
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    std::shared_ptr<const RoutingTable> table = r.config.routing->get();
    const RoutingTable& t = *table;
    BOOST_TEST(t.endpoints.size() == 3u);
    const EndpointSettings& east = *t.endpoints[0].upstream;
    BOOST_TEST(east.endpoint == "https://east.example");
    BOOST_TEST(east.token == "east-secret");
    BOOST_TEST(east.api_version == "2025-01-01-preview");
    BOOST_TEST((t.endpoints[2].upstream->mode == ProxyMode::OpenAI));
    const std::vector<Target>* gpt4o = targets_for(t, "gpt-4o");
    BOOST_REQUIRE(gpt4o);
    BOOST_TEST((*gpt4o)[0].name == "east/gpt-4o");
    BOOST_TEST((*gpt4o)[0].weight == 3);
    BOOST_TEST((*gpt4o)[1].name == "west/gpt4o-west");
    BOOST_TEST((*gpt4o)[1].priority == 1);
    BOOST_TEST((*gpt4o)[1].weight == 2);
    BOOST_TEST(targets_for(t, "gpt-4.1")->at(0).deployment == "gpt-41");  // the seed's mapping
    BOOST_TEST(!targets_for(t, "o3"));
    BOOST_TEST(t.retry.max_tries == 2);
    BOOST_TEST(r.config.client_keys.empty());
    BOOST_REQUIRE(t.keys.size() == 1u);
    BOOST_TEST(t.keys[0].limits.requests_per_minute == 10);
    BOOST_TEST(t.keys[0].limits.expires_at == 1896048000LL);
}

BOOST_AUTO_TEST_CASE(check_config_shows_the_table_and_no_key) {
    ConfigResult r = with_file(kTable, table_env());
    BOOST_REQUIRE(r.ok);
    std::string text = describe_config(r.config);
    BOOST_TEST(text.find("model gpt-4o -> west/gpt4o-west (priority 1, weight 2)") != std::string::npos);
    BOOST_TEST(text.find("key env:EAST_KEY") != std::string::npos);
    BOOST_TEST(text.find("key inline") != std::string::npos);
    for (const char* secret : {"east-secret", "sk-oai", "inline-west-key", "alice-key-123", "server-key-123"})
        BOOST_TEST(text.find(secret) == std::string::npos, secret);
}

BOOST_AUTO_TEST_CASE(the_shipped_example_is_valid) {
    std::ifstream in("deploy/config.example.json");
    BOOST_REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    char dir[] = "/tmp/aop-keys-XXXXXX";
    BOOST_REQUIRE(mkdtemp(dir));
    for (const char* name : {"swe.key", "ci.key"}) std::ofstream(std::string(dir) + "/" + name) << "a-key-of-some-length\n";
    for (size_t at; (at = text.find("file:/etc/azure-openai-proxy")) != std::string::npos;)
        text.replace(at, 28, std::string("file:") + dir);
    ConfigResult r = with_file(text, {{"AZURE_EAST_KEY", "k1"}, {"OPENAI_API_KEY", "k2"}, {"ALICE_KEY", "alice-key-123"}});
    BOOST_TEST(r.ok, r.error);
    for (const char* name : {"swe.key", "ci.key"}) unlink((std::string(dir) + "/" + name).c_str());
    rmdir(dir);
}

BOOST_AUTO_TEST_CASE(client_keys_in_the_file_need_a_server_side_key) {
    std::string file = write_temp(R"({"keys": {"a": {"key": "long-enough-key"}}})");
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_CONFIG", file}}));
    unlink(file.c_str());
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_TOKEN") != std::string::npos);
}

namespace {

// A file from someone's generator, `count` entries of each kind: endpoints, models whose
// targets are among the last endpoints (200 targets, as the shared state allows), keys
// with a list of models; and twice as many keys in the environment. The names of a kind
// have one length and a long prefix in common, as generated names do.
Config generated_config(const std::string& file, size_t count) {
    auto numbered = [](const char* format, size_t i) {
        char name[64];
        std::snprintf(name, sizeof name, format, i);
        return std::string(name);
    };
    auto endpoint = [&](size_t i) { return numbered("endpoint-in-a-region-number-%07zu", i); };
    std::ostringstream json;
    json << "{\"endpoints\": {";
    for (size_t i = 0; i < count; ++i)
        json << (i ? "," : "") << "\"" << endpoint(i) << "\": {\"url\": \"https://e" << i << ".example\", \"key\": \"k\"}";
    json << "}, \"models\": {";
    for (size_t i = 0; i < count; ++i)
        json << (i ? "," : "") << "\"model-" << i << "\": [\"" << endpoint(count - 1 - i % 200) << "/deployment\"]";
    json << "}, \"keys\": {";
    for (size_t i = 0; i < count; ++i)
        json << (i ? "," : "") << "\"" << numbered("key-%07zu", 3 * count + i) << "\": {\"key\": \""
             << numbered("file-key-secret-%07zu", i) << "\", \"models\": [\"model-" << i << "\"]}";
    json << "}}";
    std::ofstream(file) << json.str();
    Config base;
    base.config_file = file;
    base.token = "server-key-123";
    for (size_t i = 0; i < 2 * count; ++i)
        base.client_keys.push_back({numbered("key-%07zu", i), numbered("env-key-secret-%07zu", i), {}});
    return base;
}

// The CPU time this thread spends reading it (other processes' load does not count).
double seconds_to_load(const Config& base) {
    std::shared_ptr<const RoutingTable> table;
    std::string error;
    timespec start{}, end{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    bool ok = load_routing(base, [](const std::string&, void*) { return std::string(); }, nullptr, table, error);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    BOOST_REQUIRE_MESSAGE(ok, error.substr(0, 500));
    return static_cast<double>(end.tv_sec - start.tv_sec) + static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e9;
}

}  // namespace

// A worker reads the file at start and on SIGHUP, serving nothing meanwhile: four times
// the entries take about four times as long (n log n: a little more); a part that
// compares or copies every entry against every other would take sixteen times. Times are
// compared with each other only, in the same run, each the best of up to three.
BOOST_AUTO_TEST_CASE(reading_the_file_takes_time_in_proportion_to_its_size) {
    const double kMostRatio = 7;
    std::string small_file = write_temp(""), large_file = write_temp("");
    Config small = generated_config(small_file, 3000), large = generated_config(large_file, 12000);
    double small_s = 1e9, large_s = 1e9;
    for (int run = 0; run < 3; ++run) small_s = std::min(small_s, seconds_to_load(small));
    for (int run = 0; run < 3 && large_s >= kMostRatio * small_s; ++run) large_s = std::min(large_s, seconds_to_load(large));
    unlink(small_file.c_str());
    unlink(large_file.c_str());
    BOOST_TEST_MESSAGE("3000 entries of each kind: " << small_s << " s, 12000: " << large_s << " s");
    BOOST_TEST(large_s / small_s < kMostRatio, "4 times the entries took " << large_s / small_s << " times as long");
}

// Each secret belongs to one entry, so the log's name for a request is never in doubt;
// errors name the entries, never the secret.
BOOST_AUTO_TEST_CASE(a_secret_given_to_two_entries_is_refused_naming_both) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "alice:sk-shared-secret"},
                                         {"AZURE_OPENAI_PROXY_ADMIN_KEYS", "ops:sk-shared-secret"},
                                         {"AZURE_OPENAI_TOKEN", "t"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_PROXY_ADMIN_KEYS: ops: has the same key as AZURE_OPENAI_PROXY_API_KEYS: alice") != std::string::npos, r.error);
    Environment env = {{"AZURE_OPENAI_PROXY_API_KEYS", "alice:sk-shared-secret"}, {"AZURE_OPENAI_PROXY_ADMIN_KEYS", "ops:sk-admin-secret"},
                       {"SHARED", "sk-shared-secret"}};
    r = with_file(R"({"keys": {"bob": {"key": "env:SHARED"}, "carol": {"key": "sk-carol-secret"},
                               "dave": {"key": "sk-carol-secret"}, "eve": {"key": "sk-admin-secret"}}})", env);
    BOOST_TEST(!r.ok);
    for (const char* expected : {": keys.bob: has the same key as AZURE_OPENAI_PROXY_API_KEYS: alice",
                                 ": keys.dave: has the same key as keys.carol",
                                 ": keys.eve: has the same key as AZURE_OPENAI_PROXY_ADMIN_KEYS: ops"})
        BOOST_TEST(r.error.find(expected) != std::string::npos, expected << " in " << r.error);
    for (const char* secret : {"sk-shared", "sk-carol", "sk-admin"}) BOOST_TEST(r.error.find(secret) == std::string::npos);
}

// Keys defined in the file close the relay as well as AZURE_OPENAI_PROXY_API_KEYS does.
BOOST_AUTO_TEST_CASE(client_keys_in_the_file_alone_are_no_open_relay) {
    ConfigResult r = with_file(R"({"keys": {"a": {"key": "long-enough-key"}}})");
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(open_relay_warning(r.config) == "");
    r = with_file(R"({"endpoints": {}})");
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(open_relay_warning(r.config).find("open relay") != std::string::npos);
}

// The gauge says whether a circuit keeps requests away: past its open period with no
// trial out it no longer does (the next request is the trial), whatever it last was.
BOOST_AUTO_TEST_SUITE_END()

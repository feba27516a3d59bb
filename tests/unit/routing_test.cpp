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

std::vector<Target> targets(std::initializer_list<std::pair<int, int>> priority_weight) {
    std::vector<Target> out;
    for (auto [priority, weight] : priority_weight) {
        Target t;
        t.priority = priority;
        t.weight = weight;
        t.name = "t" + std::to_string(out.size());
        out.push_back(t);
    }
    return out;
}

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

BOOST_AUTO_TEST_CASE(pick_prefers_the_first_priority_group_then_the_least_loaded_per_weight) {
    std::vector<Target> t = targets({{0, 1}, {0, 3}, {1, 1}});
    std::vector<TargetHealth> h(3);
    std::vector<bool> tried(3, false);
    h[0].in_flight = 1;
    h[1].in_flight = 2;  // 2/3 < 1/1
    BOOST_TEST(pick_target(t, h, tried, 1000, 7).index == 1);
    h[1].in_flight = 3;  // 1 == 1: a tie, either
    int index = pick_target(t, h, tried, 1000, 7).index;
    BOOST_TEST((index == 0 || index == 1));
    h[0].cooldown_until_ms = h[1].cooldown_until_ms = 5000;
    BOOST_TEST(pick_target(t, h, tried, 1000, 7).index == 2);  // spill-over
    tried[2] = true;
    Pick none = pick_target(t, h, tried, 1000, 7);
    BOOST_TEST(none.index == -1);
    BOOST_TEST(none.retry_after_ms == 4000);
    BOOST_TEST(none.cooling);
    BOOST_TEST(pick_target(t, h, tried, 5000, 7).index >= 0);  // expired exactly on time
}

BOOST_AUTO_TEST_CASE(weights_share_ties_in_proportion) {
    std::vector<Target> t = targets({{0, 1}, {0, 3}});
    std::vector<TargetHealth> h(2);
    std::vector<bool> tried(2, false);
    int second = 0;
    for (uint64_t r = 0; r < 4000; ++r) second += pick_target(t, h, tried, 0, r * 0x9E3779B97F4A7C15ULL) .index == 1;
    BOOST_TEST(second > 2700);
    BOOST_TEST(second < 3300);
}

BOOST_AUTO_TEST_CASE(a_circuit_opens_after_failures_and_one_trial_closes_it) {
    RetryPolicy policy;
    policy.circuit_failures = 2;
    policy.circuit_open_s = 10;
    TargetHealth h;
    h = after_try(h, TryResult::Failed, -1, false, 0, policy);
    BOOST_TEST(h.circuit_open_until_ms == 0);
    h = after_try(h, TryResult::Failed, -1, false, 0, policy);
    BOOST_TEST(h.circuit_open_until_ms == 10000);
    std::vector<Target> t = targets({{0, 1}});
    std::vector<bool> tried(1, false);
    BOOST_TEST(pick_target(t, {h}, tried, 9999, 0).index == -1);
    Pick trial = pick_target(t, {h}, tried, 10000, 0);
    BOOST_TEST(trial.index == 0);
    BOOST_TEST(trial.trial);
    h.trial_out = true;
    BOOST_TEST(pick_target(t, {h}, tried, 10001, 0).index == -1);  // one trial at a time
    TargetHealth reopened = after_try(h, TryResult::Failed, -1, true, 10500, policy);
    BOOST_TEST(reopened.circuit_open_until_ms == 20500);
    BOOST_TEST(!reopened.trial_out);
    TargetHealth closed = after_try(h, TryResult::Success, -1, true, 10500, policy);
    BOOST_TEST(closed.circuit_open_until_ms == 0);
    BOOST_TEST(closed.failures == 0);
}

BOOST_AUTO_TEST_CASE(a_429_cools_down_for_its_retry_after_capped) {
    RetryPolicy policy;
    policy.cooldown_cap_s = 60;
    policy.default_cooldown_s = 10;
    BOOST_TEST(after_try({}, TryResult::RateLimited, 1500, false, 1000, policy).cooldown_until_ms == 2500);
    BOOST_TEST(after_try({}, TryResult::RateLimited, 86400000, false, 0, policy).cooldown_until_ms == 60000);
    BOOST_TEST(after_try({}, TryResult::RateLimited, -1, false, 0, policy).cooldown_until_ms == 10000);
    BOOST_TEST(after_try({}, TryResult::RateLimited, 1000, false, 0, policy).failures == 0);
    Headers headers{{"Retry-After", "7"}};
    BOOST_TEST(retry_after_ms(headers) == 7000);
    headers.push_back({"Retry-After-Ms", "1234"});
    BOOST_TEST(retry_after_ms(headers) == 1234);
    BOOST_TEST(retry_after_ms({{"Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT"}}) == -1);
    BOOST_TEST((result_of_status(429) == TryResult::RateLimited));
    BOOST_TEST((result_of_status(503) == TryResult::Failed));
    BOOST_TEST((result_of_status(400) == TryResult::Success));
}

BOOST_AUTO_TEST_CASE(key_limits_count_a_sliding_minute) {
    KeyLimits limits;
    limits.requests_per_minute = 3;
    KeyUsage usage;
    int64_t now = 60000 * 100;
    for (int i = 0; i < 3; ++i) {
        KeyDecision d = decide_key(limits, usage, now, 0);
        BOOST_TEST(d.allowed);
        BOOST_TEST(d.remaining_requests == 2 - i);
        usage.requests = added(usage.requests, 1, now);
    }
    KeyDecision refused = decide_key(limits, usage, now, 0);
    BOOST_TEST(!refused.allowed);
    BOOST_TEST(refused.status == 429);
    BOOST_TEST(refused.code == "rate_limit_exceeded");
    BOOST_TEST(refused.retry_after_ms > 0);
    BOOST_TEST(refused.retry_after_ms <= 60000);
    // Half a minute into the next one, half of the previous minute's count is left.
    BOOST_TEST(counted(usage.requests, now + 90000) == 1);
    BOOST_TEST(decide_key(limits, usage, now + 90000, 0).allowed);
    BOOST_TEST(counted(usage.requests, now + 120000) == 0);
}

BOOST_AUTO_TEST_CASE(key_limits_tokens_concurrency_and_expiry) {
    KeyLimits limits;
    limits.tokens_per_minute = 1000;
    limits.concurrent = 2;
    KeyUsage usage;
    BOOST_TEST(decide_key(limits, usage, 0, 5000).allowed);  // alone, larger than the budget
    usage.tokens = added(usage.tokens, 900, 0);
    KeyDecision d = decide_key(limits, usage, 0, 200);
    BOOST_TEST(d.code == "tokens_limit_exceeded");
    usage.tokens = added(usage.tokens, -850, 0);  // settled with the real usage
    BOOST_TEST(decide_key(limits, usage, 0, 200).allowed);
    usage.in_flight = 2;
    BOOST_TEST(decide_key(limits, usage, 0, 0).code == "concurrency_limit_exceeded");
    limits.expires_at = 100;
    BOOST_TEST(decide_key(limits, {}, 100000, 0).status == 401);
    BOOST_TEST(key_expired(limits, 100000));
    BOOST_TEST(!key_expired(limits, 99999));
    BOOST_TEST(estimate_prompt_tokens(400) == 100);
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

BOOST_AUTO_TEST_CASE(usage_is_asked_of_a_stream_leaving_every_other_byte) {
    std::string body = " {\"model\":\"gpt-4o\",\"stream\":true,\"n\":1.50}";
    BOOST_TEST(!model_from_json(body).stream_options);
    BOOST_REQUIRE(add_stream_usage(body));
    BOOST_TEST(body == " {\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\",\"stream\":true,\"n\":1.50}");
    ModelField field = model_from_json(body);
    BOOST_TEST(field.stream_options);
    BOOST_TEST(field.model == "gpt-4o");
    std::string nested = "{\"metadata\":{\"stream_options\":1}}";
    BOOST_TEST(!model_from_json(nested).stream_options);  // only the top level counts
    std::string list = "[1]";
    BOOST_TEST(!add_stream_usage(list));
}

BOOST_AUTO_TEST_CASE(windows_from_two_sources_add_up) {
    int64_t now = 60000 * 10 + 30000;
    RateWindow redis{10, 4, 2}, pending{9, 3, 0};  // pending is a minute old: its count is now "previous"
    RateWindow both = combined(redis, pending, now);
    BOOST_TEST(both.minute == 10);
    BOOST_TEST(both.current == 4);
    BOOST_TEST(both.previous == 5);
    BOOST_TEST(counted(both, now) == 6);  // 4 + half of 5
}

BOOST_AUTO_TEST_CASE(usage_is_read_from_pieces_cut_anywhere) {
    std::string answer =
        R"({"id":"x","choices":[{"message":{"content":"\"prompt_tokens\": 999"}}],)"
        R"("usage":{"prompt_tokens": 12,"completion_tokens":345,"total_tokens":357,)"
        R"("prompt_tokens_details":{"cached_tokens":0}}})";
    for (size_t piece = 1; piece <= answer.size(); piece += 3) {
        UsageScanner scanner;
        for (size_t at = 0; at < answer.size(); at += piece)
            scanner.feed(answer.data() + at, std::min(piece, answer.size() - at));
        BOOST_TEST(scanner.prompt_tokens() == 12, "piece " << piece);
        BOOST_TEST(scanner.completion_tokens() == 345, "piece " << piece);
    }
    UsageScanner responses;
    std::string event = "data: {\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}\n\n";
    responses.feed(event.data(), event.size());
    BOOST_TEST(responses.prompt_tokens() == 5);
    BOOST_TEST(responses.completion_tokens() == 6);
    UsageScanner none;
    none.feed("{}", 2);
    BOOST_TEST(none.prompt_tokens() == -1);
}

BOOST_AUTO_TEST_CASE(metrics_text_groups_families_and_escapes_labels) {
    std::vector<SeriesValue> series;
    HistogramSeries names = histogram_series("aop_upstream_latency_seconds", {{"target", "a"}});
    BOOST_TEST(first_bucket(0.3) == 3u);  // 0.5
    BOOST_TEST(first_bucket(500) == names.buckets.size() - 1);  // +Inf only
    for (size_t i = first_bucket(0.3); i < names.buckets.size(); ++i) series.push_back({names.buckets[i], false, 1});
    series.push_back({names.count, false, 1});
    series.push_back({names.sum, false, 0.3});
    series.push_back({series_name("aop_requests_total", {{"model", "we\"ird\\\n"}, {"status", "200"}}), false, 2});
    series.push_back({"aop_active_streams", true, 0});
    TargetView view;
    view.name = "east/gpt-4o";
    view.health.cooldown_until_ms = 3500;
    std::string text = render_metrics(series, {view}, 1000);
    BOOST_TEST(text.find("aop_requests_total{model=\"we\\\"ird\\\\\\n\",status=\"200\"} 2\n") != std::string::npos, text);
    BOOST_TEST(text.find("aop_target_cooldown_seconds{target=\"east/gpt-4o\"} 2.5\n") != std::string::npos);
    size_t le05 = text.find("le=\"0.5\"}"), le1 = text.find("le=\"1\"}"), inf = text.find("le=\"+Inf\"}"),
           sum = text.find("aop_upstream_latency_seconds_sum"), count = text.find("aop_upstream_latency_seconds_count");
    BOOST_TEST(text.find("le=\"0.25\"") == std::string::npos);  // 0.3 is above it
    BOOST_TEST((le05 < le1 && le1 < inf && inf < sum && sum < count));
    BOOST_TEST(text.find("# TYPE aop_upstream_latency_seconds histogram") < le05);
}

// The gauge says whether a circuit keeps requests away: past its open period with no
// trial out it no longer does (the next request is the trial), whatever it last was.
BOOST_AUTO_TEST_CASE(the_circuit_gauge_counts_only_a_circuit_that_blocks) {
    auto gauge = [](TargetHealth health) {
        TargetView view;
        view.name = "east/gpt-4o";
        view.health = health;
        std::string text = render_metrics({}, {view}, 10000);
        return text.find("aop_target_circuit_open{target=\"east/gpt-4o\"} 1\n") != std::string::npos;
    };
    TargetHealth open_now{0, 20000, 5, false, 0}, waiting_for_trial{0, 5000, 5, false, 0},
        trial_out{0, 5000, 5, true, 0}, closed{0, 0, 0, false, 0};
    BOOST_TEST(gauge(open_now));
    BOOST_TEST(!gauge(waiting_for_trial));
    BOOST_TEST(gauge(trial_out));
    BOOST_TEST(!gauge(closed));
}

BOOST_AUTO_TEST_CASE(a_state_file_others_may_use_is_refused) {
    std::string path = write_temp("");
    chmod(path.c_str(), 0666);
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning);
    BOOST_REQUIRE(state);
    BOOST_TEST(!state->shared());
    BOOST_TEST(warning.find("belongs to another user or others may use it") != std::string::npos, warning);
    state.reset();
    unlink(path.c_str());
}

BOOST_AUTO_TEST_CASE(the_shared_state_is_one_for_every_process) {
    std::string path = write_temp("");
    unlink(path.c_str());
    std::string warning;
    std::unique_ptr<SharedState> state = SharedState::open(path, warning);
    BOOST_REQUIRE(state);
    BOOST_TEST(state->shared());
    std::vector<Target> t = targets({{0, 1}});
    RetryPolicy policy;
    ClientKey key;
    key.name = "k";
    key.limits.concurrent = 1;
    pid_t child = fork();
    if (child == 0) {
        // Another process: a 429 cools the target for both; a request left in flight
        // counts until the process has gone.
        std::string w;
        std::unique_ptr<SharedState> other = SharedState::open(path, w);
        std::vector<bool> tried(1, false);
        Pick pick = other->choose(t, tried, 1000);
        other->report(t[0], TryResult::RateLimited, 5000, pick.trial_token, 1000, policy);
        other->add("aop_requests_total", 3);
        other->admit_key(key, 1000, 0);
        _exit(pick.index == 0 ? 0 : 1);  // no destructors: as if it died
    }
    int status = 0;
    BOOST_REQUIRE(waitpid(child, &status, 0) == child);
    BOOST_TEST(WEXITSTATUS(status) == 0);
    std::vector<bool> tried(1, false);
    Pick pick = state->choose(t, tried, 2000);
    BOOST_TEST(pick.index == -1);
    BOOST_TEST(pick.retry_after_ms == 4000);
    state->add("aop_requests_total", 1);
    double total = 0;
    for (const SeriesValue& s : state->series())
        if (s.series == "aop_requests_total") total = s.value;
    BOOST_TEST(total == 4);
    // The dead child's slot is taken over by the next process to come: its key's place in
    // flight is forgotten, its counters are kept.
    pid_t next = fork();
    if (next == 0) {
        std::string w;
        std::unique_ptr<SharedState> third = SharedState::open(path, w);
        bool admitted = third->admit_key(key, 3000, 0).allowed;
        third->release_key(key, 0, -1, 3000);
        double seen = 0;
        for (const SeriesValue& s : third->series())
            if (s.series == "aop_requests_total") seen = s.value;
        _exit(admitted && seen == 4 ? 0 : 1);
    }
    BOOST_REQUIRE(waitpid(next, &status, 0) == next);
    BOOST_TEST(WEXITSTATUS(status) == 0);
    state.reset();
    BOOST_TEST(access(path.c_str(), F_OK) != 0, "the last process to leave removes the file");
}

BOOST_AUTO_TEST_SUITE_END()

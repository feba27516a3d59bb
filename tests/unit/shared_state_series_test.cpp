// The shared state's metric series (shared_state_series.cpp): a full series table is
// counted and its series still count; /metrics escapes label values and never cuts a line.
#include <boost/test/unit_test.hpp>

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "bounds.h"
#include "metrics.h"

#include "state_test_support.h"

using namespace state_test;

namespace {

// A line of the text exposition format: a comment, or a series (labels quoted with \\, \"
// and \n as the only escapes) and a number.
bool well_formed(const std::string& line) {
    if (line.empty() || line[0] == '#') return !line.empty();
    size_t at = 0;
    while (at < line.size() && (std::isalnum(static_cast<unsigned char>(line[at])) || line[at] == '_')) ++at;
    if (at == 0) return false;
    if (at < line.size() && line[at] == '{') {
        for (++at; at < line.size() && line[at] != '}';) {
            size_t equals = line.find("=\"", at);
            if (equals == std::string::npos) return false;
            for (at = equals + 2; at < line.size() && line[at] != '"'; ++at)
                if (line[at] == '\\' && (++at >= line.size() || std::strchr("\\\"n", line[at]) == nullptr)) return false;
            if (++at < line.size() && line[at] == ',') ++at;
        }
        if (at++ >= line.size()) return false;
    }
    if (at >= line.size() || line[at] != ' ') return false;
    char* end = nullptr;
    std::strtod(line.c_str() + at + 1, &end);
    return end && *end == '\0' && end != line.c_str() + at + 1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_state_series)

BOOST_AUTO_TEST_CASE(a_full_series_table_is_counted_and_its_series_still_count) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    for (size_t i = 0; i < kStateSeries + 100; ++i) state->count("aop_requests_total", {{"key", "k" + std::to_string(i)}});
    state->count("aop_requests_total", {{"key", "k0"}});
    BOOST_TEST(value_of(*state, "aop_requests_total{key=\"k0\"}") == 2);
    BOOST_TEST(value_of(*state, "aop_state_slots_used{table=\"series\"}") == kStateSeries);
    BOOST_TEST(value_of(*state, "aop_metric_series_dropped_total") == 100);
    // A series without a slot is remembered as such: each update is counted, none searched for.
    state->count("aop_requests_total", {{"key", "k" + std::to_string(kStateSeries + 50)}});
    BOOST_TEST(value_of(*state, "aop_metric_series_dropped_total") == 101);
    std::string page = render_metrics(state->series(), state->targets(), wall_clock_ms());
    BOOST_TEST(page.find("# TYPE aop_metric_series_dropped_total counter\naop_metric_series_dropped_total 101\n") !=
               std::string::npos);
}

// A thread finds a series again by its labels (a key built on its stack, or the series'
// name where the labels are longer than that room): each count lands in its own series.
BOOST_AUTO_TEST_CASE(a_series_counted_again_by_its_labels_is_the_same_series) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    std::string model(kLongestConfiguredModel, 'm'), target(kLongestTargetName, 't');
    for (int i = 0; i < 3; ++i) {
        state->count("aop_requests_total", {{"model", model}, {"target", target}, {"status", "200"}});
        state->count("aop_requests_total", {{"model", "ab"}, {"target", "c"}}, 2);
        state->count("aop_requests_total", {{"model", "a"}, {"target", "bc"}}, 5);
        state->observe("aop_upstream_latency_seconds", {{"target", "t1"}}, 0.2);
        state->observe("aop_upstream_latency_seconds", {{"target", "t2"}}, 9);
    }
    BOOST_TEST(value_of(*state, series_name("aop_requests_total", {{"model", model}, {"target", target}, {"status", "200"}})) == 3);
    BOOST_TEST(value_of(*state, "aop_requests_total{model=\"ab\",target=\"c\"}") == 6);
    BOOST_TEST(value_of(*state, "aop_requests_total{model=\"a\",target=\"bc\"}") == 15);
    BOOST_TEST(value_of(*state, "aop_upstream_latency_seconds_count{target=\"t1\"}") == 3);
    BOOST_TEST(value_of(*state, "aop_upstream_latency_seconds_sum{target=\"t2\"}") == 27);
    BOOST_TEST(value_of(*state, "aop_metric_series_dropped_total") == 0);
}

// A family kept at its call site finds its series by the values alone: the series its
// labels name, values split differently apart, values too long for the key's room counted all the same.
BOOST_AUTO_TEST_CASE(a_series_counted_by_its_family_is_the_series_its_labels_name) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    static const SeriesFamily kFamily{"aop_requests_total", {"model", "target"}};
    std::string long_value(600, 'v');
    for (int i = 0; i < 3; ++i) {
        state->count(kFamily, {"ab", "c"}, 2);
        state->count(kFamily, {"a", "bc"}, 5);
        state->count("aop_requests_total", {{"model", "ab"}, {"target", "c"}});
        state->count(kFamily, {long_value, "t"});
    }
    BOOST_TEST(value_of(*state, "aop_requests_total{model=\"ab\",target=\"c\"}") == 9);
    BOOST_TEST(value_of(*state, "aop_requests_total{model=\"a\",target=\"bc\"}") == 15);
    BOOST_TEST(value_of(*state, series_name(kFamily, {long_value, "t"})) == 3);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped_and_no_line_is_ever_cut) {
    StateDir dir;
    std::unique_ptr<SharedState> state = open_state(dir.path);
    // Every byte escaped: the longest series there can be.
    std::string model(kLongestConfiguredModel, '"'), target(kLongestTargetName, '\\'), key(kLongestKeyName, '\n');
    state->count("aop_requests_total", {{"route", "audio/transcriptions"}, {"model", model}, {"target", target},
                                        {"key", key}, {"status", "1234567"}});
    std::string longest = series_name("aop_requests_total", {{"route", "audio/transcriptions"}, {"model", model},
                                                             {"target", target}, {"key", key}, {"status", "1234567"}});
    BOOST_TEST(longest.size() == kLongestSeries);
    BOOST_TEST(value_of(*state, longest) == 1, "stored whole");
    // A value that ends the way a bucket's bound begins does not confuse the order.
    state->observe("aop_time_to_first_token_seconds", {{"model", "xle="}}, 0.3);
    TargetView view;
    view.name = target;
    std::string page = render_metrics(state->series(), {view}, wall_clock_ms());
    size_t lines = 0;
    for (size_t at = 0, end; at < page.size(); at = end + 1, ++lines) {
        end = page.find('\n', at);
        BOOST_REQUIRE(end != std::string::npos);
        BOOST_TEST(well_formed(page.substr(at, end - at)), page.substr(at, end - at));
    }
    BOOST_TEST(lines > 20u);
    std::string escaped_model, escaped_target;
    for (size_t i = 0; i < kLongestConfiguredModel; ++i) escaped_model += "\\\"";
    for (size_t i = 0; i < kLongestTargetName; ++i) escaped_target += "\\\\";
    BOOST_TEST(page.find(",model=\"" + escaped_model + "\",") != std::string::npos);
    BOOST_TEST(page.find("aop_target_in_flight{target=\"" + escaped_target + "\"} 0\n") != std::string::npos);
    size_t b05 = page.find("{model=\"xle=\",le=\"0.05\"}"), b1 = page.find("{model=\"xle=\",le=\"1\"}"),
           inf = page.find("{model=\"xle=\",le=\"+Inf\"}"), sum = page.find("aop_time_to_first_token_seconds_sum");
    BOOST_TEST((b05 < b1 && b1 < inf && inf < sum && sum != std::string::npos));
}

BOOST_AUTO_TEST_SUITE_END()

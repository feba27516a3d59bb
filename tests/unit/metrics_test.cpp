// metrics.cpp: Prometheus text: families grouped, labels escaped, histograms in order, targets' gauges.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "metrics.h"

BOOST_AUTO_TEST_SUITE(metrics)

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

// A family a call site keeps names its series as the labels given one by one would.
BOOST_AUTO_TEST_CASE(a_familys_series_is_named_as_its_labels_are) {
    static const SeriesFamily kFamily{"aop_requests_total", {"model", "status"}};
    BOOST_TEST(series_name(kFamily, {"we\"ird", "200"}) == series_name("aop_requests_total", {{"model", "we\"ird"}, {"status", "200"}}));
    BOOST_TEST(series_name(kFamily, {"m"}) == "aop_requests_total{model=\"m\",status=\"\"}");
    BOOST_TEST(series_name(SeriesFamily{"aop_fastcgi_connections_refused_total", {}}, {}) == "aop_fastcgi_connections_refused_total");
}

// A realtime session lasts minutes to hours: its histogram's buckets reach 2 h.
BOOST_AUTO_TEST_CASE(a_sessions_duration_has_buckets_of_its_own) {
    HistogramSeries names = histogram_series("aop_realtime_session_seconds", {});
    BOOST_TEST(names.buckets.size() == 10u);
    BOOST_TEST(names.buckets.back() == "aop_realtime_session_seconds_bucket{le=\"+Inf\"}");
    BOOST_TEST(first_bucket(45, "aop_realtime_session_seconds") == 3u);  // 60
    BOOST_TEST(first_bucket(5000, "aop_realtime_session_seconds") == 8u);  // 7200
    BOOST_TEST(first_bucket(45) == 9u);  // a request's: 60 is its tenth bound
    std::vector<SeriesValue> series{{names.buckets[3], false, 1}, {names.count, false, 1}, {names.sum, false, 45}};
    std::string text = render_metrics(series, {}, 0);
    BOOST_TEST(text.find("# TYPE aop_realtime_session_seconds histogram\n") != std::string::npos, text);
    BOOST_TEST(text.find("aop_realtime_session_seconds_bucket{le=\"60\"} 1\n") != std::string::npos, text);
}

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

BOOST_AUTO_TEST_SUITE_END()

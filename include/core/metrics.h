// Metrics in Prometheus' text format: series names built with escaped labels, histogram
// buckets, and the page GET /metrics serves. Pure; the values live in the shared state.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bounds.h"
#include "target_choice.h"

// A target's state as /metrics shows it.
struct TargetView {
    std::string name;
    TargetHealth health;
    long long remaining_requests = -1;  // x-ratelimit-remaining-* it last sent; -1: none
    long long remaining_tokens = -1;
};

// One metric series (its name with labels, as Prometheus writes it) and its value summed
// over every process.
struct SeriesValue {
    std::string series;
    bool gauge = false;
    double value = 0;
};

// Views of the values: naming a series allocates nothing but the name.
using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;

// `family{a="x",b="y"}`, values escaped as the format asks (\\, \", \n), appended to `out`
// (with one more label, `extra`="extra_value", when `extra` is set).
void append_series(std::string& out, std::string_view family, Labels labels, const char* extra = nullptr,
                   std::string_view extra_value = {});
std::string series_name(std::string_view family, Labels labels);

// A counter family as one place counts it, its name and its labels' names fixed: a static
// there, so that a thread finds its series again by the label values alone
// (SharedState::count), without copying the names into a key at every count.
struct SeriesFamily {
    const char* name;
    std::vector<const char*> labels;
};
using LabelValues = std::initializer_list<std::string_view>;
// The same series_name gives the family's labels with `values`, in their order (a label
// without a value has an empty one).
std::string series_name(const SeriesFamily& family, LabelValues values);

// The longest series the proxy names (exchange.cpp): aop_requests_total with every label
// at its bound (bounds.h), each byte of a configured name escaped to two. The shared
// state's series slots hold it (shared_state.cpp asserts so): a series is never cut.
constexpr size_t label_length(size_t name, size_t value) { return 1 + name + 2 + value + 1; }  // ,name="value"
constexpr size_t kLongestRouteLabel = 20;   // "audio/transcriptions"
constexpr size_t kLongestStatusLabel = 7;   // a status's digits (accounting.cpp: none when longer)
constexpr size_t kLongestSeries = sizeof("aop_requests_total") - 1 + label_length(5, kLongestRouteLabel) +
                                  label_length(5, 2 * kLongestConfiguredModel) + label_length(6, 2 * kLongestTargetName) +
                                  label_length(3, 2 * kLongestKeyName) + label_length(6, kLongestStatusLabel) + 1;

// A histogram's series for one label set: its buckets (by bound, +Inf last), _count, _sum.
struct HistogramSeries {
    std::vector<std::string> buckets;
    std::string count, sum;
};
HistogramSeries histogram_series(std::string_view family, Labels labels);
// The first bucket a value counts in (it counts in every later one too): `family`'s
// buckets (aop_realtime_session_seconds has its own), by default a request's times.
size_t first_bucket(double value, std::string_view family = {});

// The whole page: the shared series with HELP and TYPE per family, grouped and ordered,
// and each target's state (cooldown, circuit, in flight, reported headroom).
std::string render_metrics(std::vector<SeriesValue> series, const std::vector<TargetView>& targets, int64_t now_ms);

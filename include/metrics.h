// Metrics in Prometheus' text format: series names built with escaped labels, histogram
// buckets, and the page GET /metrics serves. Pure; the values live in the shared state.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "shared_state.h"

using Labels = std::vector<std::pair<const char*, std::string>>;

// `family{a="x",b="y"}`, values escaped as the format asks (\\, \", \n).
std::string series_name(const std::string& family, const Labels& labels);

// The series a histogram observation adds 1 to (every bucket from the value's up, and
// _count), and the one it adds the value to (_sum).
std::vector<std::string> histogram_buckets(const std::string& family, const Labels& labels, double value);
std::string histogram_sum(const std::string& family, const Labels& labels);

// The whole page: the shared series with HELP and TYPE per family, grouped and ordered,
// and each target's state (cooldown, circuit, in flight, reported headroom).
std::string render_metrics(std::vector<SeriesValue> series, const std::vector<TargetView>& targets, int64_t now_ms);

#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "text.h"

namespace {

// A histogram's bounds: a request's times, or (aop_realtime_session_seconds) a session's,
// which lasts minutes to hours.
struct Buckets {
    std::vector<double> bounds;
    std::vector<const char*> labels;  // the bounds as `le` says them, then +Inf
};
const Buckets kRequestBuckets{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
                              {"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "+Inf"}};
const Buckets kSessionBuckets{{1, 10, 30, 60, 300, 600, 1800, 3600, 7200},
                              {"1", "10", "30", "60", "300", "600", "1800", "3600", "7200", "+Inf"}};

const Buckets& buckets_of(std::string_view family) {
    return family == "aop_realtime_session_seconds" ? kSessionBuckets : kRequestBuckets;
}

struct Family {
    const char* name;
    const char* type;
    const char* help;
};

const Family kFamilies[] = {
    {"aop_requests_total", "counter", "Requests answered, by route, model, target (the last tried), key name and status."},
    {"aop_upstream_tries_total", "counter", "Requests sent to each target, by result (ok, rate_limited, failed, abandoned)."},
    {"aop_retries_total", "counter", "Tries on another target after a failure or a 429, by model."},
    {"aop_upstream_latency_seconds", "histogram", "Time from sending a request to a target until its answer's head."},
    {"aop_time_to_first_token_seconds", "histogram", "Time from a streamed request's arrival until its first event reached the client, by model."},
    {"aop_tokens_total", "counter", "Tokens reported by the upstream's usage, by model, key name and kind (prompt, completion)."},
    {"aop_key_limited_total", "counter", "Requests refused by a key's limits, by key name and limit."},
    {"aop_parameter_rewrites_total", "counter", "Chat requests whose parameters a reasoning model refuses were rewritten, by model."},
    {"aop_parameter_refusals_learned_total", "counter", "Azure 400s naming a parameter the proxy then fixed and remembered for the target, by model."},
    {"aop_bridged_requests_total", "counter", "Chat requests sent to a Responses-only deployment as Responses API requests, by model."},
    {"aop_responses_only_learned_total", "counter", "Azure 400s OperationNotSupported to a chat request: the target remembered as Responses-only, by model."},
    {"aop_realtime_sessions_total", "counter", "Realtime WebSocket sessions that ended (the companion), by key name and outcome (client closed, upstream closed, client vanished, idle, ...)."},
    {"aop_realtime_close_codes_total", "counter", "Close codes realtime sessions received, by side (client, upstream) and code (none: the side vanished)."},
    {"aop_realtime_bytes_total", "counter", "Payload bytes realtime sessions relayed, by key name and the side that sent them (client, upstream)."},
    {"aop_realtime_refused_total", "counter", "Realtime session requests refused before a 101, by reason (the error's code: session_limit_exceeded, invalid_api_key, upstream_refused, ...)."},
    {"aop_realtime_session_seconds", "histogram", "Realtime WebSocket sessions' durations, from the 101 to the end (0 for a handshake that failed)."},
    {"aop_realtime_sessions_open", "gauge", "Realtime WebSocket sessions open or opening now, over every companion process of the host."},
    {"aop_active_streams", "gauge", "Event streams being relayed now."},
    {"aop_requests_in_flight", "gauge", "Requests being served now."},
    {"aop_target_in_flight", "gauge", "Requests in flight at each target."},
    {"aop_target_cooldown_seconds", "gauge", "Seconds left of a target's cooldown after a 429 (0: none)."},
    {"aop_target_circuit_open", "gauge", "1 while a target's circuit keeps requests away after repeated failures (open, or its one trial out)."},
    {"aop_target_consecutive_failures", "gauge", "Failures of a target since its last success."},
    {"aop_target_ratelimit_remaining_requests", "gauge", "x-ratelimit-remaining-requests a target last reported."},
    {"aop_target_ratelimit_remaining_tokens", "gauge", "x-ratelimit-remaining-tokens a target last reported."},
    {"aop_entra_token_requests_total", "counter", "Entra ID token requests this host made, by credential source and outcome (ok, refused: the credential is wrong, failed: Entra unreachable, slow or in error)."},
    {"aop_entra_token_expiry_seconds", "gauge", "Seconds until the host's current Entra ID token expires, by credential source (0: none usable)."},
    {"aop_fastcgi_connections_refused_total", "counter", "Connections to a TCP FastCGI socket from an address FCGI_WEB_SERVER_ADDRS does not name, closed unanswered."},
    {"aop_state_slots_used", "gauge", "Slots taken in the shared state's tables (processes, targets, keys, series); bounds.h sets their sizes."},
    {"aop_state_in_flight", "gauge", "Requests in flight the shared state counts for targets and keys, over the live processes."},
    {"aop_state_refused_total", "counter", "Names the shared state gave no slot (longer than their slot, or the table full): their limits and health are not shared."},
    {"aop_metric_series_dropped_total", "counter", "Metric updates lost because their series had no slot (the series table full, or the name too long)."},
};

void append_escaped(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

std::string number(double value) {
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char text[64];
    if (value == std::floor(value) && std::fabs(value) < 1e15) std::snprintf(text, sizeof text, "%.0f", value);
    else std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

// The family a series belongs to: its name without labels, and without the suffix a
// histogram's parts carry.
std::string family_of(const std::string& series) {
    std::string name = series.substr(0, series.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s = suffix;
        if (name.size() > s.size() && ends_with(name, s)) {
            std::string base = name.substr(0, name.size() - s.size());
            for (const Family& f : kFamilies)
                if (base == f.name && std::string(f.type) == "histogram") return base;
        }
    }
    return name;
}

// Orders a histogram's lines as Prometheus writes them: per label set, buckets by `le`,
// then _sum and _count.
std::string sort_key(const std::string& series) {
    std::string name = series.substr(0, series.find('{'));
    std::string labels = series.size() > name.size() ? series.substr(name.size()) : "";
    size_t le = ends_with(name, "_bucket") ? labels.rfind("le=\"") : std::string::npos;  // the last label
    double bound = 0;
    if (le != std::string::npos) {
        std::string value = labels.substr(le + 4, labels.find('"', le + 4) - le - 4);
        bound = value == "+Inf" ? 1e300 : std::atof(value.c_str());
        labels.erase(le > 1 && labels[le - 1] == ',' ? le - 1 : le, labels.find('"', le + 4) - le + 2);
    }
    int part = ends_with(name, "_bucket") ? 0 : ends_with(name, "_sum") ? 1 : 2;
    char order[40];
    std::snprintf(order, sizeof order, "%d %030.6f", part, bound > 1e20 ? 1e20 : bound);
    return family_of(series) + labels + order;
}

// `,name="value"` (`{` before the first), the value escaped.
void append_label(std::string& out, char& separator, const char* name, std::string_view value) {
    out += separator;
    out += name;
    out += "=\"";
    append_escaped(out, value);
    out += '"';
    separator = ',';
}

}  // namespace

void append_series(std::string& out, std::string_view family, Labels labels, const char* extra,
                   std::string_view extra_value) {
    out.append(family);
    if (labels.size() == 0 && !extra) return;
    char separator = '{';
    for (const auto& [name, value] : labels) append_label(out, separator, name, value);
    if (extra) append_label(out, separator, extra, extra_value);
    out += '}';
}

std::string series_name(const SeriesFamily& family, LabelValues values) {
    std::string out(family.name);
    char separator = '{';
    const std::string_view* value = values.begin();
    for (const char* name : family.labels) append_label(out, separator, name, value != values.end() ? *value++ : "");
    if (separator == ',') out += '}';
    return out;
}

std::string series_name(std::string_view family, Labels labels) {
    std::string out;
    append_series(out, family, labels);
    return out;
}

HistogramSeries histogram_series(std::string_view family, Labels labels) {
    HistogramSeries out;
    std::string base(family);
    for (const char* bound : buckets_of(family).labels) {
        out.buckets.emplace_back();
        append_series(out.buckets.back(), base + "_bucket", labels, "le", bound);
    }
    out.count = series_name(base + "_count", labels);
    out.sum = series_name(base + "_sum", labels);
    return out;
}

size_t first_bucket(double value, std::string_view family) {
    const std::vector<double>& bounds = buckets_of(family).bounds;
    size_t i = 0;
    while (i < bounds.size() && value > bounds[i]) ++i;
    return i;  // bounds.size(): only +Inf
}

std::string render_metrics(std::vector<SeriesValue> series, const std::vector<TargetView>& targets, int64_t now_ms) {
    for (const TargetView& t : targets) {
        auto gauge = [&](const char* family, double value) {
            series.push_back({series_name(family, {{"target", t.name}}), true, value});
        };
        const TargetHealth& h = t.health;
        gauge("aop_target_in_flight", static_cast<double>(h.in_flight));
        gauge("aop_target_cooldown_seconds", h.cooldown_until_ms > now_ms ? (h.cooldown_until_ms - now_ms) / 1000.0 : 0);
        gauge("aop_target_circuit_open", circuit_blocks(h, now_ms) ? 1 : 0);
        gauge("aop_target_consecutive_failures", h.failures);
        if (t.remaining_requests >= 0) gauge("aop_target_ratelimit_remaining_requests", static_cast<double>(t.remaining_requests));
        if (t.remaining_tokens >= 0) gauge("aop_target_ratelimit_remaining_tokens", static_cast<double>(t.remaining_tokens));
    }
    std::map<std::string, std::vector<std::pair<std::string, const SeriesValue*>>> by_family;
    for (const SeriesValue& s : series) by_family[family_of(s.series)].emplace_back(sort_key(s.series), &s);
    std::string out;
    for (const Family& f : kFamilies) {
        auto found = by_family.find(f.name);
        bool always = std::string(f.name) == "aop_active_streams" || std::string(f.name) == "aop_requests_in_flight";
        if (found == by_family.end() && !always) continue;
        out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
        if (found == by_family.end()) {
            out += std::string(f.name) + " 0\n";
            continue;
        }
        auto& lines = found->second;
        std::sort(lines.begin(), lines.end());
        for (const auto& line : lines) out += line.second->series + " " + number(line.second->value) + "\n";
    }
    return out;
}

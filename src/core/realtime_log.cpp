// A realtime session's access line and metric labels (realtime_log.h). Tested in
// tests/unit/realtime_log_test.cpp.
#include "realtime_log.h"

#include <cjson/cJSON.h>

#include "json_ptr.h"
#include "text.h"

namespace {

std::string json_line(const RealtimeSessionLog& log, long long time) {
    JsonPtr owned(cJSON_CreateObject());
    cJSON* line = owned.get();
    cJSON_AddStringToObject(line, "time", access_log_time(time).c_str());
    cJSON_AddStringToObject(line, "method", "GET");
    cJSON_AddStringToObject(line, "path", "/v1/realtime");
    for (auto [name, value] : {std::pair<const char*, const std::string&>{"key", log.key_name}, {"model", log.model},
                               {"deployment", log.deployment}, {"outcome", log.outcome}}) {
        if (value.empty() || value == "-") cJSON_AddNullToObject(line, name);
        else cJSON_AddStringToObject(line, name, quote_value(value, 300).c_str());
    }
    for (auto [name, value] : {std::pair<const char*, double>{"ms", static_cast<double>(log.duration_ms)},
                               {"client_bytes", static_cast<double>(log.client_bytes)},
                               {"upstream_bytes", static_cast<double>(log.upstream_bytes)},
                               {"client_messages", static_cast<double>(log.client_messages)},
                               {"upstream_messages", static_cast<double>(log.upstream_messages)}})
        cJSON_AddNumberToObject(line, name, value);
    for (auto [name, code] : {std::pair<const char*, int>{"client_close", log.client_close}, {"upstream_close", log.upstream_close}}) {
        if (code) cJSON_AddNumberToObject(line, name, code);
        else cJSON_AddNullToObject(line, name);  // none received
    }
    return print_json(line, "{}");
}

}  // namespace

std::string realtime_access_line(const RealtimeSessionLog& log, long long time, LogFormat format) {
    if (format == LogFormat::Json) return json_line(log, time);
    return access_log_time(time) + " " + realtime_session_line(log);
}

std::string realtime_outcome_label(const std::string& outcome) {
    std::string label = outcome.substr(0, outcome.find(" ("));
    return label.empty() ? "unknown" : label;
}

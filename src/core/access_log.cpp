#include "json_ptr.h"
#include "access_log.h"

#include <unistd.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <ctime>

#include "text.h"

namespace {

// Formatted once per second per thread: every line of that second shares it.
const std::string& iso_time(long long seconds) {
    thread_local long long cached_seconds = -1;
    thread_local std::string cached;
    if (seconds == cached_seconds) return cached;
    cached_seconds = seconds;
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
    cached = buffer;
    return cached;
}

// Free text in quotes: spaces kept, quotes and control bytes escaped, cut at 300 bytes.
std::string quoted_text(const std::string& text) {
    std::string out;
    for (char c : quote_value(text, 300)) {
        if (c == '"') out += "\\x22";
        else out += c;
    }
    return "\"" + out + "\"";
}

std::string or_dash(const std::string& value) { return value.empty() ? "-" : log_safe(value); }

// A string field, or null when empty; client values as plain ASCII.
void add_field(cJSON* object, const char* name, const std::string& value, size_t max_length = 200) {
    if (value.empty()) cJSON_AddNullToObject(object, name);
    else cJSON_AddStringToObject(object, name, quote_value(value, max_length).c_str());
}

std::string json_line(const AccessLogEntry& e, long long time) {
    JsonPtr owned(cJSON_CreateObject());
    cJSON* line = owned.get();
    cJSON_AddStringToObject(line, "time", iso_time(time).c_str());
    add_field(line, "method", e.method, 16);
    add_field(line, "path", e.path);
    add_field(line, "model", e.model);
    add_field(line, "deployment", e.deployment);
    cJSON_AddNumberToObject(line, "status", e.status);
    if (e.upstream_status) cJSON_AddNumberToObject(line, "upstream_status", static_cast<double>(e.upstream_status));
    else cJSON_AddNullToObject(line, "upstream_status");
    cJSON_AddNumberToObject(line, "bytes", static_cast<double>(e.bytes));
    cJSON_AddNumberToObject(line, "ms", static_cast<double>(e.duration_ms));
    add_field(line, "outcome", e.outcome);
    add_field(line, "key", e.key);
    add_field(line, "target", e.target);
    if (e.tries) cJSON_AddNumberToObject(line, "tries", e.tries);
    else cJSON_AddNullToObject(line, "tries");
    for (auto [name, count] : {std::pair<const char*, long long>{"prompt_tokens", e.prompt_tokens}, {"completion_tokens", e.completion_tokens}}) {
        if (count >= 0) cJSON_AddNumberToObject(line, name, static_cast<double>(count));
        else cJSON_AddNullToObject(line, name);
    }
    add_field(line, "error", e.error, 300);
    return print_json(line, "{}") + "\n";
}

}  // namespace

std::string format_access_log(const AccessLogEntry& e, long long time, LogFormat format) {
    if (format == LogFormat::Json) return json_line(e, time);
    std::string line;
    line.reserve(160 + e.path.size() + e.model.size() + e.deployment.size());
    line.append(iso_time(time)).append(" ").append(or_dash(e.method)).append(" ").append(or_dash(e.path));
    line.append(" model=").append(or_dash(e.model)).append(" deployment=").append(or_dash(e.deployment));
    line.append(" status=").append(std::to_string(e.status));
    line.append(" upstream=").append(e.upstream_status ? std::to_string(e.upstream_status) : "-");
    line.append(" bytes=").append(std::to_string(e.bytes));
    line.append(" ms=").append(std::to_string(e.duration_ms));
    line.append(" outcome=").append(or_dash(e.outcome));
    if (!e.key.empty()) line.append(" key=").append(log_safe(e.key));
    if (!e.target.empty()) line.append(" target=").append(log_safe(e.target)).append(" tries=").append(std::to_string(e.tries));
    if (e.prompt_tokens >= 0 || e.completion_tokens >= 0)
        line.append(" tokens=").append(std::to_string(std::max(0LL, e.prompt_tokens))).append("+").append(std::to_string(std::max(0LL, e.completion_tokens)));
    if (!e.error.empty()) line.append(" error=").append(quoted_text(e.error));
    line.append("\n");
    return line;
}

void write_access_log(const AccessLogEntry& entry, LogFormat format) {
    std::string line = format_access_log(entry, static_cast<long long>(std::time(nullptr)), format);
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

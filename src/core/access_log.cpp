#include "json_ptr.h"
#include "access_log.h"

#include <unistd.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "text.h"

// Formatted once per second per thread: every line of that second shares it.
const std::string& access_log_time(long long seconds) {
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

namespace {

// Free text in quotes: spaces kept, quotes and control bytes escaped, cut at 300 bytes.
std::string quoted_text(const std::string& text) {
    std::string out;
    for (char c : quote_value(text, 300)) {
        if (c == '"') out += "\\x22";
        else out += c;
    }
    return "\"" + out + "\"";
}

// A field's value made safe, or "-" when empty, appended to the line in place.
void append_or_dash(std::string& line, std::string_view value) {
    if (value.empty()) line += '-';
    else append_log_safe(line, value);
}

void append_number(std::string& line, long long value) {
    char digits[24];
    std::to_chars_result end = std::to_chars(digits, digits + sizeof digits, value);
    line.append(digits, end.ptr);
}

// A string field, or null when empty; client values as plain ASCII.
void add_field(cJSON* object, const char* name, std::string_view value, size_t max_length = 200) {
    if (value.empty()) cJSON_AddNullToObject(object, name);
    else cJSON_AddStringToObject(object, name, quote_value(value, max_length).c_str());
}

std::string json_line(const AccessLogEntry& e, long long time) {
    JsonPtr owned(cJSON_CreateObject());
    cJSON* line = owned.get();
    cJSON_AddStringToObject(line, "time", access_log_time(time).c_str());
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
    add_field(line, "rewrites", e.rewrites);
    return print_json(line, "{}") + "\n";
}

}  // namespace

std::string format_access_log(const AccessLogEntry& e, long long time, LogFormat format) {
    std::string line;
    append_access_log(line, e, time, format);
    return line;
}

void append_access_log(std::string& line, const AccessLogEntry& e, long long time, LogFormat format) {
    if (format == LogFormat::Json) {
        line += json_line(e, time);
        return;
    }
    line.reserve(line.size() + 160 + e.path.size() + e.model.size() + e.deployment.size());
    line.append(access_log_time(time)).append(" ");
    append_or_dash(line, e.method);
    line += ' ';
    append_or_dash(line, e.path);
    line.append(" model=");
    append_or_dash(line, e.model);
    line.append(" deployment=");
    append_or_dash(line, e.deployment);
    line.append(" status=");
    append_number(line, e.status);
    line.append(" upstream=");
    if (e.upstream_status) append_number(line, e.upstream_status);
    else line += '-';
    line.append(" bytes=");
    append_number(line, e.bytes);
    line.append(" ms=");
    append_number(line, e.duration_ms);
    line.append(" outcome=");
    append_or_dash(line, e.outcome);
    if (!e.key.empty()) append_log_safe(line.append(" key="), e.key);
    if (!e.target.empty()) {
        append_log_safe(line.append(" target="), e.target);
        append_number(line.append(" tries="), e.tries);
    }
    if (e.prompt_tokens >= 0 || e.completion_tokens >= 0) {
        append_number(line.append(" tokens="), std::max(0LL, e.prompt_tokens));
        append_number(line.append("+"), std::max(0LL, e.completion_tokens));
    }
    if (!e.rewrites.empty()) append_log_safe(line.append(" rewrites="), e.rewrites);
    if (!e.error.empty()) line.append(" error=").append(quoted_text(e.error));
    line.append("\n");
}

void write_access_log(const AccessLogEntry& entry, LogFormat format) {
    std::string line = format_access_log(entry, static_cast<long long>(std::time(nullptr)), format);
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

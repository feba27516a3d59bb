#include "json_ptr.h"
#include "access_log.h"

#include <unistd.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <charconv>
#include <cstring>
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

// The text line written at a cursor, into room made once for the whole line: each field
// copied or escaped in place, each number written by to_chars, no append's checks a field.
class LineCursor {
public:
    explicit LineCursor(char* at) : at_(at) {}
    template <size_t N>
    LineCursor& text(const char (&literal)[N]) {  // a literal: its size known, no strlen
        std::memcpy(at_, literal, N - 1);
        at_ += N - 1;
        return *this;
    }
    LineCursor& text(std::string_view value) {
        std::memcpy(at_, value.data(), value.size());
        at_ += value.size();
        return *this;
    }
    LineCursor& safe(std::string_view value) {
        at_ = write_log_safe(at_, value);
        return *this;
    }
    // A field's value made safe, or "-" when empty.
    LineCursor& safe_or_dash(std::string_view value) {
        if (value.empty()) *at_++ = '-';
        else at_ = write_log_safe(at_, value);
        return *this;
    }
    LineCursor& number(long long value) {
        at_ = std::to_chars(at_, at_ + kNumberRoom, value).ptr;
        return *this;
    }
    char* at() const { return at_; }

    static const size_t kNumberRoom = 20;  // "-9223372036854775808"

private:
    char* at_;
};

// Room for every literal of a text line (under 140 bytes) and its seven numbers.
const size_t kFixedRoom = 140 + 7 * LineCursor::kNumberRoom;

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
    std::string error = e.error.empty() ? std::string() : quoted_text(e.error);
    size_t room = kFixedRoom + error.size() + access_log_time(time).size();
    for (std::string_view field : {e.method, e.path, std::string_view(e.model), std::string_view(e.deployment),
                                   std::string_view(e.outcome), std::string_view(e.key), std::string_view(e.target),
                                   std::string_view(e.rewrites)})
        room += log_safe_room(field.size());
    size_t start = line.size();
    line.resize(start + room);
    LineCursor out(line.data() + start);
    out.text(access_log_time(time)).text(" ").safe_or_dash(e.method).text(" ").safe_or_dash(e.path);
    out.text(" model=").safe_or_dash(e.model).text(" deployment=").safe_or_dash(e.deployment);
    out.text(" status=").number(e.status).text(" upstream=");
    if (e.upstream_status) out.number(e.upstream_status);
    else out.text("-");
    out.text(" bytes=").number(e.bytes).text(" ms=").number(e.duration_ms);
    out.text(" outcome=").safe_or_dash(e.outcome);
    if (!e.key.empty()) out.text(" key=").safe(e.key);
    if (!e.target.empty()) out.text(" target=").safe(e.target).text(" tries=").number(e.tries);
    if (e.prompt_tokens >= 0 || e.completion_tokens >= 0)
        out.text(" tokens=").number(std::max(0LL, e.prompt_tokens)).text("+").number(std::max(0LL, e.completion_tokens));
    if (!e.rewrites.empty()) out.text(" rewrites=").safe(e.rewrites);
    if (!error.empty()) out.text(" error=").text(error);
    out.text("\n");
    line.resize(static_cast<size_t>(out.at() - line.data()));
}

void write_access_log(const AccessLogEntry& entry, LogFormat format) {
    std::string line = format_access_log(entry, static_cast<long long>(std::time(nullptr)), format);
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

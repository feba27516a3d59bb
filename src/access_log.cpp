#include "access_log.h"

#include <unistd.h>

#include <ctime>

#include "text.h"

namespace {

std::string iso_time(long long seconds) {
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buffer;
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

}  // namespace

std::string format_access_log(const AccessLogEntry& e, long long time) {
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
    if (!e.error.empty()) line.append(" error=").append(quoted_text(e.error));
    line.append("\n");
    return line;
}

void write_access_log(const AccessLogEntry& entry) {
    std::string line = format_access_log(entry, static_cast<long long>(std::time(nullptr)));
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

// One access-log line per request, written to stderr by the caller.
#pragma once

#include <string>
#include <string_view>

struct AccessLogEntry {
    // Views of the request's own (the exchange's), which outlive its line: not copied.
    std::string_view method;
    std::string_view path;   // without the query string, which may carry keys
    std::string model;       // empty: none
    std::string deployment;  // empty: none
    int status = 0;          // what the client got
    long upstream_status = 0;  // 0: the upstream was not asked or did not answer
    long long bytes = 0;     // response body bytes sent to the client
    long long duration_ms = 0;
    std::string outcome;     // "ok", "client-gone", "upstream-timeout", ...
    std::string key;         // the client key's name (never the key); empty: none asked
    std::string target;      // routing table: "endpoint/deployment" of the last try
    int tries = 0;           // routing table: targets tried (0: no table route)
    long long prompt_tokens = -1;      // from the answer's usage; -1: not reported
    long long completion_tokens = -1;
    std::string error;       // what went wrong, in libcurl's words or the deadline's
    // What the proxy changed in the body (reasoning_params.h): "max_tokens>max_completion_tokens,-temperature".
    std::string rewrites;
};

// Text: "2026-11-29T12:00:00Z POST /v1/... model=... status=200 ..."; Json: one object a
// line with the same fields (AZURE_OPENAI_PROXY_LOG_FORMAT).
enum class LogFormat { Text, Json };

// `time` is seconds since the epoch. Client-supplied fields are escaped (in JSON, to
// plain ASCII, so every line is valid JSON whatever bytes a client sent).
std::string format_access_log(const AccessLogEntry& entry, long long time, LogFormat format = LogFormat::Text);
// The same line appended to `out` (a buffer of lines: no string of its own).
void append_access_log(std::string& out, const AccessLogEntry& entry, long long time, LogFormat format);

// `time` (seconds since the epoch) as the lines begin: 2026-11-29T12:00:00Z.
const std::string& access_log_time(long long time);

// Writes the line for `entry`, stamped now, to stderr in one write(2), so lines from
// several threads never interleave.
void write_access_log(const AccessLogEntry& entry, LogFormat format);

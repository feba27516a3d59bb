// A realtime WebSocket session's access line and metric labels (the companion's), as the
// FastCGI program's access log has them: stamped with the time, in text or in JSON as
// AZURE_OPENAI_PROXY_LOG_FORMAT says. The key is named, never shown.
#pragma once

#include <string>

#include "access_log.h"
#include "realtime_socket.h"

// Text: "2026-12-06T12:00:00Z realtime session key=alice model=... duration_ms=..."
// (realtime_session_line() after the time); JSON: one object a line with the same fields
// (client values escaped to plain ASCII). `time`: seconds since the epoch.
std::string realtime_access_line(const RealtimeSessionLog& log, long long time, LogFormat format);

// The outcome as a metric's label: its words without the library's detail in parentheses
// ("client vanished (End of file)" -> "client vanished"), so the label's values stay few.
std::string realtime_outcome_label(const std::string& outcome);

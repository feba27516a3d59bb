// Realtime WebSocket sessions (issue 25, the companion program azure-openai-proxy-realtime):
// the decisions about one session as plain functions — which client key it presents, which
// subprotocol the answer names, which deployment and upstream URL it opens, which headers
// carry the proxy's credential there, which close code each side gets and the session's log
// line. The sockets that use them are the companion's room, src/realtime.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "request.h"
#include "response.h"

// The browser SDKs cannot set headers on a WebSocket, so they send the key as a subprotocol
// `openai-insecure-api-key.KEY` beside `realtime`.
constexpr std::string_view kKeySubprotocol = "openai-insecure-api-key.";

// The client key a session presents: `Authorization: Bearer` or `api-key` (client_keys.h),
// else the key subprotocol of Sec-WebSocket-Protocol. Empty when none.
std::string realtime_presented_key(const Headers& headers);

// The subprotocol the answer names: `realtime` when the client offered it, else none ("").
// Never the key subprotocol (the answer would echo the key).
std::string realtime_answer_protocol(const Headers& headers);

// The deployment for a session's `model` (the query's): the mapper's, else the model itself.
// False, with the client's error, when the model is missing or the deployment could not be
// put in a URL as it is.
bool realtime_deployment(const EndpointSettings& settings, const std::string& model, std::string& deployment,
                         ProxyError& error);

// Where the session goes: ws(s)://host:port + target. `preview_api_version` non-empty:
// the dated preview shape `/openai/realtime?api-version=…&deployment=…` (retired by Azure);
// else the GA route `/openai/v1/realtime?model=…`.
struct RealtimeUpstream {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;  // path and query
};
bool realtime_upstream(const EndpointSettings& settings, const std::string& deployment,
                       const std::string& preview_api_version, RealtimeUpstream& upstream, std::string& error);

// The credential headers for the upstream handshake: the server's key (`api-key` for
// Azure, `Authorization: Bearer` for OpenAI), else the client's own key passed on.
Headers realtime_upstream_headers(const EndpointSettings& settings, const std::string& client_key);

// The close code to send one side when the other closed with `code` (0: it vanished without
// a close frame). Codes a peer must never send (1005, 1006, 1015) and unknown ones become
// 1011 (vanished upstream) or 1001 (vanished client).
int relayed_close_code(int code, bool upstream_closed);

// The session's access-log line; names the key, never shows it.
struct RealtimeSessionLog {
    std::string key_name;  // "-" without client keys
    std::string model, deployment;
    long long duration_ms = 0;
    unsigned long long client_bytes = 0, upstream_bytes = 0;  // payload received from each side
    unsigned long long client_messages = 0, upstream_messages = 0;
    int client_close = 0, upstream_close = 0;  // codes received; 0: none (vanished)
    std::string outcome;  // "closed", "client vanished", "upstream vanished", "idle", ...
};
std::string realtime_session_line(const RealtimeSessionLog& log);
// A close code received, for the log and metrics: "none" when the peer sent none (it
// vanished, or never answered our close).
std::string close_code_label(int code);

// The realtime API's two HTTP calls (WebRTC session setup): POST /v1/realtime/client_secrets
// (an ephemeral key for a session) and POST /v1/realtime/calls (the browser's SDP offer).
// Plain functions over the request: which credential goes to Azure, where the session's
// model lies, what a call's body is, and the call's Location as the proxy's path.
#pragma once

#include <string>
#include <string_view>

#include "api_routes.h"
#include "json_model.h"
#include "request.h"

// A call whose body is the bare SDP offer and whose `Authorization: Bearer` is the ephemeral
// key that client_secrets gave: that key is the upstream's credential for the call (Azure's,
// or in openai mode OpenAI's), passed as it is (the server's key or token is not added); the
// proxy's client key then comes in `api-key`, which stays behind.
bool carries_ephemeral_key(const Request& request, const Route& route);

// The proxy's client key as the request presents it: `Authorization: Bearer` or `api-key`,
// but only `api-key` on a call that carries an ephemeral key.
std::string_view presented_client_key(const Request& request, const Route& route);

// What a call's body is, from its Content-Type.
enum class CallBody { Sdp, Form, Other };
CallBody call_body(const Request& request);

// An SDP offer starts with its version line, "v=0".
bool looks_like_sdp(std::string_view body);

// The longest session JSON a call's form may carry (its `session` field).
constexpr size_t kLongestSession = 64 * 1024;

// The model a session object names: `{"session":{"type":"realtime","model":…}}` (a
// client_secrets body, `in_member` true) or the session object itself (a call's form field).
// `begin`/`end`: where the session object lies in `body`. Ambiguous when "session" comes twice
// or a top-level key is spelled with escapes (it might decode to "session").
struct SessionModel {
    ModelField field;
    size_t begin = 0, end = 0;
};
SessionModel session_model(const std::string& body, bool in_member);

// `body` with the session's model replaced by `deployment`, every other byte as it was.
std::string with_session_model(const std::string& body, const SessionModel& session, const std::string& deployment);

// A query parameter's first value (percent-decoded; "" when absent), and the query with it replaced.
std::string query_value(const std::string& query, std::string_view name);
std::string with_query_value(const std::string& query, std::string_view name, const std::string& value);

// Azure's Location for a call (`/openai/v1/realtime/calls/rtc_…`, as a path or on the
// endpoint's host) as the proxy's own path: the client's mount + `/v1/realtime/calls/rtc_…`.
// Any other Location is left as it is.
std::string proxy_call_location(const std::string& location, const std::string& endpoint, const std::string& mount);

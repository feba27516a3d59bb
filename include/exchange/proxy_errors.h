// Every error a request can get from the proxy itself, in one place: its status, its type,
// its code and its words, shaped as OpenAI's (response.h's ProxyError). The response writer
// sends them; the exchange's phases only name them. A client's value appears at most as a
// short escaped prefix (quote_value).
#pragma once

#include <cstdint>
#include <string>

#include "key_limits.h"
#include "chat_to_responses.h"
#include "response.h"

struct Pick;
struct Request;
struct UpstreamResult;

namespace errors {

// Reading the request.
ProxyError malformed_param(const std::string& what);
ProxyError body_on_get(const std::string& method);
ProxyError body_too_large(long long limit);
ProxyError body_unreadable();
ProxyError body_too_late();
ProxyError upload_not_stored();

// Admission: the client's key.
ProxyError missing_key();
ProxyError wrong_key();
ProxyError expired_key();

// Routes the proxy does not serve.
ProxyError invalid_path(const Request& request);
ProxyError unknown_route(const Request& request);
ProxyError method_not_allowed(const std::string& method);
ProxyError realtime_not_supported();
ProxyError realtime_call_invalid(const std::string& why);  // a realtime call's body, and why not
ProxyError metrics_forbidden();
ProxyError model_not_found(const std::string& model);

// The model a body names, and whether this client may use it.
ProxyError invalid_json();
ProxyError missing_model();
ProxyError model_not_a_string();
ProxyError model_named_twice();
ProxyError model_too_long();
ProxyError model_not_allowed(const std::string& model);
ProxyError upload_model_named_twice();
ProxyError upload_unreadable();
ProxyError upload_model_missing();
ProxyError batch_refused(bool by_key_list);
ProxyError invalid_deployment(const std::string& model, const std::string& deployment);
// A chat request the Chat->Responses bridge cannot carry (chat_to_responses.h): 400 naming
// the parameter, 413 for a request above the bridge's limits.
ProxyError bridge_refused(const BridgeRefusal& refusal);

// The upstream.
ProxyError no_target(const Pick& pick, const std::string& model);
ProxyError upstream_not_started(const std::string& why);
// The endpoint's Entra ID token could not be had (the log says Entra's words, not the client).
ProxyError upstream_auth_failed();
ProxyError upstream_failed(const UpstreamResult& result, const std::string& endpoint);

}  // namespace errors

// A wait in whole seconds, rounded up (what Retry-After says).
long whole_seconds(int64_t ms);
// Retry-After, and Retry-After-Ms as Azure sends it, for a wait of `ms`.
void add_retry_after(Headers& headers, int64_t ms);
// x-ratelimit-* for a key with limits, as OpenAI sends them for an account.
Headers rate_limit_headers(const KeyDecision& decision);

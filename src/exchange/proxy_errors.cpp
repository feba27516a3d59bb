// The catalogue of the proxy's own errors (proxy_errors.h).
#include "proxy_errors.h"

#include "target_choice.h"
#include "json_model.h"
#include "request.h"
#include "text.h"
#include "upstream.h"

namespace errors {

namespace {
std::string quoted_request(const Request& request) {
    return quote_value(request.method, 16) + " " + quote_value(request.path, 128);
}
}  // namespace

ProxyError malformed_param(const std::string& what) {
    return make_error(400,
                      "The request's " + quote_value(what) +
                          " is malformed (a line break or NUL, a space or control byte in the target, or a length that is not a number).",
                      "invalid_request");
}

ProxyError body_on_get(const std::string& method) {
    return make_error(400, "A " + method + " request cannot carry a body.", "unexpected_body");
}

ProxyError body_too_large(long long limit) {
    return make_error(413, "Request body is larger than this proxy's limit of " + std::to_string(limit) + " bytes.",
                      "request_too_large");
}

ProxyError body_unreadable() { return make_error(400, "The request body could not be read.", "body_read_error"); }

ProxyError body_too_late() { return make_error(408, "The request body did not arrive in time.", "request_timeout"); }

ProxyError upload_not_stored() {
    return make_error(507, "The proxy could not store the upload (disk full?).", "upload_storage_failed", "", "api_error");
}

ProxyError missing_key() {
    return make_error(401,
                      "You didn't provide an API key. You need to provide your API key "
                      "in an Authorization header using Bearer auth (i.e. "
                      "Authorization: Bearer YOUR_KEY), or as the api-key header.",
                      "invalid_api_key");
}

ProxyError wrong_key() {
    return make_error(401, "Incorrect API key provided. Ask the operator of this proxy for a key.", "invalid_api_key");
}

ProxyError expired_key() {
    return make_error(401, "This API key has expired. Ask the operator of this proxy for a new one.", "expired_api_key");
}

ProxyError invalid_path(const Request& request) {
    return make_error(400,
                      "Invalid URL (" + quoted_request(request) +
                          "): a path segment may not be '.' or '..', nor hold "
                          "'/', '\\' or control characters, encoded or not.",
                      "invalid_path");
}

ProxyError unknown_route(const Request& request) {
    return make_error(404, "Invalid URL (" + quoted_request(request) + "): this proxy has no such route.", "unknown_route");
}

ProxyError method_not_allowed(const std::string& method) {
    return make_error(405, "The method " + quote_value(method, 16) + " is not allowed; the API has GET, POST, DELETE and HEAD.",
                      "method_not_allowed");
}

ProxyError realtime_not_supported() {
    return make_error(501,
                      "Realtime sessions over a WebSocket are not served by this proxy yet (a FastCGI program "
                      "cannot carry a WebSocket). Over HTTP it serves the WebRTC calls: POST "
                      "/v1/realtime/client_secrets and POST /v1/realtime/calls.",
                      "realtime_not_supported");
}

ProxyError realtime_call_invalid(const std::string& why) {
    return make_error(400, why, "invalid_realtime_call");
}

ProxyError metrics_forbidden() {
    return make_error(403, "The metrics are shown to an admin key (AZURE_OPENAI_PROXY_ADMIN_KEYS) or on this host only.",
                      "metrics_forbidden");
}

ProxyError model_not_found(const std::string& model) {
    return make_error(404, "The model '" + quote_value(model) + "' does not exist.", "model_not_found", "model");
}

ProxyError invalid_json() {
    return make_error(400,
                      "We could not parse the JSON body of your request. The API "
                      "expects a JSON object, and what was sent was not valid JSON.",
                      "invalid_json");
}

ProxyError missing_model() { return make_error(400, "You must provide a model parameter.", "missing_model", "model"); }

ProxyError model_not_a_string() {
    return make_error(400, "The model parameter must be a string.", "invalid_model", "model");
}

ProxyError model_named_twice() {
    return make_error(400,
                      "The JSON body names its model more than once, with escapes, or with a "
                      "NUL character; send one plain \"model\" key.",
                      "invalid_model", "model");
}

ProxyError model_too_long() {
    return make_error(400, "The model parameter is longer than " + std::to_string(kLongestModel) + " bytes.",
                      "invalid_model", "model");
}

ProxyError model_not_allowed(const std::string& model) {
    return make_error(403, "The model '" + quote_value(model) + "' is not available through this proxy.",
                      "model_not_allowed", "model");
}

ProxyError upload_model_named_twice() {
    return make_error(400, "The upload's form has more than one field 'model'; send one.", "invalid_model", "model");
}

ProxyError upload_unreadable() {
    return make_error(400, "The upload's form could not be read to find its field 'model'.", "invalid_model", "model");
}

ProxyError upload_model_missing() {
    return make_error(400, "You must provide a model parameter (the form field 'model').", "missing_model", "model");
}

ProxyError batch_refused(bool by_key_list) {
    std::string list = by_key_list ? "this key's models (in the configuration file)" : "AZURE_OPENAI_PROXY_ALLOWED_MODELS";
    return make_error(403,
                      "Batches are refused while models are limited by " + list +
                          ": a batch's models are inside its input file, which the proxy does not read. "
                          "Send the requests one by one, or ask the operator for a key without a model list.",
                      "model_not_allowed");
}

ProxyError invalid_deployment(const std::string& model, const std::string& deployment) {
    return make_error(400,
                      "The model '" + quote_value(model) + "' maps to the deployment name '" + quote_value(deployment) +
                          "', which is not a valid Azure deployment name (letters, digits, "
                          "'-', '_', '.'). Add a mapping in AZURE_OPENAI_MODEL_MAPPER.",
                      "invalid_model", "model");
}

// The bridge's own words (chat_to_responses.cpp quotes client values short); its code is
// OpenAI's (unsupported_parameter, unsupported_value, invalid_value, request_too_large).
ProxyError bridge_refused(const BridgeRefusal& refusal) {
    int status = refusal.code == "request_too_large" ? 413 : 400;
    return make_error(status, refusal.message, refusal.code, refusal.param);
}

// Every target is cooling down after a 429, behind an open circuit, or already tried.
ProxyError no_target(const Pick& pick, const std::string& model) {
    if (pick.cooling)
        return make_error(429,
                          "Every deployment of the model '" + quote_value(model) + "' is rate-limited; retry after " +
                              std::to_string(whole_seconds(pick.retry_after_ms)) + " s.",
                          "rate_limit_exceeded", "", "requests");
    return make_error(503, "No deployment of the model '" + quote_value(model) + "' can take the request now (each failed recently).",
                      "no_healthy_deployment", "", "api_error");
}

ProxyError upstream_not_started(const std::string& why) {
    return make_error(502, "The proxy could not start the upstream request: " + why, "upstream_unreachable", "", "api_error");
}

ProxyError upstream_auth_failed() {
    return make_error(503,
                      "The proxy could not obtain the Entra ID token it sends upstream; it keeps trying. "
                      "Try again shortly.",
                      "upstream_auth_failed", "", "api_error");
}

// What a client is told when the upstream failed: the cause class, never libcurl's own
// words (those go to the log).
ProxyError upstream_failed(const UpstreamResult& result, const std::string& at) {
    switch (result.outcome) {
        case UpstreamOutcome::TimedOut:
            return make_error(504, "The upstream at " + at + " did not answer in time (" +
                                       (result.answered ? "silent for too long" : "no answer") + ").",
                              "upstream_timeout", "", "api_error");
        case UpstreamOutcome::DnsFailed:
            return make_error(502, "The upstream's host name (" + at + ") could not be resolved (DNS).",
                              "upstream_unreachable", "", "api_error");
        case UpstreamOutcome::ConnectFailed:
            return make_error(502, "The upstream at " + at + " could not be reached (connection refused or failed).",
                              "upstream_unreachable", "", "api_error");
        case UpstreamOutcome::TlsFailed:
            return make_error(502, "The TLS connection to the upstream at " + at +
                                       " failed (handshake or certificate verification).",
                              "upstream_tls_error", "", "api_error");
        case UpstreamOutcome::ProtocolError:
            return make_error(502, "The upstream at " + at + (result.answered ? " broke off its answer." : " sent a malformed answer or closed the connection."),
                              "upstream_protocol_error", "", "api_error");
        default:
            return make_error(502, "The proxy could not complete the request to the upstream at " + at + ".",
                              "upstream_failed", "", "api_error");
    }
}

}  // namespace errors

long whole_seconds(int64_t ms) { return static_cast<long>((ms + 999) / 1000); }

void add_retry_after(Headers& headers, int64_t ms) {
    headers.push_back({"Retry-After", std::to_string(whole_seconds(ms))});
    headers.push_back({"Retry-After-Ms", std::to_string(ms)});
}

Headers rate_limit_headers(const KeyDecision& d) {
    Headers headers;
    if (d.limit_requests >= 0) {
        headers.push_back({"X-Ratelimit-Limit-Requests", std::to_string(d.limit_requests)});
        headers.push_back({"X-Ratelimit-Remaining-Requests", std::to_string(d.remaining_requests)});
    }
    if (d.limit_tokens >= 0) {
        headers.push_back({"X-Ratelimit-Limit-Tokens", std::to_string(d.limit_tokens)});
        headers.push_back({"X-Ratelimit-Remaining-Tokens", std::to_string(d.remaining_tokens)});
    }
    return headers;
}

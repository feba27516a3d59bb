// Translation: the client's request -> the request sent upstream (URL and headers).
// The body is never rewritten here; it goes upstream byte for byte.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "request.h"
#include "api_routes.h"

// The seed's mapping: the mapper's entry, else the model with every '.' and ':' removed.
std::string deployment_for_model(const Config& config, const std::string& model);

// Whether a request for `model` (empty when the client named a deployment), sent to
// `deployment`, is allowed by AZURE_OPENAI_PROXY_ALLOWED_MODELS (always, when unset): the
// model is listed, or the deployment is where a listed model goes.
bool model_allowed(const Config& config, const std::string& model, const std::string& deployment);
// The same test against another list (a client key's models); an empty list allows all.
bool model_in_list(const Config& config, const std::vector<std::string>& list, const std::string& model,
                   const std::string& deployment);

// A deployment may only be one plain URL path segment: [A-Za-z0-9._~-], not "." or "..".
bool is_safe_deployment(const std::string& deployment);

// An Entra ID token (a JWT: three base64url parts) rather than an API key.
bool looks_like_jwt(const std::string& credential);

// A request's header lines as libcurl takes them ("Name: value"), one after the other in
// one string, each ended by a NUL: one allocation for all of them, handed over whole.
class UpstreamHeaders {
public:
    UpstreamHeaders() = default;
    UpstreamHeaders(std::initializer_list<std::string_view> lines) {
        for (std::string_view line : lines) push_back(line);
    }
    void reserve(size_t bytes) { text_.reserve(bytes); }
    void push_back(std::string_view line) { text_.append(line.data(), line.size()).push_back('\0'); }
    void add(std::string_view name, std::string_view value) {  // "name: value"
        text_.append(name.data(), name.size()).append(": ").append(value.data(), value.size()).push_back('\0');
    }
    // A client's header: its request name ("X_STAINLESS_OS") written as a header's name.
    void add_request_header(std::string_view request_name, std::string_view value) {
        append_header_name(text_, request_name);
        text_.append(": ").append(value.data(), value.size()).push_back('\0');
    }
    const std::string& text() const { return text_; }
    std::vector<std::string_view> lines() const;  // in order: for tests

private:
    std::string text_;
};

struct UpstreamRequest {
    std::string method;
    std::string url;
    UpstreamHeaders headers;
    // The endpoint's own Entra ID identity (it outlives the request: the routing table holds
    // it): the exchange adds "Authorization: Bearer" with its token as the try starts.
    const CredentialSettings* credential = nullptr;
};

// `deployment` is used for RouteKind::Deployment only and must be safe.
UpstreamRequest build_upstream_request(const EndpointSettings& config, const Request& request,
                                       const Route& route, const std::string& deployment);

// Request headers never sent upstream in any mode (hop-by-hop, framing, Host).
bool is_hop_by_hop(std::string_view name);

#include "api_routes.h"

#include <string>
#include <utility>

#include "text.h"

namespace {

// OpenAI operations that Azure serves under /openai/deployments/{deployment}/.
// Views: a comparison looks at the sizes first, without a call for most.
const std::string_view kDeploymentOperations[] = {
    "chat/completions",    "completions",        "embeddings",         "images/generations",
    "images/edits",        "audio/transcriptions", "audio/translations", "audio/speech",
};

// A literal prefix, looked at in place (text.h's starts_with makes a string of it). Sizes
// first, then the bytes: small enough to inline, where substr's bounds check was a call.
bool has_prefix(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && std::char_traits<char>::compare(text.data(), prefix.data(), prefix.size()) == 0;
}

Route make(RouteKind kind) {
    Route route;
    route.kind = kind;
    return route;
}

// Legacy forms: /v1/engines/{model}/{operation} and /v1/deployments/{deployment}/{operation}.
bool route_legacy(const std::string& rest, Route& route) {
    bool engines = has_prefix(rest, "engines/");
    if (!engines && !has_prefix(rest, "deployments/")) return false;
    size_t name_start = rest.find('/') + 1;
    size_t name_end = rest.find('/', name_start);
    if (name_end == std::string::npos || name_end == name_start) return false;
    std::string operation = rest.substr(name_end + 1);
    if (!is_deployment_operation(operation)) return false;
    route = make(RouteKind::Deployment);
    route.operation = operation;
    std::string name = percent_decode(rest.substr(name_start, name_end - name_start));
    (engines ? route.model : route.deployment) = name;
    return true;
}

// The realtime API over HTTP: the WebRTC calls (client_secrets, calls, a call's hangup);
// anything else (the WebSocket session) is a 501.
Route route_realtime(std::string_view method, const std::string& rest) {
    std::vector<std::string> parts = split(rest, '/');
    bool hangup = parts.size() == 4 && parts[1] == "calls" && parts[3] == "hangup" && !parts[2].empty();
    bool known = rest == "realtime/client_secrets" || rest == "realtime/calls" || hangup;
    if (method != "POST" || !known) return make(RouteKind::Realtime);
    Route route = make(RouteKind::Upstream);
    route.upstream_path = "/" + rest;
    route.realtime = true;
    route.session_model = rest == "realtime/client_secrets";
    route.realtime_call = rest == "realtime/calls";
    return route;
}

Route route_operation(std::string_view method, std::string rest);

// The method as a view: compared with a literal, its size first, without a call.
Route route_azure(std::string_view method, const std::string& path) {
    if (method == "OPTIONS") return make(RouteKind::Preflight);
    if (!has_prefix(path, "/v1/")) return make(RouteKind::NotFound);
    std::string rest = path.substr(4);
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.empty()) return make(RouteKind::NotFound);
    std::string_view tail(rest);  // compared with literals below: sizes first, no call

    if (tail == "realtime" || has_prefix(tail, "realtime/")) return route_realtime(method, rest);
    bool reading = method == "GET" || method == "HEAD";
    if (reading && tail == "models") {
        Route route = make(RouteKind::ListModels);
        route.upstream_path = "/models";
        return route;
    }
    if (reading && has_prefix(tail, "models/") && tail.size() > 7) {
        Route route = make(RouteKind::RetrieveModel);
        route.model_id = percent_decode(rest.substr(7));
        route.upstream_path = "/" + rest;  // still encoded, slashes collapsed
        return route;
    }
    return route_operation(method, std::move(rest));
}

// A path under /v1 that is no model and no realtime call ("chat/completions", "files/x"):
// a deployment's operation, or the same path upstream. One Route made and returned as
// itself from every branch, so that it is built in place (no move of a Route).
Route route_operation(std::string_view method, std::string rest) {
    Route route;
    if (method == "POST" && route_legacy(rest, route)) return route;
    if (method == "POST" && is_deployment_operation(rest)) {
        route.kind = RouteKind::Deployment;  // as made: route_legacy left it untouched
        route.operation = std::move(rest);   // not looked at again
        return route;
    }
    std::string_view tail(rest);
    // Files, batches, fine-tuning, assistants, threads, vector stores, responses, ...:
    // the same path under /openai, whatever the method.
    route.kind = RouteKind::Upstream;  // route_legacy left it as made
    route.upstream_path = "/" + rest;
    // Azure's Responses and Assistants APIs take a deployment name as the body's model.
    route.body_model = method == "POST" &&
                       (tail == "responses" || tail == "assistants" || has_prefix(tail, "assistants/") ||
                        (has_prefix(tail, "threads/") && ends_with(rest, "/runs")));
    route.model_in_body = method == "POST" && tail == "fine_tuning/jobs";
    route.batch = method == "POST" && tail == "batches";
    return route;
}

// openai mode: every path as it is; a POST's body may name a model.
Route route_openai(const std::string& method, const std::string& path) {
    Route route = make(RouteKind::Upstream);
    route.upstream_path = path;
    std::string bare = path;
    while (!bare.empty() && bare.back() == '/') bare.pop_back();
    route.model_in_body = method == "POST";
    route.batch = method == "POST" && bare == "/v1/batches";
    return route;
}

}  // namespace

bool is_deployment_operation(const std::string& operation) {
    for (std::string_view known : kDeploymentOperations)
        if (operation == known) return true;
    return false;
}

std::string collapse_slashes(const std::string& path) {
    std::string out;
    for (char c : path)
        if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
    return out;
}

bool is_unsafe_segment(std::string_view decoded) {
    if (decoded == "." || decoded == "..") return true;
    for (unsigned char c : decoded)
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return true;
    return false;
}

namespace {
// What a path's byte tells at a first look over all of them: nothing, that the path is
// unsafe whatever segment holds it ('\\', a control byte), or that its segment must be
// looked at ('%': decoded; '.': maybe "." or "..").
enum PathByte : unsigned char { kPlainByte, kUnsafeByte, kLookCloser };
struct PathBytes {
    unsigned char kind[256];
    constexpr PathBytes() : kind() {
        for (int c = 0; c < 0x20; ++c) kind[c] = kUnsafeByte;
        kind[0x7f] = kind['\\'] = kUnsafeByte;
        kind['%'] = kind['.'] = kLookCloser;
    }
};
constexpr PathBytes kPathBytes;
}  // namespace

bool has_unsafe_segment(const std::string& path) {
    unsigned char seen = kPlainByte;  // most paths have no escape and no dot: nothing to split
    for (unsigned char c : path) {
        unsigned char kind = kPathBytes.kind[c];
        if (kind == kUnsafeByte) return true;
        seen |= kind;
    }
    if (seen == kPlainByte) return false;
    std::string_view rest(path);
    for (;;) {
        size_t slash = rest.find('/');
        std::string_view segment = rest.substr(0, slash);
        // Decoded only when it holds an escape: most paths have none.
        bool unsafe = segment.find('%') == std::string_view::npos
                          ? is_unsafe_segment(segment)
                          : is_unsafe_segment(percent_decode(std::string(segment)));
        if (unsafe) return true;
        if (slash == std::string_view::npos) return false;
        rest.remove_prefix(slash + 1);
    }
}

const char* const kApiMethods = "GET, POST, DELETE, HEAD, OPTIONS";

bool is_api_method(const std::string& name) {
    std::string_view method(name);
    return method == "GET" || method == "POST" || method == "DELETE" || method == "HEAD" ||
           method == "OPTIONS";
}

namespace {
// A look at each byte, where std::string::find("//") calls out to a general search.
bool has_double_slash(std::string_view path) {
    for (size_t i = 1; i < path.size(); ++i)
        if (path[i] == '/' && path[i - 1] == '/') return true;
    return false;
}
}  // namespace

Route route_request(const Config& config, const std::string& method, const std::string& raw) {
    if (!is_api_method(method)) return make(RouteKind::MethodNotAllowed);
    if (has_unsafe_segment(raw)) return make(RouteKind::InvalidPath);
    std::string collapsed;  // most paths have no "//" and are routed as they are
    const std::string& path = has_double_slash(raw) ? (collapsed = collapse_slashes(raw)) : raw;
    // Outside /v1 (under whatever mount point the web server gives the proxy). The method
    // as a view: compared with a literal, its size first, without a call.
    std::string_view verb(method);
    if (verb == "GET" || verb == "HEAD") {
        bool outside_api = path.find("/v1/") == std::string::npos;
        if (outside_api && ends_with(path, "/healthz")) return make(RouteKind::Health);
        if (outside_api && ends_with(path, "/metrics")) return make(RouteKind::Metrics);
    }
    if (config.mode == ProxyMode::OpenAI) return route_openai(method, path);
    return route_azure(method, path);
}

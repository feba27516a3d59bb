#include "router.h"

#include "text.h"

namespace {

// OpenAI operations that Azure serves under /openai/deployments/{deployment}/.
const char* const kDeploymentOperations[] = {
    "chat/completions", "completions",  "embeddings",
    "images/generations", "audio/speech",
};

bool is_deployment_operation(const std::string& operation) {
    for (const char* known : kDeploymentOperations)
        if (operation == known) return true;
    return false;
}

Route make(RouteKind kind) {
    Route route;
    route.kind = kind;
    return route;
}

Route route_azure(const std::string& method, const std::string& path) {
    if (method == "OPTIONS") return make(RouteKind::Preflight);
    if (!starts_with(path, "/v1/")) return make(RouteKind::NotFound);
    std::string operation = path.substr(4);
    while (!operation.empty() && operation.back() == '/') operation.pop_back();

    if ((method == "GET" || method == "HEAD") && operation == "models")
        return make(RouteKind::ListModels);
    if ((method == "GET" || method == "HEAD") && starts_with(operation, "models/") &&
        operation.size() > 7) {
        Route route = make(RouteKind::RetrieveModel);
        route.model_id = percent_decode(operation.substr(7));
        return route;
    }
    if (method == "POST" && is_deployment_operation(operation)) {
        Route route = make(RouteKind::Deployment);
        route.operation = operation;
        return route;
    }
    return make(RouteKind::NotFound);
}

}  // namespace

std::string collapse_slashes(const std::string& path) {
    std::string out;
    for (char c : path)
        if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
    return out;
}

bool has_dot_segment(const std::string& path) {
    for (const std::string& segment : split(path, '/')) {
        std::string decoded = percent_decode(segment);
        if (decoded == "." || decoded == "..") return true;
    }
    return false;
}

Route route_request(const Config& config, const std::string& method, const std::string& raw) {
    if (has_dot_segment(raw)) return make(RouteKind::InvalidPath);
    std::string path = collapse_slashes(raw);
    if (config.mode == ProxyMode::OpenAI) {
        Route route = make(RouteKind::Upstream);
        route.upstream_path = path;
        return route;
    }
    return route_azure(method, path);
}

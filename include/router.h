// Routing: which kind of answer a request gets, decided from method and path alone.
#pragma once

#include <string>

#include "config.h"

enum class RouteKind {
    Preflight,      // CORS OPTIONS, answered inline
    ListModels,     // GET /v1/models, answered inline
    RetrieveModel,  // GET /v1/models/{id}, answered inline
    Deployment,     // azure: /openai/deployments/{deployment}/{operation}
    Upstream,       // sent to the upstream at `upstream_path`
    NotFound,
    InvalidPath,    // dot segments or other paths that must never reach the upstream
};

struct Route {
    RouteKind kind = RouteKind::NotFound;
    std::string operation;      // Deployment: "chat/completions", "embeddings", ...
    std::string upstream_path;  // Upstream: path (raw) appended to the endpoint
    std::string model_id;       // RetrieveModel: decoded id
};

Route route_request(const Config& config, const std::string& method, const std::string& path);

// Collapses "//" runs, so a base URL ending in '/' still routes.
std::string collapse_slashes(const std::string& path);

// True when a path segment is "." or ".." (also percent-encoded).
bool has_dot_segment(const std::string& path);

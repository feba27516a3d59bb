// API routes: which kind of answer a request gets, decided from method and path alone.
#pragma once

#include <string>

#include "config.h"

enum class RouteKind {
    Preflight,      // CORS OPTIONS, answered inline
    ListModels,     // GET /v1/models, answered inline
    RetrieveModel,  // GET /v1/models/{id}, answered inline
    Deployment,     // azure: /openai/deployments/{deployment}/{operation}
    Upstream,       // sent as is: azure /openai{upstream_path}, openai mode {upstream_path}
    Realtime,       // the WebSocket API (and any realtime route but the two WebRTC calls): 501
    NotFound,
    InvalidPath,    // dot segments or other paths that must never reach the upstream
    MethodNotAllowed,  // a method the API does not have (TRACE, CONNECT, made-up ones)
    Health,         // GET /healthz: answered inline, no upstream call
    Metrics,        // GET /metrics: Prometheus text, for an admin key or loopback
};

struct Route {
    RouteKind kind = RouteKind::NotFound;
    std::string operation;      // Deployment: "chat/completions", "embeddings", ...
    std::string upstream_path;  // Upstream and models: path (raw), e.g. "/files/file-1/content"
    std::string model_id;       // RetrieveModel: decoded id
    std::string model;          // Deployment, legacy /v1/engines/{model}/...: decoded
    std::string deployment;     // Deployment, legacy /v1/deployments/{deployment}/...: decoded
    bool body_model = false;    // Upstream: the JSON body's model names a deployment
    // Upstream: a POST whose body (JSON, or an upload's form field) may name a model that
    // goes as it is, checked against the model lists (fine-tuning jobs' base model; every
    // POST in openai mode).
    bool model_in_body = false;
    bool batch = false;         // POST /v1/batches: its models are inside an uploaded file
    // Upstream, azure: a realtime HTTP call, which Azure serves on its v1 API only
    // (/openai/v1/realtime/..., no api-version). `session_model`: client_secrets, whose
    // body's session.model names the deployment; `realtime_call`: POST /v1/realtime/calls,
    // the SDP offer (realtime.h).
    bool realtime = false;
    bool session_model = false;
    bool realtime_call = false;
};

// The OpenAI operations Azure serves per deployment, and which of them take uploads.
bool is_deployment_operation(const std::string& operation);

Route route_request(const Config& config, const std::string& method, const std::string& path);

// Collapses "//" runs, so a base URL ending in '/' still routes.
std::string collapse_slashes(const std::string& path);

// True when a path segment, percent-decoded, is "." or "..", or holds '/', '\\' or a
// control byte: forms that could reach another resource upstream than the one routed.
bool has_unsafe_segment(const std::string& path);

// The methods the API has, relayed as sent (OPTIONS is answered by the proxy).
bool is_api_method(const std::string& method);
extern const char* const kApiMethods;  // for the Allow header of a 405

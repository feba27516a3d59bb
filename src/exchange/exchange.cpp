// One request's way through the proxy: receive (params, route, body), serve (answer
// inline, or translate and start the upstream transfer), relay, finish.
#include "exchange.h"

#include "body.h"
#include "metrics.h"
#include "shared_state.h"
#include "text.h"
#include "translate.h"

namespace {

ProxyError too_large(const Config& config) {
    return make_error(413,
                      "Request body is larger than this proxy's limit of " +
                          std::to_string(config.max_body_bytes) + " bytes.",
                      "request_too_large");
}

// False, with the error the client gets, unless the body named a usable model.
bool model_found(const ModelField& field, ProxyError& error) {
    switch (field.status) {
        case ModelField::InvalidJson:
        case ModelField::NotAnObject:
            error = make_error(400,
                               "We could not parse the JSON body of your request. The API "
                               "expects a JSON object, and what was sent was not valid JSON.",
                               "invalid_json");
            return false;
        case ModelField::Missing:
            error = make_error(400, "You must provide a model parameter.", "missing_model", "model");
            return false;
        case ModelField::NotAString:
            error = make_error(400, "The model parameter must be a string.", "invalid_model", "model");
            return false;
        case ModelField::Ambiguous:
            error = make_error(400,
                               "The JSON body names its model more than once, with escapes, or with a "
                               "NUL character; send one plain \"model\" key.",
                               "invalid_model", "model");
            return false;
        case ModelField::TooLong:
            error = make_error(400, "The model parameter is longer than " + std::to_string(kLongestModel) + " bytes.",
                               "invalid_model", "model");
            return false;
        case ModelField::Found:
            break;
    }
    return true;
}

// The model named by a JSON body (and whether it asks for a stream, and has
// stream_options); false with the error the client gets.
bool json_model(const std::string& body, std::string& model, bool& stream, ProxyError& error,
                bool* stream_options = nullptr) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    if (stream_options) *stream_options = field.stream_options;
    if (!model_found(field, error)) return false;
    model = std::move(field.model);
    return true;
}

// Whether the model (or the deployment a URL names) may be used: by
// AZURE_OPENAI_PROXY_ALLOWED_MODELS and by the client key's own list.
bool model_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                     const std::string& deployment, ProxyError& error) {
    // A deployment named in the URL is checked as a deployment, never as a model name.
    const std::string& named = route.deployment.empty() ? model : std::string();
    if (model_allowed(config, named, deployment) &&
        (!key || model_in_list(config, key->limits.models, named, deployment)))
        return true;
    error = make_error(403, "The model '" + quote_value(model) + "' is not available through this proxy.",
                       "model_not_allowed", "model");
    return false;
}

// Why an upload's form gave no model.
ProxyError upload_model_error(const MultipartModelScanner& form) {
    if (form.ambiguous())
        return make_error(400, "The upload's form has more than one field 'model'; send one.", "invalid_model", "model");
    if (form.failed())
        return make_error(400, "The upload's form could not be read to find its field 'model'.", "invalid_model", "model");
    return make_error(400, "You must provide a model parameter (the form field 'model').", "missing_model", "model");
}

// Whether a model list applies to this client: AZURE_OPENAI_PROXY_ALLOWED_MODELS, or its
// key's `models`.
bool models_restricted(const Config& config, const ClientKey* key) {
    return !config.allowed_models.empty() || (key && !key->limits.models.empty());
}

// Routes whose body names a model that is not mapped (model_in_body), and batches, while a
// model list applies: the model must be permitted; a batch is refused, its models being
// inside an uploaded file the proxy does not read. `upload`: the scanned form, or null.
bool body_models_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& body,
                           const MultipartModelScanner* upload, ProxyError& error) {
    if (!models_restricted(config, key)) return true;
    if (route.batch) {
        std::string list = key && !key->limits.models.empty() ? "this key's models (in the configuration file)"
                                                              : "AZURE_OPENAI_PROXY_ALLOWED_MODELS";
        error = make_error(403,
                           "Batches are refused while models are limited by " + list +
                               ": a batch's models are inside its input file, which the proxy does not read. "
                               "Send the requests one by one, or ask the operator for a key without a model list.",
                           "model_not_allowed");
        return false;
    }
    if (!route.model_in_body) return true;
    if (upload && upload->failed()) {
        error = upload_model_error(*upload);
        return false;
    }
    if (upload) return !upload->found() || model_permitted(config, key, route, upload->model(), "", error);
    ModelField field = model_from_json(body);
    if (field.status == ModelField::Ambiguous || field.status == ModelField::TooLong) return model_found(field, error);
    return field.status != ModelField::Found || model_permitted(config, key, route, field.model, "", error);
}

// Maps the model to its deployment (recorded in the log); false when the deployment could
// change the upstream URL, or is not permitted.
bool map_deployment(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                    AccessLogEntry& log, ProxyError& error) {
    const size_t kLogged = 256;  // the log shows at most 200 bytes of it
    log.model = model.substr(0, kLogged);
    std::string deployment = route.deployment.empty() ? deployment_for_model(config, model) : route.deployment;
    log.deployment = deployment.substr(0, kLogged);
    if (!is_safe_deployment(deployment)) {
        error = make_error(400,
                           "The model '" + quote_value(model) + "' maps to the deployment name '" +
                               quote_value(deployment) +
                               "', which is not a valid Azure deployment name (letters, digits, "
                               "'-', '_', '.'). Add a mapping in AZURE_OPENAI_MODEL_MAPPER.",
                           "invalid_model", "model");
        return false;
    }
    return model_permitted(config, key, route, model, deployment, error);
}

// Responses and assistants: a JSON body's model becomes its deployment, in place. Bodies
// without a model, or that are not JSON, go as they are: Azure answers them.
bool map_body_model(const Config& config, const ClientKey* key, const Route& route, std::string& body,
                    bool& stream, AccessLogEntry& log, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    bool refused = field.status == ModelField::Ambiguous || field.status == ModelField::TooLong ||
                   (field.status == ModelField::InvalidJson && !body.empty());
    if (refused) return model_found(field, error);  // false, saying why
    if (field.status != ModelField::Found) return true;
    if (!map_deployment(config, key, route, field.model, log, error)) return false;
    if (log.deployment != field.model) set_json_model(body, log.deployment);
    return true;
}

// Gauges named once.
const std::string kActiveStreams = "aop_active_streams";
const std::string kRequestsInFlight = "aop_requests_in_flight";

// A wait in whole seconds, rounded up (what Retry-After says).
long whole_seconds(int64_t ms) { return static_cast<long>((ms + 999) / 1000); }

// Retry-After, and Retry-After-Ms as Azure sends it, for a wait of `ms`.
void add_retry_after(Headers& headers, int64_t ms) {
    headers.push_back({"Retry-After", std::to_string(whole_seconds(ms))});
    headers.push_back({"Retry-After-Ms", std::to_string(ms)});
}

// x-ratelimit-* for a key with limits, as OpenAI sends them for an account.
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

const char* outcome_name(UpstreamOutcome outcome) {
    switch (outcome) {
        case UpstreamOutcome::Completed: return "ok";
        case UpstreamOutcome::DnsFailed: return "upstream-dns";
        case UpstreamOutcome::ConnectFailed: return "upstream-connect";
        case UpstreamOutcome::TlsFailed: return "upstream-tls";
        case UpstreamOutcome::TimedOut: return "upstream-timeout";
        case UpstreamOutcome::ProtocolError: return "upstream-protocol";
        case UpstreamOutcome::ClientGone: return "client-gone";
        case UpstreamOutcome::Failed: return "upstream-failed";
    }
    return "";
}

// What a client is told when the upstream failed: the cause class, never libcurl's own
// words (those go to the log).
ProxyError upstream_error(const UpstreamResult& result, const Config& config) {
    const std::string& at = config.endpoint;
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

}  // namespace

void HeartbeatTimer::fire(int64_t now_ms) {
    while (DeadlineLink* due = heartbeats_.take_due(now_ms)) static_cast<Exchange*>(due->owner)->heartbeat_due();
}

Exchange::Exchange(const Config& config, Connection& connection, ExchangeHost& host, int64_t started_ms)
    : config_(config), connection_(connection), host_(host), started_ms_(started_ms),
      upstream_config_(&config), writer_(connection, config.mode), relay_(writer_, config.mode) {
    heartbeat_.owner = this;
    log_.outcome = "ok";
}

Exchange::~Exchange() {
    heartbeat_.disarm();
    end_accounting();
}

// ---- receive: params, route, body ------------------------------------------------------

void Exchange::receive() {
    receive_head();
    if (!admit()) return;
    BodyUse use = body_use();
    if (use == BodyUse::None) return;
    if (request_.content_length > config_.max_body_bytes) {
        fail(too_large(config_));
        return;
    }
    read_body(use);
}

void Exchange::receive_head() {
    request_ = request_from_params(connection_.params(), config_);
    if (request_.malformed_param.empty() && connection_.params_hold_nul())
        request_.malformed_param = "param with a NUL byte";
    connection_.release_params();  // the request holds what it needs
    log_.method = request_.method;
    log_.path = request_.path;
    route_ = route_request(config_, request_.method, request_.path);
    if (config_.routing) routing_ = config_.routing->get();
    writer_.set_cors(config_, request_);
}

// What is refused before any body is read: a param no web server sends, a client without
// a valid key, a body where the method has none.
bool Exchange::admit() {
    if (!request_.malformed_param.empty()) {
        fail(make_error(400,
                        "The request's " + quote_value(request_.malformed_param) +
                            " is malformed (a line break or NUL, a space or control byte in the target, or a length that is not a number).",
                        "invalid_request"));
        return false;
    }
    if (route_.kind == RouteKind::Preflight || route_.kind == RouteKind::MethodNotAllowed ||
        route_.kind == RouteKind::Health || route_.kind == RouteKind::Metrics)
        return true;  // /metrics asks for its own key
    if (!config_.client_keys.empty() || (routing_ && !routing_->keys.empty())) {
        std::string_view presented = presented_key(request_.headers);
        const ClientKey* key = find_any_client_key(config_.client_keys, routing_.get(), presented);
        if (!key) {
            fail(make_error(401,
                            presented.empty()
                                ? "You didn't provide an API key. You need to provide your API key "
                                  "in an Authorization header using Bearer auth (i.e. "
                                  "Authorization: Bearer YOUR_KEY), or as the api-key header."
                                : "Incorrect API key provided. Ask the operator of this proxy for a key.",
                            "invalid_api_key"));
            return false;
        }
        log_.key = key->name;
        key_ = key;
        if (key_expired(key->limits, wall_clock_ms())) {
            fail(make_error(401, "This API key has expired. Ask the operator of this proxy for a new one.",
                            "expired_api_key"));
            return false;
        }
    }
    if ((request_.method == "GET" || request_.method == "HEAD") && request_.has_body) {
        fail(make_error(400, "A " + request_.method + " request cannot carry a body.", "unexpected_body"));
        return false;
    }
    return true;
}

Exchange::BodyUse Exchange::body_use() const {
    if (route_.kind == RouteKind::Deployment) {
        const std::string* type = find_header(request_.headers, "Content-Type");
        return multipart_boundary(type ? *type : "").empty() ? BodyUse::Json : BodyUse::Upload;
    }
    if (route_.kind != RouteKind::Upstream) return BodyUse::None;
    if (route_.body_model) return BodyUse::Json;
    if (route_.model_in_body && request_.has_body && models_restricted(config_, key_)) {
        const std::string* type = find_header(request_.headers, "Content-Type");
        return multipart_boundary(type ? *type : "").empty() ? BodyUse::Json : BodyUse::Upload;
    }
    return request_.has_body ? BodyUse::Spooled : BodyUse::None;
}

// Reads the client's body piece by piece, up to the configured limit, handing each piece
// to `keep`, which returns false (having called fail()) when it cannot keep it.
template <typename Keep>
bool Exchange::read_body_into(Keep keep) {
    char buffer[16384];
    long long total = 0;
    for (;;) {
        long got = connection_.read_body(buffer, sizeof buffer);
        if (got < 0 && connection_.read_timed_out()) {
            log_.outcome = "read-timeout";
            fail(body_too_late());
            return false;
        }
        if (got < 0) {
            fail(make_error(400, "The request body could not be read.", "body_read_error"));
            return false;
        }
        if (got == 0) return true;
        total += got;
        if (total > config_.max_body_bytes) {
            fail(too_large(config_));
            return false;
        }
        if (!keep(buffer, static_cast<size_t>(got))) return false;
    }
}

bool Exchange::read_body(BodyUse use) {
    if (use == BodyUse::Json) {
        if (request_.content_length > 0) body_.reserve(static_cast<size_t>(request_.content_length));
        return read_body_into([&](const char* data, size_t size) {
            body_.append(data, size);
            return true;
        });
    }
    if (use == BodyUse::Upload) {
        const std::string* type = find_header(request_.headers, "Content-Type");
        boundary_ = multipart_boundary(*type);
        scanner_ = MultipartModelScanner(boundary_);
    }
    // Uploads are read once to find their form field "model"; every body is held whole
    // (in memory while small, else in an unlinked temporary file) before it is sent.
    return read_body_into([&](const char* data, size_t size) {
        if (!spool_.write(data, size)) {
            fail(make_error(507, "The proxy could not store the upload (disk full?).",
                            "upload_storage_failed", "", "api_error"));
            return false;
        }
        if (use == BodyUse::Upload && !scanner_.finished()) scanner_.feed(data, size);
        return true;
    });
}

void Exchange::fail(const ProxyError& error) {
    receive_failed_ = true;
    receive_error_ = error;
}

// ---- serve ------------------------------------------------------------------------------

std::string Exchange::quoted_request() const {
    return quote_value(request_.method, 16) + " " + quote_value(request_.path, 128);
}

void Exchange::refuse(const ProxyError& error, Headers extra) {
    writer_.error(error, std::move(extra));
    finish();
}

void Exchange::serve(const LoopServices& services) {
    services_ = &services;
    services.state.add(kRequestsInFlight, 1, true);
    if (receive_failed_)
        writer_.error(receive_error_);
    else
        serve_route();
    if (!transfer_) finish();
}

void Exchange::serve_route() {
    switch (route_.kind) {
        case RouteKind::Preflight:
            writer_.head(204, preflight_headers(request_));
            return;
        case RouteKind::ListModels:
        case RouteKind::RetrieveModel:
            serve_models();
            return;
        case RouteKind::InvalidPath:
            writer_.error(make_error(400, "Invalid URL (" + quoted_request() +
                                              "): a path segment may not be '.' or '..', nor hold "
                                              "'/', '\\' or control characters, encoded or not.",
                                     "invalid_path"));
            return;
        case RouteKind::NotFound:
            writer_.error(make_error(404, "Invalid URL (" + quoted_request() + "): this proxy has no such route.",
                                     "unknown_route"));
            return;
        case RouteKind::MethodNotAllowed:
            writer_.error(make_error(405, "The method " + quote_value(request_.method, 16) +
                                              " is not allowed; the API has GET, POST, DELETE and HEAD.",
                                     "method_not_allowed"),
                          {{"Allow", kApiMethods}});
            return;
        case RouteKind::Deployment:
            serve_deployment();
            return;
        case RouteKind::Realtime:
            writer_.error(make_error(501,
                                     "The Realtime API runs over a WebSocket, which a FastCGI "
                                     "program cannot carry. Connect to Azure directly: "
                                     "wss://YOUR-RESOURCE.openai.azure.com/openai/realtime.",
                                     "realtime_not_supported"));
            return;
        case RouteKind::Upstream:
            serve_upstream();
            return;
        case RouteKind::Health:
            writer_.complete(200, "application/json", "{\"status\":\"ok\"}");
            return;
        case RouteKind::Metrics:
            serve_metrics();
            return;
    }
}

// chat/completions, embeddings, images, audio: find the deployment (URL, JSON body or
// upload), then send the body, byte for byte on dated API versions, with the deployment as
// its model on the v1 API.
void Exchange::serve_deployment() {
    bool upload = !boundary_.empty();
    std::string model = route_.deployment.empty() ? route_.model : route_.deployment;
    ProxyError error;
    bool ok = true;
    if (upload && model.empty()) {
        ok = scanner_.found();
        if (ok) model = scanner_.model();
        else error = upload_model_error(scanner_);
    } else if (!upload && model.empty()) {
        bool stream_options = true;
        ok = json_model(body_, model, streamed_answer_, error, &stream_options);
        // AZURE_OPENAI_PROXY_STREAM_USAGE: usage asked of every chat stream, for the
        // counts; the chunk that carries it is left out for a client that did not ask.
        if (ok && config_.stream_usage && streamed_answer_ && !stream_options && route_.operation == "chat/completions" &&
            add_stream_usage(body_))
            relay_.leave_out_usage_chunk();
    }
    // A model of the routing table goes to its targets; any other as the seed maps it.
    if (ok && route_.deployment.empty() && routing_) targets_ = targets_for(*routing_, model);
    if (targets_) {
        log_.model = model.substr(0, 256);
        ok = model_permitted(config_, key_, route_, model, "", error);
    } else {
        ok = ok && map_deployment(config_, key_, route_, model, log_, error);
        if (ok && uses_v1_api(config_) && !upload && !body_.empty() && !set_json_model(body_, log_.deployment))
            ok = json_model(body_, model, streamed_answer_, error);  // not a JSON object: say so
    }
    if (!ok) {
        writer_.error(error);
        return;
    }
    if (!admit_key_limits()) return;
    if (targets_) {
        tried_.assign(targets_->size(), false);
        start_try();
        return;
    }
    RequestBody source = body_for(log_.deployment, uses_v1_api(config_) && upload);
    start_upstream(build_upstream_request(config_, request_, route_, log_.deployment), source);
}

// The body as the upstream is sent it: the JSON body or the spooled upload, with the model
// replaced by `deployment` when `rewrite_model`.
RequestBody Exchange::body_for(const std::string& deployment, bool rewrite_model) {
    RequestBody source;
    if (!boundary_.empty()) {
        if (rewrite_model && scanner_.found())
            spool_.rewind(scanner_.value_begin(), scanner_.value_end(), deployment);
        else
            spool_.rewind();
        source.spool = &spool_;
    } else if (route_.kind == RouteKind::Deployment || route_.body_model || !body_.empty()) {
        if (rewrite_model) set_json_model(body_, deployment);
        source.buffer = &body_;
    } else if (request_.has_body) {
        spool_.rewind();
        source.spool = &spool_;
    }
    return source;
}

// One try of a routing-table model: the target the shared state picks, as its endpoint
// wants the request (URL, key, api-version, and the model as its deployment where the API
// carries it in the body).
void Exchange::start_try() {
    Pick pick = services_->state.choose(*targets_, tried_, wall_clock_ms(), true, trial_lease_ms(routing_->retry));
    if (pick.index < 0) {
        answer_no_target(pick);
        return;
    }
    target_ = pick.index;
    trial_ = pick.trial_token;
    try_open_ = true;
    tried_[static_cast<size_t>(target_)] = true;
    ++log_.tries;
    if (log_.tries > 1) services_->state.count("aop_retries_total", {{"model", log_.model}});
    const Target& target = (*targets_)[static_cast<size_t>(target_)];
    upstream_config_ = routing_->endpoints[target.endpoint].upstream.get();
    log_.deployment = target.deployment;
    log_.target = target.name;
    bool openai = upstream_config_->mode == ProxyMode::OpenAI;
    Route route = route_;
    if (openai) {
        route.kind = RouteKind::Upstream;
        route.upstream_path = "/v1/" + route_.operation;
    }
    RequestBody source = body_for(target.deployment, openai || uses_v1_api(*upstream_config_));
    start_upstream(build_upstream_request(*upstream_config_, request_, route, target.deployment), source);
}

// Every target is cooling down after a 429, behind an open circuit, or already tried.
void Exchange::answer_no_target(const Pick& pick) {
    Headers headers;
    if (pick.retry_after_ms > 0) add_retry_after(headers, pick.retry_after_ms);
    log_.outcome = "no-target";
    if (pick.cooling)
        writer_.error(make_error(429, "Every deployment of the model '" + quote_value(log_.model) +
                                          "' is rate-limited; retry after " +
                                          std::to_string(whole_seconds(pick.retry_after_ms)) + " s.",
                                 "rate_limit_exceeded", "", "requests"),
                      std::move(headers));
    else
        writer_.error(make_error(503, "No deployment of the model '" + quote_value(log_.model) +
                                          "' can take the request now (each failed recently).",
                                 "no_healthy_deployment", "", "api_error"),
                      std::move(headers));
}

// Another target may take the request: tries are left, the client has had nothing yet,
// and a target not yet tried is free now.
bool Exchange::can_retry() {
    if (!targets_ || writer_.head_sent() || log_.tries >= routing_->retry.max_tries) return false;
    return services_->state.choose(*targets_, tried_, wall_clock_ms(), false).index >= 0;
}

// Ends the current try at its target: its health and its place in flight.
void Exchange::settle_try(TryResult result, int64_t retry_after_ms) {
    if (!try_open_) return;
    try_open_ = false;
    const Target& target = (*targets_)[static_cast<size_t>(target_)];
    services_->state.report(target, result, retry_after_ms, trial_, wall_clock_ms(), routing_->retry);
    static const char* const kNames[] = {"ok", "rate_limited", "failed", "abandoned"};
    services_->state.count("aop_upstream_tries_total", {{"target", target.name}, {"result", kNames[static_cast<int>(result)]}});
}

// A failed try before any answer: true when another target takes the request.
bool Exchange::retry_after(const UpstreamResult& result) {
    bool before_answer = !result.answered && result.outcome != UpstreamOutcome::Completed &&
                         result.outcome != UpstreamOutcome::ClientGone;
    if (!try_open_ || !before_answer) return false;
    settle_try(TryResult::Failed, -1);
    if (!can_retry()) return false;
    log_.error = result.error;
    transfer_.reset();
    start_try();
    return true;
}

// Files, batches, assistants, responses, ...: the same path under /openai.
void Exchange::serve_upstream() {
    ProxyError error;
    bool permitted = route_.body_model ? map_body_model(config_, key_, route_, body_, streamed_answer_, log_, error)
                                       : body_models_permitted(config_, key_, route_, body_,
                                                               boundary_.empty() ? nullptr : &scanner_, error);
    if (!permitted) {
        writer_.error(error);
        return;
    }
    if (!admit_key_limits()) return;
    start_upstream(build_upstream_request(config_, request_, route_, ""), body_for("", false));
}

// A key with limits: counted for this request, or refused with a 429 that says when to
// come back and what is left.
bool Exchange::admit_key_limits() {
    if (!key_ || !counts_usage(key_->limits)) return true;
    key_estimate_ = key_->limits.tokens_per_minute ? estimate_prompt_tokens(static_cast<long long>(body_.size()) + spool_.size()) : 0;
    key_headroom_ = services_->state.admit_key(*key_, wall_clock_ms(), key_estimate_);
    if (key_headroom_.allowed) {
        key_counted_ = true;
        return true;
    }
    const KeyDecision& d = key_headroom_;
    services_->state.count("aop_key_limited_total", {{"key", key_->name}, {"limit", d.code}});
    Headers headers = rate_limit_headers(d);
    add_retry_after(headers, d.retry_after_ms);
    writer_.error(make_error(d.status, d.message, d.code, "", d.code == "tokens_limit_exceeded" ? "tokens" : "requests"),
                  std::move(headers));
    return false;
}

// GET /v1/models and /v1/models/{id}: from the configured list, or from Azure in
// OpenAI's shape.
void Exchange::serve_models() {
    if (config_.live_models) {
        Route route;
        route.kind = RouteKind::Upstream;
        route.upstream_path = route_.upstream_path;
        collect_ = true;
        start_upstream(build_upstream_request(config_, request_, route, ""), RequestBody());
    } else if (route_.kind == RouteKind::ListModels) {
        writer_.complete(200, "application/json", models_list_json(config_));
    } else if (is_listed_model(config_, route_.model_id)) {
        writer_.complete(200, "application/json", model_json(route_.model_id));
    } else {
        writer_.error(make_error(404, "The model '" + quote_value(route_.model_id) + "' does not exist.",
                                 "model_not_found", "model"));
    }
}

// What only the translation and another target's try need goes: the headers, the query,
// and the body once libcurl has sent it. A stream would otherwise hold its prompt (often
// tens of KiB) for its whole length.
void Exchange::release_request() {
    Headers().swap(request_.headers);
    std::string().swap(request_.query);
    if (transfer_ && !body_.empty() && transfer_->body_sent(body_.size())) std::string().swap(body_);
}

void Exchange::start_upstream(const UpstreamRequest& request, RequestBody body) {
    body.streamed_answer = streamed_answer_;
    try_started_ms_ = EventLoop::clock_ms();
    std::string error;
    transfer_ = services_->upstream.start(request, body, *this, error);
    if (transfer_) {
        // A stream may wait for minutes: what only the translation needed goes now,
        // unless another target may need it.
        if (!targets_) release_request();
        return;
    }
    // libcurl refused it here, before any byte left: not the target's fault (its circuit
    // stays as it was, a trial goes back), and another target may still take the request.
    log_.error = error;
    settle_try(TryResult::Abandoned, -1);
    if (can_retry()) {
        start_try();
        return;
    }
    log_.outcome = "upstream-failed";
    writer_.error(make_error(502, "The proxy could not start the upstream request: " + error,
                             "upstream_unreachable", "", "api_error"));
}

// ---- relay --------------------------------------------------------------------------------

bool Exchange::on_head(long status, const Headers& headers) {
    log_.upstream_status = status;
    double waited = (EventLoop::clock_ms() - try_started_ms_) / 1000.0;
    services_->state.observe("aop_upstream_latency_seconds", {{"target", try_open_ ? log_.target : "default"}}, waited);
    if (try_open_) {
        const Target& target = (*targets_)[static_cast<size_t>(target_)];
        services_->state.remember_headroom(target, header_number(headers, "x-ratelimit-remaining-requests"),
                                           header_number(headers, "x-ratelimit-remaining-tokens"));
        answer_result_ = result_of_status(status);
        answer_retry_after_ms_ = retry_after_ms(headers);
        // A 429 or a 5xx the client has not seen: the next target, if one can take it.
        if (answer_result_ != TryResult::Success) {
            settle_try(answer_result_, answer_retry_after_ms_);
            if (can_retry()) {
                retry_next_ = true;
                return false;
            }
            // The last free target is full too: the client hears when the first of them
            // takes requests again, rather than this one's own wait.
            if (answer_result_ == TryResult::RateLimited && targets_->size() > 1) {
                no_target_ = services_->state.choose(*targets_, std::vector<bool>(targets_->size(), false),
                                                     wall_clock_ms(), false);
                if (no_target_.index < 0) {
                    retry_next_ = true;
                    return false;
                }
            }
        }
    }
    if (collect_) {
        collected_status_ = status;
        const std::string* type = find_header(headers, "Content-Type");
        collected_type_ = type ? *type : "application/json";
        return true;
    }
    bool ok = relay_.head(status, headers, key_counted_ ? rate_limit_headers(key_headroom_) : Headers());
    release_request();
    if (relay_.event_stream()) {
        counted_stream_ = true;
        services_->state.add(kActiveStreams, 1, true);
    }
    host_.flush_soon();
    arm_heartbeat();
    return ok;
}

Taken Exchange::on_data(const char* data, size_t size) {
    if (collect_) {
        collected_.append(data, size);
        return collected_.size() <= (8u << 20) ? Taken::All : Taken::Refused;  // a models list is small
    }
    Taken taken = relay_.data(data, size);
    if (taken == Taken::All && log_.upstream_status < 300) {
        usage_.feed(data, size);
        if (relay_.event_stream() && !first_event_seen_) {
            first_event_seen_ = true;
            services_->state.observe("aop_time_to_first_token_seconds", {{"model", metric_model()}},
                                     (EventLoop::clock_ms() - started_ms_) / 1000.0);
        }
    }
    if (taken == Taken::All) {
        host_.flush_soon();
        arm_heartbeat();
    } else if (taken == Taken::Later) {
        paused_ = true;
        host_.wait_writable();
    }
    return taken;
}

void Exchange::on_done(const UpstreamResult& result) {
    if (retry_next_) {  // the answer's head was a 429 or a 5xx: the next target, or none
        retry_next_ = false;
        transfer_.reset();
        if (no_target_.index < 0 && no_target_.retry_after_ms > 0) answer_no_target(no_target_);
        else start_try();
        if (!transfer_) finish();
        return;
    }
    if (retry_after(result)) {
        if (!transfer_) finish();
        return;
    }
    if (try_open_) {
        bool whole = result.outcome == UpstreamOutcome::Completed;
        settle_try(whole ? answer_result_ : result.outcome == UpstreamOutcome::ClientGone ? TryResult::Abandoned : TryResult::Failed,
                   answer_retry_after_ms_);
    }
    log_.upstream_status = result.status;
    log_.outcome = outcome_name(result.outcome);
    if (collect_)
        answer_models(result);
    else
        relay_done(result);
    finish();
}

void Exchange::relay_done(const UpstreamResult& result) {
    if (result.outcome == UpstreamOutcome::Completed) {
        relay_.finish_event_stream();
        return;
    }
    if (result.outcome == UpstreamOutcome::ClientGone) return;
    log_.error = result.error;
    ProxyError error = upstream_error(result, *upstream_config_);
    if (writer_.head_sent()) cut_short(error);
    else writer_.error(error);
}

// An answer that cannot be completed is never made to look complete: an event stream gets
// an error event, and the request ends without FastCGI's END_REQUEST, so the web server
// cuts the client's connection (no final chunk) and every client library raises.
void Exchange::cut_short(const ProxyError& error) {
    relay_.fail_event_stream(error);
    cut_ = true;
}

void Exchange::answer_models(const UpstreamResult& result) {
    std::string converted;
    if (result.outcome != UpstreamOutcome::Completed) {
        log_.error = result.error;
        writer_.error(upstream_error(result, *upstream_config_));
    }
    else if (collected_status_ == 200 && azure_models_to_openai(collected_, converted))
        writer_.complete(200, "application/json", converted);
    else
        writer_.complete(static_cast<int>(collected_status_), collected_type_, collected_);
}

void Exchange::arm_heartbeat() {
    if (relay_.event_stream() && config_.heartbeat_ms > 0 && !request_.server_notices_clients_leaving)
        services_->heartbeats.arm(heartbeat_, services_->loop.now_ms());
}

void Exchange::heartbeat_due() {
    if (finished_) return;
    if (relay_.heartbeat()) host_.flush_soon();
    arm_heartbeat();  // due again after another quiet spell, whether or not one was sent now
}

void Exchange::writable() {
    if (paused_ && transfer_) {
        paused_ = false;
        transfer_->resume();
    }
}

void Exchange::client_gone() {
    if (finished_) return;
    log_.outcome = "client-gone";
    transfer_.reset();
    finish();
}

ProxyError Exchange::body_too_late() {
    log_.error = "the request body did not arrive within the read deadlines";
    return make_error(408, "The request body did not arrive in time.", "request_timeout");
}

void Exchange::abandon(const char* outcome, const std::string& what) {
    if (finished_) return;
    log_.outcome = outcome;
    log_.error = what;
    transfer_.reset();
    finished_ = true;
    heartbeat_.disarm();
    end_accounting();
}

void Exchange::stop() {
    if (finished_) return;
    log_.outcome = "stopping";
    if (transfer_ && !writer_.head_sent()) writer_.error(stopping_error());
    else if (transfer_) cut_short(stopping_error());
    transfer_.reset();
    finish();
}

void Exchange::finish() {
    if (finished_) return;
    finished_ = true;
    heartbeat_.disarm();
    end_accounting();
    host_.finished();
}

// What the request held in the shared state is given back, and it is counted: once,
// however it ended.
void Exchange::end_accounting() {
    if (!services_ || accounted_) return;
    accounted_ = true;
    SharedState& state = services_->state;
    settle_try(TryResult::Abandoned, -1);
    log_.prompt_tokens = usage_.prompt_tokens();
    log_.completion_tokens = usage_.completion_tokens();
    long long used = -1;
    if (log_.prompt_tokens >= 0 || log_.completion_tokens >= 0)
        used = std::max(0LL, log_.prompt_tokens) + std::max(0LL, log_.completion_tokens);
    if (key_counted_) state.release_key(*key_, key_estimate_, used, wall_clock_ms());
    if (counted_stream_) state.add(kActiveStreams, -1, true);
    state.add(kRequestsInFlight, -1, true);
    std::string_view model = metric_model(), key = key_ ? std::string_view(key_->name) : std::string_view();
    char status[8];
    std::snprintf(status, sizeof status, "%d", writer_.status());
    state.count("aop_requests_total",
                {{"route", route_label()}, {"model", model}, {"target", log_.target}, {"key", key}, {"status", status}});
    if (log_.prompt_tokens > 0)
        state.count("aop_tokens_total", {{"model", model}, {"key", key}, {"kind", "prompt"}}, static_cast<double>(log_.prompt_tokens));
    if (log_.completion_tokens > 0)
        state.count("aop_tokens_total", {{"model", model}, {"key", key}, {"kind", "completion"}},
                    static_cast<double>(log_.completion_tokens));
}

// Only names the operator configured become label values: a client cannot create
// series without end by sending made-up models.
std::string_view Exchange::metric_model() const {
    const std::string& model = log_.model;
    if (model.empty()) return "";
    bool known = targets_ || config_.model_mapper.count(model) ||
                 std::find(config_.listed_models.begin(), config_.listed_models.end(), model) != config_.listed_models.end() ||
                 std::find(config_.allowed_models.begin(), config_.allowed_models.end(), model) != config_.allowed_models.end();
    return known ? std::string_view(model) : std::string_view("other");
}

std::string_view Exchange::route_label() const {
    switch (route_.kind) {
        case RouteKind::Deployment: return route_.operation;
        case RouteKind::ListModels:
        case RouteKind::RetrieveModel: return "models";
        case RouteKind::Health: return "healthz";
        case RouteKind::Metrics: return "metrics";
        case RouteKind::Upstream: {
            std::string_view path = route_.upstream_path;
            std::string_view first = path.substr(1, path.find('/', 1) - 1);
            static const char* const kKnown[] = {"files", "batches", "responses", "assistants", "threads",
                                                 "vector_stores", "fine_tuning", "uploads", "models"};
            for (const char* known : kKnown)
                if (first == known) return known;
            return "other";
        }
        default: return "other";
    }
}

// GET /metrics: for an admin key, or for a client on this host.
void Exchange::serve_metrics() {
    bool loopback = request_.remote_address == "127.0.0.1" || request_.remote_address == "::1" ||
                    starts_with(request_.remote_address, "127.") || request_.remote_address == "::ffff:127.0.0.1";
    std::string_view presented = presented_key(request_.headers);
    bool admin = !config_.admin_keys.empty() && find_client_key(config_.admin_keys, presented);
    if (!loopback && !admin) {
        writer_.error(make_error(403, "The metrics are shown to an admin key (AZURE_OPENAI_PROXY_ADMIN_KEYS) or on this host only.",
                                 "metrics_forbidden"));
        return;
    }
    SharedState& state = services_->state;
    writer_.complete(200, "text/plain; version=0.0.4; charset=utf-8",
                     render_metrics(state.series(), state.targets(), wall_clock_ms()));
}

AccessLogEntry& Exchange::log_entry() {
    log_.status = writer_.status();
    log_.bytes = writer_.bytes();
    // An error the proxy answered names the outcome, unless the upstream's fault already did.
    if (!writer_.error_code().empty() && log_.outcome == "ok") log_.outcome = writer_.error_code();
    log_.duration_ms = EventLoop::clock_ms() - started_ms_;
    return log_;
}

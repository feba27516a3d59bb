// One request's way through the proxy: receive (params, route, body), serve (answer
// inline, or translate and start the upstream transfer), relay, finish.
#include "exchange.h"

#include "body.h"
#include "text.h"
#include "translate.h"

namespace {

ProxyError too_large(const Config& config) {
    return make_error(413,
                      "Request body is larger than this proxy's limit of " +
                          std::to_string(config.max_body_bytes) + " bytes.",
                      "request_too_large");
}

// The model named by a JSON body (and whether it asks for a stream); false with the error
// the client gets.
bool json_model(const std::string& body, std::string& model, bool& stream, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
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
        case ModelField::Found:
            break;
    }
    model = field.model;
    return true;
}

// Maps the model to its deployment (recorded in the log); false when the deployment could
// change the upstream URL.
bool map_deployment(const Config& config, const Route& route, const std::string& model,
                    AccessLogEntry& log, ProxyError& error) {
    log.model = model;
    log.deployment = route.deployment.empty() ? deployment_for_model(config, model) : route.deployment;
    if (is_safe_deployment(log.deployment)) return true;
    error = make_error(400,
                       "The model '" + model + "' maps to the deployment name '" + log.deployment +
                           "', which is not a valid Azure deployment name (letters, digits, "
                           "'-', '_', '.'). Add a mapping in AZURE_OPENAI_MODEL_MAPPER.",
                       "invalid_model", "model");
    return false;
}

// Responses and assistants: a JSON body's model becomes its deployment, in place. Bodies
// without a model, or that are not JSON, go as they are: Azure answers them.
bool map_body_model(const Config& config, const Route& route, std::string& body, bool& stream,
                    AccessLogEntry& log, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    if (field.status != ModelField::Found) return true;
    if (!map_deployment(config, route, field.model, log, error)) return false;
    if (log.deployment != field.model) set_json_model(body, log.deployment);
    return true;
}

const char* outcome_name(UpstreamOutcome outcome) {
    switch (outcome) {
        case UpstreamOutcome::Completed: return "ok";
        case UpstreamOutcome::Unreachable: return "upstream-unreachable";
        case UpstreamOutcome::TimedOut: return "upstream-timeout";
        case UpstreamOutcome::ClientGone: return "client-gone";
        case UpstreamOutcome::Failed: return "upstream-failed";
    }
    return "";
}

// The error a client gets when the upstream gave no answer to relay.
ProxyError upstream_error(UpstreamOutcome outcome, const Config& config) {
    if (outcome == UpstreamOutcome::TimedOut)
        return make_error(504,
                          "The upstream sent nothing for " +
                              std::to_string(config.upstream_timeout_s) + " seconds.",
                          "upstream_timeout", "", "api_error");
    return make_error(502, "The upstream at " + config.endpoint + " could not be reached.",
                      "upstream_unreachable", "", "api_error");
}

}  // namespace

void HeartbeatTimer::fire(int64_t now_ms) {
    while (DeadlineLink* due = heartbeats_.take_due(now_ms)) static_cast<Exchange*>(due->owner)->heartbeat_due();
}

Exchange::Exchange(const Config& config, Connection& connection, ExchangeHost& host, int64_t started_ms)
    : config_(config), connection_(connection), host_(host), started_ms_(started_ms),
      writer_(connection, config.mode), relay_(writer_, config.mode) {
    heartbeat_.owner = this;
    log_.outcome = "ok";
}

Exchange::~Exchange() {
    if (services_) services_->heartbeats.disarm(heartbeat_);
}

// ---- receive: params, route, body ------------------------------------------------------

void Exchange::receive() {
    receive_head();
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
    connection_.release_params();  // the request holds what it needs
    log_.method = request_.method;
    log_.path = request_.path;
    route_ = route_request(config_, request_.method, request_.path);
}

Exchange::BodyUse Exchange::body_use() const {
    if (route_.kind == RouteKind::Deployment) {
        const std::string* type = find_header(request_.headers, "Content-Type");
        return multipart_boundary(type ? *type : "").empty() ? BodyUse::Json : BodyUse::Upload;
    }
    if (route_.kind != RouteKind::Upstream) return BodyUse::None;
    if (route_.body_model) return BodyUse::Json;
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
        if (use == BodyUse::Upload && !scanner_.found() && !scanner_.failed()) scanner_.feed(data, size);
        return true;
    });
}

void Exchange::fail(const ProxyError& error) {
    receive_failed_ = true;
    receive_error_ = error;
}

// ---- serve ------------------------------------------------------------------------------

void Exchange::refuse(const ProxyError& error, Headers extra) {
    writer_.error(error, std::move(extra));
    finish();
}

void Exchange::serve(const LoopServices& services) {
    services_ = &services;
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
            writer_.error(make_error(400, "Invalid URL (" + request_.method + " " + request_.path +
                                              "): '.' and '..' path segments are not allowed.",
                                     "invalid_path"));
            return;
        case RouteKind::NotFound:
            writer_.error(make_error(404, "Invalid URL (" + request_.method + " " + request_.path +
                                              "): this proxy has no such route.",
                                     "unknown_route"));
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
        else error = make_error(400, "You must provide a model parameter (the form field 'model').",
                                "missing_model", "model");
    } else if (!upload && model.empty()) {
        ok = json_model(body_, model, streamed_answer_, error);
    }
    ok = ok && map_deployment(config_, route_, model, log_, error);
    if (ok && uses_v1_api(config_) && !upload && !body_.empty() && !set_json_model(body_, log_.deployment))
        ok = json_model(body_, model, streamed_answer_, error);  // not a JSON object: say so
    if (!ok) {
        writer_.error(error);
        return;
    }
    RequestBody source;
    if (!upload) {
        source.buffer = &body_;
    } else {
        if (uses_v1_api(config_) && scanner_.found())
            spool_.rewind(scanner_.value_begin(), scanner_.value_end(), log_.deployment);
        else
            spool_.rewind();
        source.spool = &spool_;
    }
    start_upstream(build_upstream_request(config_, request_, route_, log_.deployment), source);
}

// Files, batches, assistants, responses, ...: the same path under /openai.
void Exchange::serve_upstream() {
    RequestBody source;
    if (route_.body_model) {
        ProxyError error;
        if (!map_body_model(config_, route_, body_, streamed_answer_, log_, error)) {
            writer_.error(error);
            return;
        }
        source.buffer = &body_;
    } else if (request_.has_body) {
        spool_.rewind();
        source.spool = &spool_;
    }
    start_upstream(build_upstream_request(config_, request_, route_, ""), source);
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
        writer_.error(make_error(404, "The model '" + route_.model_id + "' does not exist.",
                                 "model_not_found", "model"));
    }
}

void Exchange::start_upstream(const UpstreamRequest& request, RequestBody body) {
    body.streamed_answer = streamed_answer_;
    std::string error;
    transfer_ = services_->upstream.start(request, body, *this, error);
    if (transfer_) {
        // A stream may wait for minutes: what only the translation needed goes now.
        Headers().swap(request_.headers);
        std::string().swap(request_.query);
        return;
    }
    log_.outcome = "upstream-failed";
    writer_.error(make_error(502, "The proxy could not start the upstream request: " + error,
                             "upstream_unreachable", "", "api_error"));
}

// ---- relay --------------------------------------------------------------------------------

bool Exchange::on_head(long status, const Headers& headers) {
    if (collect_) {
        collected_status_ = status;
        const std::string* type = find_header(headers, "Content-Type");
        collected_type_ = type ? *type : "application/json";
        return true;
    }
    bool ok = relay_.head(status, headers);
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
    log_.upstream_status = result.status;
    log_.outcome = outcome_name(result.outcome);
    if (collect_)
        answer_models(result);
    else
        relay_done(result);
    finish();
}

void Exchange::relay_done(const UpstreamResult& result) {
    if (result.outcome == UpstreamOutcome::Completed)
        relay_.finish_event_stream();
    else if (!writer_.head_sent() && result.outcome != UpstreamOutcome::ClientGone)
        writer_.error(upstream_error(result.outcome, config_));
}

void Exchange::answer_models(const UpstreamResult& result) {
    std::string converted;
    if (result.outcome != UpstreamOutcome::Completed)
        writer_.error(upstream_error(result.outcome, config_));
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

void Exchange::stop() {
    if (finished_) return;
    log_.outcome = "stopping";
    if (transfer_ && !writer_.head_sent())
        writer_.error(stopping_error());
    transfer_.reset();
    finish();
}

void Exchange::finish() {
    if (finished_) return;
    finished_ = true;
    if (services_) services_->heartbeats.disarm(heartbeat_);
    host_.finished();
}

AccessLogEntry& Exchange::log_entry() {
    log_.status = writer_.status();
    log_.bytes = writer_.bytes();
    if (!writer_.error_code().empty()) log_.outcome = writer_.error_code();
    log_.duration_ms = EventLoop::clock_ms() - started_ms_;
    return log_;
}

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

// The model named by a JSON body (and whether it asks for a stream); false with the error
// the client gets.
bool json_model(const std::string& body, std::string& model, bool& stream, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    if (!model_found(field, error)) return false;
    model = std::move(field.model);
    return true;
}

// Maps the model to its deployment (recorded in the log); false when the deployment could
// change the upstream URL.
bool map_deployment(const Config& config, const Route& route, const std::string& model,
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
    // A deployment named in the URL is checked as a deployment, never as a model name.
    if (!model_allowed(config, route.deployment.empty() ? model : "", deployment)) {
        error = make_error(403, "The model '" + quote_value(model) + "' is not available through this proxy.",
                           "model_not_allowed", "model");
        return false;
    }
    return true;
}

// Responses and assistants: a JSON body's model becomes its deployment, in place. Bodies
// without a model, or that are not JSON, go as they are: Azure answers them.
bool map_body_model(const Config& config, const Route& route, std::string& body, bool& stream,
                    AccessLogEntry& log, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    bool refused = field.status == ModelField::Ambiguous || field.status == ModelField::TooLong ||
                   (field.status == ModelField::InvalidJson && !body.empty());
    if (refused) return model_found(field, error);  // false, saying why
    if (field.status != ModelField::Found) return true;
    if (!map_deployment(config, route, field.model, log, error)) return false;
    if (log.deployment != field.model) set_json_model(body, log.deployment);
    return true;
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
      writer_(connection, config.mode), relay_(writer_, config.mode) {
    heartbeat_.owner = this;
    log_.outcome = "ok";
}

Exchange::~Exchange() {
    heartbeat_.disarm();
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
    if (route_.kind == RouteKind::Preflight || route_.kind == RouteKind::MethodNotAllowed) return true;
    if (!config_.client_keys.empty()) {
        std::string_view presented = presented_key(request_.headers);
        const ClientKey* key = find_client_key(config_.client_keys, presented);
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
        if (use == BodyUse::Upload && !scanner_.found() && !scanner_.failed()) scanner_.feed(data, size);
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
        writer_.error(make_error(404, "The model '" + quote_value(route_.model_id) + "' does not exist.",
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
    if (result.outcome == UpstreamOutcome::Completed) {
        relay_.finish_event_stream();
        return;
    }
    if (result.outcome == UpstreamOutcome::ClientGone) return;
    log_.error = result.error;
    ProxyError error = upstream_error(result, config_);
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
        writer_.error(upstream_error(result, config_));
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
    host_.finished();
}

AccessLogEntry& Exchange::log_entry() {
    log_.status = writer_.status();
    log_.bytes = writer_.bytes();
    // An error the proxy answered names the outcome, unless the upstream's fault already did.
    if (!writer_.error_code().empty() && log_.outcome == "ok") log_.outcome = writer_.error_code();
    log_.duration_ms = EventLoop::clock_ms() - started_ms_;
    return log_;
}

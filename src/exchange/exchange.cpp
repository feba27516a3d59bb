// One request's way through the proxy, as a conductor of phases (exchange.h's Phase):
// receive (params, route, admission, body), serve (model policy, the key's limits, an
// inline answer or a try at a target), relay, finish. The steps live beside it:
// exchange_body.cpp, model_policy.cpp, local_answers.cpp, exchange_tries.cpp,
// exchange_relay.cpp, accounting.cpp; the errors in proxy_errors.cpp.
#include "exchange.h"

#include "json_model.h"
#include "local_answers.h"
#include "model_policy.h"
#include "realtime.h"
#include "shared_state.h"
#include "text.h"
#include "translate.h"

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

// ---- Receiving: params, route, admission, body ---------------------------------------------

void Exchange::receive() {
    receive_head();
    if (!admit()) return;
    BodyUse use = body_use();
    if (use == BodyUse::None) return;
    if (request_.content_length > config_.max_body_bytes) {
        refuse_later(errors::body_too_large(config_.max_body_bytes));
        return;
    }
    read_body(use);
}

void Exchange::receive_head() {
    request_ = request_from_params(connection_.params(), config_, connection_.params_plain());
    keep_own_headers(request_);
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
        refuse_later(errors::malformed_param(request_.malformed_param));
        return false;
    }
    if (route_.kind == RouteKind::Preflight || route_.kind == RouteKind::MethodNotAllowed ||
        route_.kind == RouteKind::Health || route_.kind == RouteKind::Metrics)
        return true;  // /metrics asks for its own key
    if (!config_.client_keys.empty() || (routing_ && !routing_->keys.empty())) {
        std::string_view presented = presented_client_key(request_, route_);
        key_ = find_any_client_key(config_.client_keys, routing_.get(), presented);
        if (!key_) {
            refuse_later(presented.empty() ? errors::missing_key() : errors::wrong_key());
            return false;
        }
        log_.key = key_->name;
        if (key_expired(key_->limits, wall_clock_ms())) {
            refuse_later(errors::expired_key());
            return false;
        }
    }
    std::string_view method(request_.method);  // sizes first: no compare call for a POST
    if (request_.has_body && (method == "GET" || method == "HEAD")) {
        refuse_later(errors::body_on_get(request_.method));
        return false;
    }
    return true;
}

// Receiving may run on a reader thread: what it refuses is answered on the loop.
void Exchange::refuse_later(const ProxyError& error) { refused_ = error; }

ProxyError Exchange::body_too_late() {
    log_.error = "the request body did not arrive within the read deadlines";
    return errors::body_too_late();
}

// ---- Serving --------------------------------------------------------------------------------

void Exchange::refuse(const ProxyError& error, Headers extra) {
    writer_.error(error, std::move(extra));
    finish();
}

void Exchange::serve(const LoopServices& services) {
    services_ = &services;
    phase_ = Phase::Serving;
    in_flight_.emplace(services.state, kRequestsInFlight);
    if (refused_)
        writer_.error(*refused_);
    else
        serve_route();
    finish_unless_started();
}

void Exchange::serve_route() {
    if (answer_locally(route_, request_, config_, services_->state, writer_)) return;
    if (route_.kind == RouteKind::Deployment) serve_deployment();
    else if (route_.kind == RouteKind::Upstream) serve_upstream();
    else serve_live_models();
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
    start_on(route_, log_.deployment, uses_v1_api(config_) && upload);  // exchange_bridge.cpp
}

// Files, batches, assistants, responses, ...: the same path under /openai.
void Exchange::serve_upstream() {
    if (route_.realtime) {
        serve_realtime();
        return;
    }
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

// A key with limits: counted for this request (its ticket), or refused with a 429 that
// says when to come back and what is left.
bool Exchange::admit_key_limits() {
    if (!key_ || !counts_usage(key_->limits)) return true;
    long long estimate = key_->limits.tokens_per_minute && !route_.realtime
                             ? estimate_prompt_tokens(static_cast<long long>(body_.size()) + spool_.size())
                             : 0;
    key_headroom_ = services_->state.admit_key(*key_, wall_clock_ms(), estimate);
    if (key_headroom_.allowed) {
        key_ticket_.emplace(services_->state, *key_, estimate);
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

void Exchange::start_upstream(UpstreamRequest request, RequestBody body) {
    const UpstreamRequest* sent = &request;
    if (learn_params_ && !refusal_try_) {  // exchange_refusal.cpp may send it again: kept, not copied
        refusal_try_.emplace(std::move(request), body);
        sent = &refusal_try_->first;
    }
    if (sent->credential) {  // the endpoint's own Entra ID token first (exchange_token.cpp)
        start_with_token(*sent, body);
        return;
    }
    body.streamed_answer = streamed_answer_;
    try_started_ms_ = EventLoop::clock_ms();
    std::string error;
    transfer_ = services_->upstream.start(*sent, body, *this, error);  // libcurl keeps copies
    if (transfer_) {
        phase_ = Phase::Relaying;
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
    writer_.error(errors::upstream_not_started(error));
}

// ---- From the host, and the end --------------------------------------------------------------

void Exchange::writable() {
    if (phase_ == Phase::Paused && transfer_) {
        phase_ = Phase::Relaying;
        transfer_->resume();
    }
}

void Exchange::client_gone() {
    if (finished()) return;
    log_.outcome = "client-gone";
    transfer_.reset();
    finish();
}

void Exchange::abandon(const char* outcome, const std::string& what) {
    if (finished()) return;
    log_.outcome = outcome;
    log_.error = what;
    transfer_.reset();
    phase_ = Phase::Finished;
    heartbeat_.disarm();
    end_accounting();
}

void Exchange::stop() {
    if (finished()) return;
    log_.outcome = "stopping";
    if ((transfer_ || token_wait_.active()) && !writer_.head_sent()) writer_.error(stopping_error());
    else if (transfer_) cut_short(stopping_error());
    transfer_.reset();
    finish();
}

void Exchange::finish() {
    if (finished()) return;
    phase_ = Phase::Finished;
    heartbeat_.disarm();
    end_accounting();
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

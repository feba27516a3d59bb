// Relaying: the upstream's answer reaches the client as it comes (relay.h), paused while
// the client drains, with heartbeats in a quiet stream; and how it ended.
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include "exchange.h"

#include "realtime.h"
#include "shared_state.h"
#include "translate.h"

namespace {

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

}  // namespace

// GET /v1/models with AZURE_OPENAI_PROXY_LIVE_MODELS: Azure's list, held whole and put in
// OpenAI's shape.
void Exchange::serve_live_models() {
    Route route;
    route.kind = RouteKind::Upstream;
    route.upstream_path = route_.upstream_path;
    collected_.emplace();
    start_upstream(build_upstream_request(config_, request_, route, ""), RequestBody());
}

bool Exchange::on_head(long status, const FieldViews& headers) {
    log_.upstream_status = status;
    double waited = (EventLoop::clock_ms() - try_started_ms_) / 1000.0;
    services_->state.observe("aop_upstream_latency_seconds", {{"target", try_ ? log_.target : "default"}}, waited);
    if (refuse_rejected_token(status)) return false;  // exchange_token.cpp
    if (refuse_answer_head(status, headers)) {
        phase_ = Phase::Retrying;
        return false;
    }
    if (collected_) {
        collected_->status = status;
        const std::string_view* type = find_field(headers, "Content-Type");
        collected_->type = type ? std::string(*type) : "application/json";
        return true;
    }
    if (hold_refusal(status, headers)) return true;  // exchange_refusal.cpp
    if (bridged_) return bridge_head(status, headers);  // exchange_bridge.cpp
    return relay_head(status, headers);
}

// The answer's head goes to the client (with the key's rate-limit headers).
bool Exchange::relay_head(long status, const FieldViews& headers) {
    // The client hears this answer: no resend after a refusal now, the body may go.
    learn_params_ = learn_bridge_ = false;
    refusal_try_.reset();
    Headers replace = key_ticket_ ? rate_limit_headers(key_headroom_) : Headers();
    const std::string_view* location = route_.realtime_call ? find_field(headers, "Location") : nullptr;
    if (location)
        replace.push_back({"Location", proxy_call_location(std::string(*location), upstream_config_->endpoint, request_.mount)});
    bool ok = relay_.head(status, headers, replace);
    release_request();
    if (relay_.event_stream()) streaming_.emplace(services_->state, kActiveStreams);
    host_.flush_soon();
    arm_heartbeat();
    return ok;
}

Taken Exchange::on_data(const char* data, size_t size) {
    if (held_refusal_) return hold_refusal_data(data, size);
    if (bridge_stream_ || bridge_answer_) return bridge_data(data, size);  // exchange_bridge.cpp
    if (collected_) {
        collected_->body.append(data, size);
        return collected_->body.size() <= (8u << 20) ? Taken::All : Taken::Refused;  // a models list is small
    }
    Taken taken = relay_.data(data, size);
    if (taken == Taken::All && log_.upstream_status < 300) {
        usage_.feed(data, size);
        if (relay_.event_stream()) time_first_token();
    }
    return after_relay(taken);
}

Taken Exchange::after_relay(Taken taken) {
    if (taken == Taken::All) {
        host_.flush_soon();
        arm_heartbeat();
    } else if (taken == Taken::Later) {
        phase_ = Phase::Paused;
        host_.wait_writable();
    }
    return taken;
}

void Exchange::time_first_token() {
    if (first_token_timed_) return;
    first_token_timed_ = true;
    services_->state.observe("aop_time_to_first_token_seconds", {{"model", metric_model()}},
                             (EventLoop::clock_ms() - started_ms_) / 1000.0);
}

void Exchange::on_done(const UpstreamResult& result) {
    if (token_rejected_) {
        resend_with_new_token();
        return;
    }
    if (phase_ == Phase::Retrying) {  // the answer's head was a 429 or a 5xx: the next target, or none
        phase_ = Phase::Serving;
        transfer_.reset();
        if (no_target_.index < 0 && no_target_.retry_after_ms > 0) answer_no_target(no_target_);
        else start_try();
        finish_unless_started();
        return;
    }
    if (retry_after(result)) {
        finish_unless_started();
        return;
    }
    if (held_refusal_ && (resend_fixed(result) || resend_bridged(result))) return;  // exchange_refusal.cpp, exchange_bridge.cpp
    if (held_refusal_) release_held_refusal();  // relayed as it came (a client gone: relay_done's writes go nowhere)
    bool whole = result.outcome == UpstreamOutcome::Completed;
    settle_try(whole ? answer_result_ : result.outcome == UpstreamOutcome::ClientGone ? TryResult::Abandoned : TryResult::Failed,
               answer_retry_after_ms_);
    log_.upstream_status = result.status;
    log_.outcome = outcome_name(result.outcome);
    if (collected_)
        answer_models(result);
    else if (bridged_)
        bridge_done(result);
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
    ProxyError error = errors::upstream_failed(result, upstream_config_->endpoint);
    if (writer_.head_sent()) cut_short(error);
    else writer_.error(error);
}

// An answer that cannot be completed is never made to look complete: an event stream gets
// an error event, and the request ends without FastCGI's END_REQUEST, so the web server
// cuts the client's connection (no final chunk) and every client library raises.
void Exchange::cut_short(const ProxyError& error) {
    relay_.fail_event_stream(error);
    writer_.cut_short();
}

void Exchange::answer_models(const UpstreamResult& result) {
    std::string converted;
    if (result.outcome != UpstreamOutcome::Completed) {
        log_.error = result.error;
        writer_.error(errors::upstream_failed(result, upstream_config_->endpoint));
    } else if (collected_->status == 200 && azure_models_to_openai(collected_->body, converted)) {
        writer_.complete(200, "application/json", converted);
    } else {
        writer_.complete(static_cast<int>(collected_->status), collected_->type, collected_->body);
    }
}

void Exchange::arm_heartbeat() {
    if (relay_.event_stream() && config_.heartbeat_ms > 0 && !request_.server_notices_clients_leaving)
        services_->heartbeats.arm(heartbeat_, services_->loop.now_ms());
}

void Exchange::heartbeat_due() {
    if (finished()) return;
    if (relay_.heartbeat()) host_.flush_soon();
    arm_heartbeat();  // due again after another quiet spell, whether or not one was sent now
}

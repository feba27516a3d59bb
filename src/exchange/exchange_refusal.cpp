// A refusal held. A chat request to a reasoning deployment has the parameters the
// deployment refuses fixed in its body before it goes (reasoning_params.h: the built-in
// families, the routing file's overrides, what the host learned). When Azure still answers
// 400 naming a parameter the proxy can fix, and the client has heard nothing, that answer
// is held (at most kHeldRefusalBytes) instead of relayed; at its end the body is fixed and
// sent again (at most kParamResends times), and the shared state remembers the refusal
// for the target, so every process sends the next request right the first time. Any other
// 400 is relayed unchanged, as it came. The Chat->Responses bridge holds Azure's
// OperationNotSupported the same way (exchange_bridge.cpp's resend_bridged).
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include "exchange.h"

#include "bridge_choice.h"
#include "shared_state.h"

namespace {

const size_t kHeldRefusalBytes = 64 * 1024;  // Azure's 400s are a few hundred bytes
const int kParamResends = 3;                 // parameters fixed after a refusal, per request

}  // namespace

// Called for each try's deployment just before its body goes (body_for): only chat
// completions whose JSON body is in memory (a body spooled to disk, for a deployment named
// in the URL, goes as it came).
void Exchange::fix_parameters_for(const std::string& deployment) {
    learn_params_ = learn_bridge_ = bridged_ = false;
    refusal_try_.reset();  // start_upstream keeps this try's request
    if (!config_.fix_parameters || std::string_view(route_.operation) != "chat/completions" || body_.empty()) return;
    const ParamOverrides* overrides = routing_ ? &routing_->parameters : nullptr;
    // The operator's word on a model or deployment stands: nothing is learned for it.
    bool overridden = overrides && (overrides->count(log_.model) || overrides->count(deployment));
    if (log_.target.empty()) param_key_.assign("default/").append(deployment);  // no string made to be moved
    else param_key_ = log_.target;
    ParamSet learned = overridden ? 0 : services_->state.refused_params(param_key_);
    if ((bridge_learned_ && !overridden) || bridge_to_responses(log_.model, deployment, overrides, learned)) {
        bridge_body(deployment);  // exchange_bridge.cpp
        return;
    }
    ParamSet fixes = (params_to_fix(log_.model, deployment, overrides) | learned) & ~kResponsesOnly;
    learn_params_ = learn_bridge_ = !overridden;
    ParamSet fixed = fix_parameters(body_, fixes, log_.rewrites);
    if (fixed && !params_fixed_) services_->state.count("aop_parameter_rewrites_total", {{"model", metric_model()}});
    params_fixed_ |= fixed;
}

// A 400 to a body the proxy may fix, before the client heard anything: held.
bool Exchange::hold_refusal(long status, const FieldViews& headers) {
    if (status != 400 || !((learn_params_ && refusal_try_) || learn_bridge_) || param_resends_ >= kParamResends || writer_.head_sent() ||
        body_.empty())
        return false;
    long long length = header_number(headers, "Content-Length");
    if (length > static_cast<long long>(kHeldRefusalBytes)) return false;
    held_refusal_.emplace();
    held_refusal_->status = status;
    held_refusal_->headers = owned_headers(headers);  // the transfer's head goes on to its next answer
    return true;
}

// A held answer larger than its bound is relayed from there on, as it came.
Taken Exchange::hold_refusal_data(const char* data, size_t size) {
    std::string& body = held_refusal_->body;
    if (body.size() + size <= kHeldRefusalBytes) {
        body.append(data, size);
        return Taken::All;
    }
    if (!release_held_refusal()) return Taken::Refused;
    return on_data(data, size);
}

// The held 400 named a parameter the proxy can fix and has not fixed yet: the body is
// fixed, the refusal remembered for the target, and the same try sent again.
bool Exchange::resend_fixed(const UpstreamResult& result) {
    if (result.outcome != UpstreamOutcome::Completed) return false;
    ParamSet refused = fixable_refusal(held_refusal_->body);
    if (!refused || (refused & params_fixed_)) return false;
    std::string rewrites;
    ParamSet fixed = fix_parameters(body_, refused, rewrites);
    if (!fixed) return false;  // not in the body as Azure read it (an escaped key): relayed
    services_->state.learn_refused_params(param_key_, fixed);
    services_->state.count("aop_parameter_refusals_learned_total", {{"model", metric_model()}});
    if (!params_fixed_) services_->state.count("aop_parameter_rewrites_total", {{"model", metric_model()}});
    params_fixed_ |= fixed;
    add_rewrite(log_.rewrites, rewrites);
    ++param_resends_;
    held_refusal_.reset();
    transfer_.reset();
    auto again = *refusal_try_;  // a copy: a try that cannot start goes to the next target, which replaces it
    start_upstream(std::move(again.first), again.second);
    finish_unless_started();
    return true;
}

// The held answer goes to the client as it came. False: the client is gone.
bool Exchange::release_held_refusal() {
    HeldRefusal held = std::move(*held_refusal_);
    held_refusal_.reset();
    if (!relay_head(held.status, field_views(held.headers))) return false;
    return held.body.empty() || writer_.body(held.body.data(), held.body.size());
}

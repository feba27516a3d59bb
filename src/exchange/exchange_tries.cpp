// Target tries: a model of the routing table goes to the target the shared state picks; a
// try that fails before the client heard anything goes to the next one, while tries are
// left. Each try is a TryTicket (tickets.h): its place in flight and its circuit trial are
// given back when it ends, whatever ended it.
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include "exchange.h"

#include "shared_state.h"
#include "translate.h"

// One try: the target the shared state picks, as its endpoint wants the request (URL, key,
// api-version, and the model as its deployment where the API carries it in the body).
void Exchange::start_try() {
    Pick pick = services_->state.choose(*targets_, tried_, wall_clock_ms(), true, trial_lease_ms(routing_->retry));
    if (pick.index < 0) {
        answer_no_target(pick);
        return;
    }
    const Target& target = (*targets_)[static_cast<size_t>(pick.index)];
    try_.emplace(services_->state, target, pick.trial_token, routing_->retry);
    tried_[static_cast<size_t>(pick.index)] = true;
    ++log_.tries;
    if (log_.tries > 1) services_->state.count("aop_retries_total", {{"model", log_.model}});
    upstream_config_ = routing_->endpoints[target.endpoint].upstream.get();
    log_.deployment = target.deployment;
    log_.target = target.name;
    bool openai = upstream_config_->mode == ProxyMode::OpenAI;
    const Route* route = &route_;
    if (openai) {
        openai_route_ = route_;
        openai_route_.kind = RouteKind::Upstream;
        openai_route_.upstream_path = "/v1/" + route_.operation;
        route = &openai_route_;
    }
    start_on(*route, target.deployment, openai || uses_v1_api(*upstream_config_));  // exchange_bridge.cpp
}

// Every target is cooling down after a 429, behind an open circuit, or already tried.
void Exchange::answer_no_target(const Pick& pick) {
    Headers headers;
    if (pick.retry_after_ms > 0) add_retry_after(headers, pick.retry_after_ms);
    log_.outcome = "no-target";
    writer_.error(errors::no_target(pick, log_.model), std::move(headers));
}

// Another target may take the request: tries are left, the client has had nothing yet,
// and a target not yet tried is free now.
bool Exchange::can_retry() {
    if (!targets_ || writer_.head_sent() || log_.tries >= routing_->retry.max_tries) return false;
    return services_->state.choose(*targets_, tried_, wall_clock_ms(), false).index >= 0;
}

// Ends the current try: its target hears the result as its ticket goes.
void Exchange::settle_try(TryResult result, int64_t retry_after_ms) {
    if (!try_) return;
    try_->set_result(result, retry_after_ms);
    try_.reset();
}

// A failed try before any answer: true when another target takes the request.
bool Exchange::retry_after(const UpstreamResult& result) {
    bool before_answer = !result.answered && result.outcome != UpstreamOutcome::Completed &&
                         result.outcome != UpstreamOutcome::ClientGone;
    if (!try_ || !before_answer) return false;
    settle_try(TryResult::Failed, -1);
    if (!can_retry()) return false;
    log_.error = result.error;
    transfer_.reset();
    start_try();
    return true;
}

// The head of a try's answer: its target's headroom noted; a 429 or a 5xx the client has
// not seen is refused (true: the transfer ends, and on_done tries the next target, or says
// that none is free).
bool Exchange::refuse_answer_head(long status, const FieldViews& headers) {
    if (!try_) return false;
    services_->state.remember_headroom(try_->target(), header_number(headers, "x-ratelimit-remaining-requests"),
                                       header_number(headers, "x-ratelimit-remaining-tokens"));
    answer_result_ = result_of_status(status);
    answer_retry_after_ms_ = retry_after_ms(headers);
    if (answer_result_ == TryResult::Success) return false;
    settle_try(answer_result_, answer_retry_after_ms_);
    if (can_retry()) return true;
    // The last free target is full too: the client hears when the first of them takes
    // requests again, rather than this one's own wait.
    if (answer_result_ == TryResult::RateLimited && targets_->size() > 1) {
        no_target_ = services_->state.choose(*targets_, std::vector<bool>(targets_->size(), false), wall_clock_ms(), false);
        return no_target_.index < 0;
    }
    return false;
}

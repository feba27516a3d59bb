// The Chat->Responses bridge. A chat completions request whose deployment takes the
// Responses API only (bridge_choice.h: the routing file's word, the documented families,
// what the host learned) goes as a Responses API request: its body rebuilt
// (chat_to_responses.h; what cannot be carried is a 400 naming the parameter), to the
// endpoint's /openai/v1/responses (or /openai/responses?api-version= on dated API versions),
// with the same credential. Each try decides for its own target (failover may reach a
// deployment that takes chat). Azure's 400 OperationNotSupported to a chat try, held before
// the client heard anything (exchange_refusal.cpp), is remembered for the target in the
// shared state and the try is sent again bridged: every process bridges the next request at
// once. The answer comes back as chat: a stream event by event (responses_stream.h, between
// the upstream and the relay, which sees chat chunks and keeps its heartbeats), any other
// answer collected (bounded) and translated at its end (responses_answer.h). Its usage is
// the translator's: it reaches the key's limits, the log and the metrics (accounting.cpp).
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp,
// its proof through web servers tests/integration/responses-bridge.test.mjs.
#include <algorithm>

#include "exchange.h"

#include "bridge_choice.h"
#include "chat_to_responses.h"
#include "json_model.h"
#include "responses_answer.h"
#include "shared_state.h"
#include "text.h"
#include "translate.h"

namespace {

// Azure's headers about the Responses body, which the bridge replaces by a chat body of
// its own type and length.
bool describes_replaced_body(std::string_view name) {
    return iequals(name, "Content-Type") || iequals(name, "Content-Length");
}

}  // namespace

// The try's body as the Responses API takes it, its model the deployment; or the refusal
// the client gets.
void Exchange::bridge_body(const std::string& deployment) {
    BridgedRequest bridged = chat_to_responses(body_);
    if (!bridged.ok) {
        bridge_refusal_ = errors::bridge_refused(bridged.refusal);
        return;
    }
    bridged_body_ = std::move(bridged.body);
    if (!deployment.empty()) set_json_model(bridged_body_, deployment);
    bridged_ = true;
    bridge_include_usage_ = bridged.include_usage;
    if (log_.rewrites.find("bridge:responses") != std::string::npos) return;  // counted once a request
    add_rewrite(log_.rewrites, "bridge:responses");
    services_->state.count("aop_bridged_requests_total", {{"model", metric_model()}});
}

// A try: its body (fixed or bridged, body_for) and its request; a body the bridge cannot
// carry is answered here. `route` is route_ or openai_route_, which outlive the try.
void Exchange::start_on(const Route& route, const std::string& deployment, bool rewrite_model) {
    try_route_ = &route;
    try_rewrite_ = rewrite_model;
    RequestBody source = body_for(deployment, rewrite_model);
    if (bridge_refusal_) {
        settle_try(TryResult::Abandoned, -1);
        writer_.error(*bridge_refusal_);
        return;
    }
    start_upstream(try_request(route, deployment), source);
}

// A bridged try goes to the Responses API of its endpoint, otherwise where its route says.
UpstreamRequest Exchange::try_request(const Route& route, const std::string& deployment) {
    if (!bridged_) return build_upstream_request(*upstream_config_, request_, route, deployment);
    Route responses;
    responses.kind = RouteKind::Upstream;
    responses.operation = "responses";
    responses.upstream_path = upstream_config_->mode == ProxyMode::OpenAI ? "/v1/responses" : "/responses";
    return build_upstream_request(*upstream_config_, request_, responses, deployment);
}

// The held 400 is Azure's OperationNotSupported: the target takes the Responses API only.
// Remembered host-wide, and the same try sent again bridged.
bool Exchange::resend_bridged(const UpstreamResult& result) {
    if (!learn_bridge_ || result.outcome != UpstreamOutcome::Completed ||
        !chat_not_supported(held_refusal_->status, held_refusal_->body))
        return false;
    services_->state.learn_refused_params(param_key_, kResponsesOnly);
    services_->state.count("aop_responses_only_learned_total", {{"model", metric_model()}});
    bridge_learned_ = true;
    held_refusal_.reset();
    transfer_.reset();
    start_on(*try_route_, log_.deployment, try_rewrite_);
    finish_unless_started();
    return true;
}

// A stream's head goes at once (the first byte is not delayed); any other answer, and an
// error to a stream, is collected and translated whole at its end.
bool Exchange::bridge_head(long status, const FieldViews& headers) {
    if (!(streamed_answer_ && status >= 200 && status < 300)) {
        bridge_answer_.emplace();
        bridge_answer_->status = status;
        bridge_headers_ = owned_headers(headers);
        return true;
    }
    ChatStreamOptions options;
    options.model = log_.model.empty() ? log_.deployment : log_.model;
    options.include_usage = bridge_include_usage_;
    options.created = wall_clock_ms() / 1000;
    bridge_stream_ = std::make_unique<ResponsesToChatStream>(options);
    FieldViews chat;
    for (const FieldView& header : headers)
        if (!describes_replaced_body(header.name)) chat.push_back(header);
    chat.push_back({"Content-Type", "text/event-stream; charset=utf-8"});
    return relay_head(status, chat);
}

Taken Exchange::bridge_data(const char* data, size_t size) {
    if (bridge_stream_) return bridge_stream_data(data, size);
    std::string& body = bridge_answer_->body;
    if (body.size() + size > kMaxBridgedAnswer) return Taken::Refused;  // on_done: 502
    body.append(data, size);
    return Taken::All;
}

// What was translated goes to the relay in pieces the connection takes (a held delta with
// its chunk's JSON is larger than the connection's write budget); Later: the rest waits.
Taken Exchange::bridge_flush() {
    const size_t kPiece = 16 * 1024;
    while (bridge_sent_ < bridge_pending_.size()) {
        size_t piece = std::min(bridge_pending_.size() - bridge_sent_, kPiece);
        Taken taken = relay_.data(bridge_pending_.data() + bridge_sent_, piece);
        if (taken != Taken::All) return after_relay(taken);
        bridge_sent_ += piece;
    }
    bridge_pending_.clear();
    bridge_sent_ = 0;
    return Taken::All;
}

// A piece of the Responses stream, translated and relayed. When the client cannot take it
// all yet, libcurl gives the same piece again after resume(): what was translated waits in
// bridge_pending_ and the piece is not translated twice.
Taken Exchange::bridge_stream_data(const char* data, size_t size) {
    Taken taken = bridge_flush();
    if (taken != Taken::All) return taken;
    size_t skip = std::min(size, bridge_consumed_);
    bridge_consumed_ = 0;
    bridge_stream_->feed(std::string_view(data + skip, size - skip), bridge_pending_);
    bool wrote = !bridge_pending_.empty();
    taken = bridge_flush();
    if (taken == Taken::Later) bridge_consumed_ = size;
    if (taken != Taken::All) return taken;
    if (!wrote) return Taken::All;
    time_first_token();
    return after_relay(Taken::All);
}

// The end of a bridged try's answer.
void Exchange::bridge_done(const UpstreamResult& result) {
    if (bridge_stream_) {
        bridge_stream_done(result);
        return;
    }
    if (!bridge_answer_ || result.outcome != UpstreamOutcome::Completed) {
        relay_done(result);  // no head, or the answer did not arrive whole: the failure as for chat
        return;
    }
    ChatAnswer answer = responses_to_chat_answer(bridge_answer_->body, static_cast<int>(bridge_answer_->status), log_.model);
    bridge_usage_ = answer.usage;
    Headers extra = key_ticket_ ? rate_limit_headers(key_headroom_) : Headers();
    if (!answer.ok) {
        writer_.error(answer.error, std::move(extra));
        return;
    }
    for (const Header& header : bridge_headers_)
        if (is_relayed_response_header(header.name, config_.mode) && !describes_replaced_body(header.name) &&
            !find_header(extra, header.name))
            extra.push_back(header);
    writer_.complete(static_cast<int>(bridge_answer_->status), "application/json", answer.body, std::move(extra));
}

// A stream that ended: its last chunks and [DONE], or the error event of a stream that
// broke (the request then ends cut, as a relayed stream's failure does).
void Exchange::bridge_stream_done(const UpstreamResult& result) {
    bridge_usage_ = bridge_stream_->usage();
    if (result.outcome == UpstreamOutcome::ClientGone) return;
    if (bridge_sent_ < bridge_pending_.size())
        writer_.body(bridge_pending_.data() + bridge_sent_, bridge_pending_.size() - bridge_sent_);
    if (result.outcome != UpstreamOutcome::Completed && !bridge_stream_->completed() && !bridge_stream_->error()) {
        log_.error = result.error;
        cut_short(errors::upstream_failed(result, upstream_config_->endpoint));
        return;
    }
    std::string out;
    bridge_stream_->finish(out);
    if (!out.empty()) writer_.body(out.data(), out.size());
    if (const ProxyError* error = bridge_stream_->error()) {
        log_.error = "the Responses stream failed: " + error->message.substr(0, 200);
        if (log_.outcome == "ok") log_.outcome = "upstream-failed";
        writer_.cut_short();
    }
}

// Accounting, once at the end of every exchange however it ended: what it held in the
// shared state goes back (its tickets), its tokens go to its key's limits, and it is
// counted (aop_requests_total, aop_tokens_total). The access line is the host's to write.
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include <algorithm>
#include <charconv>

#include "exchange.h"
#include "shared_state.h"

// An exchange that was served holds the in-flight gauge until it is accounted: accounting
// happens once, when that ticket goes.
void Exchange::end_accounting() {
    if (!in_flight_) return;
    settle_try(TryResult::Abandoned, -1);
    // A bridged answer's usage is its translator's (either way, Responses counts).
    log_.prompt_tokens = bridged_ ? bridge_usage_.input_tokens : usage_.prompt_tokens();
    log_.completion_tokens = bridged_ ? bridge_usage_.output_tokens : usage_.completion_tokens();
    long long used = -1;
    if (log_.prompt_tokens >= 0 || log_.completion_tokens >= 0)
        used = std::max(0LL, log_.prompt_tokens) + std::max(0LL, log_.completion_tokens);
    if (key_ticket_) key_ticket_->report_used(used);
    key_ticket_.reset();
    streaming_.reset();
    in_flight_.reset();
    SharedState& state = services_->state;
    std::string_view model = metric_model(), key = key_ ? std::string_view(key_->name) : std::string_view();
    char digits[kLongestStatusLabel];  // to_chars: a tenth of snprintf's instructions
    std::to_chars_result written = std::to_chars(digits, digits + sizeof digits, writer_.status());
    std::string_view status(digits, written.ec == std::errc() ? static_cast<size_t>(written.ptr - digits) : 0);
    static const SeriesFamily kRequests{"aop_requests_total", {"route", "model", "target", "key", "status"}};
    static const SeriesFamily kTokens{"aop_tokens_total", {"model", "key", "kind"}};
    state.count(kRequests, {route_label(), model, log_.target, key, status});
    if (log_.prompt_tokens > 0) state.count(kTokens, {model, key, "prompt"}, static_cast<double>(log_.prompt_tokens));
    if (log_.completion_tokens > 0)
        state.count(kTokens, {model, key, "completion"}, static_cast<double>(log_.completion_tokens));
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
                                                 "vector_stores", "fine_tuning", "uploads", "models", "realtime"};
            for (const char* known : kKnown)
                if (first == known) return known;
            return "other";
        }
        default: return "other";
    }
}

// The tickets a request holds in the shared state (tickets.h).
#include "tickets.h"

#include "shared_state.h"

KeyTicket::~KeyTicket() { state_.release_key(key_, estimate_, used_, wall_clock_ms()); }

TryTicket::~TryTicket() {
    state_.report(target_, result_, retry_after_ms_, trial_, wall_clock_ms(), policy_);
    static const char* const kNames[] = {"ok", "rate_limited", "failed", "abandoned"};
    static const SeriesFamily kTries{"aop_upstream_tries_total", {"target", "result"}};
    state_.count(kTries, {target_.name, kNames[static_cast<int>(result_)]});
}

GaugeTicket::GaugeTicket(SharedState& state, const std::string& gauge) : state_(state), gauge_(gauge) {
    state_.add(gauge_, 1, true);
}

GaugeTicket::~GaugeTicket() { state_.add(gauge_, -1, true); }

const std::string kRequestsInFlight = "aop_requests_in_flight";
const std::string kActiveStreams = "aop_active_streams";

// What a request holds in the shared state, each as a ticket that gives it back when it is
// destroyed — however the request ended (answered, failed over, cut, abandoned by the
// client, or stopped). Nothing is released by remembering to.
#pragma once

#include <cstdint>
#include <string>

#include "target_choice.h"
#include "client_keys.h"
#include "routing.h"

class SharedState;

// A key's place in its limits for one request. Given back with the tokens the answer used,
// once they are known (report_used), else with the estimate it was admitted with.
class KeyTicket {
public:
    KeyTicket(SharedState& state, const ClientKey& key, long long estimate) : state_(state), key_(key), estimate_(estimate) {}
    ~KeyTicket();
    KeyTicket(const KeyTicket&) = delete;
    KeyTicket& operator=(const KeyTicket&) = delete;
    void report_used(long long tokens) { used_ = tokens; }

private:
    SharedState& state_;
    const ClientKey& key_;
    long long estimate_;
    long long used_ = -1;  // unknown
};

// One try at a target: its place in flight there, and an open circuit's trial when the pick
// was one (`trial`: its token, 0 if none). On destruction the target hears how the try went
// (set_result; unset: abandoned, which leaves its health as it was) and the try is counted.
class TryTicket {
public:
    TryTicket(SharedState& state, const Target& target, uint32_t trial, const RetryPolicy& policy)
        : state_(state), target_(target), trial_(trial), policy_(policy) {}
    ~TryTicket();
    TryTicket(const TryTicket&) = delete;
    TryTicket& operator=(const TryTicket&) = delete;
    void set_result(TryResult result, int64_t retry_after_ms) {
        result_ = result;
        retry_after_ms_ = retry_after_ms;
    }
    const Target& target() const { return target_; }

private:
    SharedState& state_;
    const Target& target_;
    uint32_t trial_;
    const RetryPolicy& policy_;
    TryResult result_ = TryResult::Abandoned;
    int64_t retry_after_ms_ = -1;
};

// A gauge raised by one for as long as the ticket lives (aop_requests_in_flight,
// aop_active_streams).
class GaugeTicket {
public:
    GaugeTicket(SharedState& state, const std::string& gauge);
    ~GaugeTicket();
    GaugeTicket(const GaugeTicket&) = delete;
    GaugeTicket& operator=(const GaugeTicket&) = delete;

private:
    SharedState& state_;
    const std::string& gauge_;
};

// The gauges a request holds.
extern const std::string kRequestsInFlight;  // aop_requests_in_flight
extern const std::string kActiveStreams;     // aop_active_streams

// Choosing among a model's targets, and what a try's result does to a target's health:
// pure functions over snapshots. The shared state (shared_state.h) holds the health of
// every target for all processes of the host and applies these under its lock.
#pragma once

#include <cstdint>
#include <vector>

#include "request.h"
#include "response.h"
#include "routing.h"

struct TargetHealth {
    int64_t cooldown_until_ms = 0;      // after a 429: until its retry-after (wall clock)
    int64_t circuit_open_until_ms = 0;  // 0: closed; then one trial request once passed
    int failures = 0;                   // consecutive failures (not 429s)
    bool trial_out = false;             // the circuit's trial request is out
    long in_flight = 0;                 // requests sent there and not yet answered
};

enum class TryResult {
    Success,      // an answer that is the client's (2xx, 4xx other than 429)
    RateLimited,  // 429
    Failed,       // unreachable, timed out, 5xx
    Abandoned,    // the client left first: says nothing of the target
};

struct Pick {
    int index = -1;              // the target, or -1: none can take the request now
    bool trial = false;          // the request is the trial of an open circuit
    int64_t retry_after_ms = 0;  // none: the soonest a target takes requests again
    bool cooling = false;        // none: that soonest one waits out a 429 (else a circuit)
    uint32_t trial_token = 0;    // a trial the shared state gave out: report() gives it back
};

// Whether the target's circuit keeps requests away now: open, or past its open period
// with its one trial out. Past the period with no trial out, the next request is the trial.
bool circuit_blocks(const TargetHealth& health, int64_t now_ms);

// The lowest priority group with a target that is neither cooling down, nor behind an open
// circuit, nor already tried for this request; inside it, the target with the fewest
// requests in flight per unit of weight (`random` breaks ties, in proportion to weight).
Pick pick_target(const std::vector<Target>& targets, const std::vector<TargetHealth>& health,
                 const std::vector<bool>& tried, int64_t now_ms, uint64_t random);

// What a try's result makes of the target's health. `retry_after_ms` is what a 429 asked
// (-1: nothing), capped by the policy.
TargetHealth after_try(TargetHealth health, TryResult result, int64_t retry_after_ms, bool trial,
                       int64_t now_ms, const RetryPolicy& policy);

// The wait an answer asks for: retry-after-ms, else retry-after in seconds; -1 if none.
int64_t retry_after_ms(const FieldViews& headers);

// A header's value as a whole number; -1 when absent or not one.
long long header_number(const FieldViews& headers, const char* name);

// How an answer's status counts for the target.
TryResult result_of_status(long status);

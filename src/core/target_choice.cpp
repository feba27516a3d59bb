#include "target_choice.h"

#include <algorithm>

#include "text.h"

namespace {

bool cooling(const TargetHealth& h, int64_t now_ms) { return h.cooldown_until_ms > now_ms; }

// When a target that cannot take a request now will again (0: it is only tried already
// or its trial is out: unknown).
int64_t free_again_ms(const TargetHealth& h, int64_t now_ms) {
    int64_t until = std::max(h.cooldown_until_ms, h.circuit_open_until_ms);
    return until > now_ms ? until - now_ms : 0;
}

}  // namespace

bool circuit_blocks(const TargetHealth& h, int64_t now_ms) {
    if (h.circuit_open_until_ms == 0) return false;
    return h.circuit_open_until_ms > now_ms || h.trial_out;
}

Pick pick_target(const std::vector<Target>& targets, const std::vector<TargetHealth>& health,
                 const std::vector<bool>& tried, int64_t now_ms, uint64_t random) {
    Pick pick;
    int best_priority = 0;
    double best_load = 0;
    long ties_weight = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
        const TargetHealth& h = health[i];
        if (tried[i]) continue;
        if (cooling(h, now_ms) || circuit_blocks(h, now_ms)) {
            int64_t wait = free_again_ms(h, now_ms);
            if (wait > 0 && (pick.retry_after_ms == 0 || wait < pick.retry_after_ms)) {
                pick.retry_after_ms = wait;
                pick.cooling = h.cooldown_until_ms - now_ms == wait;
            }
            continue;
        }
        const Target& t = targets[i];
        double load = static_cast<double>(h.in_flight) / t.weight;
        bool better = pick.index < 0 || t.priority < best_priority ||
                      (t.priority == best_priority && load < best_load);
        bool tie = !better && t.priority == best_priority && load == best_load;
        if (better) {
            pick.index = static_cast<int>(i);
            best_priority = t.priority;
            best_load = load;
            ties_weight = t.weight;
        } else if (tie) {
            // Weighted reservoir choice among equals: each wins in proportion to its weight.
            ties_weight += t.weight;
            uint64_t mixed = (random ^ (i * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
            if (static_cast<long>((mixed >> 33) % static_cast<uint64_t>(ties_weight)) < t.weight)
                pick.index = static_cast<int>(i);
        }
    }
    if (pick.index >= 0) {
        const TargetHealth& chosen = health[static_cast<size_t>(pick.index)];
        pick.trial = chosen.circuit_open_until_ms != 0;
        pick.retry_after_ms = 0;
        pick.cooling = false;
    }
    return pick;
}

TargetHealth after_try(TargetHealth h, TryResult result, int64_t retry_after, bool trial, int64_t now_ms,
                       const RetryPolicy& policy) {
    if (trial) h.trial_out = false;
    switch (result) {
        case TryResult::Success:
            h.failures = 0;
            h.circuit_open_until_ms = 0;
            break;
        case TryResult::RateLimited: {
            // A 429 says the target is well, only full: a cooldown, not a failure.
            int64_t wait = retry_after < 0 ? policy.default_cooldown_s * 1000 : retry_after;
            wait = std::min<int64_t>(wait, policy.cooldown_cap_s * 1000);
            h.cooldown_until_ms = std::max(h.cooldown_until_ms, now_ms + wait);
            if (trial) h.circuit_open_until_ms = 0, h.failures = 0;
            break;
        }
        case TryResult::Abandoned:
            break;
        case TryResult::Failed:
            ++h.failures;
            if (trial || h.failures >= policy.circuit_failures)
                h.circuit_open_until_ms = now_ms + policy.circuit_open_s * 1000;
            break;
    }
    return h;
}

int64_t retry_after_ms(const FieldViews& headers) {
    if (const std::string_view* ms = find_field(headers, "retry-after-ms")) {
        long long value = digits_value(*ms, 12);
        if (value >= 0) return value;
    }
    if (const std::string_view* seconds = find_field(headers, "retry-after")) {
        long long value = digits_value(*seconds, 12);
        if (value >= 0) return value * 1000;
    }
    return -1;
}

long long header_number(const FieldViews& headers, const char* name) {
    const std::string_view* value = find_field(headers, name);
    return value ? digits_value(*value, 12) : -1;
}

TryResult result_of_status(long status) {
    if (status == 429) return TryResult::RateLimited;
    if (status >= 500) return TryResult::Failed;
    return TryResult::Success;
}

// The shared state's targets: their health (cooldowns, circuits, requests in flight, the
// headroom they last reported) and an open circuit's trial, held by one process until its
// report, its death or its lease; a pick among a model's targets under the lock.
#include "shared_state.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "shared_state_layout.h"

using namespace shared_state_internal;

namespace {

// The trial is still out: its lease runs, and the process that took it still has its row.
bool trial_held(const SharedLayout& l, const TargetSlot& s, int64_t now_ms) {
    const TrialOwner& owner = s.trial_owner;
    if (s.trial_token == 0 || s.trial_until_ms <= now_ms || owner.row < 0 || owner.row >= kProcesses) return false;
    const ProcessSlot& holder = l.processes[owner.row];
    return holder.pid == owner.pid && holder.start_time == owner.start_time;
}

TargetHealth health_of(const SharedLayout& l, int slot, int64_t now_ms) {
    const TargetSlot& s = l.targets[slot];
    TargetHealth h;
    h.cooldown_until_ms = sane_ms(s.cooldown_until_ms);
    h.circuit_open_until_ms = sane_ms(s.circuit_open_until_ms);
    h.failures = std::clamp(s.failures, 0, kMostInFlight);
    h.trial_out = trial_held(l, s, now_ms);
    h.in_flight = in_flight(l, l.target_in_flight, slot);
    return h;
}

uint32_t take_trial(SharedLayout& l, int slot, int row, int64_t until_ms) {
    TargetSlot& s = l.targets[slot];
    if (++s.trial_serial == 0) ++s.trial_serial;
    s.trial_token = s.trial_serial;
    s.trial_until_ms = until_ms;
    s.trial_owner = {row, l.processes[row].pid, l.processes[row].start_time};
    return s.trial_token;
}
}  // namespace

Pick SharedState::choose(const std::vector<Target>& targets, const std::vector<bool>& tried, int64_t now_ms, bool take,
                         int64_t trial_lease_ms) {
    every_second(now_ms);
    std::vector<TargetHealth> health(targets.size());
    std::vector<int> slots(targets.size(), -1);
    HeldState held = hold();
    SharedLayout& l = held.layout();
    for (size_t i = 0; i < targets.size(); ++i) {
        int slot = slots[i] = find_target(l, targets[i].name, true);
        if (slot >= 0) health[i] = health_of(l, slot, now_ms);  // (no slot: the target is always healthy)
    }
    uint64_t seed = static_cast<uint64_t>(now_ms) * 2654435761ULL + static_cast<uint64_t>(held.process());  // (no syscall)
    Pick pick = pick_target(targets, health, tried, now_ms, seed);
    if (take && pick.index >= 0 && slots[pick.index] >= 0) {
        int slot = slots[pick.index];
        add_in_flight(l.target_in_flight[held.process()][slot], 1);
        if (pick.trial) pick.trial_token = take_trial(l, slot, held.process(), now_ms + trial_lease_ms);
    }
    return pick;
}

void SharedState::report(const Target& target, TryResult result, int64_t retry_after, uint32_t trial, int64_t now_ms,
                         const RetryPolicy& policy, bool ends) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target.name, false);
    if (slot < 0) return;
    TargetSlot& s = l.targets[slot];
    // A trial whose lease passed and that another request took over is a plain try now.
    bool owns_trial = trial != 0 && s.trial_token == trial;
    TargetHealth h = after_try(health_of(l, slot, now_ms), result, retry_after, owns_trial, now_ms, policy);
    s.cooldown_until_ms = h.cooldown_until_ms;
    s.circuit_open_until_ms = h.circuit_open_until_ms;
    s.failures = h.failures;
    if (owns_trial) s.trial_token = 0;
    if (ends) add_in_flight(l.target_in_flight[held.process()][slot], -1);
}

void SharedState::end_try(const Target& target) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target.name, false);
    if (slot >= 0) add_in_flight(l.target_in_flight[held.process()][slot], -1);
}

void SharedState::remember_headroom(const Target& target, long long requests, long long tokens) {
    if (requests < 0 && tokens < 0) return;
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target.name, false);
    if (slot < 0) return;
    if (requests >= 0) l.targets[slot].remaining_requests = sane_count(requests) + 1;
    if (tokens >= 0) l.targets[slot].remaining_tokens = sane_count(tokens) + 1;
}

void SharedState::learn_refused_params(const std::string& target, uint32_t params) {
    HeldState held = hold();
    int slot = find_target(held.layout(), target, true);
    if (slot >= 0) held.layout().targets[slot].refused_params |= params;
}

uint32_t SharedState::refused_params(const std::string& target) {
    HeldState held = hold();
    int slot = find_target(held.layout(), target, false);
    return slot < 0 ? 0 : held.layout().targets[slot].refused_params;
}

std::vector<TargetView> SharedState::targets() {
    int64_t now_ms = wall_clock_ms();
    every_second(now_ms);
    std::vector<TargetView> out;
    HeldState held = hold();
    SharedLayout& l = held.layout();
    for (int i = 0; i < kTargets; ++i) {
        const TargetSlot& s = l.targets[i];
        if (!s.name[0]) continue;
        TargetView view;
        view.name.assign(s.name, strnlen(s.name, sizeof s.name));
        view.health = health_of(l, i, now_ms);
        view.remaining_requests = std::max(-1LL, sane_count(s.remaining_requests) - 1);
        view.remaining_tokens = std::max(-1LL, sane_count(s.remaining_tokens) - 1);
        out.push_back(std::move(view));
    }
    return out;
}

void SharedState::merge_cooldown(const std::string& target, int64_t until_ms) {
    HeldState held = hold();
    SharedLayout& l = held.layout();
    int slot = find_target(l, target, true);
    if (slot >= 0 && sane_ms(l.targets[slot].cooldown_until_ms) < until_ms) l.targets[slot].cooldown_until_ms = sane_ms(until_ms);
}

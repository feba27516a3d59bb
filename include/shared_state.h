// What every process of the host shares: the health of each target (cooldowns, circuits,
// requests in flight, the rate-limit headroom it last reported), each key's counters, and
// the metrics. One memory-mapped file (AZURE_OPENAI_PROXY_STATE_FILE, by default in
// /dev/shm), found by every process that runs with the same settings, whoever started it
// (--workers, lighttpd max-procs, mod_fcgid, spawn-fcgi -F).
//
// Each process holds a slot; what is "in flight" is counted per slot, so a process that
// died is forgotten by the next one to take its slot (its counters are kept).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "balancer.h"
#include "key_limits.h"
#include "routing.h"

struct SharedLayout;

// A target's state as /metrics shows it.
struct TargetView {
    std::string name;
    TargetHealth health;
    long long remaining_requests = -1;  // x-ratelimit-remaining-* it last sent; -1: none
    long long remaining_tokens = -1;
};

// One metric series (its name with labels, as Prometheus writes it) and its value summed
// over every process.
// What a key counted on this host since its last sync with Redis.
struct KeyPending {
    std::string name;
    RateWindow requests;
    RateWindow tokens;
};

struct SeriesValue {
    std::string series;
    bool gauge = false;
    double value = 0;
};

class SharedState {
public:
    // Maps `path` (created 0600 if missing). On failure, the state is this process's own
    // and `warning` says why. The last process to leave removes the file, unless
    // `keep_file` (plain CGI: one process a request, the state must outlive each).
    static std::unique_ptr<SharedState> open(const std::string& path, std::string& warning, bool keep_file = false);
    // The default file for a configuration: one per user and endpoint/configuration file.
    static std::string default_path(const std::string& config_file, const std::string& endpoint);
    ~SharedState();
    SharedState(const SharedState&) = delete;
    SharedState& operator=(const SharedState&) = delete;

    // Chooses among `targets` (see pick_target); the pick counts as in flight until
    // report(). With `take` false, only says what would be picked.
    Pick choose(const std::vector<Target>& targets, const std::vector<bool>& tried, int64_t now_ms, bool take = true);
    void report(const Target& target, TryResult result, int64_t retry_after_ms, bool trial, int64_t now_ms,
                const RetryPolicy& policy);
    // x-ratelimit-remaining-requests / -tokens the target sent (-1: absent).
    void remember_headroom(const Target& target, long long requests, long long tokens);
    std::vector<TargetView> targets();

    // Per-key limits: decides and, when allowed, counts the request (one in flight, one
    // request, `tokens` estimated). release() ends it, settling the estimate with the
    // tokens used (-1: unknown, the estimate stands).
    KeyDecision admit_key(const ClientKey& key, int64_t now_ms, long long tokens);
    void release_key(const ClientKey& key, long long estimated, long long used, int64_t now_ms);

    // Redis (redis_sync.h): what this host counted since the last sync, taken (or given
    // back when Redis could not take it); every host's counts as Redis says, which stand
    // in for this host's for a few seconds; a cooldown another host saw.
    std::vector<KeyPending> take_pending(int64_t now_ms);
    void return_pending(const std::vector<KeyPending>& pending, int64_t now_ms);
    void apply_remote(const std::string& key, RateWindow requests, RateWindow tokens, int64_t now_ms);
    void merge_cooldown(const std::string& target, int64_t until_ms);

    // Metrics: counters only grow (a dead process's are kept); gauges are per process
    // and forgotten with it.
    void add(const std::string& series, double amount, bool gauge = false);
    // A counter of `family` with these labels (metrics.h), named in a reused buffer.
    void count(const char* family, std::initializer_list<std::pair<const char*, std::string_view>> labels,
               double amount = 1);
    // A histogram observation: its series are named once per thread, then only added to.
    void observe(const char* family, std::initializer_list<std::pair<const char*, std::string_view>> labels,
                 double value);
    std::vector<SeriesValue> series();

    bool shared() const { return shared_; }

private:
    SharedState(SharedLayout* layout, size_t size, bool shared);
    void claim_process_slot();
    void release_slot(int slot);
    int find_target(const std::string& name, bool create);
    int find_key(const std::string& name, bool create);
    int find_series(const std::string& name, bool gauge, bool create);
    long target_in_flight(int slot) const;  // summed over the live processes
    long key_in_flight(int slot) const;
    void lock();
    void unlock();

    SharedLayout* layout_;
    size_t size_;
    bool shared_;
    uint64_t generation_;  // tells this mapping's series slots from an earlier one's
    int process_ = 0;      // this process's slot
    int fd_ = -1;          // the file (shared only): its flock guards joining and leaving
    std::string path_;
};

struct Config;
// This process's state for `config` (AZURE_OPENAI_PROXY_STATE_FILE: a path, "none" for
// a private one, unset for default_path()); a warning on stderr when it cannot be shared.
std::unique_ptr<SharedState> open_shared_state(const Config& config, bool keep_file = false);

// Milliseconds since the epoch: cooldowns are compared across processes (and hosts).
int64_t wall_clock_ms();

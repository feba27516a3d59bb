// What every process of the host shares: the health of each target (cooldowns, circuits,
// requests in flight, the rate-limit headroom it last reported), each key's counters, and
// the metrics. One memory-mapped file (AZURE_OPENAI_PROXY_STATE_FILE, by default in
// /dev/shm), found by every process that runs with the same settings, whoever started it
// (--workers, lighttpd max-procs, mod_fcgid, spawn-fcgi -F). The file's edge (its header,
// its rebuild when damaged, its lock) is state_file.h.
//
// Each process holds a row, named by its pid and start time; what is "in flight" is
// counted per row, and so is a circuit's trial. A process that died stops counting as soon
// as a reader notices (a sweep at most once a second, or the supervisor's reclaim when it
// reaps a worker): its places in flight and its trials are given back, its counters kept.
// Capacities are bounds.h's; a name longer than its slot is never stored (nor cut): it is
// counted (aop_state_refused_total, aop_metric_series_dropped_total) and logged once.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "target_choice.h"
#include "key_limits.h"
#include "metrics.h"
#include "routing.h"

struct SharedLayout;
struct SharedMapping;
class HeldState;

// What a key counted on this host since its last sync with Redis.
struct KeyPending {
    std::string name;
    RateWindow requests;
    RateWindow tokens;
};

// An identity's Entra ID token as the host holds it (shared_state_tokens.cpp), and whether
// this process is the one to ask Entra now.
struct SharedToken {
    bool stored = false;        // the identity has a row (the table had room)
    bool lease = false;         // this process asks Entra now; the others wait for its result
    std::string authorization;  // "Authorization: Bearer ..." (empty: none yet)
    int64_t expires_at_ms = 0, renew_at_ms = 0;
    int failures = 0;           // token requests failed in a row, whichever process asked
    int64_t retry_at_ms = 0;    // after a failure, no process asks before
    std::string error;          // the last failure (the source and Entra's words; no secret)
    bool refused = false;       // that failure was Entra's definitive refusal of the credential
    int64_t lease_until_ms = 0; // another process is asking, until then at most
    uint64_t serial = 0;        // grows with each token stored
};

class SharedState {
public:
    // Maps `path` (created 0600 if missing, rebuilt if it does not match). On failure, the
    // state is this process's own and `warning` says why. The last process to leave
    // removes the file, unless `keep_file` (plain CGI: one process a request, the state
    // must outlive each).
    static std::unique_ptr<SharedState> open(const std::string& path, std::string& warning, bool keep_file = false);
    // The default file for a configuration: one per user and endpoint/configuration file.
    static std::string default_path(const std::string& config_file, const std::string& endpoint);
    ~SharedState();
    SharedState(const SharedState&) = delete;
    SharedState& operator=(const SharedState&) = delete;

    // Chooses among `targets` (see pick_target); the pick counts as in flight until
    // report(). With `take` false, only says what would be picked. A pick that is an open
    // circuit's trial (its trial_token) holds the circuit for this process until report(),
    // the process's death, or `trial_lease_ms` (trial_lease_ms() of the retry policy).
    Pick choose(const std::vector<Target>& targets, const std::vector<bool>& tried, int64_t now_ms, bool take = true,
                int64_t trial_lease_ms = kLongestDefaultTrialLeaseMs);
    // `trial`: the pick's trial_token (0: the try was no trial). `ends` false: the try goes on
    // past its answer (a realtime session relayed) and stays in flight until end_try().
    void report(const Target& target, TryResult result, int64_t retry_after_ms, uint32_t trial, int64_t now_ms,
                const RetryPolicy& policy, bool ends = true);
    void end_try(const Target& target);
    // x-ratelimit-remaining-requests / -tokens the target sent (-1: absent).
    void remember_headroom(const Target& target, long long requests, long long tokens);
    std::vector<TargetView> targets();
    // Parameters a target refused (reasoning_params.h's bits), learned from Azure's 400s and
    // kept for the file's life. A full table remembers nothing more (counted, said once):
    // each request then learns again, at one more round trip.
    void learn_refused_params(const std::string& target, uint32_t params);
    uint32_t refused_params(const std::string& target);

    // Per-key limits: decides and, when allowed, counts the request (one in flight, one
    // request, `tokens` estimated). release() ends it, settling the estimate with the
    // tokens used (-1: unknown, the estimate stands).
    KeyDecision admit_key(const ClientKey& key, int64_t now_ms, long long tokens);
    void release_key(const ClientKey& key, long long estimated, long long used, int64_t now_ms);
    // A realtime WebSocket session of `key_name` (the companion's): decided by
    // decide_session() over the key's sessions open on this host and its requests, and when
    // allowed counted (one session open, one request). end_session() gives the place back;
    // a process that dies gives back its sessions' places with its row.
    KeyDecision admit_session(const std::string& key_name, const KeyLimits& limits, long default_sessions,
                              int64_t now_ms);
    void end_session(const std::string& key_name);

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
    // The same of a family a call site keeps as a static (metrics.h): the series is found
    // again by the family's address and the values, fewer bytes to put in a key.
    void count(const SeriesFamily& family, LabelValues values, double amount = 1);
    // A histogram observation: its series are named once per thread, then only added to.
    void observe(const char* family, std::initializer_list<std::pair<const char*, std::string_view>> labels,
                 double value);
    // Every series, then the state's own: aop_state_slots_used{table}, aop_state_in_flight{table},
    // aop_state_refused_total{table}, aop_metric_series_dropped_total.
    std::vector<SeriesValue> series();

    // The rows of processes that died are given back now: their places in flight, their
    // trials and gauges (their counters are kept). Readers do it at most once a second.
    void reclaim_dead_processes();
    // What requests do in passing, for a process with none: the file still the one at the
    // path (else it moves to that one) and, once a second for the host, dead rows freed.
    void tend(int64_t now_ms) { every_second(now_ms); }

    // Entra ID tokens, one per identity for the host, the identity named by a text without
    // secret (its hash is the key; its first line, the source, labels the row's metric). token_turn() reads the row and, when a token is due
    // (none, renewal due, dropped) and no live process holds the lease nor a failure's
    // retry is pending, gives this process the lease for `lease_ms` (0: only looks); the lease holder
    // reports with token_obtained() or token_failed(), or gives the lease back with
    // token_abandoned() (its process ends mid-request: a plain CGI call answered; no failure,
    // the next process asks). token_refused(): Azure said 401 to this authorization, the
    // row drops it (unless renewed since).
    SharedToken token_turn(const std::string& identity, int64_t now_ms, int64_t lease_ms);
    bool token_obtained(const std::string& identity, const std::string& authorization, int64_t expires_at_ms,
                        int64_t renew_at_ms);
    void token_failed(const std::string& identity, const std::string& error, int64_t retry_at_ms,
                      bool refused = false);
    void token_refused(const std::string& identity, const std::string& authorization);
    void token_abandoned(const std::string& identity);

    // This host's name among the hosts sharing Redis: one for every process of the file,
    // whichever of them talks to Redis, kept across a rebuild of the file.
    uint64_t host_id();

    bool shared() const;

private:
    SharedState(std::unique_ptr<SharedMapping> first, std::string path, bool keep_file);
    SharedMapping& current();  // a damaged file is first left for the rebuilt one
    HeldState hold();          // the current mapping, locked
    void move_from(SharedMapping* damaged, bool last_resort);
    void every_second(int64_t now_ms);
    uint64_t keep_host_id(SharedLayout& layout);

    std::atomic<SharedMapping*> current_;
    // The current mapping and those left behind: kept mapped while the process lives (a
    // thread may still be reading one, and the C library's robust-mutex list may name it).
    std::vector<std::unique_ptr<SharedMapping>> mappings_;
    std::mutex move_mutex_;
    std::string path_;  // empty: private
    bool keep_file_;
    std::atomic<uint64_t> known_host_id_{0};  // the host id last seen in a file
    std::atomic<int64_t> next_check_ms_{0};
};

struct Config;
// This process's state for `config` (AZURE_OPENAI_PROXY_STATE_FILE: a path, "none" for
// a private one, unset for default_path()); a warning on stderr when it cannot be shared.
std::unique_ptr<SharedState> open_shared_state(const Config& config, bool keep_file = false);

// The state file `config` names (AZURE_OPENAI_PROXY_STATE_FILE, else default_path()); empty
// for "none".
std::string state_file_path(const Config& config);

// For the supervisor, when it reaps a worker: the rows of processes that died are given
// back at once in `config`'s state file (a no-op when there is none).
void reclaim_dead_processes(const Config& config);

// Milliseconds since the epoch: cooldowns are compared across processes (and hosts).
int64_t wall_clock_ms();

// The routing table of AZURE_OPENAI_PROXY_CONFIG: upstream endpoints, the targets each
// model may go to (an endpoint and a deployment, with a priority and a weight), how
// failures are retried, and per-key limits. Read once at start (and again on SIGHUP),
// then read-only. Plain data; the health of targets lives in the shared state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client_keys.h"
#include "reasoning_params.h"

struct Config;
struct EndpointSettings;

struct Endpoint {
    std::string name;
    std::string url;         // scheme://host[:port][/base], no trailing '/'
    std::string key_source;  // "env:NAME", "file:/path" or "inline": what --check-config shows
    int priority = 0;        // lower first
    int weight = 1;
    // The environment's endpoint settings with this endpoint's URL, key, api-version and
    // mode: what translation is given for a request sent here. Only these: an endpoint
    // sees no process setting and no client key.
    std::shared_ptr<const EndpointSettings> upstream;
};

struct Target {
    size_t endpoint = 0;     // index into RoutingTable::endpoints
    std::string deployment;  // Azure: the deployment; OpenAI: the model sent
    int priority = 0;
    int weight = 1;
    std::string name;        // "endpoint/deployment": in logs, metrics and the shared state
};

struct RetryPolicy {
    int max_tries = 3;                 // targets tried for one request, at most
    long cooldown_cap_s = 60;          // longest cooldown a 429's retry-after may ask
    long default_cooldown_s = 10;      // a 429 without retry-after
    int circuit_failures = 5;          // consecutive failures that open a target's circuit
    long circuit_open_s = 30;          // then one trial request
    long trial_timeout_s = 0;          // the trial holds the circuit at most this long (0: see trial_lease_ms)
};

// How long an open circuit's trial holds the target (other requests wait) before another
// request may be the trial: trial_timeout_seconds, else circuit_open_seconds, at most
// kLongestDefaultTrialLeaseMs. A trial that hangs blocks its model no longer.
const int64_t kLongestDefaultTrialLeaseMs = 30000;
int64_t trial_lease_ms(const RetryPolicy& policy);

struct RoutingTable {
    std::string file;  // where it came from
    std::vector<Endpoint> endpoints;
    std::map<std::string, std::vector<Target>> models;  // model -> its targets
    RetryPolicy retry;
    std::vector<ClientKey> keys;  // client keys the file defines, with their limits
    ParamOverrides parameters;    // "parameters": a model or deployment -> what is fixed for it
};

// The table in force: replaced whole on SIGHUP, while each request keeps the one it
// started with.
class LiveRouting {
public:
    explicit LiveRouting(std::shared_ptr<const RoutingTable> table) : table_(std::move(table)) {}
    std::shared_ptr<const RoutingTable> get() const {
        std::lock_guard<std::mutex> hold(mutex_);
        return table_;
    }
    void set(std::shared_ptr<const RoutingTable> table) {
        std::lock_guard<std::mutex> hold(mutex_);
        table_.swap(table);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const RoutingTable> table_;
};

// Reads a variable of the process's environment (so `env:NAME` can name any variable).
using EnvironmentLookup = std::string (*)(const std::string& name, void* context);

// Parses the file's text against `base` (the configuration read from the environment,
// whose endpoint settings each endpoint's upstream inherits and overrides). False with one line per mistake in
// `errors`, each naming the file, the key path and what is wrong.
bool parse_routing(const std::string& file, const std::string& text, const Config& base,
                   EnvironmentLookup lookup, void* context, RoutingTable& table,
                   std::vector<std::string>& errors);

// Reads and parses base.config_file, also checking its keys against the environment's
// (base.client_keys). False with the lines saying why.
bool load_routing(const Config& base, EnvironmentLookup lookup, void* context,
                  std::shared_ptr<const RoutingTable>& table, std::string& error);

// The targets a model goes to, or null when the table does not list it (the seed's
// mapping applies then).
const std::vector<Target>* targets_for(const RoutingTable& table, const std::string& model);

// SIGHUP: reads the file again and puts the new table in force, or keeps the old one when
// the file has a mistake. Returns the lines for the log either way.
std::string reload_routing(const Config& config, EnvironmentLookup lookup, void* context);

// The resolved routing table, for --check-config (keys shown by their source only).
std::string describe_routing(const RoutingTable& table);

// The client key presented, among the environment's keys and the table's (may be null).
const ClientKey* find_any_client_key(const std::vector<ClientKey>& keys, const RoutingTable* table,
                                     std::string_view presented);

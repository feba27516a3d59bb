// The routing table in use: the targets of a model, the file loaded and checked against
// the environment's keys, read again on SIGHUP, and described for --check-config. The
// file's JSON is parsed in routing_file.cpp.
#include "routing.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "config.h"
#include "text.h"

int64_t trial_lease_ms(const RetryPolicy& policy) {
    if (policy.trial_timeout_s > 0) return policy.trial_timeout_s * 1000;
    return std::min<int64_t>(policy.circuit_open_s * 1000, kLongestDefaultTrialLeaseMs);
}

const std::vector<Target>* targets_for(const RoutingTable& table, const std::string& model) {
    auto it = table.models.find(model);
    return it == table.models.end() ? nullptr : &it->second;
}

bool load_routing(const Config& base, EnvironmentLookup lookup, void* context,
                  std::shared_ptr<const RoutingTable>& out, std::string& error) {
    std::ifstream file(base.config_file);
    std::ostringstream content;
    if (!file || !(content << file.rdbuf())) {
        error = "AZURE_OPENAI_PROXY_CONFIG: cannot read '" + base.config_file + "'";
        return false;
    }
    auto table = std::make_shared<RoutingTable>();
    std::vector<std::string> errors;
    parse_routing(base.config_file, content.str(), base, lookup, context, *table, errors);
    if (!table->keys.empty() && !has_own_identity(base))
        errors.push_back(base.config_file + ": keys: client keys are the proxy's own, not Azure's; set "
                         "AZURE_OPENAI_TOKEN to the key the proxy sends upstream");
    std::set<std::string> environment_names;
    for (const ClientKey& key : base.client_keys) environment_names.insert(key.name);
    for (const ClientKey& key : table->keys)
        if (environment_names.count(key.name))
            errors.push_back(base.config_file + ": keys." + key.name +
                             ": a key of this name is also in AZURE_OPENAI_PROXY_API_KEYS");
    std::vector<KeySource> sources = environment_key_sources(base);
    sources.push_back({"keys.", &table->keys});
    for (const auto& [entry, earlier] : shared_keys(sources))
        errors.push_back(base.config_file + ": " + entry + ": has the same key as " + earlier +
                         "; a key may belong to one entry only");
    if (!errors.empty()) {
        error.clear();
        for (const std::string& line : errors) error += (error.empty() ? "" : "\n") + line;
        return false;
    }
    out = std::move(table);
    return true;
}

std::string reload_routing(const Config& config, EnvironmentLookup lookup, void* context) {
    if (!config.routing) return "SIGHUP: no AZURE_OPENAI_PROXY_CONFIG to read again";
    Config base = config;  // endpoints inherit the environment's settings, as at start
    base.routing.reset();
    std::shared_ptr<const RoutingTable> table;
    std::string error;
    if (!load_routing(base, lookup, context, table, error))
        return "SIGHUP: " + config.config_file + " refused, the routing in force stays:\n" + error;
    std::string said = "SIGHUP: " + config.config_file + " in force: " + std::to_string(table->endpoints.size()) +
                       " endpoints, " + std::to_string(table->models.size()) + " models, " +
                       std::to_string(table->keys.size()) + " keys";
    config.routing->set(std::move(table));
    return said;
}

const ClientKey* find_any_client_key(const std::vector<ClientKey>& keys, const RoutingTable* table,
                                     std::string_view presented) {
    const ClientKey* key = find_client_key(keys, presented);
    if (!key && table) key = find_client_key(table->keys, presented);
    return key;
}

std::string describe_routing(const RoutingTable& table) {
    const std::vector<ClientKey>& keys = table.keys;
    std::ostringstream out;
    out << "routing file: " << table.file << "\n";
    for (const Endpoint& e : table.endpoints)
        out << "endpoint " << e.name << ": " << e.url << " ("
            << (e.upstream->mode == ProxyMode::OpenAI ? "openai" : "azure, api-version " + e.upstream->api_version)
            << "), key " << e.key_source << ", priority " << e.priority << ", weight " << e.weight << "\n";
    for (const auto& [model, targets] : table.models)
        for (const Target& t : targets)
            out << "model " << quote_value(model, 200) << " -> " << t.name << " (priority " << t.priority << ", weight " << t.weight << ")\n";
    for (const auto& [name, params] : table.parameters)
        out << "parameters fixed for " << quote_value(name, 200) << ": "
            << (params == kResponsesOnly ? "responses (chat bridged to the Responses API)" : params ? param_names(params) : "none")
            << "\n";
    const RetryPolicy& r = table.retry;
    out << "retry: at most " << r.max_tries << " tries; 429 cooldown from retry-after (default " << r.default_cooldown_s
        << " s, at most " << r.cooldown_cap_s << " s); circuit opens after " << r.circuit_failures
        << " failures for " << r.circuit_open_s << " s, its trial holding it at most " << trial_lease_ms(r) / 1000 << " s\n";
    for (const ClientKey& key : keys) {
        const KeyLimits& l = key.limits;
        bool limited = !l.models.empty() || l.requests_per_minute || l.tokens_per_minute || l.concurrent ||
                       l.realtime_sessions || l.expires_at;
        if (!limited) continue;
        out << "key " << key.name << ":";
        if (!l.models.empty()) {
            out << " models";
            for (const std::string& m : l.models) out << " " << m;
            out << ";";
        }
        if (l.requests_per_minute) out << " " << l.requests_per_minute << " requests/min;";
        if (l.tokens_per_minute) out << " " << l.tokens_per_minute << " tokens/min;";
        if (l.concurrent) out << " " << l.concurrent << " at once;";
        if (l.realtime_sessions) out << " " << l.realtime_sessions << " realtime sessions at once;";
        if (l.expires_at) out << " expires " << l.expires_at << ";";
        out << "\n";
    }
    return out.str();
}

// AZURE_OPENAI_PROXY_CONFIG: a JSON file read with cJSON (it is the operator's, not a
// client's) into a routing table, checked whole so every mistake is reported at once.
#include "json_ptr.h"
#include "routing.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "json_model.h"
#include "bounds.h"
#include "config.h"
#include "config_reading.h"
#include "key_limits.h"
#include "routing_credential.h"
#include "text.h"
#include "translate.h"

namespace {

struct Reader {
    const std::string& file;
    EnvironmentLookup lookup;
    void* context;
    std::vector<std::string>& errors;
    std::unordered_map<std::string, size_t> endpoints = {};  // name -> index in the table's

    // The path holds the file's own names: escaped, so each mistake stays one line.
    void error(const std::string& path, const std::string& what) {
        errors.push_back(file + ": " + quote_value(path, 200) + ": " + what);
    }

    // A name checked against its bound (include/bounds.h); false, said, when over it.
    bool fits(const std::string& path, const std::string& name, size_t longest, const char* what) {
        std::string problem = over_bound(name, longest, what);
        if (!problem.empty()) error(path, problem);
        return problem.empty();
    }
};

// "line 3, column 17" of a byte of the text.
std::string line_and_column(const std::string& text, size_t offset) {
    offset = std::min(offset, text.size());
    size_t line_start = offset == 0 ? std::string::npos : text.rfind('\n', offset - 1);
    size_t column = offset - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
    auto lines = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    return "line " + std::to_string(lines + 1) + ", column " + std::to_string(column);
}

// cJSON takes what RFC 8259 forbids (a raw control byte inside a string, bytes after the
// document, broken UTF-8), and ends a string at a raw NUL or a \u0000, silently dropping
// the rest of the value. The file is first checked as strictly as a request body is.
bool strict_json(Reader& reader, const std::string& text) {
    JsonCheck check = check_json(text);
    if (check.valid && check.escaped_nul_at == std::string_view::npos) {
        return true;
    } else if (check.valid) {
        reader.error(line_and_column(text, check.escaped_nul_at), "\\u0000 in a string is refused (it would end the string there)");
    } else if (check.stopped_at < text.size() && static_cast<unsigned char>(text[check.stopped_at]) < 0x20) {
        char what[96];
        std::snprintf(what, sizeof what, "a raw control character (0x%02x), which JSON allows only escaped, in a string",
                      static_cast<unsigned char>(text[check.stopped_at]));
        reader.error(line_and_column(text, check.stopped_at), what);
    } else {
        reader.error(line_and_column(text, check.stopped_at), "not valid JSON (RFC 8259, UTF-8)");
    }
    return false;
}

using Json = const cJSON*;

// Every member name is known and appears once: a typo is an error, not a silent default.
bool check_members(Reader& reader, Json object, const std::string& path, std::set<std::string> known) {
    if (!cJSON_IsObject(object)) {
        reader.error(path, "must be an object");
        return false;
    }
    std::set<std::string> seen;
    bool ok = true;
    for (Json member = object->child; member; member = member->next) {
        std::string name = member->string ? member->string : "";
        if (!seen.insert(name).second) {
            reader.error(path + "." + name, "appears twice");
            ok = false;
        } else if (!known.empty() && !known.count(name)) {
            reader.error(path + "." + name, "is not a known setting");
            ok = false;
        }
    }
    return ok;
}

bool read_string(Reader& reader, Json object, const char* name, const std::string& path, std::string& out) {
    Json item = cJSON_GetObjectItemCaseSensitive(object, name);
    if (!item) return true;
    if (!cJSON_IsString(item) || !item->valuestring[0]) {
        reader.error(path + "." + name, "must be a non-empty string");
        return false;
    }
    out = item->valuestring;
    return true;
}

template <typename T>
bool read_count(Reader& reader, Json object, const char* name, const std::string& path, long long min,
                long long max, T& out) {
    Json item = cJSON_GetObjectItemCaseSensitive(object, name);
    if (!item) return true;
    double value = cJSON_IsNumber(item) ? item->valuedouble : -1e300;
    if (value < static_cast<double>(min) || value > static_cast<double>(max) ||
        value != static_cast<double>(static_cast<long long>(value))) {
        reader.error(path + "." + name, "must be a whole number from " + std::to_string(min) + " to " +
                                            std::to_string(max));
        return false;
    }
    out = static_cast<T>(value);
    return true;
}

// A key: "env:NAME", "file:/path" or the key itself (routing_credential.h); the source is what may be shown.
bool resolve_secret(Reader& reader, const std::string& path, const std::string& value, std::string& secret,
                    std::string& source) {
    std::string error;
    bool read = read_routing_secret(value, reader.lookup, reader.context, false, secret, source, error);
    if (!read) reader.error(path, error);
    return read;
}

// The endpoint's settings are the environment's with the file's overrides.
bool read_endpoint(Reader& reader, Json object, const EndpointSettings& base, Endpoint& endpoint) {
    std::string path = "endpoints." + endpoint.name;
    if (!check_members(reader, object, path, {"url", "key", "credential", "api_version", "priority", "weight", "mode"}))
        return false;
    EndpointSettings upstream = base;
    std::string key, mode, version;
    bool ok = read_string(reader, object, "url", path, endpoint.url) && read_string(reader, object, "key", path, key) &&
              read_string(reader, object, "api_version", path, version) &&
              read_string(reader, object, "mode", path, mode) &&
              read_count(reader, object, "priority", path, 0, 1000, endpoint.priority) &&
              read_count(reader, object, "weight", path, 1, 1000, endpoint.weight);
    if (!ok) return false;
    while (!endpoint.url.empty() && endpoint.url.back() == '/') endpoint.url.pop_back();
    if (!valid_base_url(endpoint.url)) {
        reader.error(path + ".url", endpoint.url.empty() ? "is required" : "'" + log_safe(endpoint.url, 100) + "' is not an http(s) URL");
        return false;
    }
    if (mode.empty() || mode == "azure") upstream.mode = ProxyMode::Azure;
    else if (mode == "openai") upstream.mode = ProxyMode::OpenAI;
    else {
        reader.error(path + ".mode", "'" + log_safe(mode, 40) + "' is not 'azure' or 'openai'");
        return false;
    }
    if (!version.empty()) {
        if (!is_word(version, "-.")) {
            reader.error(path + ".api_version", "'" + log_safe(version, 40) + "' is not an api-version");
            return false;
        }
        upstream.api_version = version;
    }
    upstream.credential = CredentialSettings();  // the environment's identity is not this endpoint's
    if (Json credential = cJSON_GetObjectItemCaseSensitive(object, "credential")) {
        upstream.token.clear();  // nor the environment's key
        std::string problem = endpoint_credential_problem(credential, key, upstream.mode, reader.lookup, reader.context, upstream.credential);
        if (!problem.empty()) reader.error(path + ".credential", problem);
        endpoint.key_source = "none, Entra ID credential " + describe_credential(upstream.credential);
        if (!problem.empty()) return false;
    } else if (key.empty()) {
        reader.error(path + ".key", "is required (env:NAME, file:/path, or the key), or a credential");
        return false;
    } else if (!resolve_secret(reader, path + ".key", key, upstream.token, endpoint.key_source)) {
        return false;
    }
    upstream.endpoint = endpoint.url;
    endpoint.upstream = std::make_shared<const EndpointSettings>(std::move(upstream));
    return true;
}

// A target: {"endpoint": "east", "deployment": "gpt-4o", "priority": 0, "weight": 1}, or
// "east" / "east/gpt-4o" for short. Priority and weight default to the endpoint's; the
// deployment to the seed's mapping of the model.
bool read_target(Reader& reader, Json item, const std::string& path, const std::string& model, const Config& base,
                 RoutingTable& table, Target& target) {
    std::string endpoint;
    bool has_priority = false, has_weight = false;
    if (cJSON_IsString(item)) {
        std::string text = item->valuestring;
        size_t slash = text.find('/');
        endpoint = text.substr(0, slash);
        if (slash != std::string::npos) target.deployment = text.substr(slash + 1);
    } else {
        if (!check_members(reader, item, path, {"endpoint", "deployment", "priority", "weight"})) return false;
        if (!read_string(reader, item, "endpoint", path, endpoint) ||
            !read_string(reader, item, "deployment", path, target.deployment) ||
            !read_count(reader, item, "priority", path, 0, 1000, target.priority) ||
            !read_count(reader, item, "weight", path, 1, 1000, target.weight))
            return false;
        has_priority = cJSON_HasObjectItem(item, "priority");
        has_weight = cJSON_HasObjectItem(item, "weight");
    }
    auto index = reader.endpoints.find(endpoint);
    if (index == reader.endpoints.end()) {
        reader.error(path, endpoint.empty() ? "names no endpoint" : "the endpoint '" + log_safe(endpoint, 60) + "' is not defined in endpoints");
        return false;
    }
    const Endpoint& chosen = table.endpoints[index->second];
    target.endpoint = index->second;
    if (target.deployment.empty()) target.deployment = deployment_for_model(base, model);
    if (!is_safe_deployment(target.deployment)) {
        reader.error(path, "'" + log_safe(target.deployment, 60) + "' is not a valid deployment name");
        return false;
    }
    if (!has_priority) target.priority = chosen.priority;
    if (!has_weight) target.weight = chosen.weight;
    target.name = chosen.name + "/" + target.deployment;
    return reader.fits(path, target.name, kLongestTargetName, "a target's name (endpoint/deployment)");
}

void read_models(Reader& reader, Json models, const Config& base, RoutingTable& table) {
    if (!models) return;
    if (!check_members(reader, models, "models", {})) return;
    for (Json model = models->child; model; model = model->next) {
        std::string name = model->string, path = "models." + name;
        std::vector<Target> targets;
        std::string problem = configured_model_problem(name);
        if (!problem.empty()) {
            reader.error(path, problem);
            continue;
        }
        if (!cJSON_IsArray(model) || !model->child) {
            reader.error(path, "must be a non-empty list of targets");
            continue;
        }
        int position = 0;
        for (Json item = model->child; item; item = item->next, ++position) {
            Target target;
            if (read_target(reader, item, path + "[" + std::to_string(position) + "]", name, base, table, target))
                targets.push_back(std::move(target));
        }
        table.models[name] = std::move(targets);
    }
}

// "2027-01-31" or "2027-01-31T12:00:00Z": seconds since the epoch, or -1.
long long parse_expiry(const std::string& text) {
    std::tm tm = {};
    const char* end = strptime(text.c_str(), text.size() > 10 ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d", &tm);
    if (!end || *end) return -1;
    return static_cast<long long>(timegm(&tm));
}

bool read_key_limits(Reader& reader, Json object, const std::string& path, KeyLimits& limits) {
    Json models = cJSON_GetObjectItemCaseSensitive(object, "models");
    if (models) {
        if (!cJSON_IsArray(models)) reader.error(path + ".models", "must be a list of model names");
        for (Json model = models ? models->child : nullptr; model; model = model->next) {
            std::string problem = cJSON_IsString(model) ? configured_model_problem(model->valuestring) : "must hold model names (strings)";
            if (problem.empty()) limits.models.push_back(model->valuestring);
            else reader.error(path + ".models", problem);
        }
    }
    std::string expires;
    if (!read_string(reader, object, "expires", path, expires) ||
        !read_count(reader, object, "requests_per_minute", path, 1, 100000000, limits.requests_per_minute) ||
        !read_count(reader, object, "tokens_per_minute", path, 1, 100000000000LL, limits.tokens_per_minute) ||
        !read_count(reader, object, "concurrent", path, 1, 1000000, limits.concurrent) ||
        !read_count(reader, object, "realtime_sessions", path, 1, 1000000, limits.realtime_sessions))
        return false;
    if (!expires.empty() && (limits.expires_at = parse_expiry(expires)) < 0) {
        reader.error(path + ".expires", "'" + log_safe(expires, 40) + "' is not a date like 2027-01-31 or 2027-01-31T12:00:00Z");
        return false;
    }
    return true;
}

void read_keys(Reader& reader, Json keys, std::vector<ClientKey>& out) {
    if (!keys || !check_members(reader, keys, "keys", {})) return;
    for (Json entry = keys->child; entry; entry = entry->next) {
        ClientKey key;
        key.name = entry->string;
        std::string path = "keys." + key.name, value, source;
        if (!reader.fits(path, key.name, kLongestKeyName, "a key's name")) continue;
        if (!is_word(key.name, "-_.@")) {
            reader.error(path, "a key's name may hold only letters, digits, '-', '_', '.' and '@'");
            continue;
        }
        if (!check_members(reader, entry, path,
                           {"key", "models", "requests_per_minute", "tokens_per_minute", "concurrent", "realtime_sessions",
                            "expires"}) ||
            !read_string(reader, entry, "key", path, value) || !read_key_limits(reader, entry, path, key.limits))
            continue;
        if (value.empty()) {
            reader.error(path + ".key", "is required (env:NAME or file:/path)");
            continue;
        }
        if (!resolve_secret(reader, path + ".key", value, key.key, source)) continue;
        if (key.key.size() < kShortestClientKey) {
            reader.error(path + ".key", "a key must be at least " + std::to_string(kShortestClientKey) + " characters");
            continue;
        }
        out.push_back(std::move(key));
    }
}

void read_retry(Reader& reader, Json retry, RetryPolicy& policy) {
    if (!retry || !check_members(reader, retry, "retry",
                                 {"max_tries", "cooldown_cap_seconds", "default_cooldown_seconds", "circuit_failures",
                                  "circuit_open_seconds", "trial_timeout_seconds"}))
        return;
    read_count(reader, retry, "max_tries", "retry", 1, 20, policy.max_tries);
    read_count(reader, retry, "cooldown_cap_seconds", "retry", 1, 86400, policy.cooldown_cap_s);
    read_count(reader, retry, "default_cooldown_seconds", "retry", 1, 86400, policy.default_cooldown_s);
    read_count(reader, retry, "circuit_failures", "retry", 1, 1000, policy.circuit_failures);
    read_count(reader, retry, "circuit_open_seconds", "retry", 1, 86400, policy.circuit_open_s);
    read_count(reader, retry, "trial_timeout_seconds", "retry", 1, 3600, policy.trial_timeout_s);
}

// Every target and every key with limits has a slot of the shared state, which holds
// include/bounds.h's number of each for all the processes of the host.
void check_slots(Reader& reader, const RoutingTable& table) {
    std::unordered_set<std::string> targets;
    for (const auto& [model, model_targets] : table.models)
        for (const Target& target : model_targets) targets.insert(target.name);
    if (targets.size() > kStateTargets)
        reader.error("models", std::to_string(targets.size()) + " targets (endpoint/deployment); the shared state holds at most " +
                                   std::to_string(kStateTargets));
    auto limited = std::count_if(table.keys.begin(), table.keys.end(), [](const ClientKey& key) {
        return counts_usage(key.limits) || counts_sessions(key.limits, 0);
    });
    if (static_cast<size_t>(limited) > kStateKeys)
        reader.error("keys", std::to_string(limited) + " keys have limits (per minute or at once); the shared state holds at most " +
                                 std::to_string(kStateKeys));
}

// Each endpoint's upstream is the base configuration's endpoint settings with the
// endpoint's own: only those are copied, not the keys, which no upstream needs (a copy of
// thousands of keys per endpoint made reading a large file quadratic).
void read_endpoints(Reader& reader, Json endpoints, const EndpointSettings& base, RoutingTable& table) {
    if (!endpoints || !check_members(reader, endpoints, "endpoints", {})) return;
    for (Json item = endpoints->child; item; item = item->next) {
        Endpoint endpoint;
        endpoint.name = item->string;
        std::string path = "endpoints." + endpoint.name;
        if (!reader.fits(path, endpoint.name, kLongestEndpointName, "an endpoint's name")) continue;
        if (!is_word(endpoint.name, "-_.")) reader.error(path, "an endpoint's name may hold only letters, digits, '-', '_' and '.'");
        else if (read_endpoint(reader, item, base, endpoint)) {
            reader.endpoints.emplace(endpoint.name, table.endpoints.size());
            table.endpoints.push_back(std::move(endpoint));
        }
    }
}

// "parameters": {"name": "reasoning" | "none" | ["max_tokens", ...]} (reasoning_params.h).
void read_parameters(Reader& reader, Json parameters, RoutingTable& table) {
    if (!parameters || !check_members(reader, parameters, "parameters", {})) return;
    for (Json item = parameters->child; item; item = item->next) {
        std::string problem = read_param_override(item, table.parameters[item->string]);
        if (!problem.empty()) reader.error(std::string("parameters.") + item->string, problem);
    }
}

}  // namespace

bool parse_routing(const std::string& file, const std::string& text, const Config& base, EnvironmentLookup lookup,
                   void* context, RoutingTable& table, std::vector<std::string>& errors) {
    Reader reader{file, lookup, context, errors};
    table.file = file;
    if (!strict_json(reader, text)) return false;
    JsonPtr root(cJSON_ParseWithLength(text.data(), text.size()));
    if (!root) {
        reader.error("(top)", "not valid JSON");
        return false;
    }
    if (!check_members(reader, root.get(), "(top)", {"endpoints", "models", "keys", "retry", "parameters"})) return false;
    read_endpoints(reader, cJSON_GetObjectItemCaseSensitive(root.get(), "endpoints"), base, table);
    read_models(reader, cJSON_GetObjectItemCaseSensitive(root.get(), "models"), base, table);
    read_keys(reader, cJSON_GetObjectItemCaseSensitive(root.get(), "keys"), table.keys);
    read_retry(reader, cJSON_GetObjectItemCaseSensitive(root.get(), "retry"), table.retry);
    read_parameters(reader, cJSON_GetObjectItemCaseSensitive(root.get(), "parameters"), table);
    check_slots(reader, table);
    return errors.empty();
}

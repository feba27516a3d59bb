// Configuration: the environment read into the process's settings, with the endpoint's
// (endpoint_settings.cpp) and the access policy (access_policy.cpp), then the routing
// file (routing.cpp); and the start-up description of it all.
#include "config.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "bounds.h"
#include "config_reading.h"
#include "routing.h"
#include "text.h"

std::string environment_value(const Environment& env, const char* name) {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
}

bool read_secret_file(const std::string& path, std::string& secret) {
    std::ifstream in(path);
    std::ostringstream content;
    if (!in || !(content << in.rdbuf())) return false;
    secret = trim(content.str());
    return true;
}

// "file:/path" (systemd's LoadCredential=, a mounted secret) or the secret itself.
bool read_secret_setting(const char* variable, const std::string& value, std::string& secret, std::string& error) {
    secret = value;
    if (starts_with(value, "file:") && !read_secret_file(value.substr(5), secret)) {
        error = std::string(variable) + ": cannot read '" + log_safe(value.substr(5)) + "'";
        return false;
    }
    for (unsigned char c : secret)
        if (c < ' ' || c >= 0x7f) {
            error = std::string(variable) + ": holds a control character";
            return false;
        }
    return true;
}

// Reads "key=value,key=value" into `pairs`, in order; `what` names the halves in errors.
bool parse_pairs(const char* variable, const std::string& text, const char* what,
                 std::vector<std::pair<std::string, std::string>>& pairs, std::string& error) {
    for (const std::string& raw : split(text, ',')) {
        std::string pair = trim(raw);
        if (pair.empty()) continue;  // tolerate "a=b," and ",,"
        size_t eq = pair.find('=');
        if (eq == std::string::npos || pair.find('=', eq + 1) != std::string::npos) {
            error = std::string(variable) + ": '" + pair + "' is not a " + what + " pair";
            return false;
        }
        std::string key = trim(pair.substr(0, eq));
        std::string value = trim(pair.substr(eq + 1));
        if (key.empty() || value.empty()) {
            error = std::string(variable) + ": '" + pair + "' has an empty half (" + what + ")";
            return false;
        }
        pairs.emplace_back(key, value);
    }
    return true;
}

// A model name an operator configures: it may become a metric label.
bool check_model_name(const char* variable, const std::string& model, std::string& error) {
    std::string problem = configured_model_problem(model);
    if (!problem.empty()) error = std::string(variable) + ": '" + quote_value(model, 60) + "': " + problem;
    return problem.empty();
}

bool check_model_names(const char* variable, const std::vector<std::string>& models, std::string& error) {
    for (const std::string& model : models)
        if (!check_model_name(variable, model, error)) return false;
    return true;
}

bool parse_positive(const std::string& text, long long max, long long& out) {
    long long value = digits_value(text);
    if (value < 0) return false;
    out = value;
    return out > 0 && out <= max;
}

// "a, b,,c" -> {"a", "b", "c"}
std::vector<std::string> list_of(const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& item : split(text, ','))
        if (!trim(item).empty()) out.push_back(trim(item));
    return out;
}

namespace {

// A proxy URL as it may be shown: "http://user:secret@host:3128" -> "http://***@host:3128".
std::string without_userinfo(const std::string& url) {
    size_t at = url.rfind('@');
    if (at == std::string::npos) return log_safe(url);
    size_t start = url.find("://");
    start = start == std::string::npos || start > at ? 0 : start + 3;
    return log_safe(url.substr(0, start) + "***" + url.substr(at));
}

std::string normalise_prefix(std::string prefix) {
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (!prefix.empty() && prefix.front() != '/') prefix.insert(0, "/");
    return prefix;
}

// AZURE_OPENAI_PROXY_REDIS_URL: redis://[user:password@]host[:port][/db] or unix:/path.
bool read_redis(const Environment& env, ProcessSettings& c, std::string& error) {
    const char* const variable = "AZURE_OPENAI_PROXY_REDIS_URL";
    std::string url = trim(environment_value(env, variable));
    if (url.empty()) return true;
    RedisAddress& r = c.redis;
    if (starts_with(url, "unix:")) {
        r.unix_path = url.substr(url.compare(0, 7, "unix://") == 0 ? 7 : 5);
        r.shown = "unix:" + r.unix_path;
        if (!r.unix_path.empty() && r.unix_path[0] == '/') return true;
        error = std::string(variable) + ": '" + log_safe(url, 80) + "' names no socket path (unix:/run/redis/redis.sock)";
        return false;
    }
    std::string rest = starts_with(url, "redis://") ? url.substr(8) : "";
    size_t at = rest.rfind('@');
    if (at != std::string::npos) {
        std::string userinfo = rest.substr(0, at);
        r.password = userinfo.substr(userinfo.find(':') == std::string::npos ? 0 : userinfo.find(':') + 1);
        rest = rest.substr(at + 1);
    }
    size_t slash = rest.find('/');
    std::string db = slash == std::string::npos ? "" : rest.substr(slash + 1);
    std::string authority = rest.substr(0, slash);
    long long value = 0;
    bool ok = !authority.empty() && (db.empty() || (db == "0") || parse_positive(db, 1000, value));
    r.db = static_cast<int>(value);
    if (ok && authority.find(':') == std::string::npos) authority += ":6379";
    ok = ok && split_host_port(authority, r.host, r.port);
    if (!ok) {
        error = std::string(variable) + ": '" + without_userinfo(url) +
                "' is not redis://[:password@]host[:port][/db] or unix:/path/to/redis.sock";
        return false;
    }
    r.shown = r.host + ":" + std::to_string(r.port) + (r.db ? "/" + std::to_string(r.db) : "");
    return true;
}

std::string environment_lookup(const std::string& name, void* context) {
    return environment_value(*static_cast<const Environment*>(context), name.c_str());
}

// AZURE_OPENAI_PROXY_CONFIG: the routing table and the client keys of a JSON file. Read
// last, so its endpoints inherit every other setting.
bool read_routing(const Environment& env, Config& c, std::string& error) {
    c.config_file = trim(environment_value(env, "AZURE_OPENAI_PROXY_CONFIG"));
    if (c.config_file.empty()) return true;
    std::shared_ptr<const RoutingTable> table;
    if (!load_routing(c, environment_lookup, const_cast<Environment*>(&env), table, error)) return false;
    c.routing = std::make_shared<LiveRouting>(std::move(table));
    return true;
}

}  // namespace

std::vector<std::string> default_listed_models() {
    return {"gpt-5",          "gpt-5-mini",      "gpt-5-nano",
            "gpt-4.1",        "gpt-4.1-mini",    "gpt-4.1-nano",
            "gpt-4o",         "gpt-4o-mini",     "o4-mini",
            "o3",             "o3-mini",         "o1",
            "gpt-4",          "gpt-3.5-turbo",   "text-embedding-3-large",
            "text-embedding-3-small", "text-embedding-ada-002", "dall-e-3",
            "gpt-image-1",    "whisper-1",       "tts-1",
            "tts-1-hd"};
}

bool split_host_port(const std::string& address, std::string& host, int& port) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 >= address.size()) return false;
    host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty() || host.find_first_of(" /[]") != std::string::npos) return false;
    long long value = 0;
    if (!parse_positive(address.substr(colon + 1), 65535, value)) return false;
    port = static_cast<int>(value);
    return true;
}

namespace {

bool read_on_off(const Environment& env, const char* variable, bool& out, std::string& error) {
    return read_choice<bool>(env, variable,
                             {{"1", true}, {"on", true}, {"true", true}, {"0", false}, {"off", false}, {"false", false}},
                             "on or off", out, error);
}

bool read_switches(const Environment& env, ProcessSettings& c, std::string& error) {
    return read_on_off(env, "AZURE_OPENAI_PROXY_STREAM_USAGE", c.stream_usage, error) &&
           read_on_off(env, "AZURE_OPENAI_PROXY_FIX_PARAMETERS", c.fix_parameters, error) &&
           read_choice<bool>(env, "AZURE_OPENAI_PROXY_MODELS_SOURCE", {{"mock", false}, {"azure", true}},
                             "'mock' or 'azure'", c.live_models, error) &&
           read_choice<LogFormat>(env, "AZURE_OPENAI_PROXY_LOG_FORMAT",
                                  {{"text", LogFormat::Text}, {"json", LogFormat::Json}}, "'text' or 'json'",
                                  c.log_format, error) &&
           read_choice<bool>(env, "AZURE_OPENAI_PROXY_UPSTREAM_HTTP", {{"1.1", false}, {"2", true}},
                             "'1.1' or '2'", c.upstream_http2, error);
}

// The models GET /v1/models lists, the shared state (the file, Redis), and how every
// upstream is reached (the outbound proxy, the CA bundle).
bool read_models_state_and_reach(const Environment& env, ProcessSettings& c, std::string& error) {
    c.listed_models = list_of(environment_value(env, "AZURE_OPENAI_PROXY_MODELS"));
    if (!check_model_names("AZURE_OPENAI_PROXY_MODELS", c.listed_models, error)) return false;
    if (c.listed_models.empty()) c.listed_models = default_listed_models();
    c.state_file = trim(environment_value(env, "AZURE_OPENAI_PROXY_STATE_FILE"));
    if (!read_redis(env, c, error)) return false;
    c.upstream_proxy = trim(environment_value(env, "AZURE_OPENAI_PROXY_UPSTREAM_PROXY"));
    c.ca_bundle = trim(environment_value(env, "AZURE_OPENAI_PROXY_CA_BUNDLE"));
    if (!c.ca_bundle.empty() && !std::ifstream(c.ca_bundle)) {
        error = "AZURE_OPENAI_PROXY_CA_BUNDLE: cannot read '" + c.ca_bundle + "'";
        return false;
    }
    return true;
}

// Where the proxy listens: the FastCGI socket, or the HTTP address of its own server.
bool read_listening(const Environment& env, ProcessSettings& c, std::string& error) {
    c.fcgi_address = trim(environment_value(env, "AZURE_OPENAI_PROXY_FCGI_ADDRESS"));
    c.fcgi_socket_owner = trim(environment_value(env, "AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER"));
    if (!parse_web_server_addresses(environment_value(env, "FCGI_WEB_SERVER_ADDRS"), c.web_servers, error))
        return false;
    c.path_prefix = normalise_prefix(trim(environment_value(env, "AZURE_OPENAI_PROXY_PATH_PREFIX")));
    std::string http = trim(environment_value(env, "AZURE_OPENAI_PROXY_ADDRESS"));
    if (!http.empty()) c.http_address = http;
    std::string host;
    int port = 0;
    if (split_host_port(c.http_address, host, port)) return true;
    error = "AZURE_OPENAI_PROXY_ADDRESS: '" + c.http_address + "' is not host:port like 0.0.0.0:8080";
    return false;
}

// Capacity, deadlines and sizes.
bool read_limits(const Environment& env, ProcessSettings& c, std::string& error) {
    if (!read_number(env, "AZURE_OPENAI_PROXY_THREADS", 64, c.threads, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_MAX_REQUESTS", 1000000, c.max_requests, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_CONNECT_TIMEOUT", 3600, c.connect_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT", 86400, c.upstream_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT", 86400, c.first_byte_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_READ_TIMEOUT", 86400, c.read_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_READ_IDLE_TIMEOUT", 3600, c.read_idle_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_WRITE_TIMEOUT", 86400, c.write_timeout_s, error) ||
        !read_number(env, "AZURE_OPENAI_PROXY_MAX_BODY_BYTES", 1LL << 40, c.max_body_bytes, error) ||
        // Each worker takes a process slot of the shared state.
        !read_number(env, "AZURE_OPENAI_PROXY_WORKERS", static_cast<long long>(kStateProcesses), c.workers, error))
        return false;
    // 0 turns heartbeats off, so it is read apart from the positive numbers above.
    if (trim(environment_value(env, "AZURE_OPENAI_PROXY_HEARTBEAT_MS")) == "0") {
        c.heartbeat_ms = 0;
        return true;
    }
    return read_number(env, "AZURE_OPENAI_PROXY_HEARTBEAT_MS", 600000, c.heartbeat_ms, error);
}

}  // namespace

Environment environment_of(char** entries) {
    Environment env;
    for (char** entry = entries; entry && *entry; ++entry) {
        const char* eq = std::strchr(*entry, '=');
        if (eq) env.emplace(std::string(*entry, static_cast<size_t>(eq - *entry)), eq + 1);
    }
    return env;
}

ConfigResult parse_config(const Environment& env) {
    ConfigResult result;
    Config& c = result.config;
    std::string& error = result.error;
    // In this order: the endpoint's default depends on the mode, and the routing file's
    // endpoints inherit every other setting.
    result.ok = read_endpoint_settings(env, c, error) && read_access_policy(env, c, error) &&
                read_models_state_and_reach(env, c, error) && read_switches(env, c, error) &&
                read_listening(env, c, error) && read_limits(env, c, error) && read_routing(env, c, error) &&
                keys_need_token(c, error);
    return result;
}

std::string configured_model_problem(const std::string& model) {
    if (model.empty()) return "a model's name may not be empty";
    for (unsigned char c : model)
        if (c < 0x20 || c == 0x7f) return "a model's name may not hold control characters";
    return over_bound(model, kLongestConfiguredModel, "a model's name");
}

std::string describe_config(const Config& c) {
    std::ostringstream out;
    out << "mode: " << (c.mode == ProxyMode::Azure ? "azure" : "openai") << "\n";
    out << "endpoint: " << c.endpoint << "\n";
    if (c.mode == ProxyMode::Azure) {
        out << "api-version: " << c.api_version << (uses_v1_api(c) ? " (Azure's v1 API)" : "") << "\n";
        if (!uses_v1_api(c))
            for (const auto& [route, version] : c.route_api_versions)
                out << "api-version for /v1/" << route << ": " << version << "\n";
        out << "GET /v1/models: " << (c.live_models ? "Azure's list" : "the configured list") << "\n";
        for (const auto& [model, deployment] : c.model_mapper)
            out << "model mapper: " << model << " -> " << deployment << "\n";
    }
    out << "server-side key: " << (c.token.empty() ? "no (clients send theirs)" : "yes") << "\n";
    if (c.credential.source != CredentialSource::None) out << "Entra ID credential: " << describe_credential(c.credential) << "\n";
    out << "client keys: "
        << (c.client_keys.empty() ? std::string("none (no key asked of clients)")
                                  : std::to_string(c.client_keys.size()) +
                                        (c.client_keys_file.empty() ? "" : " from " + c.client_keys_file))
        << "\n";
    for (const ClientKey& key : c.client_keys) out << "client key: " << key.name << "\n";
    for (const ClientKey& key : c.admin_keys) out << "admin key: " << key.name << "\n";
    out << "shared state: " << (c.state_file.empty() ? "the default file (/dev/shm)" : c.state_file) << "\n";
    if (!c.redis.shown.empty()) out << "shared across hosts: redis at " << c.redis.shown << "\n";
    if (c.stream_usage) out << "usage asked of every chat stream (its chunk left out for clients that did not ask)\n";
    if (!c.fix_parameters) out << "reasoning models' parameters: relayed as the client sent them\n";
    std::string origins;
    for (const std::string& origin : c.cors_origins) origins += (origins.empty() ? "" : ", ") + origin;
    out << "CORS origins: " << (origins.empty() ? "*" : origins) << "\n";
    if (!c.allowed_models.empty())
        for (const std::string& model : c.allowed_models) out << "allowed model: " << model << "\n";
    out << "timeouts (s): read " << c.read_timeout_s << " (idle " << c.read_idle_timeout_s << "), write "
        << c.write_timeout_s << ", connect " << c.connect_timeout_s << ", first byte "
        << c.first_byte_timeout_s << ", upstream silence " << c.upstream_timeout_s << "\n";
    if (!c.ca_bundle.empty()) out << "upstream CA bundle: " << c.ca_bundle << "\n";
    if (!c.upstream_proxy.empty()) out << "upstream proxy: " << without_userinfo(c.upstream_proxy) << "\n";
    out << "upstream HTTP over TLS: " << (c.upstream_http2 ? "2 where offered" : "1.1") << "\n";
    out << "access log: " << (c.log_format == LogFormat::Json ? "JSON lines" : "text") << "\n";
    out << "http address: " << c.http_address << "\n";
    out << "fastcgi socket: " << (c.fcgi_address.empty() ? "fd 0" : c.fcgi_address) << "\n";
    if (!c.web_servers.empty())
        out << "web servers allowed on TCP (FCGI_WEB_SERVER_ADDRS): " << describe_web_server_addresses(c.web_servers)
            << "\n";
    out << "event-loop threads: " << (c.threads ? std::to_string(c.threads) : "one per core")
        << (c.workers > 1 ? " per worker, workers: " + std::to_string(c.workers) : "") << "\n";
    out << "requests in flight: at most " << c.max_requests
        << (c.workers > 1 ? " per worker" : "") << "\n";
    out << "stream heartbeat: " << (c.heartbeat_ms ? std::to_string(c.heartbeat_ms) + " ms" : "off") << "\n";
    if (!c.path_prefix.empty()) out << "path prefix: " << c.path_prefix << "\n";
    if (c.routing) out << describe_routing(*c.routing->get());
    return out.str();
}

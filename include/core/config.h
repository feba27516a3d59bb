// Configuration: read once from the environment at start, then read-only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access_log.h"
#include "client_keys.h"
#include "credential.h"
#include "web_server_addresses.h"

enum class ProxyMode { Azure, OpenAI };

// AZURE_OPENAI_PROXY_REDIS_URL: redis://[:password@]host[:port][/db] or unix:/path.
struct RedisAddress {
    std::string host;       // empty: no Redis
    int port = 6379;
    std::string unix_path;  // instead of host and port
    std::string password;
    int db = 0;
    std::string shown;      // for logs: without the password
};

struct RoutingTable;
class LiveRouting;

// The configuration is split by job. Code that needs one job's settings takes that part
// (an endpoint holds only its EndpointSettings); `Config` is all of them, so `config.x`
// reads any setting where the whole configuration is at hand.

// What a request sent to one upstream endpoint needs: where, which API, which key. The
// environment gives the defaults; each endpoint of the routing file overrides some.
struct EndpointSettings {
    ProxyMode mode = ProxyMode::Azure;
    std::string endpoint;                       // scheme://host[:port][/base], no trailing '/'
    std::string api_version = "2024-10-21";     // "v1" or "preview": Azure's v1 API
    // api-version per route, for dated versions: the longest matching path prefix (after
    // /v1/) wins, e.g. {"responses", "2025-04-01-preview"}.
    std::vector<std::pair<std::string, std::string>> route_api_versions;
    std::map<std::string, std::string> model_mapper;  // model -> deployment
    std::string token;                          // server-side key; empty: use the client's
    CredentialSettings credential;              // the proxy's own Entra ID identity, instead of the key
};

// The endpoint authenticates with the proxy's own key or Entra ID token, not the client's.
bool has_own_identity(const EndpointSettings& settings);

// Who may use the proxy, and for which models.
struct AccessPolicy {
    std::vector<ClientKey> client_keys;         // empty: no key asked of clients
    std::string client_keys_file;               // where they came from, if a file
    std::vector<ClientKey> admin_keys;          // may read /metrics from anywhere
    std::vector<std::string> cors_origins;      // empty: any origin ("*")
    std::vector<std::string> allowed_models;    // empty: any model
};

// The process: where it listens, its capacity and deadlines, its logs and shared state,
// and how it reaches every upstream (TLS trust, outbound proxy).
struct ProcessSettings {
    std::string http_address = "0.0.0.0:8080";  // where `make run` serves HTTP
    std::string fcgi_address;                   // empty: the listening socket on fd 0
    std::string fcgi_socket_owner;              // "user:group" for a unix socket it creates
    std::vector<PeerAddress> web_servers;       // FCGI_WEB_SERVER_ADDRS; empty: any peer
    int threads = 0;                            // event-loop threads; 0: one per core
    long max_requests = 4096;                   // requests in flight per process; beyond: 503
    long connect_timeout_s = 10;
    long first_byte_timeout_s = 600;            // the request sent, until the answer's head
    long upstream_timeout_s = 600;              // longest silence from the upstream after it
    long read_timeout_s = 300;                  // the whole request, from the web server
    long read_idle_timeout_s = 30;              // longest pause while it arrives
    long write_timeout_s = 60;                  // longest wait for the web server to drain
    long heartbeat_ms = 500;                    // SSE comment on idle streams; 0: none
    int workers = 1;                            // processes; above 1 a supervisor keeps them
    long long max_body_bytes = 32LL << 20;
    std::string path_prefix;                    // mount point stripped before routing
    std::vector<std::string> listed_models;     // GET /v1/models, besides the mapper's models
    bool live_models = false;                   // GET /v1/models asks Azure instead
    std::string ca_bundle;                      // CA certificates for the upstream's TLS
    std::string upstream_proxy;                 // outbound proxy; empty: libcurl's *_proxy variables
    // The HTTP version spoken to a TLS upstream (AZURE_OPENAI_PROXY_UPSTREAM_HTTP): 1.1, or 2
    // where the upstream offers it. HTTP/1.1 by default: HTTP/2 gains nothing with Debian 12's
    // libcurl (7.88), which cannot pause one stream (a client that stops reading) without
    // stopping its whole connection, so on HTTP/2 each transfer in flight has a connection of
    // its own too (upstream.cpp), at about a fifth more memory each (issue 22).
    bool upstream_http2 = false;
    LogFormat log_format = LogFormat::Text;     // access-log lines: text or JSON
    std::string state_file;                     // shared state; empty: the default; "none": private
    RedisAddress redis;                         // shared across hosts; empty host and path: none
    bool stream_usage = false;                  // ask usage of every chat stream (for the counts)
    // AZURE_OPENAI_PROXY_FIX_PARAMETERS: parameters a reasoning model refuses are fixed in
    // chat requests (reasoning_params.h), and Azure's 400 naming one is learned from.
    bool fix_parameters = true;
    std::string config_file;                    // AZURE_OPENAI_PROXY_CONFIG
};

struct Config : ProcessSettings, EndpointSettings, AccessPolicy {
    std::shared_ptr<LiveRouting> routing;       // its routing table (SIGHUP reloads); null: none
};

struct ConfigResult {
    bool ok = false;
    Config config;
    std::string error;  // one line naming the variable
};

using Environment = std::map<std::string, std::string>;

// The model names GET /v1/models lists when AZURE_OPENAI_PROXY_MODELS is unset.
std::vector<std::string> default_listed_models();

// The per-route versions used when AZURE_OPENAI_APIVERSION_ROUTES is unset: Responses and
// assistants exist only in preview versions.
const char* default_route_api_versions();

// Azure's v1 API (/openai/v1/..., model = deployment) rather than a dated one.
bool uses_v1_api(const EndpointSettings& settings);

// The api-version for a path below /v1/ ("responses/resp_1", "chat/completions").
const std::string& api_version_for(const EndpointSettings& settings, std::string_view operation);

// The process's environment (`environ`: "NAME=value" entries up to a null), all of it: the
// configuration file's keys may name any variable (env:NAME).
Environment environment_of(char** entries);

// Builds the configuration from environment variables (unset and empty are the same),
// and the routing table of AZURE_OPENAI_PROXY_CONFIG when set (`env:NAME` keys are
// looked up in `env` too, so it should hold the whole environment).
ConfigResult parse_config(const Environment& env);

// Accepts http(s)://authority[/path]; no query, fragment, userinfo or whitespace.
bool valid_base_url(const std::string& url);

// Splits "host:port" or "[v6]:port"; false when malformed.
bool split_host_port(const std::string& address, std::string& host, int& port);

// What is wrong with a model name the operator configures (the mapper, the listed and
// allowed models, the routing file's models and a key's): it may become a metric label,
// so it has at most kLongestConfiguredModel bytes and no control character. Empty: fine.
std::string configured_model_problem(const std::string& model);

// The environment's keys, client and admin, as shared_keys() reads them.
std::vector<KeySource> environment_key_sources(const AccessPolicy& policy);

// Clients must present a key: AZURE_OPENAI_PROXY_API_KEYS or the routing file defines some.
bool has_client_keys(const Config& config);

// The start-up warning for a proxy that spends its own key on anyone's requests (a
// server-side key and no client keys); empty when there is nothing to warn of.
std::string open_relay_warning(const Config& config);

// One line per setting for the start-up log; never contains the token.
std::string describe_config(const Config& config);

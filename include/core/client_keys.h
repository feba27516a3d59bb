// Client keys: who may use the proxy (AZURE_OPENAI_PROXY_API_KEYS). A client presents a
// key as `Authorization: Bearer KEY` or `api-key: KEY`; the proxy compares it with each
// configured key in constant time and, from then on, knows the client only by the key's
// name, which is what logs show.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct Header;  // request.h, which needs config.h, which needs this
using Headers = std::vector<Header>;
struct RequestHeader;
using RequestHeaders = std::vector<RequestHeader>;

// What a key may do (from the configuration file; every limit 0 means none).
struct KeyLimits {
    std::vector<std::string> models;  // empty: any model
    long requests_per_minute = 0;
    long tokens_per_minute = 0;
    long concurrent = 0;              // requests in flight at once
    long realtime_sessions = 0;       // realtime WebSocket sessions open at once (the companion's)
    long long expires_at = 0;         // seconds since the epoch; 0: never
};

struct ClientKey {
    std::string name;  // "alice", or "key-3" for the third entry when it has no name
    std::string key;
    KeyLimits limits;
};

// The shortest key accepted: a shorter one is guessed too easily.
constexpr size_t kShortestClientKey = 8;

// Entries "name:key" or "key", separated by `separator` (',' in the variable, '\n' in a
// key file, where blank lines and lines starting with '#' are skipped). False with an
// `error` that names the entry by its position and name, never by its key.
bool parse_client_keys(const std::string& text, char separator, std::vector<ClientKey>& keys,
                       std::string& error);

// The keys of one source, each named in errors as `prefix` + its name
// ("AZURE_OPENAI_PROXY_API_KEYS: alice", "keys.alice").
struct KeySource {
    std::string prefix;
    const std::vector<ClientKey>* keys;
};

// Every entry whose key an entry before it (in the same source or an earlier one) already
// has: {that entry, the earlier one}, by name, never by key.
std::vector<std::pair<std::string, std::string>> shared_keys(const std::vector<KeySource>& sources);

// The credential the client sent: the Bearer token of Authorization, else api-key.
// Empty when it sent neither.
std::string_view presented_key(const Headers& headers);
std::string_view presented_key(const RequestHeaders& headers);

// The configured key equal to `presented`, or nullptr. Every key is compared whole, so the
// time taken says nothing about how much of a key was right.
const ClientKey* find_client_key(const std::vector<ClientKey>& keys, std::string_view presented);

// Equal strings, in a time that depends on the lengths only.
bool constant_time_equal(std::string_view presented, std::string_view expected);

#include "client_keys.h"

#include <set>
#include <unordered_map>

#include "bounds.h"
#include "request.h"
#include "text.h"

namespace {

// A key travels in a header: printable ASCII without spaces or commas.
bool usable_key(const std::string& key) {
    if (key.size() < kShortestClientKey) return false;
    for (unsigned char c : key)
        if (c <= ' ' || c >= 0x7f || c == ',') return false;
    return true;
}

}  // namespace

bool parse_client_keys(const std::string& text, char separator, std::vector<ClientKey>& keys,
                       std::string& error) {
    std::set<std::string> names, seen;
    size_t position = 0;
    for (const std::string& raw : split(text, separator)) {
        std::string entry = trim(raw);
        if (entry.empty() || (separator == '\n' && entry[0] == '#')) continue;
        ++position;
        ClientKey key;
        size_t colon = entry.find(':');
        if (colon == std::string::npos) {
            key.name = "key-" + std::to_string(position);
            key.key = entry;
        } else {
            key.name = trim(entry.substr(0, colon));
            key.key = trim(entry.substr(colon + 1));
        }
        std::string where = "entry " + std::to_string(position);
        if (key.name.empty() || !is_word(key.name, "-_.@")) {
            error = where + ": a key's name may hold only letters, digits, '-', '_', '.' and '@'";
            return false;
        }
        where += " (" + quote_value(key.name, 40) + ")";
        std::string too_long = over_bound(key.name, kLongestKeyName, "a key's name");
        if (!too_long.empty()) {
            error = where + ": " + too_long;
            return false;
        }
        if (!usable_key(key.key)) {
            error = where + ": a key must be at least " + std::to_string(kShortestClientKey) +
                    " printable characters, without spaces or commas";
            return false;
        }
        if (!names.insert(key.name).second || !seen.insert(key.key).second) {
            error = where + ": the same name or key appears twice";
            return false;
        }
        keys.push_back(std::move(key));
    }
    if (keys.empty()) error = "no key in it";
    return !keys.empty();
}

std::vector<std::pair<std::string, std::string>> shared_keys(const std::vector<KeySource>& sources) {
    std::vector<std::pair<std::string, std::string>> shared;
    std::unordered_map<std::string_view, std::string> owner;  // key -> the first entry's name
    for (const KeySource& source : sources)
        for (const ClientKey& key : *source.keys) {
            auto [first, added] = owner.emplace(key.key, source.prefix + key.name);
            if (!added) shared.emplace_back(source.prefix + key.name, first->second);
        }
    return shared;
}

namespace {

// Over a request's headers or headers of its own (realtime's), alike.
template <typename HeaderList>
std::string_view presented_key_in(const HeaderList& headers) {
    if (const auto* authorization = find_header(headers, "Authorization")) {
        std::string_view value = trim_view(*authorization);
        if (value.size() > 7 && istarts_with(value, "Bearer ")) return trim_view(value.substr(7));
    }
    if (const auto* api_key = find_header(headers, "Api-Key")) return trim_view(*api_key);
    return {};
}

}  // namespace

std::string_view presented_key(const Headers& headers) { return presented_key_in(headers); }
std::string_view presented_key(const RequestHeaders& headers) { return presented_key_in(headers); }

bool constant_time_equal(std::string_view presented, std::string_view expected) {
    volatile unsigned char difference = presented.size() != expected.size();
    for (size_t i = 0; i < expected.size(); ++i) {
        unsigned char got = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        difference = difference | (got ^ static_cast<unsigned char>(expected[i]));
    }
    return difference == 0;
}

const ClientKey* find_client_key(const std::vector<ClientKey>& keys, std::string_view presented) {
    const ClientKey* found = nullptr;
    for (const ClientKey& key : keys)  // no early exit: every key costs the same
        if (constant_time_equal(presented, key.key)) found = &key;
    return found;
}

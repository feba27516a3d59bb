#include "request.h"

#include <cctype>
#include <cstring>
#include <unordered_set>

#include "text.h"

namespace {

// The first param of that name (as libfcgi's own lookup does, when a server sends one twice).
std::string param(const CgiParams& params, std::string_view name) {
    for (const CgiParam& entry : params)
        if (entry.first == name) return std::string(entry.second);
    return std::string();
}

bool has_line_break(std::string_view text) {
    return text.find_first_of("\r\n") != std::string_view::npos;
}

// '%', spaces, control and non-ASCII bytes as %XX.
std::string percent_encode_unsafe(const std::string& path) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        if (c > ' ' && c < 0x7f && c != '%') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

// A request target as HTTP carries it: no spaces, no control bytes.
bool is_clean_target(std::string_view text) {
    for (unsigned char c : text)
        if (c <= ' ' || c == 0x7f) return false;
    return true;
}

bool segment_boundary(const std::string& path, size_t at) {
    return at == path.size() || path[at] == '/';
}

}  // namespace

std::string header_name_from_param(const std::string& name) {
    std::string out;
    bool word_start = true;
    for (size_t i = 5; i < name.size(); ++i) {  // skip "HTTP_"
        char c = name[i];
        if (c == '_') {
            out += '-';
            word_start = true;
            continue;
        }
        unsigned char u = static_cast<unsigned char>(c);
        out += static_cast<char>(word_start ? std::toupper(u) : std::tolower(u));
        word_start = false;
    }
    return out;
}

const std::string* find_header(const Headers& headers, std::string_view name) {
    for (const Header& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

void split_request_target(const std::string& target, std::string& path, std::string& query) {
    std::string rest = target;
    size_t scheme_end = rest.find("://");
    if (scheme_end != std::string::npos && rest.find('/') > scheme_end) {
        size_t path_start = rest.find_first_of("/?", scheme_end + 3);
        rest = path_start == std::string::npos ? "/" : rest.substr(path_start);
    }
    size_t question = rest.find('?');
    path = rest.substr(0, question);
    query = question == std::string::npos ? "" : rest.substr(question + 1);
    if (path.empty() || path[0] != '/') path.insert(0, "/");
    size_t fragment = query.find('#');
    if (fragment != std::string::npos) query.resize(fragment);
}

std::string strip_mount_prefix(const std::string& path, const std::string& configured_prefix) {
    if (!configured_prefix.empty() && starts_with(path, configured_prefix) &&
        segment_boundary(path, configured_prefix.size())) {
        std::string rest = path.substr(configured_prefix.size());
        return rest.empty() ? "/" : rest;
    }
    if (starts_with(path, "/v1") && segment_boundary(path, 3)) return path;
    for (size_t at = path.find("/v1"); at != std::string::npos; at = path.find("/v1", at + 1))
        if (segment_boundary(path, at + 3)) return path.substr(at);
    return path;
}

CgiParams params_from_envp(char** envp) {
    CgiParams params;
    for (char** entry = envp; entry && *entry; ++entry) {
        const char* eq = std::strchr(*entry, '=');
        if (eq) params.emplace_back(std::string_view(*entry, static_cast<size_t>(eq - *entry)), eq + 1);
    }
    return params;
}

Request request_from_params(const CgiParams& params, const Config& config) {
    Request request;
    for (const auto& [name, value] : params)
        if (has_line_break(name) || has_line_break(value)) {
            request.malformed_param = name.empty() ? "param without a name" : std::string(name);
            break;
        }
    request.method = param(params, "REQUEST_METHOD");
    std::string target = param(params, "REQUEST_URI");
    if (target.empty()) {
        // These two are decoded: encoded again, they route and travel like REQUEST_URI.
        target = percent_encode_unsafe(param(params, "SCRIPT_NAME") + param(params, "PATH_INFO"));
        std::string query = param(params, "QUERY_STRING");
        if (!query.empty()) target += "?" + query;
    }
    std::string path;
    split_request_target(target, path, request.query);
    if (request.malformed_param.empty() && (!is_clean_target(path) || !is_clean_target(request.query)))
        request.malformed_param = "REQUEST_URI";
    request.path = strip_mount_prefix(path, config.path_prefix);

    // A header sent twice counts once, as its first copy (linear: a web server may send
    // thousands of params).
    std::unordered_set<std::string_view> seen;
    for (const auto& [name, value] : params)
        if (name.size() > 5 && name.compare(0, 5, "HTTP_") == 0 && seen.insert(name).second)
            request.headers.push_back({header_name_from_param(std::string(name)), std::string(value)});
    request.server_notices_clients_leaving = starts_with(param(params, "SERVER_SOFTWARE"), "nginx/");
    request.remote_address = param(params, "REMOTE_ADDR");
    std::string content_type = param(params, "CONTENT_TYPE");
    if (!content_type.empty()) request.headers.push_back({"Content-Type", content_type});

    std::string length = param(params, "CONTENT_LENGTH");
    long long declared = digits_value(length);
    if (declared >= 0)
        request.content_length = declared;
    else if (!length.empty() && request.malformed_param.empty())
        request.malformed_param = "CONTENT_LENGTH";
    const std::string* encoding = find_header(request.headers, "Transfer-Encoding");
    bool chunked = encoding && lowercase(*encoding).find("chunked") != std::string::npos;
    request.has_body = request.content_length > 0 || chunked;
    if (chunked && request.content_length == 0) request.content_length = -1;
    return request;
}

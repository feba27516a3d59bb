#include "request.h"

#include <cctype>
#include <array>
#include <cstring>
#include <unordered_set>

#include "text.h"

namespace {

// HTTP_X_TRACE: a header of the client's request (a bare "HTTP_" is none).
bool is_header_param(std::string_view name) { return name.size() > 5 && name.substr(0, 5) == "HTTP_"; }

// CR and LF would split a header or a request line; NUL cuts a C string (a libcurl header)
// short, so the proxy would send another value than the client did.
bool has_line_break_or_nul(std::string_view text) {
    if (!has_byte_below_or(text, '\r' + 1, '\r')) return false;  // the common case, sixteen bytes a step
    for (char c : text)
        if (c == '\r' || c == '\n' || c == '\0') return true;
    return false;
}

// A param's name and value are looked at in one scan where they lie together, as in
// FastCGI's pairs (name, then value).
bool param_has_line_break_or_nul(std::string_view name, std::string_view value) {
    if (name.data() && value.data() == name.data() + name.size())
        return has_line_break_or_nul(std::string_view(name.data(), name.size() + value.size()));
    return has_line_break_or_nul(name) || has_line_break_or_nul(value);
}

// The params a request is made of, each the first of its name (as libfcgi's lookup took
// it, when a server sends one twice), found in one pass.
class KnownParams {
public:
    enum Name { Method, Uri, ScriptName, PathInfo, Query, Software, RemoteAddress, ContentType, Length, kCount };

    void take(std::string_view name, std::string_view value) {
        int which = index_of(name);
        if (which < 0 || (taken_ & (1u << which))) return;
        taken_ |= 1u << which;
        values_[which] = value;
    }
    std::string_view operator[](Name name) const { return values_[name]; }

private:
    static int index_of(std::string_view name) {
        switch (name.size()) {
            case 9: return name == "PATH_INFO" ? PathInfo : -1;
            case 11: return name == "REQUEST_URI" ? Uri : name == "SCRIPT_NAME" ? ScriptName
                            : name == "REMOTE_ADDR" ? RemoteAddress : -1;
            case 12: return name == "QUERY_STRING" ? Query : name == "CONTENT_TYPE" ? ContentType : -1;
            case 14: return name == "REQUEST_METHOD" ? Method : name == "CONTENT_LENGTH" ? Length : -1;
            case 15: return name == "SERVER_SOFTWARE" ? Software : -1;
            default: return -1;
        }
    }

    std::string_view values_[kCount];
    unsigned taken_ = 0;
};

// Whether a header param was seen before: linear for the few a request carries, hashed
// past that (a web server may send thousands of params).
class SeenNames {
public:
    bool first_time(std::string_view name) {
        if (hashed_.empty()) {
            for (size_t i = 0; i < few_count_; ++i)
                if (few_[i] == name) return false;
            if (few_count_ < kFew) {  // in place: no allocation for a usual request
                few_[few_count_++] = name;
                return true;
            }
            hashed_.insert(few_.begin(), few_.end());  // a name beyond kFew: from now on hashed
        }
        return hashed_.insert(name).second;
    }

private:
    static const size_t kFew = 32;
    std::array<std::string_view, kFew> few_;
    size_t few_count_ = 0;
    std::unordered_set<std::string_view> hashed_;
};

// '%', spaces, control and non-ASCII bytes as %XX.
std::string percent_encode_unsafe(const std::string& path) {
    return percent_encode(path, [](unsigned char c) { return c > ' ' && c < 0x7f && c != '%'; });
}

// A request target as HTTP carries it: no spaces, no control bytes (eight bytes a step).
bool is_clean_target(std::string_view text) { return !has_byte_below_or(text, ' ' + 1, 0x7f); }

bool segment_boundary(const std::string& path, size_t at) {
    return at == path.size() || path[at] == '/';
}

// "/v1" or "/v1/...": a path with no mount prefix to strip.
bool starts_at_v1(const std::string& path) {
    return std::string_view(path).substr(0, 3) == "/v1" && segment_boundary(path, 3);  // no string made of "/v1"
}

}  // namespace

void append_header_name(std::string& out, std::string_view name) {
    size_t at = out.size();
    out.append(name);  // then each byte in place
    bool word_start = true;
    for (auto c = out.begin() + static_cast<std::ptrdiff_t>(at); c != out.end(); ++c) {
        // An ASCII letter's two cases differ in bit 0x20 alone: one test, one bit set or cleared.
        unsigned char lower = static_cast<unsigned char>(*c) | 0x20;
        if (static_cast<unsigned char>(lower - 'a') < 26) {  // letters first: most bytes are
            *c = static_cast<char>(word_start ? lower & ~0x20 : lower);
            word_start = false;
        } else {
            word_start = *c == '_' || *c == '-';
            if (word_start) *c = '-';
        }
    }
}

std::string header_name_from_param(std::string_view name) {
    std::string out;
    append_header_name(out, name.substr(5));  // without "HTTP_"
    return out;
}

bool header_names_match(std::string_view request_name, std::string_view name) {
    if (request_name.size() != name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        unsigned char a = static_cast<unsigned char>(request_name[i]), b = static_cast<unsigned char>(name[i]);
        unsigned char differ = a ^ b;
        if (differ == 0) continue;
        // A letter in the other case ("AUTHORIZATION", "Authorization"): bit 0x20 alone differs.
        if (differ == 0x20 && static_cast<unsigned char>((a | 0x20) - 'a') < 26) continue;
        if (a != '_' || b != '-') return false;
    }
    return true;
}

const std::string* find_header(const Headers& headers, std::string_view name) {
    for (const Header& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

const std::string_view* find_header(const RequestHeaders& headers, std::string_view name) {
    for (const RequestHeader& h : headers)  // sizes first: most names differ there, and no call is made
        if (h.name.size() == name.size() && header_names_match(h.name, name)) return &h.value;
    return nullptr;
}

void split_request_target(std::string_view target, std::string& path, std::string& query) {
    std::string_view rest = target;  // views until the two copies made at the end
    size_t scheme_end = rest.find("://");
    if (scheme_end != std::string_view::npos && rest.find('/') > scheme_end) {
        size_t path_start = rest.find_first_of("/?", scheme_end + 3);
        rest = path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
    }
    size_t question = rest.find('?');
    std::string_view path_part = rest.substr(0, question);
    std::string_view query_part = question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
    query.assign(query_part.substr(0, query_part.find('#')));
    if (path_part.empty() || path_part[0] != '/') path.assign("/").append(path_part);
    else path.assign(path_part);
}

std::string strip_mount_prefix(const std::string& path, const std::string& configured_prefix) {
    if (!configured_prefix.empty() && starts_with(path, configured_prefix) &&
        segment_boundary(path, configured_prefix.size())) {
        std::string rest = path.substr(configured_prefix.size());
        return rest.empty() ? "/" : rest;
    }
    if (starts_at_v1(path)) return path;
    for (size_t at = path.find("/v1"); at != std::string::npos; at = path.find("/v1", at + 1))
        if (segment_boundary(path, at + 3)) return path.substr(at);
    return path;
}

CgiParams params_from_envp(char** envp) {
    CgiParams params;
    size_t count = 0;
    for (char** entry = envp; entry && *entry; ++entry) ++count;
    params.reserve(count);
    for (char** entry = envp; entry && *entry; ++entry) {
        const char* eq = std::strchr(*entry, '=');
        if (eq) params.emplace_back(std::string_view(*entry, static_cast<size_t>(eq - *entry)), eq + 1);
    }
    return params;
}

Request request_from_params(const CgiParams& params, const Config& config, bool plain) {
    Request request;
    KnownParams known;
    SeenNames seen;
    size_t headers = 1;  // and Content-Type
    for (const auto& entry : params) headers += is_header_param(entry.first);
    request.headers.reserve(headers);
    for (const auto& [name, value] : params) {
        if (!plain && request.malformed_param.empty() && param_has_line_break_or_nul(name, value))
            request.malformed_param = name.empty() ? "param without a name" : std::string(name);
        if (is_header_param(name)) {
            // A header sent twice counts once, as its first copy.
            if (seen.first_time(name)) request.headers.push_back({name.substr(5), value});
        } else {
            known.take(name, value);
        }
    }
    request.method = known[KnownParams::Method];
    std::string_view target = known[KnownParams::Uri];
    std::string built;  // without REQUEST_URI: the target made of the params that say it
    if (target.empty()) {
        // These two are decoded: encoded again, they route and travel like REQUEST_URI.
        built = percent_encode_unsafe(std::string(known[KnownParams::ScriptName]) +
                                      std::string(known[KnownParams::PathInfo]));
        std::string_view query = known[KnownParams::Query];
        if (!query.empty()) (built += '?') += query;
        target = built;
    }
    std::string path;
    split_request_target(target, path, request.query);
    if (request.malformed_param.empty() && (!is_clean_target(path) || !is_clean_target(request.query)))
        request.malformed_param = "REQUEST_URI";
    if (config.path_prefix.empty() && starts_at_v1(path)) {  // the usual path: moved, not copied
        request.path = std::move(path);
    } else {
        request.path = strip_mount_prefix(path, config.path_prefix);
        if (ends_with(path, request.path)) request.mount = path.substr(0, path.size() - request.path.size());
    }

    request.server_notices_clients_leaving = known[KnownParams::Software].substr(0, 6) == "nginx/";
    request.remote_address = known[KnownParams::RemoteAddress];
    std::string_view content_type = known[KnownParams::ContentType];
    if (!content_type.empty()) request.headers.push_back({"CONTENT_TYPE", content_type});

    std::string_view length = known[KnownParams::Length];
    long long declared = digits_value(length);
    if (declared >= 0)
        request.content_length = declared;
    else if (!length.empty() && request.malformed_param.empty())
        request.malformed_param = "CONTENT_LENGTH";
    const std::string_view* encoding = find_header(request.headers, "Transfer-Encoding");
    bool chunked = encoding && icontains(*encoding, "chunked");
    request.has_body = request.content_length > 0 || chunked;
    if (chunked && request.content_length == 0) request.content_length = -1;
    return request;
}

void keep_own_headers(Request& request) {
    if (request.headers.empty()) return;  // no room made for nothing to keep
    size_t bytes = 0;
    for (const RequestHeader& header : request.headers) bytes += header.name.size() + header.value.size();
    std::unique_ptr<char[]> room(new char[bytes]);  // every byte written below
    char* at = room.get();
    for (RequestHeader& header : request.headers) {
        std::memcpy(at, header.name.data(), header.name.size());
        std::memcpy(at + header.name.size(), header.value.data(), header.value.size());
        header = {std::string_view(at, header.name.size()), std::string_view(at + header.name.size(), header.value.size())};
        at += header.name.size() + header.value.size();
    }
    request.header_bytes = std::move(room);
}

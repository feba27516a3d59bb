// url_cut.h: where an upstream URL's origin ends, and whether libcurl would take its path
// and query as they stand.
#include "url_cut.h"

#include <array>

namespace {

// Printable ASCII, without what libcurl's parser treats apart: '#' starts a fragment and
// '%' an escape whose hex digits a part set on its own would have lowercased.
const auto kPlain = [] {
    std::array<bool, 256> table{};
    for (int c = '!'; c <= '~'; ++c) table[c] = c != '#' && c != '%';
    return table;
}();

// A "." or ".." segment, which libcurl's parser resolves (RFC 3986, 5.2.4): looked for
// only where a segment starts with a dot.
bool has_dot_segment(std::string_view path) {
    for (size_t dot = path.find("/."); dot != std::string_view::npos; dot = path.find("/.", dot + 1)) {
        std::string_view rest = path.substr(dot + 1);
        size_t dots = rest.size() > 1 && rest[1] == '.' ? 2 : 1;
        if (rest.size() == dots || rest[dots] == '/') return true;
    }
    return false;
}

bool plain_target(std::string_view target) {
    for (char c : target)
        if (!kPlain[static_cast<unsigned char>(c)]) return false;
    return !has_dot_segment(target.substr(0, target.find('?')));
}

// RFC 3986's scheme: a letter, then letters, digits, '+', '-' and '.'. Checked so that a
// "://" further on (in a path) is never taken for the scheme's end.
bool is_scheme(std::string_view scheme) {
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (scheme.empty() || !letter(scheme[0])) return false;
    for (char c : scheme)
        if (!letter(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
    return true;
}

}  // namespace

std::optional<UrlCut> cut_plain_url(std::string_view url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || !is_scheme(url.substr(0, scheme_end))) return std::nullopt;
    size_t path_start = url.find_first_of("/?#", scheme_end + 3);
    if (path_start == std::string_view::npos || path_start == scheme_end + 3 || url[path_start] != '/')
        return std::nullopt;
    UrlCut cut{url.substr(0, path_start), url.substr(path_start)};
    // An IPv6 zone ("%25eth0") is kept by libcurl's parser but not by its copy of a parsed
    // URL; user information is left to libcurl's own parse (the settings refuse it anyway).
    if (cut.origin.find_first_of("%@") != std::string_view::npos) return std::nullopt;
    size_t question = cut.target.find('?');
    if (question + 1 == cut.target.size()) return std::nullopt;  // a bare '?' is kept by the parser
    if (!plain_target(cut.target)) return std::nullopt;
    return cut;
}

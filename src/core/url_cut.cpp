// url_cut.h: where an upstream URL's origin ends, and whether libcurl would take its path
// and query as they stand.
#include "url_cut.h"

namespace {

// Printable ASCII, without what libcurl's parser treats apart: '#' starts a fragment and
// '%' an escape whose hex digits a part set on its own would have lowercased.
bool plain_bytes(std::string_view text) {
    for (char c : text)
        if (c <= ' ' || c > '~' || c == '#' || c == '%') return false;
    return true;
}

// A "." or ".." segment, which libcurl's parser resolves (RFC 3986, 5.2.4).
bool has_dot_segment(std::string_view path) {
    size_t start = 0;
    while (start < path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        std::string_view segment = path.substr(start, end - start);
        if (segment == "." || segment == "..") return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

std::optional<UrlCut> cut_plain_url(std::string_view url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return std::nullopt;
    size_t path_start = url.find_first_of("/?#", scheme_end + 3);
    if (path_start == std::string_view::npos || path_start == scheme_end + 3 || url[path_start] != '/')
        return std::nullopt;
    UrlCut cut{url.substr(0, path_start), url.substr(path_start)};
    // An IPv6 zone ("%25eth0") is kept by libcurl's parser but not by its copy of a parsed URL.
    if (cut.origin.find('%') != std::string_view::npos) return std::nullopt;
    size_t question = cut.target.find('?');
    if (question + 1 == cut.target.size()) return std::nullopt;  // a bare '?' is kept by the parser
    if (!plain_bytes(cut.target) || has_dot_segment(cut.target.substr(0, question))) return std::nullopt;
    return cut;
}

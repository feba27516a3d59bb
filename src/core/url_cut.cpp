// url_cut.h: where an upstream URL's origin ends, and whether libcurl would take its path
// and query as they stand.
#include "url_cut.h"

#include <array>

namespace {

// What a byte of a request target is to libcurl's parser: plain, or refused by the cut
// (anything but printable ASCII; '#' starts a fragment and '%' an escape whose hex digits
// a part set on its own would have lowercased), or one of the two that end a segment.
enum class Byte : unsigned char { Refused, Plain, Slash, Question };

const auto kBytes = [] {
    std::array<Byte, 256> table{};
    for (int c = '!'; c <= '~'; ++c) table[c] = c == '#' || c == '%' ? Byte::Refused : Byte::Plain;
    table['/'] = Byte::Slash;
    table['?'] = Byte::Question;
    return table;
}();

// A "." or ".." segment starting at `at` (just after a '/' of the path), which libcurl's
// parser resolves (RFC 3986, 5.2.4).
bool dot_segment_at(std::string_view target, size_t at) {
    size_t dots = 0;
    while (dots < 2 && at + dots < target.size() && target[at + dots] == '.') ++dots;
    size_t end = at + dots;
    return dots > 0 && (end == target.size() || target[end] == '/' || target[end] == '?');
}

// One pass over the target's bytes, a plain one costing a look-up and a comparison: in
// the path, a slash followed by no dot segment; after the first '?', which ends the path,
// a query ('/' and '?' are plain there).
bool plain_target(std::string_view target) {
    size_t i = 0;
    for (; i < target.size(); ++i) {
        Byte byte = kBytes[static_cast<unsigned char>(target[i])];
        if (byte == Byte::Plain) continue;
        if (byte == Byte::Refused) return false;
        if (byte == Byte::Question) break;
        if (dot_segment_at(target, i + 1)) return false;  // after a slash
    }
    if (i + 1 == target.size()) return false;  // a bare '?' is kept by the parser
    for (++i; i < target.size(); ++i)
        if (kBytes[static_cast<unsigned char>(target[i])] == Byte::Refused) return false;
    return true;
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

// Where the authority starting at `at` ends with the path's '/'; npos where it ends
// otherwise (the URL's end, a query, a fragment) or holds what the cut leaves to libcurl's
// own parse: an IPv6 zone ("%25eth0"), kept by its parser but not by its copy of a parsed
// URL, user information (the settings refuse it anyway), a byte not printable.
size_t path_start(std::string_view url, size_t at) {
    while (at < url.size() && kBytes[static_cast<unsigned char>(url[at])] == Byte::Plain && url[at] != '@') ++at;
    return at < url.size() && url[at] == '/' ? at : std::string_view::npos;
}

}  // namespace

std::optional<UrlCut> cut_plain_url(std::string_view url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || !is_scheme(url.substr(0, scheme_end))) return std::nullopt;
    size_t path = path_start(url, scheme_end + 3);
    if (path == std::string_view::npos || path == scheme_end + 3) return std::nullopt;
    UrlCut cut{url.substr(0, path), url.substr(path)};
    if (!plain_target(cut.target)) return std::nullopt;
    return cut;
}

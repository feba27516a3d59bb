// Small string helpers shared by the core.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

std::vector<std::string> split(const std::string& text, char separator);
std::string trim(const std::string& text);
// A byte loop, not find_first_not_of: each header line of every answer passes here twice,
// and the generic search looks each byte up in the set with memchr. Inline: the call cost
// more than the loop on a field's few spaces.
inline std::string_view trim_view(std::string_view text) {
    constexpr uint64_t kSpaces = 1ull << ' ' | 1ull << '\t' | 1ull << '\r' | 1ull << '\n';  // one test a byte
    auto is_space = [](char c) { return static_cast<unsigned char>(c) <= ' ' && (kSpaces >> c & 1); };
    size_t begin = 0, end = text.size();
    while (begin < end && is_space(text[begin])) ++begin;
    while (end > begin && is_space(text[end - 1])) --end;
    return std::string_view(text.data() + begin, end - begin);
}
// The part of `rest` before the first `separator`, taken off `rest` with the separator; all
// of `rest` when it holds none (`separated`, when given, then false). Reads a list in place.
std::string_view take_part(std::string_view& rest, char separator, bool* separated = nullptr);
std::string lowercase(std::string text);
bool starts_with(const std::string& text, const std::string& prefix);
bool ends_with(const std::string& text, const std::string& suffix);

// The value of a string of ASCII digits (at most `max_digits` of them); -1 when it is
// empty, longer, or holds anything else.
long long digits_value(std::string_view text, size_t max_digits = 18);
// ASCII case-insensitive comparisons (header names, media types), without copies.
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);
// Whether `part` occurs in `text`, in any ASCII case (no lowercased copy of either).
bool icontains(std::string_view text, std::string_view part);

// True when `text` is not empty and holds only ASCII letters, digits and bytes in `extra`.
bool is_word(std::string_view text, const char* extra);

// Whether `text` holds a byte below `limit` or the byte `also`. Sixteen bytes
// a step: the hot scans of a request (every param for a line break, every header value of
// an answer for a control byte) look at each byte once, in a few instructions a step.
bool has_byte_below_or(std::string_view text, unsigned char limit, unsigned char also);

// Whether `name` is an HTTP token (RFC 9110 §5.6.2), as a field name must be: not empty,
// only letters, digits and !#$%&'*+-.^_`|~. Sixteen bytes a step.
bool is_http_token(std::string_view name);

// A name against its bound (include/bounds.h), checked where it enters the configuration:
// empty when it fits, else "<what> may have at most N bytes; this one has M".
std::string over_bound(std::string_view name, size_t longest, const char* what);

// The value of one hexadecimal digit, or -1.
int hex_digit(char c);

// Every byte `kept` refuses as %XX (upper-case hex digits).
std::string percent_encode(const std::string& text, bool (*kept)(unsigned char));
// Decodes %XX escapes; malformed escapes are kept as they are.
std::string percent_decode(const std::string& text);

// Makes a client-supplied value safe for one log field: control bytes, spaces and
// quotes become \xNN, and long values are cut.
std::string log_safe(const std::string& value, size_t max_length = 200);
// The same appended to `out`, without a string of its own.
void append_log_safe(std::string& out, std::string_view value, size_t max_length = 200);
// The room log_safe's text of a value of `size` bytes may take: each byte shown as \xNN at
// most, and "..." when cut.
inline size_t log_safe_room(size_t size, size_t max_length = 200) {
    return (size < max_length ? size : max_length) * 4 + 3;
}
// The same written at `out`, which has log_safe_room() bytes: returns where it ended. One
// scan that copies each run of bytes needing no escape at once (an access line's fields).
char* write_log_safe(char* out, std::string_view value, size_t max_length = 200);

// A client-supplied value quoted in an error message: at most `max_length` bytes of it,
// every byte outside printable ASCII (and the backslash) as \xNN, "..." when cut. The
// result is short, plain ASCII, valid in any JSON string.
std::string quote_value(std::string_view value, size_t max_length = 64);

#include "text.h"

#include <cctype>
#include <cstdio>
#include <cstdint>
#include <cstring>

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
        size_t end = text.find(separator, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string::npos) return parts;
        start = end + 1;
    }
}

std::string trim(const std::string& text) { return std::string(trim_view(text)); }

std::string_view take_part(std::string_view& rest, char separator, bool* separated) {
    size_t at = rest.find(separator);
    std::string_view part = rest.substr(0, at);
    rest = at == std::string_view::npos ? std::string_view() : rest.substr(at + 1);
    if (separated) *separated = at != std::string_view::npos;
    return part;
}

namespace {
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

// ASCII only, as std::tolower in the "C" locale the program runs in, without its call a byte.
std::string lowercase(std::string text) {
    for (char& c : text) c = ascii_lower(c);
    return text;
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

long long digits_value(std::string_view text, size_t max_digits) {
    if (text.empty() || text.size() > max_digits) return -1;
    long long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return -1;
        value = value * 10 + (c - '0');
    }
    return value;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}


bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool icontains(std::string_view text, std::string_view part) {
    if (part.empty()) return true;
    char first = ascii_lower(part[0]);
    for (size_t at = 0; at + part.size() <= text.size(); ++at)
        if (ascii_lower(text[at]) == first && iequals(text.substr(at, part.size()), part)) return true;
    return false;
}

namespace {
bool is_ascii_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
}  // namespace
bool is_word(std::string_view text, const char* extra) {
    if (text.empty()) return false;
    for (unsigned char c : text)
        if (!is_ascii_alnum(c) && (c == '\0' || !std::strchr(extra, c))) return false;  // strchr finds the terminator
    return true;
}
namespace {
const uint64_t kEachByte = 0x0101010101010101ULL;
const uint64_t kHighBits = 0x8080808080808080ULL;
uint64_t word_at(const char* at) {
    uint64_t word;
    std::memcpy(&word, at, sizeof word);
    return word;
}
uint64_t word4_at(const char* at) {  // four bytes, the word's upper four zero
    uint32_t word;
    std::memcpy(&word, at, sizeof word);
    return word;
}
// Each of the eight bytes lowercased as ascii_lower would: A-Z gain 0x20, nothing else
// changes (a byte's low seven bits plus at most 0x3f carry into no other byte).
uint64_t lower_word(uint64_t word) {
    uint64_t low_bits = word & ~kHighBits;
    uint64_t from_a = low_bits + kEachByte * (0x80 - 'A');      // high bit: at least 'A'
    uint64_t past_z = low_bits + kEachByte * (0x80 - 'Z' - 1);  // high bit: past 'Z'
    uint64_t upper = (from_a ^ past_z) & ~word & kHighBits;     // and below 0x80
    return word | (upper >> 2);
}
bool iequal_words(uint64_t a, uint64_t b) { return a == b || lower_word(a) == lower_word(b); }
}  // namespace

// Header names are matched this way about 80 times a small request: eight bytes a step.
bool iequals(std::string_view a, std::string_view b) {
    size_t size = a.size();
    if (size != b.size()) return false;
    if (size < 4) {
        for (size_t i = 0; i < size; ++i)
            if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
        return true;
    }
    if (size < 8)  // "Host", "Api-Key": the first four bytes and the last four, overlapping
        return iequal_words(word4_at(a.data()), word4_at(b.data())) &&
               iequal_words(word4_at(a.data() + size - 4), word4_at(b.data() + size - 4));
    if (!iequal_words(word_at(a.data() + size - 8), word_at(b.data() + size - 8))) return false;  // the tail
    for (size_t i = 0; i + 8 <= size; i += 8)
        if (!iequal_words(word_at(a.data() + i), word_at(b.data() + i))) return false;
    return true;
}
namespace {
// Sixteen bytes as one value (SSE2 on x86-64, NEON on arm64; plain words elsewhere): a
// compare of two gives each byte 0xff where it holds, 0 where not.
typedef unsigned char Bytes16 __attribute__((vector_size(16)));
typedef signed char Signed16 __attribute__((vector_size(16)));  // what a compare gives
Bytes16 bytes16_at(const char* at) {
    Bytes16 bytes;
    std::memcpy(&bytes, at, sizeof bytes);
    return bytes;
}
Bytes16 bytes16_of(uint64_t low, uint64_t high) {
    const uint64_t halves[2] = {low, high};
    Bytes16 bytes;
    std::memcpy(&bytes, halves, sizeof bytes);
    return bytes;
}
// A text shorter than 16 bytes in one value: from 4 bytes on, read as two overlapping
// pieces (a byte seen twice changes no "any"), the rest `pad`.
inline __attribute__((always_inline)) Bytes16 short_bytes(const char* data, size_t size, unsigned char pad) {
    uint64_t padding = kEachByte * pad;
    if (size >= 8) return bytes16_of(word_at(data), word_at(data + size - 8));
    if (size >= 4) return bytes16_of(word4_at(data) | word4_at(data + size - 4) << 32, padding);
    for (size_t i = 0; i < size; ++i)  // 0 to 3 bytes
        padding = (padding & ~(uint64_t{0xff} << 8 * i)) | uint64_t{static_cast<unsigned char>(data[i])} << 8 * i;
    return bytes16_of(padding, padding);
}
bool any_set(Signed16 marked) {
    uint64_t halves[2];
    std::memcpy(halves, &marked, sizeof halves);
    return (halves[0] | halves[1]) != 0;
}
Bytes16 lower(Bytes16 a, Bytes16 b) { return a < b ? a : b; }  // each byte's least
// Whether `text` holds a byte below `limit` or, with kAlso, one equal to `also`: the least
// byte of each place (one instruction for 16 bytes) and the places that held `also`, or'ed,
// looked at once at the end. A short text is padded with `pad` (neither below nor `also`),
// a longer one's tail read as an overlapping value.
template <bool kAlso>
bool any_below_or(std::string_view text, unsigned char limit, unsigned char also, unsigned char pad) {
    const char* data = text.data();
    size_t size = text.size();
    Bytes16 least = size < 16 ? short_bytes(data, size, pad) : bytes16_at(data + size - 16);
    Signed16 equal = least == also;
    if (size >= 16)
        for (size_t i = 0; i + 16 <= size; i += 16) {
            Bytes16 bytes = bytes16_at(data + i);
            least = lower(least, bytes);
            if (kAlso) equal |= bytes == also;
        }
    return any_set((least < limit) | equal);
}

// Each place 0xff where its byte is no token byte (RFC 9110 §5.6.2: a letter, a digit or one
// of !#$%&'*+-.^_`|~): as signed bytes, a control byte, SP or any of 0x80-0xff is below '!',
// and what is left of the visible ASCII that is not a token is a few bytes and three ranges.
inline __attribute__((always_inline)) Signed16 not_token(Bytes16 bytes) {
    Signed16 s = reinterpret_cast<Signed16>(bytes);
    return (s < '!') | (s == '"') | (s == ',') | (s == '/') | (s == '{') | ((s | 2) == 0x7f) /* } DEL */ |
           ((s & ~1) == '(') /* ( ) */ | ((s > '9') & (s < 'A')) /* :;<=>?@ */ | ((s > 'Z') & (s < '^')) /* [\] */;
}
}  // namespace

bool is_http_token(std::string_view name) {
    const char* data = name.data();
    size_t size = name.size();
    if (size < 16) return size && !any_set(not_token(short_bytes(data, size, 'a')));
    Signed16 found = not_token(bytes16_at(data + size - 16));
    for (size_t i = 0; i + 16 <= size; i += 16) found |= not_token(bytes16_at(data + i));
    return !any_set(found);
}

bool has_byte_below_or(std::string_view text, unsigned char limit, unsigned char also) {
    unsigned char pad = also == 0xff ? 0xfe : 0xff;  // matches neither
    if (also < limit) return any_below_or<false>(text, limit, also, pad);  // `also` is below anyway: NUL, a line break
    return any_below_or<true>(text, limit, also, pad);
}

std::string over_bound(std::string_view name, size_t longest, const char* what) {
    if (name.size() <= longest) return "";
    return std::string(what) + " may have at most " + std::to_string(longest) + " bytes; this one has " +
           std::to_string(name.size());
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            int high = hex_digit(text[i + 1]), low = hex_digit(text[i + 2]);
            if (high >= 0 && low >= 0) {
                out += static_cast<char>(high * 16 + low);
                i += 2;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

namespace {

// The first `max_length` bytes of `value` written at `out` (log_safe_room() bytes), those
// `must_escape` picks as \xNN, "..." when cut: returns where it ended. The bytes between two
// escapes go in one copy.
template <typename MustEscape>
char* write_escaped_prefix(char* out, std::string_view value, size_t max_length, MustEscape must_escape) {
    static const char kHex[] = "0123456789abcdef";
    size_t shown = value.size() < max_length ? value.size() : max_length;
    const unsigned char* at = reinterpret_cast<const unsigned char*>(value.data());
    const unsigned char* end = at + shown;
    while (at != end) {
        const unsigned char* run = at;
        while (at != end && !must_escape(*at)) ++at;
        std::memcpy(out, run, static_cast<size_t>(at - run));
        out += at - run;
        if (at == end) break;
        *out++ = '\\';
        *out++ = 'x';
        *out++ = kHex[*at >> 4];
        *out++ = kHex[*at & 15];
        ++at;
    }
    if (shown < value.size()) {
        std::memcpy(out, "...", 3);
        out += 3;
    }
    return out;
}

// The same appended to `out`.
template <typename MustEscape>
void append_escaped_prefix(std::string& out, std::string_view value, size_t max_length, MustEscape must_escape) {
    size_t at = out.size();
    out.resize(at + log_safe_room(value.size(), max_length));
    out.resize(static_cast<size_t>(write_escaped_prefix(out.data() + at, value, max_length, must_escape) - out.data()));
}

// The bytes a log field shows as \xNN: control bytes, space, '"', '\\' and DEL; one look-up
// a byte.
struct LogEscapes {
    bool escaped[256];
    constexpr LogEscapes() : escaped() {
        for (int c = 0; c <= ' '; ++c) escaped[c] = true;
        escaped['"'] = escaped['\\'] = escaped[0x7f] = true;
    }
};
constexpr LogEscapes kLogEscapes;

}  // namespace

std::string log_safe(const std::string& value, size_t max_length) {
    std::string out;
    append_log_safe(out, value, max_length);
    return out;
}

void append_log_safe(std::string& out, std::string_view value, size_t max_length) {
    append_escaped_prefix(out, value, max_length, [](unsigned char c) { return kLogEscapes.escaped[c]; });
}

char* write_log_safe(char* out, std::string_view value, size_t max_length) {
    return write_escaped_prefix(out, value, max_length, [](unsigned char c) { return kLogEscapes.escaped[c]; });
}

std::string quote_value(std::string_view value, size_t max_length) {
    std::string out;
    append_escaped_prefix(out, value, max_length, [](unsigned char c) { return c < 0x20 || c >= 0x7f || c == '\\'; });
    return out;
}

std::string percent_encode(const std::string& text, bool (*kept)(unsigned char)) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (kept(c)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

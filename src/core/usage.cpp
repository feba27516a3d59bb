#include "usage.h"

#include <cctype>
#include <cstring>

namespace {

// Whether `name` (with its opening quote) ends at `end` in [begin, end).
bool preceded_by(const char* begin, const char* end, const char* name) {
    size_t length = std::strlen(name);
    return static_cast<size_t>(end - begin) >= length && std::memcmp(end - length, name, length) == 0;
}

}  // namespace

void UsageScanner::scan(const char* data, size_t size) {
    static const char kSuffix[] = "_tokens\"";
    const char* end = data + size;
    const char* at = data;
    // Each '_' found by memchr, then one compare: on a stream's short pieces, cheaper than
    // memmem's set-up, which was a fifth of the instructions relaying an event cost.
    const size_t suffix_length = sizeof kSuffix - 1;
    while (const char* found = static_cast<const char*>(std::memchr(at, '_', static_cast<size_t>(end - at)))) {
        at = found + 1;
        if (static_cast<size_t>(end - found) < suffix_length || std::memcmp(found, kSuffix, suffix_length) != 0) continue;
        at = found + suffix_length;
        long long* field = nullptr;
        if (preceded_by(data, found, "\"prompt") || preceded_by(data, found, "\"input")) field = &prompt_;
        else if (preceded_by(data, found, "\"completion") || preceded_by(data, found, "\"output")) field = &completion_;
        if (!field) continue;
        const char* p = at;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
        if (p == end || *p != ':') continue;
        ++p;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
        long long value = 0;
        int digits = 0;
        while (p < end && std::isdigit(static_cast<unsigned char>(*p)) && digits < 15) value = value * 10 + (*p++ - '0'), ++digits;
        if (digits && p < end) *field = value;  // a number cut at the end waits for the next piece
    }
}

void UsageScanner::feed(const char* data, size_t size) {
    if (carried_ > 0) {
        // What spans the two pieces: the carried end and the new start.
        char joint[2 * kCarry];
        size_t head = size < kCarry ? size : kCarry;
        std::memcpy(joint, carry_, carried_);
        std::memcpy(joint + carried_, data, head);
        scan(joint, carried_ + head);
    }
    scan(data, size);
    if (size >= kCarry) {
        std::memcpy(carry_, data + size - kCarry, kCarry);
        carried_ = kCarry;
    } else {
        size_t keep = carried_ + size > kCarry ? kCarry - size : carried_;
        std::memmove(carry_, carry_ + carried_ - keep, keep);
        std::memcpy(carry_ + keep, data, size);
        carried_ = keep + size;
    }
}

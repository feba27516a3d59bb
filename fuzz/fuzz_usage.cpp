// Token usage read from an upstream answer as it streams by: whatever the bytes and
// wherever they are cut, no crash, and the counts are -1 (not seen) or what a number said.
#include <string>

#include "invariant.h"
#include "usage.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size < 1) return 0;
    size_t piece = data[0] % 64 + 1;
    const char* text = reinterpret_cast<const char*>(data) + 1;
    size_t length = size - 1;
    UsageScanner whole, pieces;
    whole.feed(text, length);
    for (size_t at = 0; at < length; at += piece) pieces.feed(text + at, std::min(piece, length - at));
    for (const UsageScanner* s : {&whole, &pieces}) {
        REQUIRE(s->prompt_tokens() >= -1 && s->prompt_tokens() < 1000000000000000LL);
        REQUIRE(s->completion_tokens() >= -1 && s->completion_tokens() < 1000000000000000LL);
    }
    // Usage as an API writes it (at most one space between its parts) is found however
    // the answer is cut.
    std::string all(text, length);
    bool compact = all.find("  ") == std::string::npos && all.find_first_of("\t\r\n") == std::string::npos;
    if (whole.prompt_tokens() >= 0 && compact) REQUIRE(pieces.prompt_tokens() >= 0);
    return 0;
}

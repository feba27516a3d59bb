// multipart/form-data uploads (and realtime calls' forms): the scanner finds the same field
// wherever the body is cut into pieces, and the value it points at is the field's.
#include <string>

#include "invariant.h"
#include "multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size < 2) return 0;
    size_t piece = 1 + data[0] % 64;
    std::string boundary = "b" + std::to_string(data[1] % 4);
    std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
    // The upload's "model", or a realtime call's "session" (a longer value).
    bool session = data[1] & 4;
    std::string field = session ? "session" : "model";
    size_t longest = session ? 65536 : 1024;

    MultipartModelScanner whole(boundary, field, longest), pieces(boundary, field, longest);
    whole.feed(body.data(), body.size());
    for (size_t at = 0; at < body.size(); at += piece)
        pieces.feed(body.data() + at, std::min(piece, body.size() - at));
    REQUIRE(whole.found() == pieces.found() && whole.failed() == pieces.failed());
    REQUIRE(whole.saw_field("sdp") == pieces.saw_field("sdp"));
    if (whole.found()) {
        REQUIRE(whole.model() == pieces.model());
        REQUIRE(whole.value_begin() == pieces.value_begin() && whole.value_end() == pieces.value_end());
        REQUIRE(whole.value_begin() >= 0 && whole.value_end() <= static_cast<long long>(body.size()));
        REQUIRE(body.compare(static_cast<size_t>(whole.value_begin()),
                             static_cast<size_t>(whole.value_end() - whole.value_begin()), whole.model()) == 0);
    }
    return 0;
}

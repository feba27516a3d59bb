// Whatever reaches the FastCGI socket is taken apart by FastCgiInput. Read at once or in
// reads of any size (the first byte picks it), the same bytes give the same request: the
// same state, params and body; each value lies right after its name; the body within the input.

#include <algorithm>
#include <cstring>
#include <string>

#include "fastcgi_input.h"
#include "invariant.h"

namespace {

struct Read {
    FastCgiInput::State state;
    std::string params;  // name=value lines
    std::string body;
};

Read read_in_pieces(const unsigned char* data, size_t size, size_t piece) {
    FastCgiInput input;
    Read out{};
    size_t at = 0;
    bool have_params = false;
    for (;;) {
        FastCgiInput::State state = input.take();
        if (!have_params && (state == FastCgiInput::State::Body || state == FastCgiInput::State::Ended)) {
            for (const auto& [name, value] : input.params()) {
                REQUIRE(name.size() + value.size() <= size);
                REQUIRE(value.data() == name.data() + name.size());  // request.cpp scans them at once
                out.params.append(name).append("=").append(value).append("\n");
            }
            have_params = true;
            continue;  // what follows the params is taken by the next take()
        }
        char buffer[5];
        for (size_t got; (got = input.body(buffer, sizeof buffer)) > 0; state = input.take()) out.body.append(buffer, got);
        if (state == FastCgiInput::State::Ended || state == FastCgiInput::State::Failed || at == size) {
            out.state = state;
            return out;
        }
        size_t n = std::min({piece, size - at, kFastCgiReadSize});
        std::memcpy(input.room(), data + at, n);
        input.filled(n);
        at += n;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size == 0) return 0;
    size_t piece = 1 + data[0] % 64;
    Read whole = read_in_pieces(data + 1, size - 1, size);
    Read split = read_in_pieces(data + 1, size - 1, piece);
    REQUIRE(whole.state == split.state);
    REQUIRE(whole.params == split.params);
    REQUIRE(whole.body == split.body);
    REQUIRE(whole.body.size() <= size);
    return 0;
}

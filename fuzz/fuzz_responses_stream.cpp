// An upstream Responses event stream, cut anywhere, through the Chat→Responses bridge's
// way back: whatever the bytes, no crash; every chunk written is strict JSON; the stream
// ends with [DONE] only when a response completed, else with an error event; the output
// stays within a bound of the input (no amplification). Beside it, the streaming JSON
// reader agrees with the strict checker (json_model.h) on the same text.
#include <string>

#include "invariant.h"
#include "json_model.h"
#include "json_stream.h"
#include "responses_stream.h"

namespace {

struct Ignore : JsonVisitor {
    void string_piece(const JsonStreamReader&, std::string_view, bool) override {}
    void scalar(const JsonStreamReader&, std::string_view) override {}
};

void reader_agrees_with_the_checker(std::string_view text, size_t piece) {
    Ignore ignore;
    JsonStreamReader reader(ignore);
    bool fine = true;
    for (size_t at = 0; at < text.size() && fine; at += piece) fine = reader.feed(text.substr(at, piece));
    fine = fine && reader.finish();
    REQUIRE(fine == check_json(text).valid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size < 1) return 0;
    size_t piece = data[0] % 64 + 1;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    reader_agrees_with_the_checker(text, piece);

    ResponsesToChatStream bridge({"model", (data[0] & 1) != 0, 0});
    std::string out;
    for (size_t at = 0; at < text.size(); at += piece)
        if (!bridge.feed(text.substr(at, piece), out)) break;
    bridge.finish(out);
    REQUIRE(bridge.completed() != (bridge.error() != nullptr));
    REQUIRE(out.size() <= 64 * text.size() + 4096);
    for (size_t at = 0; (at = out.find("data: ", at)) != std::string::npos;) {
        size_t end = out.find('\n', at);
        REQUIRE(end != std::string::npos);
        std::string_view line = std::string_view(out).substr(at + 6, end - at - 6);
        REQUIRE(line == "[DONE]" || check_json(line).valid);
        at = end;
    }
    bool done = out.size() >= 14 && out.compare(out.size() - 14, 14, "data: [DONE]\n\n") == 0;
    REQUIRE(done == bridge.completed());
    return 0;
}

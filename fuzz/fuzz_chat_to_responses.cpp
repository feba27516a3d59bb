// A client's Chat Completions body through the Chat→Responses bridge's way out (and the
// same bytes, read as an upstream's Responses answer, through the way back): whatever the
// bytes, no crash; a bridged body is strict JSON with an "input" array and stays within a
// bound of what came in; a refusal names a short printable parameter and a code. An answer
// is a strict JSON chat.completion or an error with a 4xx/5xx status.
#include <string>

#include "chat_to_responses.h"
#include "invariant.h"
#include "json_model.h"
#include "responses_answer.h"

namespace {

bool printable(const std::string& text) {
    for (unsigned char c : text)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

void way_out(std::string_view body) {
    BridgedRequest bridged = chat_to_responses(body);
    if (bridged.ok) {
        REQUIRE(check_json(bridged.body).valid);
        REQUIRE(bridged.body.find("\"input\":[") != std::string::npos);
        REQUIRE(bridged.body.size() <= 16 * body.size() + 4096);  // numbers may be printed longer
        REQUIRE(bridged.refusal.code.empty());
    } else {
        REQUIRE(bridged.body.empty());
        REQUIRE(!bridged.refusal.code.empty() && !bridged.refusal.message.empty());
        REQUIRE(bridged.refusal.param.size() <= 160 && printable(bridged.refusal.param));
    }
}

void way_back(std::string_view body, int status) {
    ChatAnswer answer = responses_to_chat_answer(body, status, "client-model");
    if (answer.ok) {
        REQUIRE(status < 300 && check_json(answer.body).valid);
        REQUIRE(answer.body.find("\"object\":\"chat.completion\"") != std::string::npos);
    } else {
        REQUIRE(answer.error.status >= 400 && answer.error.status <= 599);
        REQUIRE(check_json(error_body(answer.error)).valid);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    way_out(body);
    way_back(body, size && data[0] == '{' ? 200 : 500);
    return 0;
}

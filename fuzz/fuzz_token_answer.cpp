// A token endpoint's answer (Entra, IMDS, App Service: untrusted bytes from the network):
// whatever the status and body, no crash; a token taken is one header-safe word that
// expires after now and within a day, renewed before it expires; a failure holds no token
// and its error no line break (it goes to the log as one line).
#include <string>

#include "credential.h"
#include "invariant.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size < 1) return 0;
    static const long kStatuses[] = {200, 400, 401, 403, 404, 429, 500, 503};
    long status = kStatuses[data[0] % 8];
    std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const int64_t now = 1'700'000'000'000;
    TokenAnswer answer = read_token_answer(status, body, now);
    (void)definitive_refusal(answer);
    REQUIRE(answer.error.find_first_of("\r\n") == std::string::npos);
    if (!answer.ok) {
        REQUIRE(answer.access_token.empty());
        return 0;
    }
    REQUIRE(status == 200);
    REQUIRE(!answer.access_token.empty());
    REQUIRE(answer.access_token.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") == std::string::npos);
    REQUIRE(answer.expires_at_ms > now && answer.expires_at_ms <= now + kLongestTokenLifeMs);
    int64_t due = renewal_due_ms(now, answer);
    REQUIRE(due > now - 1 && due < answer.expires_at_ms);
    return 0;
}

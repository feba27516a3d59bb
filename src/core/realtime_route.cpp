// A realtime session's credential, target and route (realtime_route.h). Tested in
// tests/unit/realtime_route_test.cpp.
#include "realtime_route.h"

#include "text.h"

bool realtime_uses_token(const EndpointSettings& settings) {
    return settings.credential.source != CredentialSource::None;
}

Headers realtime_credential_headers(const EndpointSettings& settings, const std::string& client_key,
                                    const std::string& authorization) {
    if (!realtime_uses_token(settings)) return realtime_upstream_headers(settings, client_key);
    // The keeper's line, "Authorization: Bearer …": the handshake sets the header by name.
    size_t colon = authorization.find(':');
    if (colon == std::string::npos || !iequals(authorization.substr(0, colon), "Authorization")) return {};
    std::string value = trim(authorization.substr(colon + 1));
    if (value.empty()) return {};
    return {{"Authorization", value}};
}

TryResult realtime_try_result(bool opened, int status) {
    if (opened) return TryResult::Success;
    if (status == 0) return TryResult::Failed;
    return result_of_status(status);
}

bool realtime_tries_next(TryResult result, int tries, const RetryPolicy& policy) {
    return (result == TryResult::Failed || result == TryResult::RateLimited) && tries < policy.max_tries;
}

bool valid_realtime_api_version(const std::string& version) {
    return !version.empty() && version.size() <= 64 && is_word(version, "-.");
}

// The WebSocket companion's admission (realtime_admission.h). Tested in
// tests/unit/realtime_admission_test.cpp.
#include "realtime_admission.h"

#include <cctype>

#include "api_routes.h"
#include "key_limits.h"
#include "model_policy.h"
#include "proxy_errors.h"
#include "realtime.h"
#include "realtime_route.h"
#include "request.h"
#include "routing.h"
#include "text.h"

namespace {

// The client key, when the proxy asks for one: its name, or the client's error.
bool admit_key(const Config& config, const std::string& presented, int64_t now_ms, const ClientKey*& key,
               ProxyError& error) {
    std::shared_ptr<const RoutingTable> table = config.routing ? config.routing->get() : nullptr;
    if (!has_client_keys(config)) return true;
    key = find_any_client_key(config.client_keys, table.get(), presented);
    if (!key) error = presented.empty() ? errors::missing_key() : errors::wrong_key();
    else if (key_expired(key->limits, now_ms)) error = errors::expired_key();
    else return true;
    return false;
}

// A 16-byte nonce in base64 (RFC 6455 4.1): 22 characters of the alphabet, then "==".
bool websocket_key_shaped(const std::string& key) {
    if (key.size() != 24 || key.compare(22, 2, "==") != 0) return false;
    for (std::size_t i = 0; i < 22; ++i) {
        char c = key[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
    }
    return true;
}

// The handshake headers Beast would refuse at the 101 (RFC 6455 4.2.1): checked before
// Azure's side is opened, so a malformed upgrade costs Azure nothing.
bool handshake_headers_valid(const Headers& headers, ProxyError& error) {
    const std::string* version = find_header(headers, "Sec-WebSocket-Version");
    if (!version || trim(*version) != "13") {
        error = make_error(426, "This proxy speaks WebSocket version 13 (Sec-WebSocket-Version: 13).", "upgrade_required");
        return false;
    }
    const std::string* key = find_header(headers, "Sec-WebSocket-Key");
    if (!key || !websocket_key_shaped(trim(*key))) {
        error = make_error(400, "A WebSocket upgrade needs a Sec-WebSocket-Key of 16 bytes in base64.",
                           "bad_websocket_handshake");
        return false;
    }
    return true;
}

}  // namespace

bool admit_realtime(const Config& config, const RealtimeRequest& request, int64_t now_ms,
                    RealtimeAdmission& admission, ProxyError& error) {
    std::string path, query;
    split_request_target(request.target, path, query);
    if (strip_mount_prefix(path, config.path_prefix) != "/v1/realtime") {
        error = make_error(404, "A realtime session opens on /v1/realtime?model=..., not '" + quote_value(path) + "'.",
                           "unknown_url");
        return false;
    }
    if (request.method != "GET" || !request.upgrade) {
        error = make_error(426, "/v1/realtime is a WebSocket: send a GET with Upgrade: websocket.", "upgrade_required");
        return false;
    }
    if (!handshake_headers_valid(request.headers, error)) return false;
    std::string presented = realtime_presented_key(request.headers);
    const ClientKey* key = nullptr;
    if (!admit_key(config, presented, now_ms, key, error)) return false;
    if (key) {
        admission.key_name = key->name;
        admission.keyed = true;
        admission.key_limits = key->limits;
    }
    admission.model = query_value(query, "model");
    admission.presented_key = presented;
    admission.answer_protocol = realtime_answer_protocol(request.headers);
    // A model of the routing table goes to its targets; any other as the seed maps it.
    admission.table = config.routing ? config.routing->get() : nullptr;
    admission.targets = admission.table && !admission.model.empty() ? targets_for(*admission.table, admission.model)
                                                                    : nullptr;
    if (admission.targets) return model_permitted(config, key, Route{}, admission.model, "", error);
    if (!realtime_deployment(config, admission.model, admission.deployment, error) ||
        !model_permitted(config, key, Route{}, admission.model, admission.deployment, error))
        return false;
    if (!has_own_identity(config) && presented.empty()) {  // no credential to send at all
        error = errors::missing_key();
        return false;
    }
    return true;
}

bool realtime_destination(const EndpointSettings& settings, const std::string& deployment,
                          const std::string& preview_api_version, const std::string& client_key,
                          const std::string& authorization, RealtimeUpstream& upstream, Headers& headers,
                          ProxyError& error) {
    std::string why;
    if (!realtime_upstream(settings, deployment, preview_api_version, upstream, why)) {
        error = make_error(500, "The proxy's endpoint cannot carry a realtime session: " + why + ".",
                           "realtime_unavailable", "", "server_error");
        return false;
    }
    headers = realtime_credential_headers(settings, client_key, authorization);
    if (headers.empty()) {
        error = errors::missing_key();
        return false;
    }
    return true;
}

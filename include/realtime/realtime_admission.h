// What the WebSocket companion decides from a client's upgrade request before any byte goes
// upstream: the route, the client key, the model and where it may go (the environment's
// endpoint with the mapped deployment, or the routing file's targets of the model); then,
// for each try, the URL and the credential. Plain code over the request's parts (no socket).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "realtime_socket.h"
#include "response.h"
#include "routing.h"

struct RealtimeRequest {
    std::string method;
    std::string target;  // as the web server sent it: path and query
    Headers headers;
    bool upgrade = false;  // a WebSocket upgrade (Connection: upgrade, Upgrade: websocket, a key, version 13)
};

struct RealtimeAdmission {
    std::string key_name = "-";       // the client key's name, for the log
    bool keyed = false;               // a client key was presented and admitted
    KeyLimits key_limits;             // its limits (a copy: the routing table may be reloaded)
    std::string model, deployment;
    std::string answer_protocol;      // the subprotocol the 101 names ("" for none)
    std::string presented_key;        // the client's key: passed on to an endpoint without a key of its own
    // A model of the routing table: its targets (the shared state picks one a try), in
    // `table`, the table in force when the session came. Null: the environment's endpoint.
    std::shared_ptr<const RoutingTable> table;
    const std::vector<Target>* targets = nullptr;
};

// False with the client's error (401 missing or wrong key, 400 missing model, 403 model not
// allowed, 404 another path, 426 not an upgrade). `now_ms`: the wall clock, for a key's expiry.
bool admit_realtime(const Config& config, const RealtimeRequest& request, int64_t now_ms,
                    RealtimeAdmission& admission, ProxyError& error);

// One try's URL and credential headers: `settings` (the environment's endpoint or a
// target's), its deployment, the preview route when `preview_api_version` is set, and the
// endpoint's Entra ID token (`authorization`) or key. False with the client's error: 500
// when the endpoint cannot carry a session, 401 when there is no credential to send.
bool realtime_destination(const EndpointSettings& settings, const std::string& deployment,
                          const std::string& preview_api_version, const std::string& client_key,
                          const std::string& authorization, RealtimeUpstream& upstream, Headers& headers,
                          ProxyError& error);

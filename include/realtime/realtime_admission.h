// What the WebSocket companion decides from a client's upgrade request before any byte goes
// upstream: the route, the client key, the model and its deployment, where the session goes
// and with which credential. Plain code over the request's parts (no socket).
#pragma once

#include <cstdint>
#include <string>

#include "config.h"
#include "realtime_socket.h"
#include "response.h"

struct RealtimeRequest {
    std::string method;
    std::string target;  // as the web server sent it: path and query
    Headers headers;
    bool upgrade = false;  // a WebSocket upgrade (Connection: upgrade, Upgrade: websocket, a key, version 13)
};

struct RealtimeAdmission {
    std::string key_name = "-";       // the client key's name, for the log
    std::string model, deployment;
    std::string answer_protocol;      // the subprotocol the 101 names ("" for none)
    RealtimeUpstream upstream;
    Headers upstream_headers;         // the credential sent upstream
};

// False with the client's error (401 missing or wrong key, 400 missing model, 403 model not
// allowed, 404 another path, 426 not an upgrade). `now_ms`: the wall clock, for a key's expiry.
bool admit_realtime(const Config& config, const RealtimeRequest& request, int64_t now_ms,
                    RealtimeAdmission& admission, ProxyError& error);

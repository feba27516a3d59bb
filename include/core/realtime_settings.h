// The WebSocket companion's own settings (azure-openai-proxy-realtime, issue 25): where it
// listens and the limits a hostile client meets. Everything else (endpoint, keys, mapper,
// CA bundle, connect and write timeouts) is the FastCGI program's configuration (config.h),
// read from the same environment.
#pragma once

#include <string>

#include "config.h"

struct RealtimeSettings {
    // A unix socket path (/run/azure-openai-proxy/realtime.sock, mode 0660) or host:port
    // (127.0.0.1:8091), as the FastCGI program's --listen; empty: a socket systemd hands over.
    std::string listen;
    std::string socket_owner;                   // "user[:group]" for that unix socket
    long handshake_timeout_s = 10;              // the client's upgrade request, then the upstream's answer
    long idle_timeout_s = 300;                  // no message either way this long: both sides closed (1001)
    long long max_message_bytes = 16LL << 20;   // a bigger message: its sender gets 1009
    long long queue_bytes = 1LL << 20;          // one direction's unsent bytes above this: its source is not read
    long max_sessions = 1000;                   // sessions at once; one more: 503
    long drain_timeout_s = 5;                   // SIGTERM: how long open sessions have to close (1001) before the exit
    // Azure's dated preview route (/openai/realtime?api-version=…&deployment=…) with this
    // api-version, while a resource still answers it; empty: the GA route
    // (/openai/v1/realtime?model=…).
    std::string preview_api_version;
    long sessions_per_key = 0;                  // a client key's sessions open at once on the host,
                                                // unless the routing file's `realtime_sessions` says; 0: no limit
};

// AZURE_OPENAI_PROXY_REALTIME_* (README "Realtime (WebSocket)"); `listen_argument` (from
// --listen) wins over AZURE_OPENAI_PROXY_REALTIME_ADDRESS. False with a line naming the
// variable. The address itself is checked when the socket is opened (listen_socket.h).
bool parse_realtime_settings(const Environment& env, const std::string& listen_argument, RealtimeSettings& settings,
                             std::string& error);

// One line for the start-up log.
std::string describe_realtime_settings(const RealtimeSettings& settings);

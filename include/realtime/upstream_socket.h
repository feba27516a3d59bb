// Azure's side of a realtime session: the WebSocket to `wss://…/openai/v1/realtime?model=…`
// (or ws:// for a plain endpoint), opened with the proxy's credential. Its answer decides
// the client's: a refusal (401, 404, 429…) is passed on as an HTTP error, never a 101.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "realtime_socket.h"
#include "request.h"
#include "socket_end.h"

struct UpstreamOpened {
    std::unique_ptr<SocketEnd> end;  // null: refused or unreachable
    int status = 0;                  // the upstream's HTTP refusal; 0: it could not be reached
    std::string body;                // that refusal's body
    int64_t retry_after_ms = -1;     // the wait that refusal asked for (Retry-After); -1: none
    std::string error;               // what went wrong, for the log
};
using UpstreamDone = std::function<void(UpstreamOpened)>;
// Gives up an opening still under way (its socket closed; `done` then hears the failure);
// after `done` has been called, it does nothing.
using UpstreamAbandon = std::function<void()>;

struct UpstreamTarget {
    RealtimeUpstream where;
    Headers headers;         // the credential
    long connect_timeout_s = 10;
};

// Over TLS (`tls` holds the CA bundle; the host name is checked) or plain TCP, by `target.where.tls`.
UpstreamAbandon open_upstream(boost::asio::io_context& io, boost::asio::ssl::context& tls, const UpstreamTarget& target,
                   const EndLimits& limits, UpstreamDone done);
UpstreamAbandon open_tls_upstream(boost::asio::io_context& io, boost::asio::ssl::context& tls, const UpstreamTarget& target,
                       const EndLimits& limits, UpstreamDone done);
UpstreamAbandon open_plain_upstream(boost::asio::io_context& io, const UpstreamTarget& target, const EndLimits& limits,
                         UpstreamDone done);

// The client's side of a realtime session: the connection the web server hands on (a unix
// socket or a loopback TCP port, one socket type for both), its upgrade request, then either
// an HTTP refusal or the 101 that makes it a WebSocket (a SocketEnd).
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <functional>
#include <memory>
#include <string>

#include "realtime_admission.h"
#include "socket_end.h"

class ClientConnection {
public:
    using Socket = boost::asio::generic::stream_protocol::socket;

    virtual ~ClientConnection() = default;
    // The request's head (at most 16 KiB; a body is an error). False: unreadable or gone.
    virtual void read_request(std::function<void(bool ok, RealtimeRequest request)> done) = 0;
    // An HTTP answer with a JSON body (and `headers`: Retry-After, x-ratelimit-*), then the
    // connection is closed.
    virtual void refuse(int status, const std::string& json_body, const Headers& headers, std::function<void()> done) = 0;
    // The 101 (naming `protocol` when not empty), then the WebSocket; null when it failed.
    virtual void accept(const std::string& protocol, std::function<void(std::unique_ptr<SocketEnd>)> done) = 0;
    // Closes the connection at once (the handshake's deadline).
    virtual void cut() = 0;
};

std::unique_ptr<ClientConnection> client_connection(ClientConnection::Socket socket, const EndLimits& limits);

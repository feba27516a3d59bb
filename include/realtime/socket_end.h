// One end of a relayed realtime session — the client's WebSocket or Azure's — whatever
// stream it runs over. The relay (relay_session.h) is ordinary code over this interface;
// each concrete stream has one implementation file (client_socket.cpp: a unix socket or a
// loopback TCP port from the web server; upstream_tls.cpp, upstream_plain.cpp: Azure), so
// Beast's templates are instantiated once per stream, never over variants of streams.
// Ping and pong are Beast's own on each end: it answers a peer's ping, and pings a peer
// silent for half the idle setting, cutting one that then stays silent (half-open).
#pragma once

#include <boost/system/error_code.hpp>
#include <functional>
#include <memory>
#include <string>

struct WsMessage {
    std::string data;
    bool text = true;  // a text message (UTF-8, checked by Beast on reading), else binary
};

class SocketEnd {
public:
    using Done = std::function<void(boost::system::error_code)>;
    using Received = std::function<void(boost::system::error_code, WsMessage)>;

    virtual ~SocketEnd() = default;
    // One read, one write and one close at most in flight at a time (Beast's rule).
    virtual void read(Received on_message) = 0;
    virtual void write(WsMessage message, Done on_written) = 0;
    // The close handshake with `code`; Beast waits for a write in flight first.
    virtual void close(int code, Done on_closed) = 0;
    // The code of the peer's close frame, once a read ended with it; 0 before, or without one.
    virtual int peer_close_code() const = 0;
    // Closes the socket at once, no close frame (a peer that stopped reading): whatever is in
    // flight ends with an error.
    virtual void cut() = 0;
};

// The limits an end applies by itself: the largest message it reads, the deadline of its
// handshakes (opening and closing), and the silence after which it pings its peer.
struct EndLimits {
    unsigned long long max_message_bytes = 16ULL << 20;
    long handshake_timeout_s = 10;
    long idle_ping_s = 30;  // Beast pings after half of it, cuts after all of it
};

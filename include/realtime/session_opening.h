// From an accepted connection to a relayed session: the client's upgrade request read and
// admitted (realtime_admission.h), Azure's WebSocket opened, then the client's 101 — or an
// HTTP error for the client (its own, or Azure's refusal with Azure's status), within the
// handshake deadline. One access-log line per connection, refused or relayed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "client_socket.h"
#include "config.h"
#include "realtime_settings.h"

// What every session of the process shares (one thread: no lock).
struct RealtimeProcess {
    boost::asio::io_context& io;
    boost::asio::ssl::context& tls;
    const Config& config;
    const RealtimeSettings& settings;
    long sessions = 0;  // admitted and not yet ended
};

void open_session(RealtimeProcess& process, ClientConnection::Socket socket);

// From an accepted connection to a relayed session: the client's upgrade request read and
// admitted (realtime_admission.h), Azure's WebSocket opened, then the client's 101 — or an
// HTTP error for the client (its own, or Azure's refusal with Azure's status), within the
// handshake deadline. One access-log line per connection, refused or relayed.
// A model of the routing file tries its targets as chat does: the shared state picks one,
// hears how its handshake went (unreachable, 5xx and 429 cool it down or open its circuit)
// and, while tries are left, the next one is tried. An endpoint with an Entra ID identity
// sends its token from the process's keeper (token_keeper.h), shared with the FastCGI
// workers through the state; a session before the first token waits for it, and a token
// Azure refuses (401) is dropped for the host (the client hears the 401).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <set>

#include "client_socket.h"
#include "config.h"
#include "realtime_settings.h"
#include "shared_state.h"

struct SessionSlot;

// The sessions admitted and not yet ended (each holds a slot from its admission to its
// end), shared by them rather than owned by main: a session ending after main's scope
// still finds it.
struct OpenSessions {
    std::set<SessionSlot*> slots;
    bool stopping = false;  // SIGTERM: no new session, the open ones told 1001
};

// What every session of the process shares (one thread: no lock).
struct RealtimeProcess {
    boost::asio::io_context& io;
    boost::asio::ssl::context& tls;
    const Config& config;
    const RealtimeSettings& settings;
    std::shared_ptr<OpenSessions> sessions = std::make_shared<OpenSessions>();
    std::unique_ptr<SharedState> state;  // the host's, shared with the FastCGI workers (never null)
};

void open_session(RealtimeProcess& process, ClientConnection::Socket socket);

// SIGTERM: 1001 (going away) to both sides of every relayed session; a session still
// opening gets it as soon as it is relayed, a request not yet admitted a 503.
void stop_sessions(RealtimeProcess& process);

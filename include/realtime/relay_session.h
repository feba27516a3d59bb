// One realtime session once both handshakes are done: messages relayed both ways as they
// come, text as text and binary as binary. Bounded: a direction whose unsent bytes pass
// `queue_bytes` stops reading its source until they drain (backpressure, both ways). A
// close from one side reaches the other (relayed_close_code); a side that vanishes closes
// the other with 1001 (the client) or 1011 (Azure). Deadlines: no message either way for
// `idle_timeout_s` closes both with 1001; a write not done after `write_timeout_s` (a peer
// that stopped reading) cuts that peer. The access-log line is written when the last
// operation of the session has ended (its destructor).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>

#include "realtime_socket.h"
#include "socket_end.h"

struct RelayLimits {
    unsigned long long queue_bytes = 1ULL << 20;
    long idle_timeout_s = 300;
    long write_timeout_s = 60;
};

class RelaySession : public std::enable_shared_from_this<RelaySession> {
public:
    using Ended = std::function<void(const RealtimeSessionLog&)>;

    RelaySession(boost::asio::io_context& io, std::unique_ptr<SocketEnd> client, std::unique_ptr<SocketEnd> upstream,
                 const RelayLimits& limits, RealtimeSessionLog log, Ended ended);
    ~RelaySession();
    RelaySession(const RelaySession&) = delete;
    RelaySession& operator=(const RelaySession&) = delete;

    void start();
    // The process stops: 1001 (going away) to both sides, once what is queued for them is written.
    void go_away();

private:
    using Clock = std::chrono::steady_clock;
    enum Which { kClient = 0, kUpstream = 1 };

    struct Side {
        std::unique_ptr<SocketEnd> end;
        std::deque<WsMessage> queue;         // messages to write to this side
        unsigned long long queued_bytes = 0;  // theirs, with the one in flight
        bool reading = false, paused = false, writing = false;
        bool closing = false, close_sent = false;
        bool over = false;                   // its connection ended: nothing more goes to or comes from it
        int close_code = 0;                  // what it is sent once its queue is written
        Clock::time_point write_since;
    };

    void read_from(Which which);
    void on_read(Which which, boost::system::error_code ec, WsMessage message);
    void enqueue(Which to, WsMessage message);
    void write_next(Which to);
    void on_written(Which to, boost::system::error_code ec, unsigned long long bytes);
    void close_side(Which which, int code);
    void end_side(Which which, int peer_code, const std::string& why);
    void arm_timer();
    void on_tick();
    static Which other(Which which) { return which == kClient ? kUpstream : kClient; }

    Side sides_[2];
    RelayLimits limits_;
    RealtimeSessionLog log_;
    Ended ended_;
    boost::asio::steady_timer timer_;
    Clock::time_point started_, last_message_;
};

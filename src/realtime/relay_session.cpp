// One realtime session's relay (relay_session.h). Plain code over SocketEnd: no Beast
// template is instantiated here. Tested in tests/integration/realtime-socket.test.mjs.
#include "relay_session.h"

#include <boost/beast/websocket/error.hpp>

namespace {
std::string side_name(int which) { return which == 0 ? "client" : "upstream"; }
}  // namespace

RelaySession::RelaySession(boost::asio::io_context& io, std::unique_ptr<SocketEnd> client,
                           std::unique_ptr<SocketEnd> upstream, const RelayLimits& limits, RealtimeSessionLog log,
                           Ended ended)
    : limits_(limits), log_(std::move(log)), ended_(std::move(ended)), timer_(io) {
    sides_[kClient].end = std::move(client);
    sides_[kUpstream].end = std::move(upstream);
}

RelaySession::~RelaySession() {
    log_.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
    if (ended_) ended_(log_);
}

void RelaySession::start() {
    started_ = last_message_ = Clock::now();
    read_from(kClient);
    read_from(kUpstream);
    arm_timer();
}

void RelaySession::go_away() {
    if (log_.outcome.empty()) log_.outcome = "proxy stopping";
    close_side(kClient, 1001);
    close_side(kUpstream, 1001);
}

void RelaySession::read_from(Which which) {
    Side& side = sides_[which];
    if (side.over || side.reading) return;
    side.reading = true;
    side.end->read([self = shared_from_this(), which](boost::system::error_code ec, WsMessage message) {
        self->on_read(which, ec, std::move(message));
    });
}

void RelaySession::on_read(Which which, boost::system::error_code ec, WsMessage message) {
    Side& side = sides_[which];
    side.reading = false;
    // Our close is under way: its end says what the peer answered (a read that ends
    // meanwhile, aborted as Beast takes the close frame in, would say nothing).
    if (ec && side.close_sent) return;
    if (ec) {
        // The peer's close frame (Beast has answered it), or a connection that broke, or a
        // message Beast refused (too big: 1009, invalid UTF-8: 1007, already sent to the peer).
        bool closed = ec == boost::beast::websocket::error::closed;
        bool refused = !closed && ec.category() == make_error_code(boost::beast::websocket::error::closed).category();
        std::string why = closed    ? " closed"
                          : refused ? " sent what WebSocket forbids (" + ec.message() + ")"
                                    : " vanished (" + ec.message() + ")";
        end_side(which, closed ? side.end->peer_close_code() : 0, side_name(which) + why);
        return;
    }
    last_message_ = Clock::now();
    (which == kClient ? log_.client_bytes : log_.upstream_bytes) += message.data.size();
    ++(which == kClient ? log_.client_messages : log_.upstream_messages);
    Side& to = sides_[other(which)];
    if (to.over || to.closing) return read_from(which);  // nobody to give it to: dropped, the session is ending
    enqueue(other(which), std::move(message));
    if (to.queued_bytes > limits_.queue_bytes)
        side.paused = true;  // read again when `to` has written enough (on_written)
    else
        read_from(which);
}

void RelaySession::enqueue(Which to, WsMessage message) {
    Side& side = sides_[to];
    side.queued_bytes += message.data.size();
    side.queue.push_back(std::move(message));
    if (!side.writing) write_next(to);
}

void RelaySession::write_next(Which to) {
    Side& side = sides_[to];
    if (side.over) return;
    if (side.queue.empty()) {
        if (side.closing && !side.close_sent) {
            side.close_sent = true;
            side.end->close(side.close_code, [self = shared_from_this(), to](boost::system::error_code) {
                self->end_side(to, self->sides_[to].end->peer_close_code(), "");
            });
        }
        return;
    }
    WsMessage message = std::move(side.queue.front());
    side.queue.pop_front();
    unsigned long long bytes = message.data.size();
    side.writing = true;
    side.write_since = Clock::now();
    side.end->write(std::move(message), [self = shared_from_this(), to, bytes](boost::system::error_code ec) {
        self->on_written(to, ec, bytes);
    });
}

void RelaySession::on_written(Which to, boost::system::error_code ec, unsigned long long bytes) {
    Side& side = sides_[to];
    side.writing = false;
    side.queued_bytes -= bytes;
    if (ec) {
        side.end->cut();  // its read, if one is in flight, ends too
        end_side(to, 0, std::string(side_name(to)) + " vanished (" + ec.message() + ")");
        return;
    }
    last_message_ = Clock::now();
    Side& source = sides_[other(to)];
    if (source.paused && side.queued_bytes <= limits_.queue_bytes) {
        source.paused = false;
        read_from(other(to));
    }
    write_next(to);
}

void RelaySession::close_side(Which which, int code) {
    Side& side = sides_[which];
    if (side.over || side.closing) return;
    side.closing = true;
    side.close_code = code;
    if (!side.writing) write_next(which);  // else after the write in flight, once the queue is written
}

// `which` is done: its close code goes to the other side (once that side's queue is written).
void RelaySession::end_side(Which which, int peer_code, const std::string& why) {
    Side& side = sides_[which];
    if (side.over) return;
    side.over = true;
    side.paused = false;
    side.queue.clear();
    if (log_.outcome.empty() && !why.empty()) log_.outcome = why;
    (which == kClient ? log_.client_close : log_.upstream_close) = peer_code;
    // Unless our own close ended it (the other side is ending already), its code goes on.
    if (!side.closing) close_side(other(which), relayed_close_code(peer_code, which == kUpstream));
    if (sides_[kClient].over && sides_[kUpstream].over) timer_.cancel();
}

void RelaySession::arm_timer() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->on_tick();
    });
}

void RelaySession::on_tick() {
    Clock::time_point now = Clock::now();
    for (Which which : {kClient, kUpstream}) {
        Side& side = sides_[which];
        if (!side.over && side.writing && now - side.write_since > std::chrono::seconds(limits_.write_timeout_s)) {
            if (log_.outcome.empty()) log_.outcome = std::string(side_name(which)) + " stopped reading";
            side.end->cut();
        }
    }
    if (now - last_message_ > std::chrono::seconds(limits_.idle_timeout_s)) {
        if (log_.outcome.empty()) log_.outcome = "idle";
        close_side(kClient, 1001);
        close_side(kUpstream, 1001);
    }
    if (!(sides_[kClient].over && sides_[kUpstream].over)) arm_timer();
}

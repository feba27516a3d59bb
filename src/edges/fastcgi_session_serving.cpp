// The FastCGI Session, serving (fastcgi_session.h): the exchange served, its answer
// flushed as the web server takes it, the request ended (kept, cut or closed), lingering
// over a body still coming, and the session released to its loop.
// Tests: through real web servers (tests/integration: slow-clients, upstream-faults, servers).
#include "fastcgi_session.h"

#include <errno.h>
#include <sys/socket.h>

#include <string>

#include "fastcgi_loop.h"
#include "response.h"

namespace engine_detail {

// ---- Session: serving ----------------------------------------------------------------------

void Session::serve() {
    phase_ = Phase::Serving;
    await(nullptr);
    if (over_limit_)
        exchange_->refuse(make_error(503,
                                     "The proxy is serving as many requests as it is set to (" +
                                         std::to_string(loop_.process.max_requests) +
                                         "); retry the request.",
                                     "proxy_overloaded", "", "api_error"),
                          {{"Retry-After", "1"}});
    else if (loop_.stopping)
        exchange_->refuse(stopping_error());
    else
        exchange_->serve(loop_.services);
}

void Session::flush_soon() {
    if (flush_queued_) return;
    flush_queued_ = true;
    loop_.events.defer([this] {
        flush_queued_ = false;
        flush_now();
    });
}

void Session::flush_now() {
    // A finished answer goes out with the end of the request, in one write.
    if (phase_ != Phase::Serving || exchange_->finished()) return;
    if (!connection_.flush()) client_left();
    else if (connection_.blocked()) want_writable(true);
}

void Session::wait_writable() { want_writable(true); }

// Re-armed on every call: epoll reports the socket at once if it already has room.
void Session::want_writable(bool wanted) {
    if (!wanted && !watching_out_) return;
    // The write deadline counts from the first wait, not from each look.
    if (wanted && !watching_out_) await(&loop_.deadlines.writing);
    if (!wanted) await(nullptr);
    watching_out_ = wanted;
    if (!loop_.events.rewatch(connection_.fd(), kSessionEvents | (wanted ? uint32_t{EPOLLOUT} : 0u), this))
        client_left();
}

void Session::writable() {
    if (!connection_.writable()) {
        client_left();
        return;
    }
    if (connection_.blocked()) {
        want_writable(true);
        return;
    }
    want_writable(false);
    if (phase_ == Phase::Ending) end();
    else exchange_->writable();
}

void Session::client_left() {
    if (phase_ == Phase::Serving && exchange_ && !exchange_->finished()) {
        exchange_->client_gone();  // finished() follows
        return;
    }
    if (phase_ == Phase::Serving || phase_ == Phase::Ending) log_and_close(true);
}

// The request's one log line; `gone`: its answer did not reach the web server whole.
void Session::log_and_close(bool gone) {
    AccessLogEntry& entry = exchange_->log_entry();
    if (gone && entry.outcome == "ok") entry.outcome = "client-gone";
    loop_.log(entry);
    close();
}

void Session::finished() {
    if (end_queued_) return;
    end_queued_ = true;
    loop_.events.defer([this] {
        if (phase_ == Phase::Closed) return;  // the client left meanwhile: logged then
        phase_ = Phase::Ending;
        end();
    });
}

void Session::end() {
    if (phase_ != Phase::Ending) return;
    if (must_skip_rest()) {
        skipped_ = true;
        connection_.skip_waiting_body(kDrainLimit);
    }
    // No web server sends its next request on a kept connection before END_REQUEST: one
    // that does (or part of whose next request was read with this one) is not
    // kept, so that the requests behind are refused by the close rather than left waiting.
    if (connection_.keep_asked() && !pipelined_ && connection_.bytes_waiting()) pipelined_ = true;
    FastCgiConnection::Finish result = exchange_->cut() ? connection_.cut() : connection_.finish();
    if (result == FastCgiConnection::Finish::Wait) {
        want_writable(true);
        return;
    }
    if (result == FastCgiConnection::Finish::Done && exchange_->cut()) {
        break_off();
        return;
    }
    log_and_close(result == FastCgiConnection::Finish::Gone);
}

// The last of a cut answer (its error event) must reach the web server before the broken
// record that makes it drop the client, or some (nginx) drop it unsent: wait, a little,
// until the web server has read every byte.
void Session::break_off() {
    const int kMostChecks = 50;  // a second
    if (connection_.unread_by_peer() > 0 && ++drain_checks_ <= kMostChecks) {
        await(&loop_.deadlines.draining);
        return;
    }
    connection_.break_off();
    log_and_close(false);
}

void Session::stop() {
    switch (phase_) {
        case Phase::KeptIdle:
        case Phase::Reading:
            close();
            return;
        case Phase::Reader:
            // Its blocked read ends; back on the loop it is answered 503.
            shut_down(connection_.fd(), SHUT_RD);  // failing, the read gives up at SO_RCVTIMEO
            return;
        case Phase::Serving:
            if (exchange_ && !exchange_->finished()) exchange_->stop();
            return;
        case Phase::Lingering:
            release();
            return;
        case Phase::Ending:
        case Phase::Closed:
            return;
    }
}

// Unread request bytes make a close send a reset, which can destroy the answer before
// the web server reads it; and a web server still sending a body (nginx streams them)
// fails its next write, and may drop the answer, if the connection is gone. So a request
// answered before its body was read lingers: its writing side shut, what still comes read
// and dropped, until the web server closes or for at most a few seconds.
void Session::close() {
    if (phase_ == Phase::Closed || phase_ == Phase::Lingering) return;
    await(nullptr);
    bool maybe_unread = !all_read_ && !connection_.body_consumed();
    if (!maybe_unread && keep_connection()) return;
    linger_fd_ = connection_.take_fd();
    if (!linger_fd_.valid() || !maybe_unread || loop_.stopping) {
        release();
        return;
    }
    if (!shut_down(linger_fd_.get(), SHUT_WR)) {
        release();  // the web server is gone already, or the socket cannot linger
        return;
    }
    phase_ = Phase::Lingering;
    await(&loop_.deadlines.lingering);
    drain();
}

// A web server that keeps its connections (FCGI_KEEP_CONN) sends its next request on
// this one once the answer ended whole: a new session waits for it here, and this one
// goes. A connection costs the web server a connect and us an accept, an epoll
// registration and a close per request otherwise.
bool Session::keep_connection() {
    if (!connection_.reusable() || loop_.stopping || pipelined_) return false;
    UniqueFd fd = connection_.take_fd();
    release();
    loop_.open_session(std::move(fd), true);
    return true;
}

// Lingering: reads and drops what the web server still sends; the end of it, an error or
// too much of it, and the session goes.
void Session::drain() {
    ssize_t got;
    while ((got = recv(linger_fd_.get(), loop_.scratch.data(), loop_.scratch.size(), MSG_DONTWAIT)) > 0) {
        drained_ += static_cast<size_t>(got);
        if (drained_ > kDrainLimit) break;
    }
    bool waiting = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    if (!waiting || drained_ > kDrainLimit) release();
}

// Closing the descriptor also takes it out of epoll (nothing else holds it).
void Session::release() {
    phase_ = Phase::Closed;
    await(nullptr);
    linger_fd_.reset();
    loop_.retire(this);
}

}  // namespace engine_detail

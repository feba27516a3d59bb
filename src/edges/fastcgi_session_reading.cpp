// The FastCGI Session, reading (fastcgi_session.h): its start and deadlines, a request
// read as it arrives until all of it is in (inline on the loop), or handed to a reader
// thread when it keeps arriving; and the events of the session on the loop.
// Tests: through real web servers (tests/integration: hostile, slow-clients, capacity).
#include "fastcgi_session.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <sanitizer/asan_interface.h>

#include <cstdio>
#include <exception>
#include <new>

#include "fastcgi_loop.h"

namespace engine_detail {

namespace {

// A request that has not arrived whole by this much goes to a reader thread rather than
// hold the loop's attention (and this much of memory each) while it trickles in. (The
// bytes were once left in the socket until the request was whole, where they held back a
// web server that waits for room before it sends more, as Apache's mod_proxy_fcgi does.)
const size_t kWaitBytes = 16 * 1024;
// A request read whole on the loop is at most this long; a longer one goes to a reader
// thread past kWaitBytes anyway.
const size_t kInlineBytes = 64 * 1024;
const size_t kReaderStack = 256 * 1024;       // a reader thread's stack

}  // namespace

// shutdown(2), its failure logged unless the web server already left (ENOTCONN).
bool shut_down(int fd, int how) {
    if (shutdown(fd, how) == 0) return true;
    if (errno != ENOTCONN) std::perror("azure-openai-proxy: shutdown");
    return false;
}

// ---- Session: reading ----------------------------------------------------------------------

Session::Session(Loop& loop, UniqueFd fd, bool over_limit, bool kept)
    : loop_(loop), connection_(std::move(fd)), phase_(kept ? Phase::KeptIdle : Phase::Reading),
      over_limit_(over_limit), counted_(!kept),
      started_ms_(loop.events.now_ms()) {
    deadline.owner = this;
}

Session::~Session() { await(nullptr); }

bool Session::start() {
    if (phase_ != Phase::KeptIdle) {
        await(&loop_.deadlines.reading);
        return loop_.events.watch(connection_.fd(), kSessionEvents, this);
    }
    // Already watched, for the session before: re-armed, epoll reports the next request
    // at once if it is already there.
    await(&loop_.deadlines.kept);
    return loop_.events.rewatch(connection_.fd(), kSessionEvents, this);
}

// The session now waits on `queue`'s deadline (none: null), counted from now.
void Session::await(DeadlineQueue* queue) {
    if (queue) queue->arm(deadline, loop_.events.now_ms());
    else deadline.disarm();
}

void Session::deadline_passed(const DeadlineQueue& queue) {
    if (&queue == &loop_.deadlines.draining) {
        end();  // a cut answer: look again whether the web server has read it
        return;
    }
    if (&queue == &loop_.deadlines.lingering || &queue == &loop_.deadlines.kept) {
        release();  // a kept connection no request came on: closed without a word
        return;
    }
    switch (phase_) {
        case Phase::KeptIdle:
        case Phase::Reading:
            if (params_arrived_) refuse_late_request();
            else timed_out("read-timeout", "the request's params did not arrive in time");
            return;
        case Phase::Reader:
            // Its blocked read ends; back on the loop it is answered 408.
            connection_.expire_read();
            shut_down(connection_.fd(), SHUT_RD);  // failing, the read gives up at SO_RCVTIMEO
            return;
        case Phase::Serving:
        case Phase::Ending:
            timed_out("write-timeout", "the web server took no bytes of the answer for " +
                                           std::to_string(loop_.process.config.write_timeout_s) + " s");
            return;
        case Phase::Lingering:
        case Phase::Closed:
            return;
    }
}

// A request whose params came but whose body did not arrive in time: answered 408 (the
// web server passes that on to its client), its body left unread.
void Session::refuse_late_request() {
    if (!open_request()) return;
    exchange_->receive_head();
    phase_ = Phase::Serving;
    exchange_->refuse(exchange_->body_too_late());
}

// A wait ran past its deadline: the request ends now, its upstream transfer with it, and
// the log says which deadline. Closing without END_REQUEST tells the web server the
// answer is not whole.
void Session::timed_out(const char* outcome, const std::string& what) {
    if (!exchange_) {
        AccessLogEntry entry;
        entry.outcome = outcome;
        entry.error = what;
        entry.duration_ms = loop_.events.now_ms() - started_ms_;
        loop_.log(entry);
        close();
        return;
    }
    exchange_->abandon(outcome, what);
    connection_.break_off();
    log_and_close(false);
}

void Session::on_event(uint32_t events) {
    switch (phase_) {
        case Phase::KeptIdle:
        case Phase::Reading:
            if (events & EPOLLERR) close();
            else on_readable(events);
            return;
        case Phase::Serving:
        case Phase::Ending:
            // The web server dropped the request: its client went away.
            if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) client_left();
            else if (events & EPOLLOUT) writable();
            return;
        case Phase::Lingering:
            drain();
            return;
        case Phase::Reader:
        case Phase::Closed:
            return;
    }
}

void Session::on_readable(uint32_t events) {
    size_t seen = 0;
    bool ended = false;
    RequestScan scan = connection_.read_arrived(kInlineBytes, seen, ended);
    bool closed = ended || (events & (EPOLLRDHUP | EPOLLHUP));
    if (phase_ == Phase::KeptIdle) {
        // The web server closed its kept connection: nothing to say, nothing to log.
        if (seen == 0) {
            if (closed || scan.state == RequestScan::Malformed) release();
            return;
        }
        // The next request's first bytes: it counts from now, against the limit too.
        phase_ = Phase::Reading;
        counted_ = true;
        started_ms_ = loop_.events.now_ms();
        over_limit_ = ++loop_.process.open > loop_.process.max_requests;
    }
    params_arrived_ = scan.params_end != 0;
    // Progress restarts the idle deadline, until the whole read timeout has passed: then
    // the deadline armed last stands.
    int64_t reading_ms = loop_.events.now_ms() - started_ms_;
    if (seen > seen_ && reading_ms < loop_.process.config.read_timeout_s * 1000) {
        seen_ = seen;
        await(&loop_.deadlines.reading);
    }
    if (scan.state == RequestScan::Malformed) {
        close();
    } else if (scan.state == RequestScan::Complete) {
        all_read_ = true;
        pipelined_ = seen > scan.request_end;
        // Its client left before it could be served (nginx says so at once): the upstream
        // is not asked.
        if (closed) drop_unserved();
        else start_here();
    } else if (closed) {
        close();  // the web server gave up before sending the whole request
    } else if (over_limit_ && scan.params_end) {
        start_here();  // refused without its body
    } else if (seen >= kWaitBytes) {
        hand_to_reader();
    }
    // Otherwise more bytes are on their way; their arrival wakes the loop again.
}

void Session::start_here() {
    if (!open_request()) return;
    if (over_limit_) exchange_->receive_head();
    else exchange_->receive();
    serve();
}

// Logged like any request, with what its params say, then closed.
void Session::drop_unserved() {
    if (!open_request()) return;
    exchange_->receive_head();
    log_and_close(true);
}

// The request's params, read, and its exchange opened; false (the connection closed) when
// the params cannot be read.
bool Session::open_request() {
    if (!connection_.read_params()) {
        close();
        return false;
    }
    open_exchange(true);
    return true;
}

// Made in the loop's exchange room (`on_loop`: this is the loop's thread), given back there
// when the session goes (always on the loop).
void Session::open_exchange(bool on_loop) {
    ExchangeRoom& room = loop_.exchange_room;
    void* memory = room.take(on_loop);
    try {
        exchange_ = std::unique_ptr<Exchange, ExchangeInRoom>(
            new (memory) Exchange(loop_.process.config, connection_, *this, started_ms_), ExchangeInRoom{&room});
    } catch (...) {
        room.give_back(memory);
        throw;
    }
}

// A spare is poisoned while it waits (under ASan; nothing otherwise): a stale pointer to a
// finished exchange is caught there as after a free.
void* ExchangeRoom::take(bool on_loop) {
    static_assert(alignof(Exchange) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "operator new's blocks fit an Exchange");
    if (!on_loop || count_ == 0) return ::operator new(sizeof(Exchange));
    void* memory = spares_[--count_];
    ASAN_UNPOISON_MEMORY_REGION(memory, sizeof(Exchange));
    return memory;
}

ExchangeRoom::~ExchangeRoom() {
    while (count_ > 0) ::operator delete(take(true));
}

void ExchangeRoom::give_back(void* memory) {
    if (count_ == kSpares) {
        ::operator delete(memory);
        return;
    }
    ASAN_POISON_MEMORY_REGION(memory, sizeof(Exchange));
    spares_[count_++] = memory;
}

// The connection leaves the loop for a thread whose blocking reads give up after the idle
// timeout by themselves, and the whole read timeout at most (the `reader` deadline).
void Session::hand_to_reader() {
    loop_.events.unwatch(connection_.fd());
    phase_ = Phase::Reader;
    ++loop_.readers;
    await(&loop_.deadlines.reader);
    timeval idle{static_cast<time_t>(loop_.process.config.read_idle_timeout_s), 0};
    if (setsockopt(connection_.fd(), SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle) != 0)
        std::perror("azure-openai-proxy: SO_RCVTIMEO");
    pthread_attr_t attributes;
    pthread_t thread;
    bool started = pthread_attr_init(&attributes) == 0;
    if (started) {
        // Never joined: a thread that could not be made detached is not started.
        started = pthread_attr_setstacksize(&attributes, kReaderStack) == 0 &&
                  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_create(&thread, &attributes, read_on_thread, this) == 0;
        pthread_attr_destroy(&attributes);
    }
    if (!started) {
        std::fprintf(stderr, "azure-openai-proxy: cannot start a reader thread\n");
        back_from_reader(false);
    }
}

// A reader thread: the request's params and body, with blocking reads. Nothing else
// touches the session until it is posted back.
void* Session::read_on_thread(void* self) {
    Session& session = *static_cast<Session*>(self);
    bool ok = false;
    try {
        ok = session.connection_.read_params();
        if (ok) {
            session.open_exchange(false);
            if (session.over_limit_) session.exchange_->receive_head();
            else session.exchange_->receive();
        }
    } catch (const std::exception& error) {
        std::fprintf(stderr, "azure-openai-proxy: reading a request: %s\n", error.what());
        ok = false;
    }
    session.loop_.events.post([&session, ok] { session.back_from_reader(ok); });
    return nullptr;
}

void Session::back_from_reader(bool ok) {
    --loop_.readers;
    phase_ = Phase::Reading;
    await(nullptr);
    if (!ok || !exchange_ || !loop_.events.watch(connection_.fd(), kSessionEvents, this)) {
        close();
        return;
    }
    serve();
}

// A web server that keeps its connection (FCGI_KEEP_CONN) may send its next request on it
// as soon as it has END_REQUEST and has sent the whole body. An answer given before the
// body was read (a refusal) leaves the rest of the body in the way: what of it is already
// in the socket is read and dropped first, without waiting, and if that is all of it,
// the connection is kept. Otherwise it closes as a connection that is not kept does,
// lingering: a web server that has not sent the whole body does not reuse it.
bool Session::must_skip_rest() const {
    return !skipped_ && connection_.keep_asked() && !all_read_ && !connection_.body_consumed() &&
           !exchange_->cut();
}

}  // namespace engine_detail

// The FastCGI engine: event loops that accept the web server's connections and carry each
// request (a Session) from its first byte to its last. See engine.h for why.
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "exchange.h"
#include "redis_sync.h"
#include "routing.h"
#include "shared_state.h"
#include "text.h"
#include "fastcgi.h"

namespace {

const size_t kPeekBytes = 64 * 1024;          // a whole request up to this is read inline
// Unread bytes count against the sender's socket buffer: a web server that waits for its
// socket to turn writable before sending more (Apache's mod_proxy_fcgi does) stops at
// about a quarter of its send buffer. Past this much, the request goes to a reader thread
// rather than wait for bytes that may never come.
const size_t kWaitBytes = 16 * 1024;
const size_t kReaderStack = 256 * 1024;       // a reader thread's stack
const int64_t kStopGraceMs = 1500;            // a supervisor grants 2 s
const uint32_t kSessionEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
const size_t kDrainLimit = 1 << 20;           // unread request bytes discarded at close
const size_t kLibfcgiFirstRead = 8192;        // what libfcgi asks of the socket at once

// shutdown(2), its failure logged unless the web server already left (ENOTCONN).
bool shut_down(int fd, int how) {
    if (shutdown(fd, how) == 0) return true;
    if (errno != ENOTCONN) std::perror("azure-openai-proxy: shutdown");
    return false;
}

// What every loop of the process shares.
struct Process {
    Process(const Config& config, int listen_fd, int stop_fd, int reload_fd, long max_requests, CURLSH* share,
            SharedState& state)
        : config(config), listen_fd(listen_fd), stop_fd(stop_fd), reload_fd(reload_fd), max_requests(max_requests),
          share(share), state(state), spare(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

    const Config& config;
    int listen_fd;
    int stop_fd;
    int reload_fd;  // SIGHUP's pipe, or -1
    long max_requests;
    CURLSH* share;
    SharedState& state;
    std::atomic<long> open{0};  // sessions of every loop
    std::mutex spare_mutex;
    UniqueFd spare;             // given up to accept (and close) one connection at EMFILE
};

class Loop;

// Access-log lines gather for up to kDelayMs, or until PIPE_BUF bytes, and go out in one
// write: under load one write carries many requests' lines (as nginx's `access_log
// buffer=` does). Writes of at most PIPE_BUF bytes to a pipe are never split: every
// loop's lines stay whole. Nothing waits when nothing is logged.
class LogBuffer : public TimerSource {
public:
    static const int64_t kDelayMs = 50;

    void add(const std::string& line, int64_t now_ms) {
        if (!lines_.empty() && lines_.size() + line.size() > PIPE_BUF) write();
        if (lines_.empty()) first_ms_ = now_ms;
        lines_ += line;
    }
    void write() {
        // A write cut short goes on with the rest; one that fails drops the lines, as
        // there is no other place to say so.
        for (size_t at = 0; at < lines_.size();) {
            ssize_t put = ::write(STDERR_FILENO, lines_.data() + at, lines_.size() - at);
            if (put > 0) at += static_cast<size_t>(put);
            else if (put == 0 || errno != EINTR) break;
        }
        lines_.clear();
    }
    int64_t next_due_ms() const override { return lines_.empty() ? DeadlineQueue::kNever : first_ms_ + kDelayMs; }
    void fire(int64_t) override { write(); }

private:
    std::string lines_;
    int64_t first_ms_ = 0;
};

// Once a second the shared state is looked after even when no request comes: a rebuilt
// state file is joined (so that every live process counts in it) and the rows of dead
// processes are given back. One loop a process does it; an idle process wakes once a second.
class StateTending : public TimerSource {
public:
    explicit StateTending(SharedState& state) : state_(state) {}
    int64_t next_due_ms() const override { return due_ms_; }
    void fire(int64_t now_ms) override {
        state_.tend(wall_clock_ms());
        due_ms_ = now_ms + 1000;
    }

private:
    SharedState& state_;
    int64_t due_ms_ = 0;
};

// One connection from the web server: one request, read, served, answered, closed.
class Session : public EventHandler, public ExchangeHost {
public:
    // `kept`: a connection the web server keeps for its next request, idle until then.
    Session(Loop& loop, UniqueFd fd, bool over_limit, bool kept);
    ~Session() override;

    bool start();
    void on_event(uint32_t events) override;
    void stop();

    void flush_soon() override;
    void wait_writable() override;
    void finished() override;

    // The deadline of the session's current wait passed: `queue` says which wait.
    void deadline_passed(const DeadlineQueue& queue);

    // Counted among the requests in flight (an idle kept connection is not).
    bool counted() const { return !kept_idle_; }

    std::list<std::unique_ptr<Session>>::iterator place;  // in its loop's sessions
    DeadlineLink deadline;  // in at most one of the loop's session queues

private:
    enum class State { Reading, Reader, Serving, Ending, Lingering, Closed };

    void on_readable(uint32_t events);
    void start_here();
    void drop_unserved();
    bool open_request();
    void open_exchange();
    void hand_to_reader();
    static void* read_on_thread(void* self);
    void back_from_reader(bool ok);
    bool must_skip_rest() const;
    void serve();
    void flush_now();
    void writable();
    void want_writable(bool wanted);
    void client_left();
    void log_and_close(bool gone);
    void end();
    void break_off();
    void await(DeadlineQueue* queue);
    void timed_out(const char* outcome, const std::string& what);
    void refuse_late_request();
    void close();
    bool keep_connection();
    void drain();
    void release();

    Loop& loop_;
    FastCgiConnection connection_;
    std::unique_ptr<Exchange> exchange_;  // after connection_: destroyed first
    State state_ = State::Reading;
    bool over_limit_;
    bool kept_idle_;         // a kept connection no byte of the next request has reached yet
    bool watching_out_ = false;
    bool flush_queued_ = false;
    bool end_queued_ = false;
    bool all_read_ = false;  // libfcgi has read every byte of the request
    bool skipped_ = false;   // the unread rest of the body was read and dropped (or tried)
    bool pipelined_ = false; // bytes beyond the request came before its answer ended
    size_t seen_ = 0;        // request bytes seen so far while reading
    bool params_arrived_ = false;  // all of the request's params are in the socket
    int drain_checks_ = 0;   // looks at a cut answer still on its way to the web server
    UniqueFd linger_fd_;     // the connection, once closing, while it lingers
    size_t drained_ = 0;     // request bytes read and dropped while lingering
    int64_t started_ms_;
};

// The deadlines of a loop's sessions, one queue per kind of wait: each queue's
// deadlines all last the same time, so each is kept in order for free.
struct SessionDeadlines : public TimerSource {
    explicit SessionDeadlines(const Config& config)
        : reading(config.read_idle_timeout_s * 1000), reader(config.read_timeout_s * 1000),
          writing(config.write_timeout_s * 1000), draining(kDrainCheckMs), lingering(kLingerMs),
          kept(kKeptIdleMs) {}

    static const int64_t kDrainCheckMs = 20;
    static const int64_t kLingerMs = 3000;
    // Longer than web servers keep idle connections (nginx 60 s, Apache's ttl unset:
    // until the backend closes), so the web server, which sees our close, closes first.
    static const int64_t kKeptIdleMs = 300 * 1000;
    DeadlineQueue reading;   // the request arriving, on the loop: no pause past the idle timeout
    DeadlineQueue reader;    // the request arriving, on a reader thread: the whole read timeout
    DeadlineQueue writing;   // the web server taking the answer: the write timeout
    DeadlineQueue draining;  // a cut answer reaching the web server: looked at again soon
    DeadlineQueue lingering; // a closed request's web server still sending its body
    DeadlineQueue kept;      // a kept connection waiting for its next request

    int64_t next_due_ms() const override {
        return std::min({reading.next_due_ms(), reader.next_due_ms(), writing.next_due_ms(),
                         draining.next_due_ms(), lingering.next_due_ms(), kept.next_due_ms()});
    }
    void fire(int64_t now_ms) override {
        for (DeadlineQueue* queue : {&reading, &reader, &writing, &draining, &lingering, &kept})
            while (DeadlineLink* due = queue->take_due(now_ms))
                static_cast<Session*>(due->owner)->deadline_passed(*queue);
    }
};

// A stop signal or a new connection, for the loop.
class Watcher : public EventHandler {
public:
    Watcher(Loop& loop, void (Loop::*act)()) : loop_(loop), act_(act) {}
    void on_event(uint32_t) override;

private:
    Loop& loop_;
    void (Loop::*act_)();
};

// One thread's share of the work: its event loop, its upstream transfers, its sessions.
class Loop {
public:
    explicit Loop(Process& process)
        : process(process), heartbeats(process.config.heartbeat_ms), heartbeat_timer(heartbeats),
          upstream(events, process.config, process.share), services{events, upstream, heartbeats, process.state},
          deadlines(process.config), scratch(kPeekBytes), acceptor_(*this, &Loop::accept_one),
          stopper_(*this, &Loop::begin_stop), reloader_(*this, &Loop::reload) {
        events.add_timer(&heartbeat_timer);
        events.add_timer(&deadlines);
        events.add_timer(&log_lines_);
    }

    // Sessions still open when the process ends are left as they are, never destroyed: one
    // may still be on a reader thread, and the process exits right after.
    ~Loop() {
        for (std::unique_ptr<Session>& session : sessions_) static_cast<void>(session.release());
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    bool start(std::string& error, bool takes_reloads);
    bool run();  // false when requests were still busy at the end of the grace period
    bool serve_until_stopped();
    void open_session(UniqueFd fd, bool kept);
    Session* add(std::unique_ptr<Session> session);
    void retire(Session* session);
    void accept_one();
    void begin_stop();
    void reload();
    void log(const AccessLogEntry& entry);

    Process& process;
    EventLoop events;
    DeadlineQueue heartbeats;
    HeartbeatTimer heartbeat_timer;
    Upstream upstream;
    LoopServices services;
    SessionDeadlines deadlines;
    std::vector<unsigned char> scratch;  // peeked request bytes (one request at a time)
    bool stopping = false;
    size_t readers = 0;  // sessions on reader threads

private:
    void shed_connection();

    Watcher acceptor_, stopper_, reloader_;
    LogBuffer log_lines_;
    StateTending state_tending_{process.state};
    // The loop owns its sessions; one that ended waits in retired_ until the iteration's
    // end (a callback further up the stack may still be in it).
    std::list<std::unique_ptr<Session>> sessions_;
    std::vector<std::unique_ptr<Session>> retired_;
    size_t count_ = 0;
    int64_t stop_due_ms_ = 0;
};

void Watcher::on_event(uint32_t) { (loop_.*act_)(); }

// ---- Loop ----------------------------------------------------------------------------------

bool Loop::start(std::string& error, bool takes_reloads) {
    if (!events.ok() || !upstream.ok()) {
        error = "cannot create an event loop (epoll, eventfd or a curl multi handle)";
        return false;
    }
    // Exclusive: a new connection wakes one loop, not all of them.
    if (!events.watch(process.listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &acceptor_) ||
        !events.watch(process.stop_fd, EPOLLIN, &stopper_) ||
        (takes_reloads && process.reload_fd >= 0 && !events.watch(process.reload_fd, EPOLLIN, &reloader_))) {
        error = std::string("cannot watch the listening socket: ") + std::strerror(errno);
        return false;
    }
    if (takes_reloads) events.add_timer(&state_tending_);
    return true;
}

// SIGHUP: the routing file again. Requests in flight keep the table they started with.
void Loop::reload() {
    char drained[64];
    while (::read(process.reload_fd, drained, sizeof drained) > 0) {
    }
    reload_routing_file(process.config);
}

void Loop::accept_one() {
    if (stopping) return;
    int fd = accept4(process.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) shed_connection();
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            std::perror("azure-openai-proxy: accept");
        return;
    }
    open_session(UniqueFd(fd), false);
}

void Loop::open_session(UniqueFd fd, bool kept) {
    bool over_limit = !kept && ++process.open > process.max_requests;
    Session* session = add(std::make_unique<Session>(*this, std::move(fd), over_limit, kept));
    // Read once epoll reports it: with the request it also reports a web server that
    // already gave up on it (EPOLLRDHUP), which then costs no upstream call.
    if (!session->start()) session->stop();
}

// Out of descriptors: the connection cannot be served, but left in the backlog it would
// wake every loop again and again. Take it with the spare descriptor and close it.
void Loop::shed_connection() {
    std::lock_guard<std::mutex> lock(process.spare_mutex);
    process.spare.reset();
    UniqueFd shed(accept4(process.listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    shed.reset();
    process.spare.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!process.spare.valid())  // taken meanwhile by another loop: the next shed closes without one
        std::fprintf(stderr, "azure-openai-proxy: cannot keep a spare descriptor: %s\n", std::strerror(errno));
    std::fprintf(stderr, "azure-openai-proxy: out of file descriptors; a connection was closed "
                         "unanswered (raise LimitNOFILE / ulimit -n)\n");
}

void Loop::log(const AccessLogEntry& entry) {
    log_lines_.add(format_access_log(entry, static_cast<long long>(std::time(nullptr)), process.config.log_format),
                   events.now_ms());
}

Session* Loop::add(std::unique_ptr<Session> owned) {
    Session* session = owned.get();
    sessions_.push_front(std::move(owned));
    session->place = sessions_.begin();
    ++count_;
    return session;
}

// The session leaves the loop's list; it is destroyed once the iteration ends.
void Loop::retire(Session* session) {
    if (session->counted()) --process.open;
    if (retired_.empty()) events.defer([this] { retired_.clear(); });
    retired_.push_back(std::move(*session->place));
    sessions_.erase(session->place);
    --count_;
}

void Loop::begin_stop() {
    if (stopping) return;
    stopping = true;
    stop_due_ms_ = events.now_ms() + kStopGraceMs;
    events.unwatch(process.listen_fd);
    events.unwatch(process.stop_fd);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session* session = (it++)->get();  // stop() may retire it
        session->stop();
    }
}

// An exception that reaches here left some request half done: the process stops with a
// clear line rather than serve on in an unknown state (a supervisor starts another).
bool Loop::run() {
    try {
        bool clean = serve_until_stopped();
        log_lines_.write();
        return clean;
    } catch (const std::exception& error) {
        log_lines_.write();
        std::fprintf(stderr, "azure-openai-proxy: fatal: %s\n", error.what());
    }
    std::fflush(stderr);
    std::_Exit(70);
}

bool Loop::serve_until_stopped() {
    for (;;) {
        int wait_ms = -1;
        if (stopping) {
            if (count_ == 0 && readers == 0) return true;
            int64_t left = stop_due_ms_ - EventLoop::clock_ms();
            if (left <= 0) return false;
            wait_ms = static_cast<int>(left);
        }
        if (!events.run_once(wait_ms)) return false;
    }
}

// ---- Session: reading ----------------------------------------------------------------------

Session::Session(Loop& loop, UniqueFd fd, bool over_limit, bool kept)
    : loop_(loop), connection_(std::move(fd)), over_limit_(over_limit), kept_idle_(kept),
      started_ms_(loop.events.now_ms()) {
    deadline.owner = this;
}

Session::~Session() { await(nullptr); }

bool Session::start() {
    if (!kept_idle_) {
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
    switch (state_) {
        case State::Reading:
            if (params_arrived_) refuse_late_request();
            else timed_out("read-timeout", "the request's params did not arrive in time");
            return;
        case State::Reader:
            // Its blocked read ends; back on the loop it is answered 408.
            connection_.expire_read();
            shut_down(connection_.fd(), SHUT_RD);  // failing, the read gives up at SO_RCVTIMEO
            return;
        case State::Serving:
        case State::Ending:
            timed_out("write-timeout", "the web server took no bytes of the answer for " +
                                           std::to_string(loop_.process.config.write_timeout_s) + " s");
            return;
        case State::Lingering:
        case State::Closed:
            return;
    }
}

// A request whose params came but whose body did not arrive in time: answered 408 (the
// web server passes that on to its client), its body left unread.
void Session::refuse_late_request() {
    if (!open_request()) return;
    exchange_->receive_head();
    state_ = State::Serving;
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
    switch (state_) {
        case State::Reading:
            if (events & EPOLLERR) close();
            else on_readable(events);
            return;
        case State::Serving:
        case State::Ending:
            // The web server dropped the request: its client went away.
            if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) client_left();
            else if (events & EPOLLOUT) writable();
            return;
        case State::Lingering:
            drain();
            return;
        case State::Reader:
        case State::Closed:
            return;
    }
}

void Session::on_readable(uint32_t events) {
    size_t seen = 0;
    RequestScan scan = connection_.peek(loop_.scratch, seen);
    bool closed = events & (EPOLLRDHUP | EPOLLHUP);
    if (kept_idle_) {
        // The web server closed its kept connection: nothing to say, nothing to log.
        if (seen == 0) {
            if (closed || scan.state == RequestScan::Malformed) release();
            return;
        }
        // The next request's first bytes: it counts from now, against the limit too.
        kept_idle_ = false;
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
        // libfcgi's first read takes up to 8 KiB: a request that fits is then all read.
        all_read_ = scan.request_end <= kLibfcgiFirstRead;
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
    open_exchange();
    return true;
}

void Session::open_exchange() {
    exchange_ = std::make_unique<Exchange>(loop_.process.config, connection_, *this, started_ms_);
}

// The connection leaves the loop for a thread whose blocking reads give up after the idle
// timeout by themselves, and the whole read timeout at most (the `reader` deadline).
void Session::hand_to_reader() {
    loop_.events.unwatch(connection_.fd());
    state_ = State::Reader;
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
            session.open_exchange();
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
    state_ = State::Reading;
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

// ---- Session: serving ----------------------------------------------------------------------

void Session::serve() {
    state_ = State::Serving;
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
    if (state_ != State::Serving || exchange_->finished()) return;
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
    if (state_ == State::Ending) end();
    else exchange_->writable();
}

void Session::client_left() {
    if (state_ == State::Serving && exchange_ && !exchange_->finished()) {
        exchange_->client_gone();  // finished() follows
        return;
    }
    if (state_ == State::Serving || state_ == State::Ending) log_and_close(true);
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
        if (state_ == State::Closed) return;  // the client left meanwhile: logged then
        state_ = State::Ending;
        end();
    });
}

void Session::end() {
    if (state_ != State::Ending) return;
    if (must_skip_rest()) {
        skipped_ = true;
        connection_.skip_waiting_body(kDrainLimit);
    }
    // No web server sends its next request on a kept connection before END_REQUEST: one
    // that does (or part of whose next request libfcgi has read with this one) is not
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
    switch (state_) {
        case State::Reading:
            close();
            return;
        case State::Reader:
            // Its blocked read ends; back on the loop it is answered 503.
            shut_down(connection_.fd(), SHUT_RD);  // failing, the read gives up at SO_RCVTIMEO
            return;
        case State::Serving:
            if (exchange_ && !exchange_->finished()) exchange_->stop();
            return;
        case State::Lingering:
            release();
            return;
        case State::Ending:
        case State::Closed:
            return;
    }
}

// Unread request bytes make a close send a reset, which can destroy the answer before
// the web server reads it; and a web server still sending a body (nginx streams them)
// fails its next write, and may drop the answer, if the connection is gone. So a request
// answered before its body was read lingers: its writing side shut, what still comes read
// and dropped, until the web server closes or for at most a few seconds.
void Session::close() {
    if (state_ == State::Closed || state_ == State::Lingering) return;
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
    state_ = State::Lingering;
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
    state_ = State::Closed;
    await(nullptr);
    linger_fd_.reset();
    loop_.retire(this);
}

// ---- the process -----------------------------------------------------------------------------

int loop_count(const Config& config) {
    if (config.threads > 0) return config.threads;
    unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : static_cast<int>(cores);
}

// Each request holds the web server's connection and, while it is sent, one to the
// upstream: the descriptor limit is raised as far as allowed and the request limit
// kept within it.
long requests_within_descriptors(long wanted) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        std::perror("azure-openai-proxy: cannot read the descriptor limit (getrlimit)");
        return wanted;
    }
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = {limit.rlim_max, limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
        else std::perror("azure-openai-proxy: cannot raise the descriptor limit to its maximum (setrlimit)");
    }
    const rlim_t reserve = 64;  // listening socket, loops, logs, curl's own
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= reserve + 2 * static_cast<rlim_t>(wanted))
        return wanted;
    long fits = limit.rlim_cur > reserve + 2 ? static_cast<long>((limit.rlim_cur - reserve) / 2) : 1;
    std::fprintf(stderr,
                 "azure-openai-proxy: the descriptor limit (%llu) allows %ld requests in flight, "
                 "not AZURE_OPENAI_PROXY_MAX_REQUESTS=%ld; raise LimitNOFILE / ulimit -n\n",
                 static_cast<unsigned long long>(limit.rlim_cur), fits, wanted);
    return fits;
}

}  // namespace

namespace {

std::string process_environment(const std::string& name, void*) {
    const char* value = std::getenv(name.c_str());
    return value ? value : "";
}

// Runs every loop, the first on this thread, until all have stopped; false when one
// stopped with requests still busy.
bool run_loops(std::vector<std::unique_ptr<Loop>>& loops) {
    std::vector<std::thread> threads;
    std::vector<char> clean(loops.size(), 1);
    try {
        for (size_t i = 1; i < loops.size(); ++i)
            threads.emplace_back([&loops, &clean, i] { clean[i] = loops[i]->run(); });
    } catch (const std::system_error& failure) {
        std::fprintf(stderr, "azure-openai-proxy: could only start %zu of %zu loops: %s\n",
                     threads.size() + 1, loops.size(), failure.what());
        for (size_t i = threads.size() + 1; i < loops.size(); ++i) loops[i]->begin_stop();
    }
    clean[0] = loops[0]->run();
    for (std::thread& thread : threads) thread.join();
    return std::find(clean.begin(), clean.end(), 0) == clean.end();
}

}  // namespace

bool reload_routing_file(const Config& config) {
    std::string said = reload_routing(config, process_environment, nullptr);
    for (const std::string& line : split(said, '\n')) std::fprintf(stderr, "azure-openai-proxy: %s\n", line.c_str());
    return said.find(" in force: ") != std::string::npos;
}

int serve_fastcgi(const Config& config, int listen_fd, int stop_fd, int reload_fd) {
    std::string error;
    if (!fastcgi_prepare_listener(listen_fd, error)) {
        std::fprintf(stderr, "azure-openai-proxy: %s\n", error.c_str());
        return 1;
    }
    auto caches = std::make_unique<SharedCaches>();
    std::unique_ptr<SharedState> state = open_shared_state(config);
    if (!state) return 1;
    std::unique_ptr<RedisSync> redis;
    if (!config.redis.host.empty() || !config.redis.unix_path.empty())
        redis = std::make_unique<RedisSync>(config, *state);
    auto process = std::make_unique<Process>(config, listen_fd, stop_fd, reload_fd,
                                             requests_within_descriptors(config.max_requests),
                                             caches->get(), *state);
    int count = loop_count(config);
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < count; ++i) {
        loops.push_back(std::make_unique<Loop>(*process));
        if (!loops.back()->start(error, i == 0)) {
            std::fprintf(stderr, "azure-openai-proxy: %s\n", error.c_str());
            return 1;
        }
    }
    std::fprintf(stderr, "azure-openai-proxy: serving with %d event loops, at most %ld requests in flight\n",
                 count, process->max_requests);
    if (!run_loops(loops)) {
        std::fprintf(stderr, "azure-openai-proxy: stopped with requests still busy\n");
        // Reader threads may still use what the loops own: leave it all to the exit.
        for (auto& loop : loops) loop.release();
        process.release();
        caches.release();
        redis.release();
        state.release();
        return -1;
    }
    std::fprintf(stderr, "azure-openai-proxy: stopped\n");
    return 0;
}

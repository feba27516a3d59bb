// The FastCGI engine's event loop (fastcgi_loop.h): accepting the web server's
// connections, shedding one when out of descriptors, owning and retiring the sessions,
// stopping with grace, and SIGHUP's reload on the loop that takes it.
// Tests: through real web servers (tests/integration: servers, capacity, slow-clients).
#include "fastcgi_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>

#include "access_log.h"
#include "engine.h"

namespace engine_detail {

namespace {

const int64_t kStopGraceMs = 1500;            // a supervisor grants 2 s
const int kAcceptBatch = 64;

}  // namespace

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

// Up to kAcceptBatch connections a wake: a burst (thousands of streams opened within a
// second while TLS handshakes take the loop's time) must not fill the listening socket's
// backlog, where lighttpd 1.4.69 meets a full backlog by sending the request's head again on
// its retry (the proxy sees a second BEGIN_REQUEST and answers 400) or by answering 500.
void Loop::accept_one() {
    for (int accepted = 0; accepted < kAcceptBatch && !stopping; ++accepted) {
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof peer;
        int fd = accept4(process.listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) shed_connection();
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                std::perror("azure-openai-proxy: accept");
            return;
        }
        UniqueFd connection(fd);
        if (refuse_peer(peer)) continue;  // closed unanswered
        open_session(std::move(connection), false);
    }
}

// FCGI_WEB_SERVER_ADDRS (web_server_addresses.h): a TCP peer it does not name is closed
// before a byte is read, counted, and said at most once a minute (a scan of the port must
// not flood the log).
bool Loop::refuse_peer(const sockaddr_storage& peer) {
    PeerAddress address;
    if (peer.ss_family == AF_INET) {
        address.family = AF_INET;
        std::memcpy(address.bytes, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
    } else if (peer.ss_family == AF_INET6) {
        address.family = AF_INET6;
        std::memcpy(address.bytes, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, 16);
    } else {
        return false;  // a unix socket: its file's permissions guard it
    }
    if (web_server_allowed(process.config.web_servers, address)) return false;
    process.state.count("aop_fastcgi_connections_refused_total", {});
    long refused = ++process.peers_refused;
    int64_t now = events.now_ms(), said = process.peers_refused_said_ms.load();
    if ((said == 0 || now - said >= 60000) && process.peers_refused_said_ms.compare_exchange_strong(said, now)) {
        process.peers_refused = 0;
        std::fprintf(stderr,
                     "azure-openai-proxy: closed %ld connection(s) from an address FCGI_WEB_SERVER_ADDRS does not "
                     "name (the last from %s)\n",
                     refused, describe_web_server_addresses({address}).c_str());
    }
    return true;
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
    long long now = static_cast<long long>(std::time(nullptr));
    LogFormat format = process.config.log_format;
    log_lines_.add_with([&](std::string& lines) { append_access_log(lines, entry, now, format); }, events.now_ms());
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

}  // namespace engine_detail

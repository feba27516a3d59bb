// Plain CGI: one request per process, its params in the environment, its body on stdin,
// its answer on stdout. Served by the same Exchange as FastCGI, on an event loop of its own.
// Tests: a process a request, so through a real web server (tests/integration/hosts.mjs:
// 'apache CGI (shared hosting .htaccess)', run by servers.test.mjs).
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdlib>

#include "cgi.h"
#include "engine.h"
#include "exchange.h"
#include "shared_state.h"
#include "token_keeper.h"

extern char** environ;

namespace {

class CgiConnection : public Connection {
public:
    CgiConnection() : params_(params_from_envp(environ)) {
        if (const char* length = std::getenv("CONTENT_LENGTH"); length && *length)
            remaining_ = std::atoll(length);
    }

    const CgiParams& params() const override { return params_; }

    long read_body(char* buffer, size_t size) override {
        if (remaining_ == 0) return 0;
        if (remaining_ > 0 && static_cast<long long>(size) > remaining_)
            size = static_cast<size_t>(remaining_);
        ssize_t got;
        do got = ::read(STDIN_FILENO, buffer, size);
        while (got < 0 && errno == EINTR);
        if (got > 0 && remaining_ > 0) remaining_ -= got;
        return got;
    }

    // The web server reads stdout as it comes; a write waits for it, which harms no one
    // else here.
    bool can_take(size_t) const override { return !failed_; }

    bool write(const char* data, size_t size) override {
        while (size > 0 && !failed_) {
            ssize_t put = ::write(STDOUT_FILENO, data, size);
            if (put < 0 && errno == EINTR) continue;
            if (put <= 0) failed_ = true;
            else {
                data += put;
                size -= static_cast<size_t>(put);
            }
        }
        return !failed_;
    }

private:
    CgiParams params_;
    long long remaining_ = -1;  // -1: read to the end of input
    bool failed_ = false;
};

class CgiHost : public ExchangeHost, public EventHandler {
public:
    void flush_soon() override {}
    void wait_writable() override {}
    void finished() override { done = true; }
    void on_event(uint32_t) override { stop_requested = true; }

    bool done = false;
    bool stop_requested = false;
};

}  // namespace

int serve_cgi(const Config& config, int stop_fd) {
    EventLoop loop;
    Upstream upstream(loop, config, nullptr);
    DeadlineQueue heartbeats(config.heartbeat_ms);
    HeartbeatTimer heartbeat_timer(heartbeats);
    loop.add_timer(&heartbeat_timer);
    CgiHost host;
    if (!loop.ok() || !upstream.ok() || !loop.watch(stop_fd, EPOLLIN, &host)) return 1;
    std::unique_ptr<SharedState> state = open_shared_state(config, true);
    if (!state) return 1;
    // The token keepers share the state (a token obtained by one CGI process serves the
    // next ones): stopped before it goes.
    struct KeepersStopped {
        ~KeepersStopped() { stop_token_keepers(); }
    } keepers_stopped;
    LoopServices services{loop, upstream, heartbeats, *state};

    CgiConnection connection;
    Exchange exchange(config, connection, host, EventLoop::clock_ms());
    exchange.receive();
    exchange.serve(services);
    while (!host.done && loop.run_once()) {
        if (host.stop_requested) exchange.stop();
    }
    write_access_log(exchange.log_entry(), config.log_format);
    // A CGI program cannot make the web server cut its client: a broken stream ends with
    // its error event, and the exit status tells the web server's log.
    return exchange.cut() ? 1 : 0;
}

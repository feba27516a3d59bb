// The FastCGI engine's event loop (fastcgi_loop.cpp): what every loop of a process shares,
// and one loop's share of the work. Internal to the engine: see engine.h for its shape.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "fastcgi_session.h"
#include "log_buffer.h"
#include "shared_state.h"
#include "unique_fd.h"
#include "upstream.h"

namespace engine_detail {

const size_t kScratchBytes = 64 * 1024;       // what a lingering session reads and drops at a time

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
    // Peers FCGI_WEB_SERVER_ADDRS does not name, refused since the last line that said so.
    std::atomic<long> peers_refused{0};
    std::atomic<int64_t> peers_refused_said_ms{0};
    std::mutex spare_mutex;
    UniqueFd spare;             // given up to accept (and close) one connection at EMFILE
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
          deadlines(process.config), scratch(kScratchBytes), acceptor_(*this, &Loop::accept_one),
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
    std::vector<unsigned char> scratch;  // bytes read to be dropped (one session at a time)
    // Before the sessions: a retired session's exchange gives its memory back to it.
    ExchangeRoom exchange_room;
    bool stopping = false;
    size_t readers = 0;  // sessions on reader threads

private:
    void shed_connection();
    bool refuse_peer(const sockaddr_storage& peer);

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

}  // namespace engine_detail

// One thread's event loop: epoll for descriptors, an eventfd for work posted from other
// threads, and timers that say when they are next due. It sleeps until a descriptor is
// ready or the first timer falls due, never on a fixed tick.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "unique_fd.h"

class EventHandler {
public:
    virtual ~EventHandler() = default;
    virtual void on_event(uint32_t events) = 0;
};

// Descriptors the loop does not own a handler object for (libcurl's sockets): events
// arrive with the descriptor number.
class SocketHandler {
public:
    virtual ~SocketHandler() = default;
    virtual void on_socket_event(int fd, uint32_t events) = 0;
};

class TimerSource {
public:
    virtual ~TimerSource() = default;
    virtual int64_t next_due_ms() const = 0;  // DeadlineQueue::kNever when nothing is due
    virtual void fire(int64_t now_ms) = 0;    // acts on everything due by now_ms
};

class EventLoop {
public:
    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    bool ok() const { return epoll_.valid() && wake_.valid(); }

    // A handler must stay alive until the end of the iteration in which it is unwatched
    // (events already collected may still name it): see defer().
    bool watch(int fd, uint32_t events, EventHandler* handler);
    bool rewatch(int fd, uint32_t events, EventHandler* handler);
    void unwatch(int fd);
    bool watch_socket(int fd, uint32_t events, bool already_watched);
    void set_socket_handler(SocketHandler* handler) { sockets_ = handler; }
    void add_timer(TimerSource* timer) { timers_.push_back(timer); }

    // Work from any thread, run on this loop's thread at its next iteration.
    void post(std::function<void()> work);
    // Work run at the end of the current iteration, after every event of it: flushing
    // what the iteration wrote, freeing what it finished.
    void defer(std::function<void()> work) { deferred_.push_back(std::move(work)); }

    // One iteration: waits for events (at most `max_wait_ms`, -1: until one comes),
    // handles them, fires due timers, runs deferred work.
    bool run_once(int max_wait_ms = -1);

    // Milliseconds on the monotonic clock, read once per iteration.
    int64_t now_ms() const { return now_ms_; }
    static int64_t clock_ms();

private:
    int wait_timeout(int max_wait_ms) const;
    void run_posted();

    UniqueFd epoll_;
    UniqueFd wake_;
    SocketHandler* sockets_ = nullptr;
    std::vector<TimerSource*> timers_;
    std::vector<std::function<void()>> deferred_;
    std::vector<std::function<void()>> running_;  // the deferred work being run
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    int64_t now_ms_;
};

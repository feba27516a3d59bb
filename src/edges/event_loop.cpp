#include "event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "deadline_queue.h"

namespace {

// epoll_event.data: a handler pointer (8-byte aligned, low bit 0), the wake-up eventfd
// (kWake), or a libcurl socket as (fd << 1) | 1.
const uint64_t kWake = 2;
const int kMaxEvents = 256;

uint64_t socket_token(int fd) { return (static_cast<uint64_t>(fd) << 1) | 1; }

}  // namespace

int64_t EventLoop::clock_ms() {
    timespec now;
    // Fails only with a bad clock id or pointer: never here. Were it to, every deadline
    // would be wrong, so it stops the process loudly rather than serve without them.
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) {
        std::perror("azure-openai-proxy: clock_gettime(CLOCK_MONOTONIC)");
        std::abort();
    }
    return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

EventLoop::EventLoop()
    : epoll_(epoll_create1(EPOLL_CLOEXEC)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      now_ms_(clock_ms()) {
    if (!ok()) return;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kWake;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event) != 0) wake_.reset();
}

bool EventLoop::watch(int fd, uint32_t events, EventHandler* handler) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = handler;
    return epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) == 0;
}

bool EventLoop::rewatch(int fd, uint32_t events, EventHandler* handler) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = handler;
    return epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) == 0;
}

void EventLoop::unwatch(int fd) {
    epoll_event unused{};
    // ENOENT and EBADF: already gone (closing a descriptor removes it). Anything else
    // would leave a closed descriptor's events coming: said once a time it happens.
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, &unused) != 0 && errno != ENOENT && errno != EBADF)
        std::fprintf(stderr, "azure-openai-proxy: epoll_ctl(DEL, %d): %s\n", fd, std::strerror(errno));
}

bool EventLoop::watch_socket(int fd, uint32_t events, bool already_watched) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = socket_token(fd);
    if (epoll_ctl(epoll_.get(), already_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0)
        return true;
    // libcurl may close a socket and open another with the same number without telling.
    int retry = errno == ENOENT ? EPOLL_CTL_ADD : errno == EEXIST ? EPOLL_CTL_MOD : -1;
    return retry >= 0 && epoll_ctl(epoll_.get(), retry, fd, &event) == 0;
}

void EventLoop::post(std::function<void()> work) {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(work));
    }
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof one);  // EAGAIN: a wake-up is pending
    (void)ignored;
}

void EventLoop::run_posted() {
    uint64_t count;
    ssize_t ignored = ::read(wake_.get(), &count, sizeof count);
    (void)ignored;
    std::vector<std::function<void()>> work;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        work.swap(posted_);
    }
    for (auto& item : work) item();
}

int EventLoop::wait_timeout(int max_wait_ms) const {
    int64_t due = DeadlineQueue::kNever;
    for (const TimerSource* timer : timers_) due = std::min(due, timer->next_due_ms());
    if (due == DeadlineQueue::kNever) return max_wait_ms;
    int64_t wait = std::max<int64_t>(0, due - clock_ms());
    if (max_wait_ms >= 0) wait = std::min<int64_t>(wait, max_wait_ms);
    return static_cast<int>(std::min<int64_t>(wait, 3600 * 1000));
}

bool EventLoop::run_once(int max_wait_ms) {
    epoll_event events[kMaxEvents];
    int ready = epoll_wait(epoll_.get(), events, kMaxEvents, wait_timeout(max_wait_ms));
    if (ready < 0 && errno != EINTR) {
        std::perror("azure-openai-proxy: epoll_wait");
        return false;
    }
    now_ms_ = clock_ms();
    for (int i = 0; i < ready; ++i) {
        uint64_t token = events[i].data.u64;
        if (token == kWake)
            run_posted();
        else if (token & 1)
            sockets_->on_socket_event(static_cast<int>(token >> 1), events[i].events);
        else
            static_cast<EventHandler*>(events[i].data.ptr)->on_event(events[i].events);
    }
    for (TimerSource* timer : timers_)
        if (timer->next_due_ms() <= now_ms_) timer->fire(now_ms_);
    // Deferred work may defer more (a flush that finishes a request): run until none is left.
    // Both vectors keep their capacity from one iteration to the next: no allocation.
    while (!deferred_.empty()) {
        running_.swap(deferred_);
        for (auto& item : running_) item();
        running_.clear();
    }
    return true;
}

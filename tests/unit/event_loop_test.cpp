// The epoll loop on its own: a readable pipe calls its handler, an unwatched one no more;
// a socket watched for libcurl reaches the socket handler with its number; a timer fires
// when due and wakes a loop that would otherwise wait forever; work posted from another
// thread runs at the next iteration, deferred work after the iteration's events.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "deadline_queue.h"
#include "event_loop.h"
#include "unique_fd.h"

namespace {

// Both ends of a pipe, the read end non-blocking.
struct Pipe {
    Pipe() {
        int ends[2];
        BOOST_REQUIRE(pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0);
        read_end.reset(ends[0]);
        write_end.reset(ends[1]);
    }
    void put(const std::string& bytes) {
        BOOST_REQUIRE(::write(write_end.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }
    UniqueFd read_end, write_end;
};

// Counts its calls and drains the pipe it reads, so a level-triggered event ends.
class CountingHandler : public EventHandler {
public:
    explicit CountingHandler(int fd) : fd_(fd) {}
    void on_event(uint32_t events) override {
        ++calls;
        last_events = events;
        char buffer[64];
        while (::read(fd_, buffer, sizeof buffer) > 0) {
        }
    }
    int calls = 0;
    uint32_t last_events = 0;

private:
    int fd_;
};

class RecordingSockets : public SocketHandler {
public:
    void on_socket_event(int fd, uint32_t events) override { seen.push_back({fd, events}); }
    std::vector<std::pair<int, uint32_t>> seen;
};

// Due once at `due_ms`; records when it fired.
class OneShotTimer : public TimerSource {
public:
    explicit OneShotTimer(int64_t due_ms) : due_ms_(due_ms) {}
    int64_t next_due_ms() const override { return due_ms_; }
    void fire(int64_t now_ms) override {
        ++fired;
        fired_at_ms = now_ms;
        due_ms_ = DeadlineQueue::kNever;
    }
    int fired = 0;
    int64_t fired_at_ms = 0;

private:
    int64_t due_ms_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(event_loop)

BOOST_AUTO_TEST_CASE(a_readable_pipe_calls_its_handler) {
    EventLoop loop;
    BOOST_REQUIRE(loop.ok());
    Pipe pipe;
    CountingHandler handler(pipe.read_end.get());
    BOOST_REQUIRE(loop.watch(pipe.read_end.get(), EPOLLIN, &handler));

    BOOST_REQUIRE(loop.run_once(0));
    BOOST_TEST(handler.calls == 0);  // nothing to read yet

    pipe.put("x");
    BOOST_REQUIRE(loop.run_once(1000));
    BOOST_TEST(handler.calls == 1);
    BOOST_TEST((handler.last_events & EPOLLIN) != 0u);
}

BOOST_AUTO_TEST_CASE(an_unwatched_descriptor_calls_no_more) {
    EventLoop loop;
    Pipe pipe;
    CountingHandler handler(pipe.read_end.get());
    BOOST_REQUIRE(loop.watch(pipe.read_end.get(), EPOLLIN, &handler));
    pipe.put("a");
    BOOST_REQUIRE(loop.run_once(1000));
    BOOST_REQUIRE(handler.calls == 1);

    loop.unwatch(pipe.read_end.get());
    pipe.put("b");
    BOOST_REQUIRE(loop.run_once(20));
    BOOST_TEST(handler.calls == 1);
    loop.unwatch(pipe.read_end.get());  // twice: already gone, said nowhere, no harm
}

BOOST_AUTO_TEST_CASE(rewatch_changes_what_is_waited_for) {
    EventLoop loop;
    Pipe pipe;
    CountingHandler handler(pipe.read_end.get());
    BOOST_REQUIRE(loop.watch(pipe.read_end.get(), EPOLLIN, &handler));
    BOOST_REQUIRE(loop.rewatch(pipe.read_end.get(), 0, &handler));  // nothing wanted
    pipe.put("x");
    BOOST_REQUIRE(loop.run_once(20));
    BOOST_TEST(handler.calls == 0);
    BOOST_REQUIRE(loop.rewatch(pipe.read_end.get(), EPOLLIN, &handler));
    BOOST_REQUIRE(loop.run_once(1000));
    BOOST_TEST(handler.calls == 1);
}

BOOST_AUTO_TEST_CASE(a_watched_socket_reaches_the_socket_handler_by_number) {
    EventLoop loop;
    RecordingSockets sockets;
    loop.set_socket_handler(&sockets);
    Pipe pipe;
    BOOST_REQUIRE(loop.watch_socket(pipe.read_end.get(), EPOLLIN, false));
    // Told "already watched" when it is not (libcurl reuses numbers): added anyway.
    Pipe other;
    BOOST_REQUIRE(loop.watch_socket(other.read_end.get(), EPOLLIN, true));
    pipe.put("x");
    other.put("y");
    BOOST_REQUIRE(loop.run_once(1000));
    BOOST_REQUIRE(sockets.seen.size() == 2u);
    std::vector<int> numbers{sockets.seen[0].first, sockets.seen[1].first};
    std::sort(numbers.begin(), numbers.end());
    std::vector<int> expected{pipe.read_end.get(), other.read_end.get()};
    std::sort(expected.begin(), expected.end());
    BOOST_TEST(numbers == expected, boost::test_tools::per_element());
    BOOST_TEST((sockets.seen[0].second & EPOLLIN) != 0u);
}

BOOST_AUTO_TEST_CASE(a_timer_wakes_a_loop_that_would_wait_forever) {
    EventLoop loop;
    int64_t start = EventLoop::clock_ms();
    OneShotTimer timer(start + 30);
    loop.add_timer(&timer);
    // -1: no bound of its own; only the timer's due time ends the wait.
    for (int i = 0; i < 10 && !timer.fired; ++i) BOOST_REQUIRE(loop.run_once(-1));
    BOOST_TEST(timer.fired == 1);
    BOOST_TEST(timer.fired_at_ms >= start + 30);
    BOOST_TEST(EventLoop::clock_ms() - start < 1000);
    BOOST_TEST(loop.now_ms() == timer.fired_at_ms);
}

BOOST_AUTO_TEST_CASE(a_timer_not_due_does_not_fire) {
    EventLoop loop;
    OneShotTimer timer(EventLoop::clock_ms() + 60000);
    loop.add_timer(&timer);
    BOOST_REQUIRE(loop.run_once(10));
    BOOST_TEST(timer.fired == 0);
}

BOOST_AUTO_TEST_CASE(posted_work_runs_on_the_loop_at_its_next_iteration) {
    EventLoop loop;
    std::thread::id ran_on;
    int runs = 0;
    std::thread poster([&] { loop.post([&] { ++runs, ran_on = std::this_thread::get_id(); }); });
    poster.join();
    BOOST_TEST(runs == 0);  // not before the loop turns
    BOOST_REQUIRE(loop.run_once(1000));
    BOOST_TEST(runs == 1);
    BOOST_TEST((ran_on == std::this_thread::get_id()));
    BOOST_REQUIRE(loop.run_once(0));
    BOOST_TEST(runs == 1);  // once only
}

BOOST_AUTO_TEST_CASE(deferred_work_runs_after_the_events_and_may_defer_more) {
    EventLoop loop;
    Pipe pipe;
    std::vector<std::string> order;
    struct Handler : EventHandler {
        EventLoop& loop;
        std::vector<std::string>& order;
        int fd;
        Handler(EventLoop& l, std::vector<std::string>& o, int f) : loop(l), order(o), fd(f) {}
        void on_event(uint32_t) override {
            char byte;
            while (::read(fd, &byte, 1) > 0) {
            }
            order.push_back("event");
            loop.defer([this] {
                order.push_back("deferred");
                loop.defer([this] { order.push_back("deferred by deferred"); });
            });
        }
    } handler(loop, order, pipe.read_end.get());
    BOOST_REQUIRE(loop.watch(pipe.read_end.get(), EPOLLIN, &handler));
    pipe.put("x");
    BOOST_REQUIRE(loop.run_once(1000));
    std::vector<std::string> expected{"event", "deferred", "deferred by deferred"};
    BOOST_TEST(order == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

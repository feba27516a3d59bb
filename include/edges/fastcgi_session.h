// One request of the FastCGI engine on its connection (a Session), and the deadlines of a
// loop's sessions. Shared by the loop (fastcgi_loop.cpp) and the session's two halves:
// reading a request (fastcgi_session_reading.cpp), serving, ending and closing it
// (fastcgi_session_serving.cpp). Internal to the engine: see engine.h for its shape.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "config.h"
#include "event_loop.h"
#include "exchange.h"
#include "fastcgi.h"
#include "unique_fd.h"

namespace engine_detail {

const uint32_t kSessionEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
const size_t kDrainLimit = 1 << 20;           // unread request bytes discarded at close

// shutdown(2), its failure logged unless the web server already left (ENOTCONN).
bool shut_down(int fd, int how);

class Loop;

// Exchanges' memory kept by a loop across its requests (an Exchange is 3 KiB: a new
// block of that size costs malloc a search of its bins and often a consolidation, each
// request). A request's exchange is constructed anew in a kept block, so nothing of the
// last request's is left. A loop keeps as many blocks as it served at once lately, up to
// kSpares (several requests overlap on a loop). Used on the loop's thread only.
class ExchangeRoom {
public:
    static const size_t kSpares = 8;

    ExchangeRoom() = default;
    ExchangeRoom(const ExchangeRoom&) = delete;
    ExchangeRoom& operator=(const ExchangeRoom&) = delete;
    ~ExchangeRoom();

    // Memory for one Exchange: a spare, or (none, or `on_loop` false: a reader thread's) a
    // new block.
    void* take(bool on_loop);
    // An exchange's memory after its destructor ran: kept as a spare, or freed.
    void give_back(void* memory);

private:
    void* spares_[kSpares] = {};
    size_t count_ = 0;
};

// Destroys an exchange and gives its memory back to its loop's room.
struct ExchangeInRoom {
    ExchangeRoom* room = nullptr;
    void operator()(Exchange* exchange) const {
        exchange->~Exchange();
        room->give_back(exchange);
    }
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
    bool counted() const { return counted_; }

    std::list<std::unique_ptr<Session>>::iterator place;  // in its loop's sessions
    DeadlineLink deadline;  // in at most one of the loop's session queues

private:
    // Where the session is; every event, deadline and stop is handled by its phase.
    enum class Phase {
        KeptIdle,   // a kept connection no byte of the next request has reached yet
        Reading,    // the request arriving, read on the loop as it comes
        Reader,     // the request arriving on a reader thread: the loop leaves it alone
        Serving,    // the exchange at work, its answer flushed as the web server takes it
        Ending,     // the answer's end (END_REQUEST, or a cut) on its way out
        Lingering,  // closed for writing, the rest of the body read and dropped
        Closed,     // released to the loop, destroyed at the iteration's end
    };

    void on_readable(uint32_t events);
    void start_here();
    void drop_unserved();
    bool open_request();
    void open_exchange(bool on_loop);
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
    std::unique_ptr<Exchange, ExchangeInRoom> exchange_;  // after connection_: destroyed first
    Phase phase_;
    // Facts beside the phase, each true in more than one phase or only in part of one, so
    // none is a phase of its own:
    bool over_limit_;        // refused 503 once its params are in (more requests than allowed)
    bool counted_;           // counted in the process's open requests (kept: from its first byte)
    bool watching_out_ = false;  // EPOLLOUT asked for: the web server's socket was full
    bool flush_queued_ = false;  // a flush deferred to the iteration's end (one at a time)
    bool end_queued_ = false;    // the end deferred to the iteration's end (Serving until then)
    // What came of the request's bytes, looked at when it ends:
    bool all_read_ = false;  // every byte of the request was read
    bool skipped_ = false;   // the unread rest of the body was read and dropped (or tried)
    bool pipelined_ = false; // bytes beyond the request came before its answer ended
    size_t seen_ = 0;        // request bytes seen so far while reading
    bool params_arrived_ = false;  // all of the request's params have arrived
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

}  // namespace engine_detail

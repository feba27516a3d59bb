// The FastCGI edge: one connection from the web server, its records read (FastCgiInput,
// the core's) and written here. Reads and writes block, and one event loop serves
// thousands of requests, so this class makes them only when they cannot block:
//   - reading, without waiting what has arrived, until the whole request (params and
//     body) is in; or on a reader thread, where waiting harms no one else;
//   - writing, within a budget of bytes the socket is known to have room for, refilled
//     each time the loop sees it writable. Past the budget the answer waits here (and
//     the upstream transfer pauses) until the web server drains.
#pragma once

#include <atomic>
#include <string>

#include "connection.h"
#include "fastcgi_frames.h"
#include "fastcgi_input.h"
#include "unique_fd.h"

// Bytes of answer written between two sightings of a writable socket, framing and the
// kernel's per-write overhead included: a fraction of the smallest send buffer a
// connection gets (see fastcgi_prepare_listener).
constexpr size_t kWriteBudget = 64 * 1024;
constexpr size_t kWriteOverhead = 1024;  // kernel memory one write costs beyond its bytes

// Makes sure connections accepted on `listen_fd` get send buffers the budget fits in;
// false (with `error`) when the listening descriptor is unusable.
bool fastcgi_prepare_listener(int listen_fd, std::string& error);

class FastCgiConnection : public Connection {
public:
    explicit FastCgiConnection(UniqueFd fd);
    ~FastCgiConnection() override;
    FastCgiConnection(const FastCgiConnection&) = delete;
    FastCgiConnection& operator=(const FastCgiConnection&) = delete;

    int fd() const { return fd_.get(); }

    // Reads what the web server has sent so far, without waiting, until `limit` bytes of
    // it are held here, and looks how much of the request that is. `held` says how many
    // bytes are held; `closed`, that the web server closed its side or the connection broke.
    RequestScan read_arrived(size_t limit, size_t& held, bool& closed);

    // The request's params; false on a protocol error or a connection closed early.
    // Blocks unless read_arrived() saw params_end.
    bool read_params();
    bool body_consumed() const { return body_done_; }
    // Reads and drops what is left of the body and already in the socket, at most `limit`
    // bytes, without waiting for more; body_consumed() says whether it got to the end.
    // Either way, nothing more is read from the request.
    void skip_waiting_body(size_t limit);
    bool keep_asked() const { return input_.keep_connection(); }
    // Whether the web server has sent bytes beyond this request: still unread in the
    // socket, or read with it.
    bool bytes_waiting() const;

    const CgiParams& params() const override { return input_.params(); }
    bool params_plain() const override { return input_.params_plain(); }
    void release_params() override;
    long read_body(char* buffer, size_t size) override;
    bool can_take(size_t size) const override;
    bool write(const char* data, size_t size) override;

    // Sends what is buffered within the budget; false once the connection is gone.
    bool flush();
    // Whether written bytes wait for the socket to drain (then: writable()).
    bool blocked() const { return !held_.empty() || failed_; }
    // The loop saw the socket writable: the budget is whole again.
    bool writable();
    // Ends the request (FCGI_END_REQUEST) in one write with what is buffered.
    enum class Finish { Done, Wait, Gone };  // Wait: until writable()
    Finish finish();
    // Sends what is buffered and nothing more: no END_REQUEST. Then break_off().
    Finish cut();
    // Bytes written that the web server has not read yet (0 once it has them all).
    int unread_by_peer() const;
    // Tells the web server the answer is broken (a record no FastCGI version has), so it
    // drops the client's connection instead of ending the answer cleanly.
    void break_off();
    // A blocking read gave up (SO_RCVTIMEO), or the session's read deadline passed.
    bool read_timed_out() const override { return read_timed_out_; }
    void expire_read() { read_timed_out_ = true; }
    // The web server asked to send more requests on this connection (FCGI_KEEP_CONN:
    // nginx's fastcgi_keep_conn, Apache's enablereuse) and this one's answer ended whole.
    // Whether the request was all read is the caller's to know.
    bool reusable() const { return keep_asked() && ended_whole_ && !failed_; }
    // The connection stays this object's after finish(): close it, or shut its writing
    // side and keep reading what the web server still sends (lingering close).
    UniqueFd take_fd();

private:
    bool fill();
    bool put(const char* data, size_t size);
    bool send_out(bool end);
    bool fits_budget(size_t size) const { return spent_ + size <= kWriteBudget; }

    UniqueFd fd_;
    FastCgiInput input_;
    // The STDOUT record being filled: room for its header, then its content (at most
    // kFastCgiRecordContent); written when full, at a flush, or with the answer's end.
    std::string out_;
    std::string held_;      // answer bytes waiting for the budget to refill
    mutable size_t spent_ = 0;  // budget used since the socket was last seen writable
                                // (can_take() may see it writable again)
    bool dirty_ = false;    // bytes in out_ not yet written
    bool accepted_ = false;
    bool body_done_ = false;
    bool failed_ = false;
    bool finished_ = false;
    bool ended_whole_ = false;  // END_REQUEST written
    std::atomic<bool> read_timed_out_{false};  // set by the loop, read by a reader thread
};

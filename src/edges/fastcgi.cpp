#include "fastcgi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace {

// Send buffer for connections over TCP (inherited from the listener) and, when the
// system's default for unix sockets is smaller, for those: the budget is then at most a
// quarter of what the kernel holds, whatever each write's overhead.
const int kSendBuffer = 256 * 1024;
bool g_raise_unix_send_buffer = false;

// What `size` bytes added to the answer's 8 KiB record cost in the socket once written:
// record framing and the kernel's overhead, counted per full record (a record is written
// when it fills), so that many small pieces do not each count a write.
// A flush of a partly filled buffer adds one more write's overhead (see flush()).
size_t write_cost(size_t size) {
    const size_t per_record = 15 + kWriteOverhead;
    return size + (size * per_record + 8183) / 8184;
}

// Room for an answer's record (a full record, its padding and the end record), kept by
// each thread for its next connections: lighttpd opens a connection a request, and 8 KiB
// made anew for each cost malloc about 800 instructions a request, a search of its bins and
// a merge of its freed small chunks (callgrind, issue 22). A thread keeps as many as the
// connections it ends while others are open need, at most kSpareRooms (8 KiB each).
const size_t kFullRoom = 8 + kFastCgiRecordContent + 7 + kFastCgiEndCost;  // header, content, padding, end
const size_t kSpareRooms = 16;

// A thread's spare rooms of one kind: at most kSpareRooms, the last given back lent first.
template <typename Room>
class SpareShelf {
public:
    bool take(Room& into) {
        if (kept_.empty()) return false;
        into = std::move(kept_.back());
        kept_.pop_back();
        return true;
    }
    void keep(Room&& room) {
        if (kept_.size() < kSpareRooms) kept_.push_back(std::move(room));
    }

private:
    std::vector<Room> kept_;
};

thread_local SpareShelf<std::string> t_spare_rooms;

void take_room(std::string& out) {
    if (!t_spare_rooms.take(out)) out.reserve(kFullRoom);
}

void give_back_room(std::string& out) {
    if (out.capacity() < kFullRoom) return;
    out.clear();
    t_spare_rooms.keep(std::move(out));
}

// The read buffers are kept the same way (kFastCgiReadSize bytes each, as many): a
// request's first read would make one anew.
thread_local SpareShelf<std::unique_ptr<unsigned char[]>> t_spare_read_rooms;

void lend_read_room(FastCgiInput& input) {
    std::unique_ptr<unsigned char[]> room;
    if (!input.has_buffer() && t_spare_read_rooms.take(room)) input.lend_buffer(std::move(room));
}

// And the params' rooms, as many, of a small request's size (larger ones are freed).
thread_local SpareShelf<ParamsRooms> t_spare_params_rooms;

void lend_params_rooms(FastCgiInput& input) {
    ParamsRooms rooms;
    if (t_spare_params_rooms.take(rooms)) input.lend_params_rooms(std::move(rooms));
}

void give_back_params_rooms(ParamsRooms rooms) {
    bool small = rooms.pairs.capacity() <= kFastCgiReadSize && rooms.params.capacity() <= 256;
    if (small) t_spare_params_rooms.keep(std::move(rooms));
}

// A connection's first read takes a read buffer and the params' rooms from the shelves,
// whichever way it reads (on the loop or on a reader thread).
void lend_rooms(FastCgiInput& input) {
    if (input.has_buffer()) return;
    if (input.state() == FastCgiInput::State::Begin) lend_params_rooms(input);
    lend_read_room(input);
}

void give_back_read_room(FastCgiInput& input) {
    std::unique_ptr<unsigned char[]> room = input.release_buffer();
    if (room) t_spare_read_rooms.keep(std::move(room));
}

bool socket_has_room(int fd) {
    pollfd probe = {fd, POLLOUT, 0};
    return poll(&probe, 1, 0) == 1 && (probe.revents & POLLOUT) && !(probe.revents & (POLLERR | POLLHUP));
}

int send_buffer_of(int fd) {
    int size = 0;
    socklen_t length = sizeof size;
    return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &length) == 0 ? size : 0;
}

}  // namespace

bool fastcgi_prepare_listener(int listen_fd, std::string& error) {
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        error = std::string("the listening socket cannot be made non-blocking: ") + std::strerror(errno);
        return false;
    }
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        error = std::string("the listening socket cannot be read: ") + std::strerror(errno);
        return false;
    }
    if (address.ss_family != AF_UNIX) {
        // Accepted TCP connections inherit the listener's send buffer.
        if (send_buffer_of(listen_fd) < kSendBuffer &&
            setsockopt(listen_fd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof kSendBuffer) != 0) {
            error = std::string("the listening socket's send buffer cannot be set: ") + std::strerror(errno);
            return false;
        }
        return true;
    }
    // Unix connections start with the system's default (net.core.wmem_default).
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
        g_raise_unix_send_buffer = send_buffer_of(pair[0]) < 3 * static_cast<int>(kWriteBudget);
        close(pair[0]);
        close(pair[1]);
    }
    return true;
}

FastCgiConnection::FastCgiConnection(UniqueFd fd) : fd_(std::move(fd)) {
    if (g_raise_unix_send_buffer)
        if (setsockopt(fd_.get(), SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof kSendBuffer) != 0)
            failed_ = true;  // its writes could block the loop: answer nothing, close it
}

FastCgiConnection::~FastCgiConnection() {
    give_back_room(out_);
    give_back_read_room(input_);
}

// One read more while a read filled all the room it had: the socket may hold more. A
// shorter read emptied it, and the next bytes wake the loop again (edge-triggered).
RequestScan FastCgiConnection::read_arrived(size_t limit, size_t& held, bool& closed) {
    closed = false;
    lend_rooms(input_);
    while (input_.unread_size() < limit) {
        ssize_t got = recv(fd_.get(), input_.room(), kFastCgiReadSize, MSG_DONTWAIT);
        if (got > 0) {
            input_.filled(static_cast<size_t>(got));
            if (static_cast<size_t>(got) < kFastCgiReadSize) break;
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        closed = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
    }
    held = input_.unread_size();
    return scan_fastcgi_request(input_.unread(), held);
}

// One read of what the web server sent (kFastCgiReadSize at most: a small request's
// first read takes all of it); false when the connection is closed or broken, or a read
// gave up (SO_RCVTIMEO, or nothing there on a non-blocking socket).
bool FastCgiConnection::fill() {
    lend_rooms(input_);
    for (;;) {
        ssize_t got = recv(fd_.get(), input_.room(), kFastCgiReadSize, 0);
        if (got > 0) {
            input_.filled(static_cast<size_t>(got));
            return true;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) read_timed_out_ = true;
        return false;
    }
}

bool FastCgiConnection::read_params() {
    for (;;) {
        FastCgiInput::State state = input_.take();
        if (state == FastCgiInput::State::Failed) return false;
        if (state == FastCgiInput::State::Body || state == FastCgiInput::State::Ended) break;
        if (!fill()) return false;
    }
    accepted_ = true;
    return true;
}

// The request holds what it needs of the params: their buffer goes.
void FastCgiConnection::release_params() { give_back_params_rooms(input_.release_params()); }

long FastCgiConnection::read_body(char* buffer, size_t size) {
    if (body_done_) return 0;
    size_t got = 0;
    while (got < size) {
        FastCgiInput::State state = input_.take();
        if (state == FastCgiInput::State::Failed) return -1;
        size_t piece = input_.body(buffer + got, size - got);
        got += piece;
        if (piece > 0) continue;
        if (state == FastCgiInput::State::Ended) {
            body_done_ = true;
            give_back_read_room(input_);  // its 8 KiB are not needed here any more
            break;
        }
        if (!fill()) return -1;
    }
    return static_cast<long>(got);
}

// Reads block; on a non-blocking socket one that finds nothing fails the body (EAGAIN),
// which is then done with anyway.
void FastCgiConnection::skip_waiting_body(size_t limit) {
    int flags = fcntl(fd_.get(), F_GETFL);
    if (flags < 0 || fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) != 0) return;
    char dropped[16384];
    size_t total = 0;
    long got;
    while (total <= limit && (got = read_body(dropped, sizeof dropped)) > 0) total += static_cast<size_t>(got);
    read_timed_out_ = false;  // an EAGAIN here is no timeout
    if (fcntl(fd_.get(), F_SETFL, flags) != 0) failed_ = true;  // its writes could not be trusted
}

bool FastCgiConnection::bytes_waiting() const {
    if (input_.read_past_end()) return true;
    int unread = 0;
    return ioctl(fd_.get(), FIONREAD, &unread) == 0 && unread > 0;
}

bool FastCgiConnection::can_take(size_t size) const {
    if (!held_.empty() || failed_) return false;
    if (fits_budget(write_cost(size))) return true;
    // Spent: a web server that reads as fast as we write leaves room in the socket, and
    // one look (poll) refills the budget without pausing the upstream transfer.
    if (!socket_has_room(fd_.get())) return false;
    spent_ = 0;
    return fits_budget(write_cost(size));
}

bool FastCgiConnection::put(const char* data, size_t size) {
    // A full record is written at once: within the budget, never blocking.
    spent_ += write_cost(size);
    dirty_ = true;
    while (size > 0) {
        if (out_.empty()) {
            if (out_.capacity() < kFullRoom) take_room(out_);
            out_.assign(8, '\0');
        }
        size_t piece = std::min(size, 8 + kFastCgiRecordContent - out_.size());
        out_.append(data, piece);
        data += piece;
        size -= piece;
        if (out_.size() == 8 + kFastCgiRecordContent && !send_out(false)) return false;
    }
    return true;
}

// Writes the record being filled (if it holds anything) and, with `end`, the answer's end;
// blocking until all of it is out, which the budget makes immediate.
bool FastCgiConnection::send_out(bool end) {
    uint16_t id = input_.request_id();
    if (out_.size() > 8) {
        size_t content = out_.size() - 8;
        size_t padding = fastcgi_padding(content);
        put_fastcgi_header(&out_[0], kFastCgiStdout, id, content, padding);
        out_.append(padding, '\0');
    } else {
        out_.clear();
    }
    if (end) append_fastcgi_end(out_, id);
    size_t sent = 0;
    while (sent < out_.size()) {
        ssize_t wrote = ::send(fd_.get(), out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) {
            failed_ = true;
            return false;
        }
        sent += static_cast<size_t>(wrote);
    }
    out_.clear();
    return true;
}

bool FastCgiConnection::write(const char* data, size_t size) {
    if (failed_ || !accepted_) return false;
    if (held_.empty() && fits_budget(write_cost(size))) return put(data, size);
    held_.append(data, size);
    return true;
}

bool FastCgiConnection::flush() {
    if (dirty_ && !failed_) {
        dirty_ = false;
        spent_ += 16 + kWriteOverhead;  // a partly filled record: its header, padding, a write
        send_out(false);
    }
    return !failed_;
}

bool FastCgiConnection::writable() {
    spent_ = 0;
    size_t moved = 0;
    while (moved < held_.size() && !failed_) {
        size_t piece = std::min<size_t>(held_.size() - moved, 8184);
        if (!fits_budget(write_cost(piece)) || !put(held_.data() + moved, piece)) break;
        moved += piece;
    }
    held_.erase(0, moved);
    return flush();
}

FastCgiConnection::Finish FastCgiConnection::finish() {
    if (finished_) return Finish::Done;
    if (failed_ || !accepted_) return Finish::Gone;
    if (!held_.empty() || !fits_budget(kFastCgiEndCost + kWriteOverhead)) return Finish::Wait;
    finished_ = true;
    // The empty STDOUT record and END_REQUEST join what is buffered: for a short answer,
    // the whole answer is one write.
    bool failed = !send_out(true);
    ended_whole_ = !failed;
    return failed ? Finish::Gone : Finish::Done;
}

FastCgiConnection::Finish FastCgiConnection::cut() {
    if (finished_) return Finish::Done;
    if (failed_ || !accepted_) return Finish::Gone;
    if (!held_.empty()) return Finish::Wait;
    if (!flush()) return Finish::Gone;
    finished_ = true;
    return Finish::Done;
}

int FastCgiConnection::unread_by_peer() const {
    int unread = 0;
    return ioctl(fd_.get(), TIOCOUTQ, &unread) == 0 ? unread : 0;
}

// A connection closed without END_REQUEST is not enough: nginx ends the client's answer
// cleanly when a FastCGI connection just closes. A record of an unknown protocol version
// is an error to every web server, which then drops the client's connection without the
// final chunk.
void FastCgiConnection::break_off() {
    static const unsigned char kBrokenRecord[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ssize_t ignored = ::send(fd_.get(), kBrokenRecord, sizeof kBrokenRecord, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;  // a web server already gone needs no telling
}

UniqueFd FastCgiConnection::take_fd() { return std::move(fd_); }

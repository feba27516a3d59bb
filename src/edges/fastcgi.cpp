#include "fastcgi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace {

// Send buffer for connections over TCP (inherited from the listener) and, when the
// system's default for unix sockets is smaller, for those: the budget is then at most a
// quarter of what the kernel holds, whatever each write's overhead.
const int kSendBuffer = 256 * 1024;
bool g_raise_unix_send_buffer = false;

// What `size` bytes added to libfcgi's 8 KiB buffer cost in the socket once written:
// record framing and the kernel's overhead, counted per full record (libfcgi writes a
// record when its buffer fills), so that many small pieces do not each count a write.
// A flush of a partly filled buffer adds one more write's overhead (see flush()).
size_t write_cost(size_t size) {
    const size_t per_record = 15 + kWriteOverhead;
    return size + (size * per_record + 8183) / 8184;
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

FastCgiConnection::FastCgiConnection(UniqueFd fd) {
    FCGX_InitRequest(&request_, -1, 0);  // no listening socket: libfcgi never accepts itself
    request_.ipcFd = fd.release();
    // The connection stays ours after the request (keepConnection), and libfcgi never
    // closes it with its drain-before-close wait of up to 2 s (detached).
    request_.keepConnection = 1;
    request_.detached = 1;
    if (g_raise_unix_send_buffer)
        if (setsockopt(request_.ipcFd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof kSendBuffer) != 0)
            failed_ = true;  // its writes could block the loop: answer nothing, close it
}

FastCgiConnection::~FastCgiConnection() {
    request_.detached = 1;
    FCGX_Free(&request_, 1);  // frees streams and params; closes the connection if still held
}

RequestScan FastCgiConnection::peek(std::vector<unsigned char>& scratch, size_t& seen) const {
    seen = 0;
    ssize_t got = recv(request_.ipcFd, scratch.data(), scratch.size(), MSG_PEEK | MSG_DONTWAIT);
    RequestScan scan;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return scan;
    if (got <= 0) {  // closed or broken: libfcgi finds that out without waiting
        scan.state = RequestScan::Malformed;
        return scan;
    }
    seen = static_cast<size_t>(got);
    scan = scan_fastcgi_request(scratch.data(), seen);
    params_hold_nul_ = scan.params_hold_nul;
    return scan;
}

bool FastCgiConnection::read_params() {
    // On failure libfcgi closes the connection and, having no listening socket, returns.
    if (FCGX_Accept_r(&request_) != 0) return false;
    keep_asked_ = request_.keepConnection != 0;
    request_.keepConnection = 1;  // the connection stays ours: the session closes or keeps it
    request_.detached = 1;
    accepted_ = true;
    params_ = params_from_envp(request_.envp);
    drop_error_stream();
    return true;
}

// Nothing is ever written to FCGI_STDERR (errors go to the log), so the error stream is
// closed at once and its buffer freed rather than held to the answer's end. Closing an
// error stream nothing was written to sends nothing, and leaves END_REQUEST to the
// output stream's close (libfcgi sends it with the close of the last open writer).
void FastCgiConnection::drop_error_stream() {
    if (FCGX_FClose(request_.err) != 0) failed_ = true;
    FCGX_FreeStream(&request_.err);
}

// The request holds what it needs of the params: ours go, and libfcgi's own copy too (a
// few dozen small allocations a stream would hold to its end). FCGX_Free frees the params
// and whatever streams it is given: here none (the error stream went with read_params).
void FastCgiConnection::release_params() {
    CgiParams().swap(params_);
    FCGX_Stream* in = request_.in;
    FCGX_Stream* out = request_.out;
    request_.in = request_.out = nullptr;
    FCGX_Free(&request_, 0);
    request_.envp = nullptr;
    request_.in = in;
    request_.out = out;
}

long FastCgiConnection::read_body(char* buffer, size_t size) {
    if (body_done_) return 0;
    int got = FCGX_GetStr(buffer, static_cast<int>(size), request_.in);
    if (got < static_cast<int>(size)) {
        int error = FCGX_GetError(request_.in);
        if (error == EAGAIN || error == EWOULDBLOCK) read_timed_out_ = true;  // SO_RCVTIMEO
        if (error != 0) return -1;
        body_done_ = true;
        FCGX_FreeStream(&request_.in);  // its 8 KiB buffer is not needed any more
    }
    return got;
}

// libfcgi's reads block; on a non-blocking socket one that finds nothing fails the stream
// (EAGAIN), which is then done with anyway.
void FastCgiConnection::skip_waiting_body(size_t limit) {
    int flags = fcntl(request_.ipcFd, F_GETFL);
    if (flags < 0 || fcntl(request_.ipcFd, F_SETFL, flags | O_NONBLOCK) != 0) return;
    char dropped[16384];
    size_t total = 0;
    long got;
    while (total <= limit && (got = read_body(dropped, sizeof dropped)) > 0) total += static_cast<size_t>(got);
    read_timed_out_ = false;  // an EAGAIN here is no timeout
    if (fcntl(request_.ipcFd, F_SETFL, flags) != 0) failed_ = true;  // its writes could not be trusted
}

bool FastCgiConnection::bytes_waiting() const {
    int unread = 0;
    return ioctl(request_.ipcFd, FIONREAD, &unread) == 0 && unread > 0;
}

bool FastCgiConnection::can_take(size_t size) const {
    if (!held_.empty() || failed_) return false;
    if (fits_budget(write_cost(size))) return true;
    // Spent: a web server that reads as fast as we write leaves room in the socket, and
    // one look (poll) refills the budget without pausing the upstream transfer.
    if (!socket_has_room(request_.ipcFd)) return false;
    spent_ = 0;
    return fits_budget(write_cost(size));
}

bool FastCgiConnection::put(const char* data, size_t size) {
    // libfcgi writes its buffer whenever it fills: within the budget, never blocking.
    if (FCGX_PutStr(data, static_cast<int>(size), request_.out) != static_cast<int>(size)) {
        failed_ = true;
        return false;
    }
    spent_ += write_cost(size);
    dirty_ = true;
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
        if (FCGX_FFlush(request_.out) != 0) failed_ = true;
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
    bool failed = FCGX_FClose(request_.out) != 0;  // the error stream is closed already
    if (failed) failed_ = true;
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
    return ioctl(request_.ipcFd, TIOCOUTQ, &unread) == 0 ? unread : 0;
}

// A connection closed without END_REQUEST is not enough: nginx ends the client's answer
// cleanly when a FastCGI connection just closes. A record of an unknown protocol version
// is an error to every web server, which then drops the client's connection without the
// final chunk.
void FastCgiConnection::break_off() {
    static const unsigned char kBrokenRecord[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ssize_t ignored = ::send(request_.ipcFd, kBrokenRecord, sizeof kBrokenRecord, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;  // a web server already gone needs no telling
}

UniqueFd FastCgiConnection::take_fd() {
    UniqueFd fd(request_.ipcFd);
    request_.ipcFd = -1;
    return fd;
}

// The libcurl edge's driver: the multi handle of a loop (its sockets watched on the loop,
// its timer among the loop's timers), the transfers' deadlines, how a finished transfer
// is told to its listener, and the caches shared between loops. A transfer's own easy
// handle setup and callbacks are in upstream_transfer.cpp, its parsed URL in
// parsed_origins.cpp.
#include "upstream.h"

#include <sys/epoll.h>

#include <cstdio>
#include <algorithm>
#include <mutex>

namespace {

// Reset easy handles a loop keeps for its next transfers (each is a few KiB).
const size_t kSpareEasyHandles = 64;
const size_t kSpareHeads = 16;  // answer heads' storage a loop keeps (about 2 KiB each)
const size_t kKeptRequestLines = 8 * 1024;  // request lines' storage larger than this is not kept
const long kIdleConnections = 128;  // upstream connections a loop keeps alive while idle

// For a libcurl call whose failure leaves nothing to undo but is worth a line in the log.
// True when the call succeeded.
bool logged(const char* call, CURLMcode code) {
    if (code == CURLM_OK) return true;
    std::fprintf(stderr, "azure-openai-proxy: %s: %s\n", call, curl_multi_strerror(code));
    return false;
}

bool logged(const char* call, CURLSHcode code) {
    if (code == CURLSHE_OK) return true;
    std::fprintf(stderr, "azure-openai-proxy: %s: %s\n", call, curl_share_strerror(code));
    return false;
}

UpstreamOutcome outcome_of(CURLcode code, bool refused) {
    switch (code) {
        case CURLE_OK:
            return UpstreamOutcome::Completed;
        case CURLE_OPERATION_TIMEDOUT:  // only the connect timeout is libcurl's
            return UpstreamOutcome::TimedOut;
        case CURLE_WRITE_ERROR:
            return refused ? UpstreamOutcome::ClientGone : UpstreamOutcome::Failed;
        case CURLE_ABORTED_BY_CALLBACK:
            return UpstreamOutcome::ClientGone;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return UpstreamOutcome::DnsFailed;
        case CURLE_COULDNT_CONNECT:
            return UpstreamOutcome::ConnectFailed;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_USE_SSL_FAILED:
            return UpstreamOutcome::TlsFailed;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_UNSUPPORTED_PROTOCOL:
            return UpstreamOutcome::ProtocolError;
        default:
            return UpstreamOutcome::Failed;
    }
}

}  // namespace

// ---- Upstream: the multi handle ----------------------------------------------------------

Upstream::Upstream(EventLoop& loop, const Config& config, CURLSH* share)
    : loop_(loop), config_(config), share_(share), first_byte_(config.first_byte_timeout_s * 1000),
      silence_(config.upstream_timeout_s * 1000), spare_easy_(kSpareEasyHandles) {
    multi_ = curl_multi_init();
    if (!multi_) return;
    if (curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this) != CURLM_OK ||
        curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this) != CURLM_OK ||
        // libcurl's default keeps 4 idle connections per transfer in flight: after a
        // lull, most connections would close and the next burst connect again.
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, kIdleConnections) != CURLM_OK ||
        // No two transfers in flight share an HTTP/2 connection (issue 22): in libcurl
        // 7.88 a paused transfer stops its whole connection. The pause sets the stream's
        // window to 0, but the upstream keeps the 32 MiB of credit libcurl's SETTINGS
        // granted; what arrives beyond the paused transfer's receive buffer stops nghttp2
        // (NGHTTP2_ERR_PAUSE) and every other stream reads nothing (CURLE_AGAIN) until the
        // client drains: a client that stops reading would stall everyone on its
        // connection. Taking the answer instead of pausing would hold it in memory,
        // unbounded. So a connection carries one transfer at a time, as on HTTP/1.1, kept
        // alive for the next. The cost: a connection per transfer in flight (200 streams:
        // 200 connections and about 98 KiB each, against 10 to 29 connections and 30 to
        // 38 KiB per stream multiplexed, 75 to 80 KiB on HTTP/1.1).
        curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_NOTHING) != CURLM_OK) {
        logged("curl_multi_cleanup", curl_multi_cleanup(multi_));
        multi_ = nullptr;
        return;
    }
    loop_.set_socket_handler(this);
    loop_.add_timer(this);
}

Upstream::~Upstream() {
    spare_easy_.clear();  // before the multi handle whose connections they used
    if (multi_) logged("curl_multi_cleanup", curl_multi_cleanup(multi_));
}

std::unique_ptr<Transfer> Upstream::start(const UpstreamRequest& request, const RequestBody& body,
                                          UpstreamListener& listener, std::string& error) {
    std::unique_ptr<Transfer> transfer(new Transfer(*this, listener));
    if (!spare_request_lines_.empty()) {  // storage an earlier transfer's lines used
        transfer->header_text_ = std::move(spare_request_lines_.back().first);
        transfer->header_nodes_ = std::move(spare_request_lines_.back().second);
        spare_request_lines_.pop_back();
        transfer->header_text_.clear();
    }
    add_request_headers(*transfer, request, body);
    transfer->url_ = origins_.parsed(request.url, transfer->url_origin_);
    CURLcode refused = CURLE_OK;
    transfer->easy_ = spare_easy_.take_configured(
        [&](CURL* easy, bool fresh, unsigned left) {
            transfer->easy_ = easy;
            return configure(*transfer, request, body, fresh, left);
        },
        refused);
    if (!transfer->easy_) {
        error = std::string("libcurl refused the request: ") + curl_easy_strerror(refused);
        return nullptr;
    }
    CURLMcode added = curl_multi_add_handle(multi_, transfer->easy_);
    if (added != CURLM_OK) {
        error = std::string("libcurl could not add the transfer: ") + curl_multi_strerror(added);
        return nullptr;
    }
    // libcurl asks, through on_timer, to be driven at once: the loop's next iteration.
    transfer->in_multi_ = true;
    first_byte_.arm(transfer->silence_, loop_.now_ms());
    return transfer;
}

std::unique_ptr<AnswerHead> Upstream::take_spare_head() {
    if (spare_heads_.empty()) return std::make_unique<AnswerHead>();
    std::unique_ptr<AnswerHead> head = std::move(spare_heads_.back());
    spare_heads_.pop_back();
    return head;
}

// A head that made its room larger than most (an answer with a thousand fields) is let go.
void Upstream::give_back_head(std::unique_ptr<AnswerHead> head) {
    const size_t kKeptRoom = 8 * 1024;
    if (spare_heads_.size() < kSpareHeads && head->room() <= kKeptRoom) spare_heads_.push_back(std::move(head));
}

void Upstream::release(Transfer& t) {
    t.silence_.disarm();
    bool reusable = t.reusable_;
    if (t.in_multi_) {
        if (!t.ended_) close_connection_after(t);
        // When it fails, curl_easy_cleanup takes the handle out of the multi handle itself.
        if (!logged("curl_multi_remove_handle", curl_multi_remove_handle(multi_, t.easy_))) reusable = false;
        t.in_multi_ = false;
    }
    if (t.easy_) {
        // The parsed URL goes back to its origin for another transfer: no spare handle points at it.
        if (curl_easy_setopt(t.easy_, CURLOPT_CURLU, nullptr) != CURLE_OK) reusable = false;
        spare_easy_.give_back(t.easy_, reusable, t.left_);
    }
    origins_.give_back(t.url_origin_, std::move(t.url_));
    t.easy_ = nullptr;
    t.headers_ = nullptr;  // its storage is the transfer's own, kept for another when small
    // (Released twice, finished then destroyed, a transfer finds its storage gone the second time.)
    bool kept = t.header_nodes_.capacity() > 0 && t.header_text_.capacity() <= kKeptRequestLines;
    if (kept && spare_request_lines_.size() < kSpareHeads)
        spare_request_lines_.emplace_back(std::move(t.header_text_), std::move(t.header_nodes_));
}

// A transfer the proxy ends (client gone, cut, deadline, a head or a body refused) before
// libcurl ended it: its connection is closed rather than kept. On HTTP/2, libcurl 7.88 queues the stream's
// RST_STREAM in the connection's output buffer and sends it only when the connection is
// next used, so the upstream would go on generating (and billing) the answer; closed, the
// upstream sees the stream end at once. HTTP/1.1 closes such a connection anyway. The
// connection carries no other transfer (CURLPIPE_NOTHING), and libcurl would close none
// that another transfer still used.
void Upstream::close_connection_after(Transfer& t) {
    CURLcode code = curl_easy_setopt(t.easy_, CURLOPT_FORBID_REUSE, 1L);
    t.left_ |= Transfer::kForbidReuse;
    if (code != CURLE_OK)
        std::fprintf(stderr, "azure-openai-proxy: CURLOPT_FORBID_REUSE: %s\n", curl_easy_strerror(code));
}

void Upstream::finish(Transfer& t, UpstreamResult result) {
    result.status = t.status_ >= 200 ? t.status_ : 0;
    result.answered = t.head_delivered_;
    release(t);
    t.listener_.on_done(result);  // may destroy t
}

void Upstream::collect_finished() {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t)) != CURLE_OK || !t) {
            // Not ours to end: its deadline (first byte or silence) ends it.
            std::fprintf(stderr, "azure-openai-proxy: a finished transfer without its owner\n");
            continue;
        }
        CURLcode code = message->data.result;
        // Only a transfer that completed gives its handle back for another: libcurl's error
        // paths leave state behind that curl_easy_reset does not clear (see easy_pool.h), and
        // a new handle costs microseconds once per failed transfer.
        t->reusable_ = code == CURLE_OK;
        t->ended_ = true;
        UpstreamResult result;
        result.outcome = outcome_of(code, t->refused_);
        if (code != CURLE_OK) result.error = t->error_[0] ? t->error_ : curl_easy_strerror(code);
        finish(*t, result);
    }
}

// Per stream event on a TLS HTTP/1.1 upstream (issue 22, strace over 200 streams): two
// recvfrom per TLS record (OpenSSL reads the record's header, then its body), one poll and
// about 0.8 write to the web server; epoll_wait is shared by ~40 events. The poll is
// libcurl 7.88's own: after every read its loop asks whether more is pending, and below
// SSL_pending the socket filter polls the socket (cf_socket_data_pending), whatever events
// it was told. OpenSSL read-ahead with a drain of the records it read ahead (SSL_has_pending
// after each piece, the transfer run again) made it one recvfrom per record, all streams
// whole, but the proxy's CPU over a streaming window did not move (533 against 523 ms for
// 1,000 streams, within the runs' spread), so it was not kept.
void Upstream::act(curl_socket_t fd, int events) {
    int running = 0;
    logged("curl_multi_socket_action", curl_multi_socket_action(multi_, fd, events, &running));
    collect_finished();
}

int curl_socket_events(uint32_t epoll_events, bool http2) {
    // HTTP/2 (issue 22): libcurl 7.88 hands a socket's events to the first of the
    // connection's streams it runs; the others poll the socket themselves. A stream whose
    // request body is still unsent, run on "readable" alone, keeps it for a later event.
    // An upstream that answers from the request's head and resets the stream (RFC 9113
    // 8.1; nginx for an answer that needs no body) closes the stream meanwhile, and
    // libcurl before 8.3 fails the unsent body: CURLE_HTTP2_STREAM, about one small answer
    // in 600 at 16 connections. Told nothing, libcurl polls the socket for every stream and
    // sends the body at once, as curl's own client does: none lost in 97,155. (Measured while
    // streams shared connections; a connection now carries one transfer (the constructor
    // says why), and the exact events were not measured again since.)
    if (http2) return 0;
    int action = 0;
    if (epoll_events & EPOLLIN) action |= CURL_CSELECT_IN;
    if (epoll_events & EPOLLOUT) action |= CURL_CSELECT_OUT;
    if (epoll_events & (EPOLLERR | EPOLLHUP)) action |= CURL_CSELECT_ERR;
    return action;
}

void Upstream::on_socket_event(int fd, uint32_t events) { act(fd, curl_socket_events(events, config_.upstream_http2)); }

int64_t Upstream::next_due_ms() const {
    return std::min({curl_due_ms_, first_byte_.next_due_ms(), silence_.next_due_ms()});
}

void Upstream::fire(int64_t now_ms) {
    if (curl_due_ms_ <= now_ms) {
        curl_due_ms_ = DeadlineQueue::kNever;  // libcurl sets the next one as it goes
        act(CURL_SOCKET_TIMEOUT, 0);
    }
    expire(first_byte_, now_ms, "no answer from the upstream within the first-byte timeout", config_.first_byte_timeout_s);
    expire(silence_, now_ms, "the upstream went silent past the upstream timeout", config_.upstream_timeout_s);
}

void Upstream::expire(DeadlineQueue& queue, int64_t now_ms, const char* what, long seconds) {
    while (DeadlineLink* due = queue.take_due(now_ms)) {
        UpstreamResult result;
        result.outcome = UpstreamOutcome::TimedOut;
        result.error = std::string(what) + " (" + std::to_string(seconds) + " s)";
        finish(*static_cast<Transfer*>(due->owner), result);
    }
}

int Upstream::on_socket(CURL*, curl_socket_t fd, int what, void* self, void* socket_state) {
    Upstream& upstream = *static_cast<Upstream*>(self);
    if (what == CURL_POLL_REMOVE) {
        upstream.loop_.unwatch(fd);
        return curl_multi_assign(upstream.multi_, fd, nullptr) == CURLM_OK ? 0 : -1;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN) events |= EPOLLIN;
    if (what & CURL_POLL_OUT) events |= EPOLLOUT;
    if (!upstream.loop_.watch_socket(fd, events, socket_state != nullptr)) return -1;
    // Any non-null: "watched" (the next call for this socket modifies rather than adds).
    return curl_multi_assign(upstream.multi_, fd, &upstream) == CURLM_OK ? 0 : -1;
}

int Upstream::on_timer(CURLM*, long timeout_ms, void* self) {
    Upstream& upstream = *static_cast<Upstream*>(self);
    // 0, as after a transfer is added: due at the iteration's own time, so the timers' turn
    // of this iteration runs it rather than an epoll_wait that would not wait (a system
    // call most requests paid whenever the clock passed a millisecond meanwhile).
    upstream.curl_due_ms_ = timeout_ms < 0    ? DeadlineQueue::kNever
                            : timeout_ms == 0 ? upstream.loop_.now_ms()
                                              : EventLoop::clock_ms() + timeout_ms;
    return 0;
}

// ---- caches shared between loops ---------------------------------------------------------

namespace {

std::mutex g_share_locks[CURL_LOCK_DATA_LAST];

void lock_share(CURL*, curl_lock_data data, curl_lock_access, void*) { g_share_locks[data].lock(); }
void unlock_share(CURL*, curl_lock_data data, void*) { g_share_locks[data].unlock(); }

}  // namespace

SharedCaches::SharedCaches() : share_(curl_share_init()) {
    if (!share_) return;
    bool ok = curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, lock_share) == CURLSHE_OK &&
              curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, unlock_share) == CURLSHE_OK &&
              curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK &&
              curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK;
    if (!ok) {
        logged("curl_share_cleanup", curl_share_cleanup(share_));
        share_ = nullptr;  // each loop keeps its own caches: slower to warm, still correct
    }
}

SharedCaches::~SharedCaches() {
    if (share_) logged("curl_share_cleanup", curl_share_cleanup(share_));
}

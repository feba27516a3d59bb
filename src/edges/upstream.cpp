#include "upstream.h"

#include <sys/epoll.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <mutex>

#include "text.h"

namespace {

// Reset easy handles a loop keeps for its next transfers (each is a few KiB).
const size_t kSpareEasyHandles = 64;
// libcurl's smallest: 3 KiB less per open stream than 4 KiB (measured, 1,000 streams);
// a chat delta is a few hundred bytes, a larger event simply takes more reads.
const long kStreamReceiveBuffer = 1024;
const long kReceiveBuffer = CURL_MAX_WRITE_SIZE;  // libcurl's default, 16 KiB
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

// Sets libcurl options one after another and keeps the first failure, so that one check
// covers them all.
class EasyOptions {
public:
    explicit EasyOptions(CURL* easy) : easy_(easy) {}
    template <typename Value>
    void set(CURLoption option, Value value) {
        CURLcode code = curl_easy_setopt(easy_, option, value);
        if (code != CURLE_OK && first_error_ == CURLE_OK) first_error_ = code;
    }
    CURLcode result() const { return first_error_; }

private:
    CURL* easy_;
    CURLcode first_error_ = CURLE_OK;
};

void set_method_and_body(EasyOptions& options, const std::string& method, const RequestBody& body,
                         Spool*& spool) {
    if (body.buffer) {
        options.set(CURLOPT_POST, 1L);
        options.set(CURLOPT_POSTFIELDS, body.buffer->data());
        options.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.buffer->size()));
    } else if (body.spool) {
        spool = body.spool;
        options.set(CURLOPT_POST, 1L);
        options.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.spool->output_size()));
    } else if (method == "HEAD") {
        options.set(CURLOPT_NOBODY, 1L);
    } else if (method == "GET" || method == "DELETE") {
        options.set(CURLOPT_HTTPGET, 1L);  // DELETE: the method is set below
    } else {  // POST /batches/{id}/cancel and the like: no body, still a POST
        options.set(CURLOPT_POSTFIELDS, "");
        options.set(CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (method != "POST" && method != "GET" && method != "HEAD")
        options.set(CURLOPT_CUSTOMREQUEST, method.c_str());
}

}  // namespace

// ---- Transfer: libcurl's callbacks for one request -------------------------------------

Transfer::~Transfer() { upstream_.release(*this); }

void Transfer::heard_from_upstream() {
    (answering_ ? upstream_.silence_ : upstream_.first_byte_).arm(silence_, upstream_.loop_.now_ms());
}

bool Transfer::body_sent(size_t size) const {
    curl_off_t sent = 0;
    return easy_ && curl_easy_getinfo(easy_, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent >= 0 &&
           static_cast<size_t>(sent) >= size;
}

void Transfer::resume() {
    if (!paused_ || !easy_) return;
    paused_ = false;
    heard_from_upstream();
    // May hand over what libcurl held back at once (on_body runs, and may pause again).
    CURLcode resumed = curl_easy_pause(easy_, CURLPAUSE_CONT);
    if (resumed == CURLE_OK) return;
    UpstreamResult result;
    result.error = std::string("libcurl could not resume the transfer: ") + curl_easy_strerror(resumed);
    upstream_.finish(*this, result);  // not left paused forever
}

size_t Transfer::on_header_line(char* data, size_t size, size_t count, void* self) {
    Transfer& t = *static_cast<Transfer*>(self);
    t.answering_ = true;  // from the first byte on, only silence counts
    t.heard_from_upstream();
    size_t length = size * count;
    std::string_view line(data, length);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);

    if (line.substr(0, 5) == "HTTP/") {  // a new response head (after 1xx ones too)
        t.head_.clear();
        size_t space = line.find(' ');
        t.status_ = 0;
        for (size_t i = space == std::string_view::npos ? line.size() : space + 1;
             i < line.size() && i < space + 4 && line[i] >= '0' && line[i] <= '9'; ++i)
            t.status_ = t.status_ * 10 + (line[i] - '0');
    } else if (line.empty()) {
        if (t.status_ >= 200 && !t.head_delivered_) {
            t.head_delivered_ = true;
            if (!t.listener_.on_head(t.status_, t.head_)) {
                t.refused_ = true;
                return 0;
            }
            Headers().swap(t.head_);
        }
    } else if ((line[0] == ' ' || line[0] == '\t') && !t.head_.empty()) {
        t.head_.back().value.append(" ").append(trim_view(line));  // obsolete line folding
    } else {
        size_t colon = line.find(':');
        if (colon != std::string_view::npos)
            t.head_.push_back({std::string(trim_view(line.substr(0, colon))),
                               std::string(trim_view(line.substr(colon + 1)))});
    }
    return length;
}

size_t Transfer::on_body(char* data, size_t size, size_t count, void* self) {
    Transfer& t = *static_cast<Transfer*>(self);
    t.heard_from_upstream();
    size_t length = size * count;
    switch (t.listener_.on_data(data, length)) {
        case Taken::All:
            return length;
        case Taken::Later:
            // libcurl keeps this piece and reads no more until resume(); meanwhile the
            // silence is the client's, not the upstream's.
            t.paused_ = true;
            t.silence_.disarm();
            return CURL_WRITEFUNC_PAUSE;
        case Taken::Refused:
            break;
    }
    t.refused_ = true;
    return 0;  // libcurl aborts with CURLE_WRITE_ERROR
}

size_t Transfer::on_read_body(char* buffer, size_t size, size_t count, void* self) {
    Transfer& t = *static_cast<Transfer*>(self);
    t.heard_from_upstream();
    long got = t.spool_->read(buffer, size * count);
    return got < 0 ? CURL_READFUNC_ABORT : static_cast<size_t>(got);
}

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
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, kIdleConnections) != CURLM_OK) {
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

bool Upstream::add_request_headers(Transfer& t, const UpstreamRequest& request) {
    for (const std::string& line : request.headers) {
        curl_slist* grown = curl_slist_append(t.headers_, line.c_str());
        if (!grown) return false;
        t.headers_ = grown;
    }
    return true;
}

// Every option of the request on t.easy_, whether the handle is new or a spare one.
CURLcode Upstream::configure(Transfer& t, const UpstreamRequest& request, const RequestBody& body) {
    EasyOptions options(t.easy_);
    options.set(CURLOPT_URL, request.url.c_str());
    options.set(CURLOPT_PROTOCOLS_STR, "http,https");
    options.set(CURLOPT_HTTPHEADER, t.headers_);
    options.set(CURLOPT_PRIVATE, &t);
    options.set(CURLOPT_NOSIGNAL, 1L);
    options.set(CURLOPT_CONNECTTIMEOUT, config_.connect_timeout_s);
    options.set(CURLOPT_ERRORBUFFER, t.error_);
    if (!config_.ca_bundle.empty()) options.set(CURLOPT_CAINFO, config_.ca_bundle.c_str());
    if (!config_.upstream_proxy.empty()) options.set(CURLOPT_PROXY, config_.upstream_proxy.c_str());
    options.set(CURLOPT_TCP_KEEPALIVE, 1L);
    // The receive buffer is most of what a waiting stream costs; SSE events are small.
    options.set(CURLOPT_BUFFERSIZE, body.streamed_answer ? kStreamReceiveBuffer : kReceiveBuffer);
    // No CURLOPT_PIPEWAIT: libcurl 7.88 keeps a transfer that waits for a connection's
    // protocol pending until some other transfer ends, which stalls a burst of streams to
    // an HTTP/1.1 upstream. HTTP/2 upstreams still share a connection once one is known.
    if (share_) options.set(CURLOPT_SHARE, share_);
    options.set(CURLOPT_HEADERFUNCTION, Transfer::on_header_line);
    options.set(CURLOPT_HEADERDATA, &t);
    options.set(CURLOPT_WRITEFUNCTION, Transfer::on_body);
    options.set(CURLOPT_WRITEDATA, &t);
    set_method_and_body(options, request.method, body, t.spool_);
    if (t.spool_) {
        options.set(CURLOPT_READFUNCTION, Transfer::on_read_body);
        options.set(CURLOPT_READDATA, &t);
    }
    return options.result();
}

std::unique_ptr<Transfer> Upstream::start(const UpstreamRequest& request, const RequestBody& body,
                                          UpstreamListener& listener, std::string& error) {
    std::unique_ptr<Transfer> transfer(new Transfer(*this, listener));
    if (!add_request_headers(*transfer, request)) {
        error = "libcurl could not store the request's headers (out of memory)";
        return nullptr;
    }
    CURLcode refused = CURLE_OK;
    transfer->easy_ = spare_easy_.take_configured(
        [&](CURL* easy) {
            transfer->easy_ = easy;
            return configure(*transfer, request, body);
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

void Upstream::release(Transfer& t) {
    t.silence_.disarm();
    bool reusable = t.reusable_;
    if (t.in_multi_) {
        // When it fails, curl_easy_cleanup takes the handle out of the multi handle itself.
        if (!logged("curl_multi_remove_handle", curl_multi_remove_handle(multi_, t.easy_))) reusable = false;
        t.in_multi_ = false;
    }
    if (t.easy_) spare_easy_.give_back(t.easy_, reusable);
    t.easy_ = nullptr;
    curl_slist_free_all(t.headers_);
    t.headers_ = nullptr;
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
        UpstreamResult result;
        result.outcome = outcome_of(code, t->refused_);
        if (code != CURLE_OK) result.error = t->error_[0] ? t->error_ : curl_easy_strerror(code);
        finish(*t, result);
    }
}

void Upstream::act(curl_socket_t fd, int events) {
    int running = 0;
    logged("curl_multi_socket_action", curl_multi_socket_action(multi_, fd, events, &running));
    collect_finished();
}

void Upstream::on_socket_event(int fd, uint32_t events) {
    int action = 0;
    if (events & EPOLLIN) action |= CURL_CSELECT_IN;
    if (events & EPOLLOUT) action |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP)) action |= CURL_CSELECT_ERR;
    act(fd, action);
}

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
    upstream.curl_due_ms_ = timeout_ms < 0 ? DeadlineQueue::kNever : EventLoop::clock_ms() + timeout_ms;
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

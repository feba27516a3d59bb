// The libcurl edge: one multi handle per event loop drives every transfer of that loop
// (socket and timer callbacks, no polling), and keeps upstream connections alive for the
// next request of any client. Each transfer relays the answer as it arrives.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "deadline_queue.h"
#include "easy_pool.h"
#include "event_loop.h"
#include "request.h"
#include "response.h"
#include "spool.h"
#include "translate.h"
#include "url_cut.h"

// What a listener makes of a piece of the answer.
enum class Taken {
    All,     // relayed
    Later,   // the client cannot take it yet: pause, and resume() when it can
    Refused  // the client is gone: abort
};

// How a transfer ended; every failure names its cause class.
enum class UpstreamOutcome {
    Completed,      // the whole answer was relayed
    DnsFailed,      // the upstream's host name did not resolve
    ConnectFailed,  // the connection was refused or could not be made
    TlsFailed,      // the TLS handshake or the certificate check failed
    TimedOut,       // a deadline passed: connect, first byte, or silence (see `error`)
    ProtocolError,  // the connection broke, or the answer was malformed or cut short
    ClientGone,     // the client left; the transfer was aborted
    Failed,         // anything else (details in `error`)
};

struct UpstreamResult {
    UpstreamOutcome outcome = UpstreamOutcome::Failed;
    long status = 0;    // the upstream's HTTP status, 0 if none arrived
    std::string error;  // libcurl's own words (or the deadline's) for logs; no headers
    bool answered = false;  // the answer's head had arrived
};

// How the owner of a transfer hears of it; called on the loop's thread. on_done comes
// last, outside libcurl's callbacks, and the transfer may be destroyed in it.
class UpstreamListener {
public:
    virtual ~UpstreamListener() = default;
    // The fields are seen where the transfer keeps them: valid during the call only.
    virtual bool on_head(long status, const FieldViews& headers) = 0;  // false: abort
    virtual Taken on_data(const char* data, size_t size) = 0;
    virtual void on_done(const UpstreamResult& result) = 0;
};

// The request body: a buffer or a spooled upload, read whole before the transfer starts
// (so a slow client never holds a transfer, and the body could be sent again).
struct RequestBody {
    const std::string* buffer = nullptr;  // when set, sent as is
    Spool* spool = nullptr;               // when set, read from its start
    // The request asks for an SSE stream: a long wait for small events, given a small
    // receive buffer. Any other answer may be large and gets libcurl's default.
    bool streamed_answer = false;
};

class Upstream;

struct CurlUrlFree {
    void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlFree>;

// A loop's upstream origins as libcurl parsed them, so that a transfer hands libcurl its
// URL parsed (CURLOPT_CURLU): a copy of its origin's with its own request target set as
// the path. libcurl 7.88 otherwise parses every transfer's URL and formats it again, about
// 23,000 instructions a small request (url_cut.h says which URLs are left to it). A copy
// comes back when its transfer ends and serves the next one to that origin; a copy whose
// path an earlier transfer set for the very same URL serves it as it is (neither cut nor
// set again: about 1,600 instructions a request).
class ParsedOrigins {
public:
    // The parsed `url` and the index of its origin, or null (origin -1) where libcurl is to
    // parse it itself (not plain, a 17th origin while all 16 have transfers under way, or a
    // part refused: libcurl then says its own words).
    CurlUrl parsed(const std::string& url, int& origin);
    void give_back(int origin, CurlUrl url);
    size_t kept() const { return origins_.size(); }

private:
    // A copy of an origin's parsed URL, in its place while lent to a transfer.
    struct Spare {
        CurlUrl url;                  // null while lent
        const CURLU* lent = nullptr;  // the copy out, which comes back here
        std::string whole;            // the URL its path was set for ("": none known)
    };
    struct Origin {
        std::string text;  // "scheme://authority"
        CurlUrl parsed;
        std::vector<Spare> spares;  // copies of `parsed`, their paths set by earlier transfers
        size_t in_flight = 0;       // copies out with transfers: none may come back to another origin
        uint64_t last_used = 0;
    };
    CurlUrl lend(int origin, Spare* spare, CurlUrl copy);
    CurlUrl take_seen(const std::string& url, int& origin);
    Spare* free_spare(Origin& known);
    int find_or_parse(std::string_view text);
    int free_slot();

    // A routing file's endpoints. When a reload (SIGHUP) brings others, the least recently
    // used origin with no transfer under way makes room for a new one.
    static constexpr size_t kKept = 16;
    static constexpr size_t kSpares = 64;  // as many as the loop keeps spare easy handles
    static constexpr size_t kLooked = 8;   // free copies compared with a URL before it is cut
    std::vector<Origin> origins_;
    uint64_t uses_ = 0;
};

// One request to the upstream. Destroying it aborts it; on_done is not called then.
class Transfer {
public:
    ~Transfer();
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    // The client can take more: continue a transfer that on_data paused.
    void resume();
    // Whether libcurl has sent `size` bytes of the request body: it reads no more of it.
    bool body_sent(size_t size) const;

    // The options of its own a transfer set on its handle, which a spare handle keeps and
    // the next transfer clears only if it has to (Upstream::configure).
    enum Left : unsigned { kCustomMethod = 1, kNoBody = 2, kPostFields = 4, kReadBody = 8, kForbidReuse = 16 };

private:
    friend class Upstream;
    Transfer(Upstream& upstream, UpstreamListener& listener) : upstream_(upstream), listener_(listener) {
        silence_.owner = this;
    }

    Upstream& upstream_;
    UpstreamListener& listener_;
    CURL* easy_ = nullptr;
    CurlUrl url_;         // the request's URL parsed, when ParsedOrigins had it; libcurl reads it
    int url_origin_ = -1;  // which of ParsedOrigins' origins url_ goes back to
    curl_slist* headers_ = nullptr;         // the request's headers: the first of header_nodes_
    std::vector<curl_slist> header_nodes_;  // each pointing at its line in header_text_
    std::string header_text_;               // the lines, each ended by a NUL
    Spool* spool_ = nullptr;
    DeadlineLink silence_;  // re-armed by every byte to or from the upstream: in the
                            // first-byte queue until the answer starts, then in silence
    char error_[CURL_ERROR_SIZE] = {};  // libcurl's detailed message
    long status_ = 0;
    bool answering_ = false;  // the first byte of the answer has arrived
    // The answer's head as it arrives, from the Upstream's spares (null before and after:
    // an open stream holds none).
    std::unique_ptr<AnswerHead> head_;
    bool head_delivered_ = false;
    bool refused_ = false;  // the listener refused a piece: the client is gone
    bool paused_ = false;
    bool in_multi_ = false;
    bool ended_ = false;     // libcurl ended it (CURLMSG_DONE), whole or failed
    bool reusable_ = false;  // the transfer completed: its handle may serve another
    unsigned left_ = 0;      // Left: what it set that its handle's next transfer may clear

    static size_t on_header_line(char* data, size_t size, size_t count, void* self);
    static size_t on_body(char* data, size_t size, size_t count, void* self);
    static size_t on_read_body(char* buffer, size_t size, size_t count, void* self);
    void heard_from_upstream();
    void refuse();
};

class Upstream : public SocketHandler, public TimerSource {
public:
    // `share` carries the DNS and TLS session caches shared by every loop (may be null).
    Upstream(EventLoop& loop, const Config& config, CURLSH* share);
    ~Upstream();
    Upstream(const Upstream&) = delete;
    Upstream& operator=(const Upstream&) = delete;

    bool ok() const { return multi_ != nullptr; }

    // Starts a transfer, or returns null (with `error` set) when libcurl cannot.
    std::unique_ptr<Transfer> start(const UpstreamRequest& request, const RequestBody& body,
                                    UpstreamListener& listener, std::string& error);

    void on_socket_event(int fd, uint32_t events) override;
    int64_t next_due_ms() const override;
    void fire(int64_t now_ms) override;

private:
    friend class Transfer;
    static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket_state);
    static int on_timer(CURLM* multi, long timeout_ms, void* self);
    CURLcode configure(Transfer& transfer, const UpstreamRequest& request, const RequestBody& body, bool fresh,
                       unsigned left);
    void add_request_headers(Transfer& transfer, const UpstreamRequest& request, const RequestBody& body);
    void act(curl_socket_t fd, int events);
    void collect_finished();
    void finish(Transfer& transfer, UpstreamResult result);
    void expire(DeadlineQueue& queue, int64_t now_ms, const char* what, long seconds);
    void release(Transfer& transfer);
    void close_connection_after(Transfer& transfer);
    std::unique_ptr<AnswerHead> take_spare_head();
    void give_back_head(std::unique_ptr<AnswerHead> head);

    EventLoop& loop_;
    const Config& config_;
    CURLSH* share_;
    CURLM* multi_ = nullptr;
    int64_t curl_due_ms_ = DeadlineQueue::kNever;
    DeadlineQueue first_byte_;  // AZURE_OPENAI_PROXY_FIRST_BYTE_TIMEOUT
    DeadlineQueue silence_;     // AZURE_OPENAI_PROXY_UPSTREAM_TIMEOUT
    ParsedOrigins origins_;
    EasyPool spare_easy_;  // handles kept, with their options, for the next transfers
    // Answer heads' storage kept for the next transfers (their text and places keep their
    // capacity): a small answer's head then costs no allocation.
    std::vector<std::unique_ptr<AnswerHead>> spare_heads_;
    // Request header lines' storage (Transfer::header_text_, header_nodes_) kept likewise.
    std::vector<std::pair<std::string, std::vector<curl_slist>>> spare_request_lines_;
};

// What curl_multi_socket_action is told of a socket's epoll events: libcurl's bits, or 0
// ("test the socket yourself") when the upstream speaks HTTP/2 (upstream.cpp says why).
int curl_socket_events(uint32_t epoll_events, bool http2);

// The CA certificates and the outbound proxy every request of the proxy's goes out with
// (upstream_transfer.cpp), for a handle outside the upstream's multi (Entra ID tokens).
CURLcode set_outbound_route(CURL* easy, const ProcessSettings& settings);

// libcurl's DNS and TLS session caches shared by every loop of the process.
class SharedCaches {
public:
    SharedCaches();
    ~SharedCaches();
    CURLSH* get() const { return share_; }

private:
    CURLSH* share_;
};

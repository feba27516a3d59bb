// The per-transfer half of the libcurl edge: an easy handle's options for one request
// (URL, method, body, headers, receive buffer) and libcurl's callbacks for it
// (the answer's head, its data, the request body read from a spool). The multi handle
// that drives every transfer of a loop is in upstream.cpp.
// Tests: upstream_test.cpp (with upstream.cpp).
#include "upstream.h"

#include <cstdlib>
#include <initializer_list>

#include "text.h"

namespace {

// libcurl's smallest: 3 KiB less per open stream than 4 KiB (measured, 1,000 streams);
// a chat delta is a few hundred bytes, a larger event simply takes more reads.
const long kStreamReceiveBuffer = 1024;
const long kReceiveBuffer = CURL_MAX_WRITE_SIZE;  // libcurl's default, 16 KiB

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
    // An option an older libcurl than the one built against may not know, and that the
    // transfer does without: its refusal is not a failure.
    template <typename Value>
    void set_if_known(CURLoption option, Value value) {
        CURLcode code = curl_easy_setopt(easy_, option, value);
        if (code != CURLE_OK && code != CURLE_UNKNOWN_OPTION && first_error_ == CURLE_OK) first_error_ = code;
    }
    CURLcode result() const { return first_error_; }

private:
    CURL* easy_;
    CURLcode first_error_ = CURLE_OK;
};

// The CA certificates a TLS upstream is checked against, read once per loop instead of
// once per connection. libcurl (7.87 and later) keeps the store it builds from a CA file,
// but not when a CA directory is set as well, and Debian's libcurl sets /etc/ssl/certs as
// its default directory beside its default file: every new connection parsed the whole
// bundle again, about 10 ms of CPU for the system's 145 certificates (500 streams opening
// at once: 5.4 s of the proxy's CPU before, 0.7 s with the store kept). So the directory
// is left out wherever a file is known, the configured one or libcurl's default.
bool libcurl_has_default_ca_file() {
#if LIBCURL_VERSION_NUM >= 0x075400  // CURLINFO_CAINFO came with 7.84
    CURL* easy = curl_easy_init();
    if (!easy) return false;
    char* file = nullptr;
    bool known = curl_easy_getinfo(easy, CURLINFO_CAINFO, &file) == CURLE_OK && file && *file;
    curl_easy_cleanup(easy);
    return known;
#else
    return false;
#endif
}

// A changed bundle (a new corporate CA, the system's certificates updated) is read within
// the hour, without a restart.
const long kCaStoreKeptSeconds = 3600;

void set_trust(EasyOptions& options, const std::string& bundle) {
    if (!bundle.empty()) options.set(CURLOPT_CAINFO, bundle.c_str());
    static const bool default_file = libcurl_has_default_ca_file();
    if (bundle.empty() && !default_file) return;  // a directory is all this libcurl has
    options.set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
    options.set_if_known(CURLOPT_CA_CACHE_TIMEOUT, kCaStoreKeptSeconds);
}

// libcurl looks up its proxy variables (http_proxy, https_proxy, all_proxy, no_proxy, in
// both cases) in the environment for every transfer: five getenv scans of the whole
// environment, about 2,000 instructions a request. The environment is the process's
// from its start, so it is read here once: where it names no proxy, an empty proxy and
// an empty exception list tell libcurl the same without its looking (where it names one,
// libcurl still reads it as before).
bool environment_names(std::initializer_list<const char*> names) {
    for (const char* name : names) {
        const char* value = std::getenv(name);
        if (value && *value) return true;
    }
    return false;
}

void set_proxy(EasyOptions& options, const std::string& configured) {
    static const bool proxy_in_environment =
        environment_names({"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
    static const bool exceptions_in_environment = environment_names({"no_proxy", "NO_PROXY"});
    if (!configured.empty()) options.set(CURLOPT_PROXY, configured.c_str());
    else if (!proxy_in_environment) options.set(CURLOPT_PROXY, "");
    if (!exceptions_in_environment) options.set(CURLOPT_NOPROXY, "");
}

// `left` says which of the options a spare handle's next transfer may have to clear.
void set_method_and_body(EasyOptions& options, const std::string& method, const RequestBody& body,
                         Spool*& spool, unsigned& left) {
    if (body.buffer) {
        options.set(CURLOPT_POST, 1L);
        options.set(CURLOPT_POSTFIELDS, body.buffer->data());
        options.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.buffer->size()));
        left |= Transfer::kPostFields;
    } else if (body.spool) {
        spool = body.spool;
        options.set(CURLOPT_POST, 1L);
        options.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.spool->output_size()));
    } else if (method == "HEAD") {
        options.set(CURLOPT_NOBODY, 1L);
        left |= Transfer::kNoBody;
    } else if (method == "GET" || method == "DELETE") {
        options.set(CURLOPT_HTTPGET, 1L);  // DELETE: the method is set below
    } else {  // POST /batches/{id}/cancel and the like: no body, still a POST
        options.set(CURLOPT_POSTFIELDS, "");
        options.set(CURLOPT_POSTFIELDSIZE, 0L);
        left |= Transfer::kPostFields;
    }
    if (method != "POST" && method != "GET" && method != "HEAD") {
        options.set(CURLOPT_CUSTOMREQUEST, method.c_str());
        left |= Transfer::kCustomMethod;
    }
}

// The options no transfer changes: set once, on a new handle (a spare one keeps them).
void set_unchanging(EasyOptions& options, const Config& config, CURLSH* share) {
    options.set(CURLOPT_PROTOCOLS_STR, "http,https");
    options.set(CURLOPT_NOSIGNAL, 1L);
    options.set(CURLOPT_CONNECTTIMEOUT, config.connect_timeout_s);
    set_trust(options, config.ca_bundle);
    set_proxy(options, config.upstream_proxy);
    options.set(CURLOPT_TCP_KEEPALIVE, 1L);
    // HTTP/2 only when asked (config.h says why); plain http:// is HTTP/1.1 either way.
    options.set(CURLOPT_HTTP_VERSION, config.upstream_http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    // No CURLOPT_PIPEWAIT: libcurl 7.88 keeps a transfer that waits for a connection's
    // protocol pending until some other transfer ends, which stalls a burst of streams to
    // an HTTP/1.1 upstream. HTTP/2 transfers do not share a connection anyway (upstream.cpp).
    if (share) options.set(CURLOPT_SHARE, share);
}

// What a spare handle's last transfer set beyond the options every transfer sets (`left`,
// Transfer::Left): a custom method, HEAD, a body to send or to read, its connection not
// kept. Each is cleared only where it was set and this transfer does not set it again
// (every transfer sets its method, so a body's pointer set again is all a POST after a
// POST needs): about 50 instructions an option.
void clear_last_transfer(EasyOptions& options, unsigned left, const RequestBody& body) {
    if (left & Transfer::kCustomMethod) options.set(CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr));
    if (left & Transfer::kNoBody) options.set(CURLOPT_NOBODY, 0L);
    if ((left & Transfer::kPostFields) && !body.buffer) options.set(CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
    if ((left & Transfer::kReadBody) && !body.spool) {
        options.set(CURLOPT_READFUNCTION, static_cast<curl_read_callback>(nullptr));
        options.set(CURLOPT_READDATA, static_cast<void*>(nullptr));
    }
    if (left & Transfer::kForbidReuse) options.set(CURLOPT_FORBID_REUSE, 0L);
}

}  // namespace

// ---- Transfer: libcurl's callbacks for one request -------------------------------------

Transfer::~Transfer() { upstream_.release(*this); }

// The listener wants no more of the answer: libcurl aborts the transfer when the callback
// returns, and the connection closes with it (Upstream::close_connection_after says why).
void Transfer::refuse() {
    refused_ = true;
    upstream_.close_connection_after(*this);
}

void Transfer::heard_from_upstream() {
    (answering_ ? upstream_.silence_ : upstream_.first_byte_).arm(silence_, upstream_.loop_.now_ms());
}

// libcurl's upload count is a spare handle's last transfer's (it is not reset) until this
// one begins: it is read only once the answer is heard, when it is this transfer's.
bool Transfer::body_sent(size_t size) const {
    curl_off_t sent = 0;
    return easy_ && answering_ && curl_easy_getinfo(easy_, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
           sent >= 0 && static_cast<size_t>(sent) >= size;
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
        if (!t.head_) t.head_ = t.upstream_.take_spare_head();
        t.head_->clear();
        size_t space = line.find(' ');
        t.status_ = 0;
        for (size_t i = space == std::string_view::npos ? line.size() : space + 1;
             i < line.size() && i < space + 4 && line[i] >= '0' && line[i] <= '9'; ++i)
            t.status_ = t.status_ * 10 + (line[i] - '0');
    } else if (!t.head_) {
        // No status line came first: nothing to add the line to.
    } else if (line.empty()) {
        if (t.status_ >= 200 && !t.head_delivered_) {
            t.head_delivered_ = true;
            if (!t.listener_.on_head(t.status_, t.head_->fields())) {
                t.refuse();
                return 0;
            }
            t.upstream_.give_back_head(std::move(t.head_));
        }
    } else if ((line[0] == ' ' || line[0] == '\t') && !t.head_->empty()) {
        t.head_->fold(line);  // obsolete line folding
    } else {
        t.head_->add_line(line);
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
    t.refuse();
    return 0;  // libcurl aborts with CURLE_WRITE_ERROR
}

size_t Transfer::on_read_body(char* buffer, size_t size, size_t count, void* self) {
    Transfer& t = *static_cast<Transfer*>(self);
    t.heard_from_upstream();
    long got = t.spool_->read(buffer, size * count);
    if (got >= 0) return static_cast<size_t>(got);
    t.upstream_.close_connection_after(t);
    return CURL_READFUNC_ABORT;
}

// ---- Upstream: an easy handle set up for one request ------------------------------------

namespace {

// Where libcurl would add "Expect: 100-continue" and wait for the upstream's word (or a
// second) before the body: a body larger than 1 KiB (libcurl 7.88 asks from 1 MiB on,
// older ones from 1 KiB) or read from a spool. An empty "Expect:" line stops it; a small
// body goes without the line, one fewer that libcurl compares with every header name it
// looks for (Curl_checkheaders: about 35 lookups a request).
bool needs_expect_refused(const RequestBody& body) {
    const size_t kSmallestAsked = 1024;
    return body.spool || (body.buffer && body.buffer->size() > kSmallestAsked);
}

const char kNoExpect[] = "Expect:";

}  // namespace

// The list libcurl reads (it neither changes nor frees it) made of two allocations kept
// for the next transfer, the lines (copied whole) and their nodes, not curl_slist_append's
// two for each line.
void Upstream::add_request_headers(Transfer& t, const UpstreamRequest& request, const RequestBody& body) {
    bool no_expect = needs_expect_refused(body);
    const std::string& lines = request.headers.text();
    t.header_text_.reserve(lines.size() + (no_expect ? sizeof kNoExpect : 0));  // no line moves
    t.header_text_.append(lines);
    if (no_expect) t.header_text_.append(kNoExpect, sizeof kNoExpect);  // with its NUL
    t.header_nodes_.clear();
    for (size_t at = 0, end; (end = t.header_text_.find('\0', at)) != std::string::npos; at = end + 1)
        t.header_nodes_.push_back({&t.header_text_[at], nullptr});  // each line ends with its NUL
    for (size_t i = 0; i + 1 < t.header_nodes_.size(); ++i) t.header_nodes_[i].next = &t.header_nodes_[i + 1];
    t.headers_ = t.header_nodes_.empty() ? nullptr : &t.header_nodes_[0];
}

// Every option of the request on t.easy_: on a new handle all of them; on a spare one
// (options kept, no curl_easy_reset: about 5,000 instructions a request) those that vary,
// after what its last transfer left is cleared.
CURLcode Upstream::configure(Transfer& t, const UpstreamRequest& request, const RequestBody& body, bool fresh,
                             unsigned left) {
    EasyOptions options(t.easy_);
    t.left_ = 0;
    if (fresh) {
        set_unchanging(options, config_, share_);
        options.set(CURLOPT_HEADERFUNCTION, Transfer::on_header_line);
        options.set(CURLOPT_WRITEFUNCTION, Transfer::on_body);
    } else {
        clear_last_transfer(options, left, body);
    }
    // Both: libcurl connects to what the parsed URL says, and reads the string only
    // where it starts the same request again (a kept connection found closed: a retry).
    options.set(CURLOPT_URL, request.url.c_str());
    options.set(CURLOPT_CURLU, t.url_.get());  // null: libcurl parses the string
    options.set(CURLOPT_HTTPHEADER, t.headers_);
    options.set(CURLOPT_PRIVATE, &t);
    options.set(CURLOPT_ERRORBUFFER, t.error_);
    // The receive buffer is most of what a waiting stream costs; SSE events are small.
    options.set(CURLOPT_BUFFERSIZE, body.streamed_answer ? kStreamReceiveBuffer : kReceiveBuffer);
    options.set(CURLOPT_HEADERDATA, &t);
    options.set(CURLOPT_WRITEDATA, &t);
    set_method_and_body(options, request.method, body, t.spool_, t.left_);
    if (t.spool_) {
        options.set(CURLOPT_READFUNCTION, Transfer::on_read_body);
        options.set(CURLOPT_READDATA, &t);
        t.left_ |= Transfer::kReadBody;
    }
    return options.result();
}

// The way out for any other request of the proxy's (Entra ID tokens, token_keeper.cpp): the
// same trust and outbound proxy as the upstream's transfers.
CURLcode set_outbound_route(CURL* easy, const ProcessSettings& settings) {
    EasyOptions options(easy);
    set_trust(options, settings.ca_bundle);
    set_proxy(options, settings.upstream_proxy);
    return options.result();
}

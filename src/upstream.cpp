#include "upstream.h"

#include <poll.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "text.h"

namespace {

// How often the transfer loop looks at the stop pipe, the client and idle time when
// the upstream is silent (a heartbeat is due at most this late).
const int kPollIntervalMs = 100;

using Clock = std::chrono::steady_clock;

// State shared with libcurl's callbacks during one transfer.
struct Transfer {
    Clock::time_point last_activity = Clock::now();  // last byte to or from the upstream
    UpstreamListener* listener = nullptr;
    const RequestBody* body = nullptr;
    long status = 0;
    Headers headers;
    bool head_delivered = false;
    bool listener_refused = false;  // a callback returned false: the client is gone
    bool body_read = false;         // the client's body has been read to its end
};

size_t on_header_line(char* data, size_t size, size_t count, void* user) {
    Transfer& t = *static_cast<Transfer*>(user);
    t.last_activity = Clock::now();
    size_t length = size * count;
    std::string line(data, length);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();

    if (starts_with(line, "HTTP/")) {  // a new response head (after 1xx ones too)
        t.headers.clear();
        size_t space = line.find(' ');
        t.status = space == std::string::npos ? 0 : std::atol(line.c_str() + space + 1);
    } else if (line.empty()) {
        if (t.status >= 200 && !t.head_delivered) {
            t.head_delivered = true;
            if (!t.listener->on_head(t.status, t.headers)) {
                t.listener_refused = true;
                return 0;
            }
        }
    } else if ((line[0] == ' ' || line[0] == '\t') && !t.headers.empty()) {
        t.headers.back().value += " " + trim(line);  // obsolete line folding
    } else {
        size_t colon = line.find(':');
        if (colon != std::string::npos)
            t.headers.push_back({trim(line.substr(0, colon)), trim(line.substr(colon + 1))});
    }
    return length;
}

size_t on_body_data(char* data, size_t size, size_t count, void* user) {
    Transfer& t = *static_cast<Transfer*>(user);
    t.last_activity = Clock::now();
    size_t length = size * count;
    if (!t.listener->on_data(data, length)) {
        t.listener_refused = true;
        return 0;  // libcurl aborts with CURLE_WRITE_ERROR
    }
    return length;
}

size_t read_request_body(char* buffer, size_t size, size_t count, void* user) {
    Transfer& t = *static_cast<Transfer*>(user);
    t.last_activity = Clock::now();
    long got = t.body->spool ? t.body->spool->read(buffer, size * count)
                             : t.body->stream->read_body(buffer, size * count);
    if (got < 0) return CURL_READFUNC_ABORT;
    if (got == 0) t.body_read = true;
    return static_cast<size_t>(got);
}

void set_method_and_body(CURL* easy, const std::string& method, const RequestBody& body,
                         Transfer& transfer) {
    if (body.buffer) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.buffer->data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(body.buffer->size()));
        transfer.body_read = true;
    } else if (body.stream || body.spool) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_request_body);
        curl_easy_setopt(easy, CURLOPT_READDATA, &transfer);
        long long length = body.spool ? body.spool->output_size() : body.length;
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(length));
        // A spooled body was read whole already: the client's descriptor may be watched.
        transfer.body_read = body.spool != nullptr;
    } else if (method == "HEAD") {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        transfer.body_read = true;
    } else if (method == "GET" || method == "DELETE") {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);  // DELETE: the method is set below
        transfer.body_read = true;
    } else {  // POST /batches/{id}/cancel and the like: no body, still a POST
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
        transfer.body_read = true;
    }
    if (method != "POST" && method != "GET" && method != "HEAD")
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
}

UpstreamOutcome outcome_of(CURLcode code, const Transfer& transfer) {
    switch (code) {
        case CURLE_OK:
            return UpstreamOutcome::Completed;
        case CURLE_OPERATION_TIMEDOUT:
            return UpstreamOutcome::TimedOut;
        case CURLE_WRITE_ERROR:
            return transfer.listener_refused ? UpstreamOutcome::ClientGone
                                             : UpstreamOutcome::Failed;
        case CURLE_ABORTED_BY_CALLBACK:
        case CURLE_READ_ERROR:
            return UpstreamOutcome::ClientGone;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
            return UpstreamOutcome::Unreachable;
        default:
            return UpstreamOutcome::Failed;
    }
}

}  // namespace

UpstreamClient::UpstreamClient(const Config& config, int stop_fd)
    : config_(config), stop_fd_(stop_fd), easy_(curl_easy_init()), multi_(curl_multi_init()) {
    if (!easy_ || !multi_) throw std::runtime_error("libcurl could not create a handle");
}

UpstreamClient::~UpstreamClient() {
    curl_easy_cleanup(easy_);
    curl_multi_cleanup(multi_);
}

UpstreamResult UpstreamClient::send(const UpstreamRequest& request, const RequestBody& body,
                                    Client& client, UpstreamListener& listener) {
    Transfer transfer;
    transfer.listener = &listener;
    transfer.body = &body;
    curl_slist* headers = nullptr;
    for (const std::string& line : request.headers) headers = curl_slist_append(headers, line.c_str());

    curl_easy_reset(easy_);  // keeps the connection cache: the next request reuses it
    curl_easy_setopt(easy_, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT, config_.connect_timeout_s);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(easy_, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, on_body_data);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &transfer);
    set_method_and_body(easy_, request.method, body, transfer);

    // The timeout is for silence, not for the whole answer: streams may run long.
    // (libcurl's low-speed check averages over a window and fires seconds late.)
    const auto idle_limit = std::chrono::seconds(config_.upstream_timeout_s);
    UpstreamResult result;
    curl_multi_add_handle(multi_, easy_);
    bool watch_client = client.watch_fd() >= 0;
    int running = 1;
    bool aborted = false;
    while (running) {
        if (curl_multi_perform(multi_, &running) != CURLM_OK) break;
        if (!running) break;
        curl_waitfd extra[2] = {{stop_fd_, CURL_WAIT_POLLIN, 0}, {client.watch_fd(), CURL_WAIT_POLLIN, 0}};
        // The client's descriptor carries its body until that is read: watch it after.
        unsigned count = watch_client && transfer.body_read ? 2 : 1;
        int ready = 0;
        curl_multi_poll(multi_, extra, count, kPollIntervalMs, &ready);
        if (extra[0].revents) {
            result.outcome = UpstreamOutcome::Stopped;
            aborted = true;
            break;
        }
        if (count == 2 && extra[1].revents) {
            if (client.gone()) {
                result.outcome = UpstreamOutcome::ClientGone;
                aborted = true;
                break;
            }
            watch_client = false;  // unexpected bytes, not a hang-up: stop watching
        }
        if (ready == 0 && !listener.on_idle()) {
            result.outcome = UpstreamOutcome::ClientGone;
            aborted = true;
            break;
        }
        if (Clock::now() - transfer.last_activity > idle_limit) {
            result.outcome = UpstreamOutcome::TimedOut;
            aborted = true;
            break;
        }
    }
    if (!aborted) {
        int queued = 0;
        CURLcode code = CURLE_FAILED_INIT;
        while (CURLMsg* message = curl_multi_info_read(multi_, &queued))
            if (message->msg == CURLMSG_DONE) code = message->data.result;
        result.outcome = outcome_of(code, transfer);
        if (code != CURLE_OK) result.error = curl_easy_strerror(code);
    }
    result.status = transfer.status >= 200 ? transfer.status : 0;
    curl_multi_remove_handle(multi_, easy_);
    curl_slist_free_all(headers);
    return result;
}

// The libcurl edge against a tiny HTTP server on a loopback port (one connection, or a few
// one after the other), run in a thread of the test: the listener hears the answer's head
// (after any 1xx head, folded lines joined), its data and the completion; the request's
// method, target, headers and body arrive; a listener that refuses the head or the data
// ends the transfer as the client gone; a pause holds the data until resume(); a port
// where nothing listens is a failed connection; a transfer added during an iteration is
// started in it.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "azure_env.h"
#include "upstream.h"
#include "unique_fd.h"

namespace {

// Listens on 127.0.0.1 (a port of the system's choice); answers one connection with
// `answer` once the request's head and its Content-Length body have arrived, then closes.
class OneAnswerServer {
public:
    // `connections`: served one after the other, each request kept after the last one's.
    explicit OneAnswerServer(std::string answer, int connections = 1)
        : answer_(std::move(answer)), connections_(connections) {
        listening_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        BOOST_REQUIRE(listening_.valid());
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_REQUIRE(bind(listening_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        BOOST_REQUIRE(listen(listening_.get(), connections_) == 0);
        socklen_t length = sizeof address;
        BOOST_REQUIRE(getsockname(listening_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~OneAnswerServer() { thread_.join(); }  // serve() gives up after 5 s without a client

    std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
    const std::string& request() const { return request_; }  // read after the transfer is done

private:
    void serve() {
        for (int i = 0; i < connections_ && serve_one(); ++i) {
        }
    }
    bool serve_one() {
        pollfd waiting{listening_.get(), POLLIN, 0};
        if (poll(&waiting, 1, 5000) != 1) return false;
        UniqueFd client(accept4(listening_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client.valid()) return false;
        char buffer[4096];
        size_t start = request_.size();
        while (!complete(start)) {
            ssize_t got = ::read(client.get(), buffer, sizeof buffer);
            if (got <= 0) return false;
            request_.append(buffer, static_cast<size_t>(got));
        }
        for (size_t sent = 0; sent < answer_.size();) {
            ssize_t wrote = ::write(client.get(), answer_.data() + sent, answer_.size() - sent);
            if (wrote <= 0) return false;
            sent += static_cast<size_t>(wrote);
        }
        return true;
    }
    bool complete(size_t start) const {
        size_t head_end = request_.find("\r\n\r\n", start);
        if (head_end == std::string::npos) return false;
        size_t length_at = request_.find("Content-Length: ", start);
        size_t length = length_at < head_end ? std::stoul(request_.substr(length_at + 16)) : 0;
        return request_.size() >= head_end + 4 + length;
    }

    std::string answer_;
    int connections_;
    UniqueFd listening_;
    int port_ = 0;
    std::string request_;
    std::thread thread_;
};

// A TCP socket bound to a free loopback port; `port` says which.
UniqueFd bound_loopback_socket(int& port) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(fd.valid());
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    BOOST_REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port = ntohs(address.sin_port);
    return fd;
}

// A loopback port with nothing behind it: a connection there is refused.
int closed_port() {
    int port = 0;
    bound_loopback_socket(port);
    return port;
}

// Keeps what it hears; answers as told.
class RecordingListener : public UpstreamListener {
public:
    bool on_head(long status, const FieldViews& headers) override {
        ++heads;
        head_status = status;
        head = owned_headers(headers);  // the views last only as long as the call
        return accept_head;
    }
    Taken on_data(const char* data, size_t size) override {
        if (next_answer == Taken::All) body.append(data, size);
        Taken answer = next_answer;
        if (answer == Taken::Later) next_answer = Taken::All;  // once: then take it all
        return answer;
    }
    void on_done(const UpstreamResult& done) override {
        ++dones;
        result = done;
    }
    std::string header(const std::string& name) const {
        const std::string* value = find_header(head, name);
        return value ? *value : "(none)";
    }

    bool accept_head = true;
    Taken next_answer = Taken::All;
    int heads = 0, dones = 0;
    long head_status = 0;
    Headers head;
    std::string body;
    UpstreamResult result;
};

// A loop and its upstream, with the proxy's default settings.
struct UpstreamLoop {
    UpstreamLoop() {
        ConfigResult parsed = parse_config(azure());
        BOOST_REQUIRE_MESSAGE(parsed.ok, parsed.error);
        config = std::make_unique<Config>(std::move(parsed.config));
        upstream = std::make_unique<Upstream>(loop, *config, nullptr);
        BOOST_REQUIRE(upstream->ok());
    }
    std::unique_ptr<Transfer> start(const std::string& method, const std::string& url, RecordingListener& listener,
                                     const std::string* body = nullptr,
                                     std::vector<std::string> headers = {"X-Probe: 1"}) {
        UpstreamRequest request{method, url, {}};
        for (const std::string& line : headers) request.headers.push_back(line);
        RequestBody request_body;
        request_body.buffer = body;
        std::string error;
        std::unique_ptr<Transfer> transfer = upstream->start(request, request_body, listener, error);
        BOOST_REQUIRE_MESSAGE(transfer, error);
        return transfer;
    }
    // Turns the loop until the listener heard the end (at most ~5 s; a test takes ms).
    void run_until_done(const RecordingListener& listener) {
        for (int i = 0; i < 500 && listener.dones == 0; ++i) loop.run_once(10);
    }

    EventLoop loop;
    std::unique_ptr<Config> config;
    std::unique_ptr<Upstream> upstream;
};

const char* const kAnswer =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Folded: first\r\n  second\r\n"
    "Content-Length: 5\r\nConnection: close\r\n\r\nhello";

}  // namespace

BOOST_AUTO_TEST_SUITE(upstream)

BOOST_AUTO_TEST_CASE(the_listener_hears_the_head_the_data_and_the_end) {
    OneAnswerServer server(kAnswer);
    UpstreamLoop proxy;
    RecordingListener listener;
    std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url("/models"), listener);
    proxy.run_until_done(listener);

    BOOST_TEST(listener.heads == 1);
    BOOST_TEST(listener.head_status == 200);
    BOOST_TEST(listener.header("Content-Type") == "text/plain");
    BOOST_TEST(listener.header("X-Folded") == "first second");  // obsolete folding joined
    BOOST_TEST(listener.body == "hello");
    BOOST_REQUIRE(listener.dones == 1);
    BOOST_TEST(static_cast<int>(listener.result.outcome) == static_cast<int>(UpstreamOutcome::Completed));
    BOOST_TEST(listener.result.status == 200);
    BOOST_TEST(listener.result.answered);
    BOOST_TEST(listener.result.error.empty());
    BOOST_TEST(server.request().rfind("GET /models HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(server.request().find("\r\nX-Probe: 1\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_body_is_posted_and_an_interim_head_is_not_the_answer) {
    OneAnswerServer server(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    UpstreamLoop proxy;
    RecordingListener listener;
    const std::string body = R"({"model":"m"})";
    std::unique_ptr<Transfer> transfer = proxy.start("POST", server.url("/chat"), listener, &body);
    proxy.run_until_done(listener);

    BOOST_TEST(listener.heads == 1);
    BOOST_TEST(listener.head_status == 201);
    BOOST_TEST(listener.body == "ok");
    BOOST_TEST(listener.result.status == 201);
    const std::string& request = server.request();
    BOOST_TEST(request.rfind("POST /chat HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(request.substr(request.size() - body.size()) == body);
}

// No body waits for an upstream's "100 Continue" (libcurl 7.88 asks for one from 1 MiB
// on): a large body says it expects nothing, a small one needs no such line.
BOOST_AUTO_TEST_CASE(no_body_waits_for_a_100_continue) {
    UpstreamLoop proxy;
    for (size_t size : {size_t{20}, size_t{1024} * 1024 + 1}) {
        OneAnswerServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        RecordingListener listener;
        const std::string body(size, 'b');
        std::unique_ptr<Transfer> transfer = proxy.start("POST", server.url("/chat"), listener, &body);
        for (int i = 0; i < 5000 && listener.dones == 0; ++i) proxy.loop.run_once(10);  // a turn a piece sent
        BOOST_TEST(listener.result.status == 200);
        const std::string& request = server.request();
        std::string head = request.substr(0, request.find("\r\n\r\n") + 4);
        BOOST_TEST(head.find("Expect") == std::string::npos, head);
        BOOST_TEST(request.size() == head.size() + size);
    }
}

BOOST_AUTO_TEST_CASE(a_paused_answer_waits_for_resume) {
    OneAnswerServer server(kAnswer);
    UpstreamLoop proxy;
    RecordingListener listener;
    listener.next_answer = Taken::Later;
    std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url(), listener);
    for (int i = 0; i < 500 && listener.heads == 0; ++i) proxy.loop.run_once(10);
    for (int i = 0; i < 5; ++i) proxy.loop.run_once(5);  // paused: nothing more comes
    BOOST_TEST(listener.body.empty());
    BOOST_TEST(listener.dones == 0);

    transfer->resume();
    proxy.run_until_done(listener);
    BOOST_TEST(listener.body == "hello");
    BOOST_TEST(static_cast<int>(listener.result.outcome) == static_cast<int>(UpstreamOutcome::Completed));
}

BOOST_AUTO_TEST_CASE(a_refused_head_ends_the_transfer_as_the_client_gone) {
    OneAnswerServer server(kAnswer);
    UpstreamLoop proxy;
    RecordingListener listener;
    listener.accept_head = false;
    std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url(), listener);
    proxy.run_until_done(listener);

    BOOST_TEST(listener.heads == 1);
    BOOST_TEST(listener.body.empty());
    BOOST_REQUIRE(listener.dones == 1);
    BOOST_TEST(static_cast<int>(listener.result.outcome) == static_cast<int>(UpstreamOutcome::ClientGone));
    BOOST_TEST(listener.result.answered);
}

BOOST_AUTO_TEST_CASE(refused_data_ends_the_transfer_as_the_client_gone) {
    OneAnswerServer server(kAnswer);
    UpstreamLoop proxy;
    RecordingListener listener;
    listener.next_answer = Taken::Refused;
    std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url(), listener);
    proxy.run_until_done(listener);

    BOOST_REQUIRE(listener.dones == 1);
    BOOST_TEST(static_cast<int>(listener.result.outcome) == static_cast<int>(UpstreamOutcome::ClientGone));
    BOOST_TEST(listener.result.status == 200);
}

BOOST_AUTO_TEST_CASE(a_port_where_nothing_listens_is_a_failed_connection) {
    UpstreamLoop proxy;
    RecordingListener listener;
    std::unique_ptr<Transfer> transfer =
        proxy.start("GET", "http://127.0.0.1:" + std::to_string(closed_port()) + "/", listener);
    proxy.run_until_done(listener);

    BOOST_TEST(listener.heads == 0);
    BOOST_REQUIRE(listener.dones == 1);
    BOOST_TEST(static_cast<int>(listener.result.outcome) == static_cast<int>(UpstreamOutcome::ConnectFailed));
    BOOST_TEST(listener.result.status == 0);
    BOOST_TEST(!listener.result.answered);
    BOOST_TEST(!listener.result.error.empty());
}

// A transfer added by an iteration's event (a request read) connects in that iteration's
// turn of the timers, even once the clock passed a millisecond since the iteration began,
// not after one more epoll_wait.
BOOST_AUTO_TEST_CASE(a_transfer_added_during_an_iteration_starts_in_it) {
    int port = 0;
    UniqueFd listening = bound_loopback_socket(port);
    BOOST_REQUIRE(listen(listening.get(), 1) == 0);
    std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";

    UpstreamLoop proxy;
    RecordingListener listener;
    std::unique_ptr<Transfer> transfer;
    int pipe_ends[2];
    BOOST_REQUIRE(pipe2(pipe_ends, O_CLOEXEC | O_NONBLOCK) == 0);
    UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);
    struct Starter : EventHandler {
        std::function<void()> act;
        void on_event(uint32_t) override { act(); }
    } starter;
    starter.act = [&] {
        char byte;
        while (::read(read_end.get(), &byte, 1) > 0) {
        }
        int64_t began = proxy.loop.now_ms();
        while (EventLoop::clock_ms() == began) {
        }
        transfer = proxy.start("GET", url, listener);
    };
    BOOST_REQUIRE(proxy.loop.watch(read_end.get(), EPOLLIN, &starter));
    BOOST_REQUIRE(::write(write_end.get(), "x", 1) == 1);
    BOOST_REQUIRE(proxy.loop.run_once(1000));
    BOOST_REQUIRE(transfer);
    pollfd connected{listening.get(), POLLIN, 0};
    BOOST_TEST(poll(&connected, 1, 0) == 1);  // libcurl's connection waits to be accepted
}

// A spare handle keeps its options: what one transfer set (a custom method, HEAD, a body,
// a connection not kept) or counted (the bytes it sent) does not reach the next one on the
// same handle, whichever option the next one sets again and whichever it clears.
BOOST_AUTO_TEST_CASE(a_reused_handle_carries_nothing_of_its_last_transfer) {
    UpstreamLoop proxy;
    const std::string body = R"({"model":"m"})";
    auto send = [&](const std::string& method, const std::string* with_body, bool refuse = false) {
        OneAnswerServer server(kAnswer);
        RecordingListener listener;
        listener.accept_head = !refuse;
        std::unique_ptr<Transfer> transfer = proxy.start(method, server.url("/r"), listener, with_body);
        // The handle's upload count is still its last transfer's: not taken for this one's.
        if (with_body) BOOST_TEST(!transfer->body_sent(with_body->size()), method);
        proxy.run_until_done(listener);
        BOOST_TEST(listener.dones == 1, method);
        transfer.reset();  // its handle goes back to the spare ones
        return server.request();
    };
    std::string first = send("POST", &body);
    BOOST_TEST(first.substr(first.size() - body.size()) == body);
    std::string deleted = send("DELETE", nullptr);
    BOOST_TEST(deleted.rfind("DELETE /r HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(deleted.find("Content-Length") == std::string::npos);  // the last body is not sent again
    std::string head = send("HEAD", nullptr, true);  // refused: its connection is not kept
    BOOST_TEST(head.rfind("HEAD /r HTTP/1.1\r\n", 0) == 0u);
    std::string get = send("GET", nullptr);
    BOOST_TEST(get.rfind("GET /r HTTP/1.1\r\n", 0) == 0u);
    std::string cancel = send("POST", nullptr);  // no body: an empty one (a batch's cancel)
    BOOST_TEST(cancel.rfind("POST /r HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(cancel.find("Content-Length: 0\r\n") != std::string::npos);
    std::string deleted_after = send("DELETE", nullptr);
    BOOST_TEST(deleted_after.rfind("DELETE /r HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(deleted_after.find("Content-Length") == std::string::npos);
    std::string posted = send("POST", &body);
    BOOST_TEST(posted.rfind("POST /r HTTP/1.1\r\n", 0) == 0u);
    BOOST_TEST(posted.substr(posted.size() - body.size()) == body);
}

// Issue 22: an answer's head is kept in storage an earlier answer's head used, and the
// request's header lines in one buffer: each transfer sends its own lines, and its
// listener hears its own answer's fields alone, however many the earlier answers had.
BOOST_AUTO_TEST_CASE(each_transfer_sends_its_own_headers_and_hears_its_own_head_alone) {
    UpstreamLoop proxy;
    const std::string long_value(40, 'v');
    auto send = [&](const std::string& answer, std::vector<std::string> lines, RecordingListener& listener) {
        OneAnswerServer server(answer);
        std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url("/h"), listener, nullptr, std::move(lines));
        proxy.run_until_done(listener);
        BOOST_TEST(listener.dones == 1);
        return server.request();
    };
    RecordingListener first, second, third;
    std::string sent = send(kAnswer, {"X-One: 1", "X-Two: " + long_value, "X-Three: 3"}, first);
    BOOST_TEST(sent.find("\r\nX-One: 1\r\nX-Two: " + long_value + "\r\nX-Three: 3\r\n") != std::string::npos);
    BOOST_TEST(first.head.size() == 4u);
    BOOST_TEST(first.header("X-Folded") == "first second");

    sent = send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", {"X-Alone: a"}, second);
    BOOST_TEST(sent.find("\r\nX-Alone: a\r\n") != std::string::npos);
    BOOST_TEST(sent.find("X-One") == std::string::npos);
    BOOST_REQUIRE(second.head.size() == 2u);  // not the first answer's four
    BOOST_TEST(second.head[0].name == "Content-Length");
    BOOST_TEST(second.head[0].value == "2");
    BOOST_TEST(second.header("X-Folded") == "(none)");

    send("HTTP/1.1 200 OK\r\nX-Long: " + long_value + "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", {}, third);
    BOOST_REQUIRE(third.head.size() == 3u);
    BOOST_TEST(third.head[0].name == "X-Long");
    BOOST_TEST(third.head[0].value == long_value);  // written over a shorter earlier field
    BOOST_TEST(third.head[2].name == "Connection");
}

// Issue 22: a request target goes out as libcurl would send it, whether the loop's parsed
// origin carries it (a plain one: as it stands, query included) or libcurl parses the URL
// itself (dot segments resolved, escapes kept); nothing of one target reaches the next.
BOOST_AUTO_TEST_CASE(each_request_target_goes_out_as_libcurl_would_send_it) {
    const std::vector<std::string> targets = {"/a/b?x=1&y=/../z?w", "/c", "/d/../e?q=%4A", "/f?g=1", "/h/./i"};
    OneAnswerServer server(kAnswer, static_cast<int>(targets.size()));
    UpstreamLoop proxy;
    for (const std::string& target : targets) {
        RecordingListener listener;
        std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url(target), listener);
        proxy.run_until_done(listener);
        BOOST_TEST(listener.dones == 1, target);
        BOOST_TEST(listener.result.status == 200, target);
    }
    std::vector<std::string> lines;  // each request's first line (no bodies: GET)
    for (size_t at = 0; at < server.request().size();) {
        lines.push_back(server.request().substr(at, server.request().find("\r\n", at) - at));
        size_t end = server.request().find("\r\n\r\n", at);
        at = end == std::string::npos ? server.request().size() : end + 4;
    }
    BOOST_TEST(lines == (std::vector<std::string>{"GET /a/b?x=1&y=/../z?w HTTP/1.1", "GET /c HTTP/1.1",
                                                  "GET /e?q=%4A HTTP/1.1", "GET /f?g=1 HTTP/1.1", "GET /h/i HTTP/1.1"}),
               boost::test_tools::per_element());
}

// A loop keeps 16 origins parsed; the next ones are parsed by libcurl, and every target
// still goes to its own origin.
BOOST_AUTO_TEST_CASE(origins_beyond_those_a_loop_keeps_still_get_their_requests) {
    UpstreamLoop proxy;
    for (int i = 0; i < 18; ++i) {
        const std::string target = "/o" + std::to_string(i) + "?n=" + std::to_string(i);
        OneAnswerServer server(kAnswer);
        RecordingListener listener;
        std::unique_ptr<Transfer> transfer = proxy.start("GET", server.url(target), listener);
        proxy.run_until_done(listener);
        BOOST_TEST(listener.result.status == 200, target);
        BOOST_TEST(server.request().rfind("GET " + target + " HTTP/1.1\r\n", 0) == 0u, target);
    }
}

std::string whole_url(CURLU* parsed) {
    char* text = nullptr;
    if (curl_url_get(parsed, CURLUPART_URL, &text, 0) != CURLUE_OK) return "(refused)";
    std::string url(text);
    curl_free(text);
    return url;
}

// The parsed URLs themselves (no transfer): a plain URL is handed out parsed and comes back
// for the next; what libcurl would change is not.
BOOST_AUTO_TEST_CASE(a_plain_url_is_handed_out_parsed_and_its_copy_serves_the_next) {
    ParsedOrigins origins;
    int origin = -2;
    CurlUrl first = origins.parsed("http://127.0.0.1:9/a/b?api-version=1", origin);
    BOOST_REQUIRE(first);
    BOOST_TEST(origin == 0);
    BOOST_TEST(whole_url(first.get()) == "http://127.0.0.1:9/a/b?api-version=1");
    CURLU* copy = first.get();
    origins.give_back(origin, std::move(first));
    CurlUrl next = origins.parsed("http://127.0.0.1:9/c", origin);
    BOOST_TEST(next.get() == copy);
    BOOST_TEST(whole_url(next.get()) == "http://127.0.0.1:9/c");
    BOOST_TEST(!origins.parsed("http://127.0.0.1:9/a/../c", origin));
    BOOST_TEST(origin == -1);
}

// A free copy whose path was set for the same URL serves it again; another URL gets a
// copy with its own path, and every copy handed out says the URL it was asked for.
BOOST_AUTO_TEST_CASE(a_copy_set_for_the_same_url_serves_it_again) {
    ParsedOrigins origins;
    const std::string a = "http://127.0.0.1:9/openai/deployments/d/chat/completions?api-version=1";
    const std::string b = "http://127.0.0.1:9/openai/deployments/e/chat/completions?api-version=1";
    int origin_a = -1, origin_b = -1;
    CurlUrl first_a = origins.parsed(a, origin_a);
    CurlUrl first_b = origins.parsed(b, origin_b);
    BOOST_REQUIRE(first_a);
    BOOST_REQUIRE(first_b);
    BOOST_TEST(origin_a == origin_b);
    CURLU* copy_a = first_a.get();
    CURLU* copy_b = first_b.get();
    origins.give_back(origin_a, std::move(first_a));
    origins.give_back(origin_b, std::move(first_b));
    int origin = -1;
    CurlUrl again_a = origins.parsed(a, origin);
    BOOST_TEST(again_a.get() == copy_a);  // not the last given back: the one set for `a`
    BOOST_TEST(origin == origin_a);
    BOOST_TEST(whole_url(again_a.get()) == a);
    CurlUrl again_b = origins.parsed(b, origin);
    BOOST_TEST(again_b.get() == copy_b);
    BOOST_TEST(whole_url(again_b.get()) == b);
    origins.give_back(origin, std::move(again_b));
    CurlUrl other = origins.parsed("http://127.0.0.1:9/c?x=1", origin);  // b's copy, its path set anew
    BOOST_TEST(other.get() == copy_b);
    BOOST_TEST(whole_url(other.get()) == "http://127.0.0.1:9/c?x=1");
    origins.give_back(origin, std::move(other));
    CurlUrl b_anew = origins.parsed(b, origin);
    BOOST_TEST(whole_url(b_anew.get()) == b);
    BOOST_TEST(!origins.parsed("http://127.0.0.1:9/a/../c", origin));  // never seen plain: still cut
    BOOST_TEST(origin == -1);
}

// A reload may bring new endpoints: an origin with no transfer under way makes room for
// one; while all 16 have one, the 17th is left to libcurl's own parse.
BOOST_AUTO_TEST_CASE(an_idle_origin_makes_room_for_a_new_one) {
    ParsedOrigins origins;
    std::vector<std::pair<int, CurlUrl>> out;
    for (int i = 0; i < 16; ++i) {
        int origin = -1;
        CurlUrl url = origins.parsed("http://h" + std::to_string(i) + ":1/x", origin);
        BOOST_REQUIRE(url);
        out.emplace_back(origin, std::move(url));
    }
    int origin = 0;
    BOOST_TEST(!origins.parsed("http://new:1/x", origin));
    BOOST_TEST(origin == -1);
    int freed = out[3].first;
    origins.give_back(freed, std::move(out[3].second));
    CurlUrl added = origins.parsed("http://new:1/y", origin);
    BOOST_REQUIRE(added);
    BOOST_TEST(origin == freed);
    BOOST_TEST(origins.kept() == 16u);
    BOOST_TEST(whole_url(added.get()) == "http://new:1/y");
    BOOST_TEST(!origins.parsed("http://h3:1/x", origin));  // its place is taken, all busy again
}

// Issue 22: on an HTTP/2 upstream libcurl is told no event, so that it polls the socket for
// every stream and a request body waiting to go out goes at once.
BOOST_AUTO_TEST_CASE(an_http2_upstream_socket_is_polled_by_libcurl_itself) {
    BOOST_TEST(curl_socket_events(EPOLLIN, true) == 0);
    BOOST_TEST(curl_socket_events(EPOLLIN | EPOLLOUT | EPOLLHUP, true) == 0);
    BOOST_TEST(curl_socket_events(EPOLLIN, false) == CURL_CSELECT_IN);
    BOOST_TEST(curl_socket_events(EPOLLOUT, false) == CURL_CSELECT_OUT);
    BOOST_TEST(curl_socket_events(EPOLLIN | EPOLLERR, false) == (CURL_CSELECT_IN | CURL_CSELECT_ERR));
    BOOST_TEST(curl_socket_events(EPOLLHUP, false) == CURL_CSELECT_ERR);
}

BOOST_AUTO_TEST_SUITE_END()

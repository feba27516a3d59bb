// From an accepted connection to a relayed session (session_opening.h). Tested in
// tests/integration/realtime-socket.test.mjs.
#include "session_opening.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>

#include "relay_session.h"
#include "upstream_socket.h"

// A place among the process's sessions, given back when the session (or its opening) ends;
// `relay` once it is relayed, for a stop.
struct SessionSlot {
    explicit SessionSlot(std::shared_ptr<OpenSessions> open) : open_(std::move(open)) { open_->slots.insert(this); }
    ~SessionSlot() { open_->slots.erase(this); }
    SessionSlot(const SessionSlot&) = delete;
    SessionSlot& operator=(const SessionSlot&) = delete;
    std::shared_ptr<OpenSessions> open_;
    std::weak_ptr<RelaySession> relay;
};

namespace {

int64_t wall_clock_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void write_log_line(const RealtimeSessionLog& log) {
    std::fprintf(stderr, "%s\n", realtime_session_line(log).c_str());
}

// Azure's refusal as the client's answer: its status when it names the client's mistake or
// a limit (401, 403, 404, 429…), its JSON body when it sent one; anything else is a 502.
ProxyError upstream_refusal(const UpstreamOpened& opened, std::string& body) {
    int status = opened.status;
    if (status >= 400 && status < 500) {
        body = !opened.body.empty() && opened.body.front() == '{' ? opened.body : std::string();
        return make_error(status, "Azure refused the realtime session (HTTP " + std::to_string(status) + ").",
                          "upstream_refused", "", "invalid_request_error");
    }
    body.clear();
    return make_error(502, "The realtime session could not be opened upstream.", "upstream_unavailable", "",
                      "api_error");
}

class SessionOpening : public std::enable_shared_from_this<SessionOpening> {
public:
    SessionOpening(RealtimeProcess& process, ClientConnection::Socket socket)
        : process_(process), client_(client_connection(std::move(socket), end_limits(process.settings))),
          deadline_(process.io) {}

    void start() {
        auto self = shared_from_this();
        deadline_.expires_after(std::chrono::seconds(process_.settings.handshake_timeout_s));
        deadline_.async_wait([self](boost::system::error_code ec) {
            if (ec) return;
            self->log_.outcome = "handshake timed out";
            self->client_->cut();
        });
        client_->read_request([self](bool ok, RealtimeRequest request) { self->on_request(ok, std::move(request)); });
    }

private:
    static EndLimits end_limits(const RealtimeSettings& settings) {
        EndLimits limits;
        limits.max_message_bytes = static_cast<unsigned long long>(settings.max_message_bytes);
        limits.handshake_timeout_s = settings.handshake_timeout_s;
        limits.idle_ping_s = std::min<long>(settings.idle_timeout_s, 60);
        return limits;
    }

    void on_request(bool ok, RealtimeRequest request) {
        if (!ok) {  // gone, timed out, or not HTTP: nothing to answer
            deadline_.cancel();
            if (!log_.outcome.empty()) write_log_line(log_);
            return;
        }
        RealtimeAdmission admission;
        ProxyError error;
        if (!admit_realtime(process_.config, request, wall_clock_now_ms(), admission, error)) return refuse(error);
        log_.key_name = admission.key_name;
        log_.model = admission.model;
        log_.deployment = admission.deployment;
        if (process_.sessions->stopping)
            return refuse(make_error(503, "This proxy is stopping; retry on another.", "proxy_stopping", "", "api_error"));
        if (static_cast<long>(process_.sessions->slots.size()) >= process_.settings.max_sessions)
            return refuse(make_error(503, "Too many realtime sessions on this proxy; retry later.", "proxy_overloaded",
                                     "", "api_error"));
        slot_ = std::make_shared<SessionSlot>(process_.sessions);
        answer_protocol_ = admission.answer_protocol;
        UpstreamTarget target{admission.upstream, admission.upstream_headers, process_.config.connect_timeout_s};
        auto self = shared_from_this();
        open_upstream(process_.io, process_.tls, target, end_limits(process_.settings),
                      [self](UpstreamOpened opened) { self->on_upstream(std::move(opened)); });
    }

    void on_upstream(UpstreamOpened opened) {
        if (!opened.end) {
            std::fprintf(stderr, "azure-openai-proxy-realtime: upstream: %s\n", opened.error.c_str());
            std::string body;
            ProxyError error = upstream_refusal(opened, body);
            return refuse(error, body);
        }
        upstream_ = std::move(opened.end);
        auto self = shared_from_this();
        client_->accept(answer_protocol_, [self](std::unique_ptr<SocketEnd> client) { self->on_accepted(std::move(client)); });
    }

    void on_accepted(std::unique_ptr<SocketEnd> client) {
        deadline_.cancel();
        if (!client) {
            if (log_.outcome.empty()) log_.outcome = "client handshake failed";
            write_log_line(log_);
            return;  // Azure's side goes with this object, its socket closed
        }
        RelayLimits limits;
        limits.queue_bytes = static_cast<unsigned long long>(process_.settings.queue_bytes);
        limits.idle_timeout_s = process_.settings.idle_timeout_s;
        limits.write_timeout_s = process_.config.write_timeout_s;
        auto slot = slot_;
        auto session = std::make_shared<RelaySession>(process_.io, std::move(client), std::move(upstream_), limits, log_,
                                                      [slot](const RealtimeSessionLog& log) { write_log_line(log); });
        slot_->relay = session;
        session->start();
        if (process_.sessions->stopping) session->go_away();
    }

    void refuse(const ProxyError& error, const std::string& body = "") {
        log_.outcome = "refused " + std::to_string(error.status);
        write_log_line(log_);
        auto self = shared_from_this();
        client_->refuse(error.status, body.empty() ? error_body(error) : body, [self] { self->deadline_.cancel(); });
    }

    RealtimeProcess& process_;
    std::unique_ptr<ClientConnection> client_;
    std::unique_ptr<SocketEnd> upstream_;
    boost::asio::steady_timer deadline_;
    RealtimeSessionLog log_;
    std::string answer_protocol_;
    std::shared_ptr<SessionSlot> slot_;
};

}  // namespace

void open_session(RealtimeProcess& process, ClientConnection::Socket socket) {
    std::make_shared<SessionOpening>(process, std::move(socket))->start();
}

void stop_sessions(RealtimeProcess& process) {
    process.sessions->stopping = true;
    // go_away() ends no session at once (its closes are asynchronous): the set holds still.
    for (SessionSlot* slot : process.sessions->slots)
        if (auto relay = slot->relay.lock()) relay->go_away();
}

// From an accepted connection to a relayed session (session_opening.h). Tested in
// tests/integration/realtime-socket.test.mjs and realtime-identity.test.mjs.
#include "session_opening.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

#include "key_limits.h"
#include "proxy_errors.h"
#include "realtime_log.h"
#include "realtime_route.h"
#include "routing.h"
#include "relay_session.h"
#include "token_keeper.h"
#include "upstream_socket.h"

// A place among the process's sessions, and among its key's on the host when the key's
// sessions are counted (`key_name` not empty), in the host's gauge of open sessions, and
// once relayed to a routing file's target, among that target's tries in flight; given back
// when the session (or its opening) ends. `relay` once it is relayed, for a stop.
struct SessionSlot {
    SessionSlot(RealtimeProcess& process, std::string key_name)
        : open_(process.sessions), state_(*process.state), key_name_(std::move(key_name)) {
        open_->slots.insert(this);
        state_.add(kSessionsOpen, 1, true);
    }
    ~SessionSlot() {
        open_->slots.erase(this);
        state_.add(kSessionsOpen, -1, true);
        if (!key_name_.empty()) state_.end_session(key_name_);
        if (target_) state_.end_try(*target_);
    }
    SessionSlot(const SessionSlot&) = delete;
    SessionSlot& operator=(const SessionSlot&) = delete;
    // The session's target (in `table`, kept while the session lasts, a reload or not).
    void hold_target(const Target& target, std::shared_ptr<const RoutingTable> table) {
        target_ = &target;
        table_ = std::move(table);
    }
    std::weak_ptr<RelaySession> relay;

private:
    static constexpr const char* kSessionsOpen = "aop_realtime_sessions_open";
    std::shared_ptr<OpenSessions> open_;
    SharedState& state_;  // the process's, which outlives its event loop
    std::string key_name_;
    const Target* target_ = nullptr;
    std::shared_ptr<const RoutingTable> table_;
};

namespace {

// The session's access line, stamped and shaped as the FastCGI program's
// (AZURE_OPENAI_PROXY_LOG_FORMAT), in one write so that lines never interleave.
void write_access_line(const Config& config, const RealtimeSessionLog& log) {
    std::string line = realtime_access_line(log, wall_clock_ms() / 1000, config.log_format) + "\n";
    if (write(STDERR_FILENO, line.data(), line.size()) < 0) return;  // stderr gone: nowhere to say so
}

// A session's end (or its opening's failure): its access line, and its metrics in the
// host's shared state. A refusal is counted by its reason where it is sent.
void session_ended(RealtimeProcess& process, const RealtimeSessionLog& log) {
    write_access_line(process.config, log);
    SharedState& state = *process.state;
    std::string key = log.key_name.empty() ? "-" : log.key_name;
    state.count("aop_realtime_sessions_total", {{"key", key}, {"outcome", realtime_outcome_label(log.outcome)}});
    state.count("aop_realtime_bytes_total", {{"key", key}, {"from", "client"}}, static_cast<double>(log.client_bytes));
    state.count("aop_realtime_bytes_total", {{"key", key}, {"from", "upstream"}}, static_cast<double>(log.upstream_bytes));
    for (auto [side, code] : {std::pair<const char*, int>{"client", log.client_close}, {"upstream", log.upstream_close}})
        state.count("aop_realtime_close_codes_total", {{"side", side}, {"code", close_code_label(code)}});
    state.observe("aop_realtime_session_seconds", {}, static_cast<double>(log.duration_ms) / 1000.0);
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

    ~SessionOpening() { settle(TryResult::Abandoned); }

    void start() {
        arm_deadline();
        auto self = shared_from_this();
        client_->read_request([self](bool ok, RealtimeRequest request) { self->on_request(ok, std::move(request)); });
    }

private:
    // The handshake's deadline: a session still waiting for its Entra ID token hears 503,
    // one whose Azure handshake is under way 504 (that attempt closed, its target told it
    // failed); each refusal's write under a deadline of its own. Anything else is cut.
    void arm_deadline() {
        auto self = shared_from_this();
        deadline_.expires_after(std::chrono::seconds(process_.settings.handshake_timeout_s));
        deadline_.async_wait([self](boost::system::error_code ec) {
            if (ec) return;
            if (self->token_wait_.active()) {
                self->token_wait_ = TokenWait();
                self->settle(TryResult::Abandoned);
                std::fprintf(stderr, "azure-openai-proxy-realtime: no Entra ID token within the handshake deadline\n");
                self->arm_deadline();
                return self->refuse(errors::upstream_auth_failed());
            }
            if (self->abandon_upstream_) return self->upstream_timed_out();
            self->log_.outcome = "handshake timed out";
            self->client_->cut();
        });
    }

    void upstream_timed_out() {
        UpstreamAbandon abandon = std::move(abandon_upstream_);
        abandon_upstream_ = nullptr;  // on_upstream, called by abandon() or later, finds it gone
        abandon();
        settle(TryResult::Failed);
        long seconds = process_.settings.handshake_timeout_s;
        std::fprintf(stderr, "azure-openai-proxy-realtime: upstream: no WebSocket handshake within the %ld s deadline\n",
                     seconds);
        arm_deadline();
        refuse(make_error(504, "Azure did not open the realtime session within " + std::to_string(seconds) + " s.",
                          "upstream_timeout", "", "api_error"));
    }

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
            if (!log_.outcome.empty()) session_ended(process_, log_);
            return;
        }
        ProxyError error;
        if (!admit_realtime(process_.config, request, wall_clock_ms(), admission_, error)) return refuse(error);
        log_.key_name = admission_.key_name;
        log_.model = admission_.model;
        log_.deployment = admission_.deployment;
        if (process_.sessions->stopping)
            return refuse(make_error(503, "This proxy is stopping; retry on another.", "proxy_stopping", "", "api_error"));
        if (static_cast<long>(process_.sessions->slots.size()) >= process_.settings.max_sessions)
            return refuse(make_error(503, "Too many realtime sessions on this proxy; retry later.", "proxy_overloaded",
                                     "", "api_error"));
        if (!admit_key_session()) return;
        if (admission_.targets) tried_.assign(admission_.targets->size(), false);
        next_try();
    }

    // The key's place among its sessions on the host (and one request against its rate),
    // or its 429. Its place (counted or not) and the process's are held from here on.
    bool admit_key_session() {
        long default_sessions = process_.settings.sessions_per_key;
        if (!admission_.keyed || !counts_sessions(admission_.key_limits, default_sessions)) {
            slot_ = std::make_shared<SessionSlot>(process_, "");
            return true;
        }
        KeyDecision d = process_.state->admit_session(admission_.key_name, admission_.key_limits, default_sessions,
                                                      wall_clock_ms());
        if (!d.allowed) {
            Headers headers = rate_limit_headers(d);
            if (d.retry_after_ms > 0) add_retry_after(headers, d.retry_after_ms);
            refuse(make_error(d.status, d.message, d.code, "", "requests"), "", headers);
            return false;
        }
        slot_ = std::make_shared<SessionSlot>(process_, admission_.key_name);
        return true;
    }

    // One try: the environment's endpoint, or the target the shared state picks.
    void next_try() {
        endpoint_ = &process_.config;
        deployment_ = admission_.deployment;
        if (admission_.targets) {
            const std::vector<Target>& targets = *admission_.targets;
            Pick pick = process_.state->choose(targets, tried_, wall_clock_ms(), true,
                                               trial_lease_ms(admission_.table->retry));
            if (pick.index < 0) return refuse(errors::no_target(pick, admission_.model));
            const Target& target = targets[static_cast<size_t>(pick.index)];
            tried_[static_cast<size_t>(pick.index)] = true;
            ++tries_;
            held_ = HeldTry{&target, pick.trial_token};
            endpoint_ = admission_.table->endpoints[target.endpoint].upstream.get();
            deployment_ = log_.deployment = target.deployment;
        }
        with_credential();
    }

    // The endpoint's Entra ID token, waited for when the first one is on its way.
    void with_credential() {
        authorization_.clear();
        keeper_ = nullptr;
        if (realtime_uses_token(*endpoint_)) {
            keeper_ = &token_keeper_for(endpoint_->credential, process_.config, process_.state.get());
            TokenReading token = keeper_->read();
            if (token.state == TokenState::Pending && !token_waited_) return wait_for_token();
            token_waited_ = false;
            if (token.state != TokenState::Ready) {
                std::fprintf(stderr, "azure-openai-proxy-realtime: %s\n",
                             token.error.empty() ? "Entra ID token: still none" : token.error.c_str());
                settle(TryResult::Abandoned);
                return refuse(errors::upstream_auth_failed());
            }
            authorization_ = token.authorization;
        }
        open_try();
    }

    // Without holding the loop: the keeper posts the rest to it once the token request has
    // settled; the handshake deadline ends the wait.
    void wait_for_token() {
        std::weak_ptr<SessionOpening> weak = shared_from_this();
        boost::asio::io_context& io = process_.io;
        token_wait_ = keeper_->when_settled(
            [&io](std::function<void()> work) { boost::asio::post(io, std::move(work)); },
            [weak] {
                auto self = weak.lock();
                if (!self) return;
                self->token_wait_ = TokenWait();
                self->token_waited_ = true;
                self->with_credential();
            });
    }

    void open_try() {
        RealtimeUpstream where;
        Headers headers;
        ProxyError error;
        if (!realtime_destination(*endpoint_, deployment_, process_.settings.preview_api_version,
                                  admission_.presented_key, authorization_, where, headers, error)) {
            settle(TryResult::Abandoned);
            return refuse(error);
        }
        UpstreamTarget target{where, headers, process_.config.connect_timeout_s};
        auto self = shared_from_this();
        abandon_upstream_ = open_upstream(process_.io, process_.tls, target, end_limits(process_.settings),
                                          [self](UpstreamOpened opened) { self->on_upstream(std::move(opened)); });
    }

    void on_upstream(UpstreamOpened opened) {
        if (!abandon_upstream_) return;  // the deadline came first: the client has its 504
        abandon_upstream_ = nullptr;
        TryResult result = realtime_try_result(opened.end != nullptr, opened.status);
        settle(result, opened.retry_after_ms, opened.end != nullptr);
        if (!opened.end) {
            std::fprintf(stderr, "azure-openai-proxy-realtime: upstream: %s\n", opened.error.c_str());
            // Azure refused the token: dropped here and in the host's row, the next session
            // waits for a new one.
            if (opened.status == 401 && keeper_ && !authorization_.empty()) keeper_->renew(authorization_);
            if (another_target(result)) return next_try();
            std::string body;
            ProxyError error = upstream_refusal(opened, body);
            return refuse(error, body);
        }
        upstream_ = std::move(opened.end);
        auto self = shared_from_this();
        client_->accept(answer_protocol(), [self](std::unique_ptr<SocketEnd> client) { self->on_accepted(std::move(client)); });
    }

    // The try failed before the client heard anything: another target free now takes the session.
    bool another_target(TryResult result) {
        if (!admission_.targets || !realtime_tries_next(result, tries_, admission_.table->retry)) return false;
        return process_.state->choose(*admission_.targets, tried_, wall_clock_ms(), false).index >= 0;
    }

    // The try's target hears how its handshake went. Its place in flight is given back, or,
    // for a session `opened` there, held by the session's slot until the session ends.
    void settle(TryResult result, int64_t retry_after_ms = -1, bool opened = false) {
        if (!held_) return;
        process_.state->report(*held_->target, result, retry_after_ms, held_->trial, wall_clock_ms(),
                               admission_.table->retry, !opened);
        if (opened) slot_->hold_target(*held_->target, admission_.table);
        held_.reset();
    }

    const std::string& answer_protocol() const { return admission_.answer_protocol; }

    void on_accepted(std::unique_ptr<SocketEnd> client) {
        deadline_.cancel();
        if (!client) {
            if (log_.outcome.empty()) log_.outcome = "client handshake failed";
            session_ended(process_, log_);
            return;  // Azure's side goes with this object, its socket closed
        }
        RelayLimits limits;
        limits.queue_bytes = static_cast<unsigned long long>(process_.settings.queue_bytes);
        limits.idle_timeout_s = process_.settings.idle_timeout_s;
        limits.write_timeout_s = process_.config.write_timeout_s;
        // The session's places are given back before its line is written: whoever reads the
        // line (a client told its session ended) finds them free.
        auto ended = [slot = slot_, &process = process_](const RealtimeSessionLog& log) mutable {
            slot.reset();
            session_ended(process, log);
        };
        auto session = std::make_shared<RelaySession>(process_.io, std::move(client), std::move(upstream_), limits, log_,
                                                      std::move(ended));
        slot_->relay = session;
        slot_.reset();  // the session's own now
        session->start();
        if (process_.sessions->stopping) session->go_away();
    }

    void refuse(const ProxyError& error, const std::string& body = "", const Headers& headers = {}) {
        log_.outcome = "refused " + std::to_string(error.status);
        write_access_line(process_.config, log_);
        process_.state->count("aop_realtime_refused_total", {{"reason", error.code.empty() ? "unknown" : error.code}});
        auto self = shared_from_this();
        client_->refuse(error.status, body.empty() ? error_body(error) : body, headers,
                        [self] { self->deadline_.cancel(); });
    }

    struct HeldTry {
        const Target* target;  // in admission_.table
        uint32_t trial;
    };

    RealtimeProcess& process_;
    std::unique_ptr<ClientConnection> client_;
    std::unique_ptr<SocketEnd> upstream_;
    boost::asio::steady_timer deadline_;
    RealtimeSessionLog log_;
    std::shared_ptr<SessionSlot> slot_;
    RealtimeAdmission admission_;
    std::vector<bool> tried_;  // admission_.targets' already tried
    int tries_ = 0;
    std::optional<HeldTry> held_;
    const EndpointSettings* endpoint_ = nullptr;  // the try's
    std::string deployment_;
    TokenKeeper* keeper_ = nullptr;  // the try's endpoint's, when it has an identity
    std::string authorization_;      // the token the try sent
    bool token_waited_ = false;
    TokenWait token_wait_;
    UpstreamAbandon abandon_upstream_;  // set while Azure's side is opening
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

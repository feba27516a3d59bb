// One request, from its params to the end of its answer: read (receive), routed and
// translated (serve), relayed from the upstream, answered. It runs on one event loop;
// only receive() may run elsewhere (a reader thread), before the loop takes it back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "access_log.h"
#include "config.h"
#include "connection.h"
#include "deadline_queue.h"
#include "event_loop.h"
#include "multipart.h"
#include "relay.h"
#include "request.h"
#include "response.h"
#include "response_writer.h"
#include "target_choice.h"
#include "key_limits.h"
#include "metrics.h"
#include "proxy_errors.h"
#include "api_routes.h"
#include "reasoning_params.h"
#include "responses_stream.h"
#include "spool.h"
#include "tickets.h"
#include "token_keeper.h"
#include "upstream.h"
#include "usage.h"

class SharedState;

// What carries the exchange (the FastCGI engine, or plain CGI) does for it.
class ExchangeHost {
public:
    virtual ~ExchangeHost() = default;
    // The answer grew: send what was written by the end of this loop iteration.
    virtual void flush_soon() = 0;
    // The connection cannot take more now: call Exchange::writable() once it can.
    virtual void wait_writable() = 0;
    // The answer is complete (or abandoned): end the request, log it. The exchange may
    // be destroyed after the current loop iteration, not before.
    virtual void finished() = 0;
};

// The loop an exchange is served on, and what the loop shares between its requests.
struct LoopServices {
    EventLoop& loop;
    Upstream& upstream;
    DeadlineQueue& heartbeats;  // AZURE_OPENAI_PROXY_HEARTBEAT_MS
    SharedState& state;         // targets' health, keys' counters, metrics: the host's
};

// Fires the heartbeats of a loop's streams as they fall due (their links' owners are
// exchanges).
class HeartbeatTimer : public TimerSource {
public:
    explicit HeartbeatTimer(DeadlineQueue& heartbeats) : heartbeats_(heartbeats) {}
    int64_t next_due_ms() const override { return heartbeats_.next_due_ms(); }
    void fire(int64_t now_ms) override;

private:
    DeadlineQueue& heartbeats_;
};

// The exchange walks these phases, in this order (Paused and Retrying come back to
// Relaying); each phase's data belongs to its step (ARCHITECTURE.md).
enum class Phase {
    Receiving,  // params, route, admission (client key), body; maybe on a reader thread
    Serving,    // on the loop: model policy, the key's limits, an inline answer or a try
    Relaying,   // a transfer runs; its answer flows to the client as it comes
    Paused,     // ...and waits for the client to drain (the transfer is paused)
    Retrying,   // the answer's head was refused (a 429 or 5xx): the next target follows
    Finished,   // answered, cut or abandoned; everything it held is given back
};

// The live models list, held whole to be put in OpenAI's shape.
struct CollectedAnswer {
    long status = 0;
    std::string type;
    std::string body;
};

class Exchange : public UpstreamListener {
public:
    Exchange(const Config& config, Connection& connection, ExchangeHost& host, int64_t started_ms);
    ~Exchange() override;
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    // Reads the request: its params (already read by the connection), its route, and the
    // body the route needs. May wait for the body: call it where waiting is allowed.
    void receive();
    // Only what the params say (method, path, route): for a request refused unread.
    void receive_head();
    // Answers with an error without serving (the proxy is full, or stopping).
    void refuse(const ProxyError& error, Headers extra = {});
    // Answers, inline or from the upstream. On the loop's thread.
    void serve(const LoopServices& services);

    // From the host: the connection can take more; the web server dropped the request;
    // the program is stopping; the heartbeat fell due.
    void writable();
    void client_gone();
    void stop();
    void heartbeat_due();
    // A deadline of the host's passed (`outcome` names it, `what` says it for the log):
    // the request ends now, its transfer with it. The host closes the connection.
    void abandon(const char* outcome, const std::string& what);
    // The read deadlines passed before the body arrived: the 408 the client gets (the
    // log says why).
    ProxyError body_too_late();

    const Request& request() const { return request_; }
    Phase phase() const { return phase_; }
    // The access-log line's fields, complete once the exchange has finished.
    AccessLogEntry& log_entry();
    bool finished() const { return phase_ == Phase::Finished; }
    // The answer was cut short: end the request without END_REQUEST.
    bool cut() const { return writer_.cut(); }

    // UpstreamListener
    bool on_head(long status, const FieldViews& headers) override;
    Taken on_data(const char* data, size_t size) override;
    void on_done(const UpstreamResult& result) override;

private:
    // Receiving (exchange_body.cpp).
    enum class BodyUse { None, Json, Upload, Spooled };
    BodyUse body_use() const;
    bool read_body(BodyUse use);
    template <typename Keep>
    bool read_body_into(Keep keep);
    void refuse_later(const ProxyError& error);
    bool admit();
    RequestBody body_for(const std::string& deployment, bool rewrite_model);
    void release_request();

    // Serving.
    void serve_route();
    void serve_deployment();
    void serve_upstream();
    void serve_live_models();
    void serve_realtime();  // exchange_realtime.cpp
    bool map_session_model(std::string& json, bool in_member, ProxyError& error);
    bool admit_key_limits();
    void start_on(const Route& route, const std::string& deployment, bool rewrite_model);
    void start_upstream(UpstreamRequest request, RequestBody body);
    // exchange_token.cpp: the endpoint's Entra ID token on the request, maybe waited for.
    void start_with_token(const UpstreamRequest& request, RequestBody body);
    void finish_unless_started();  // no transfer and no wait for a token: the answer is complete
    bool refuse_rejected_token(long status);
    void resend_with_new_token();

    // Target tries (exchange_tries.cpp).
    void start_try();
    void answer_no_target(const Pick& pick);
    bool can_retry();
    bool retry_after(const UpstreamResult& result);
    bool refuse_answer_head(long status, const FieldViews& headers);
    void settle_try(TryResult result, int64_t retry_after_ms);

    // A refusal held (exchange_refusal.cpp): the parameters a reasoning deployment refuses
    // fixed in the body; Azure's 400 naming one held, then the body fixed and sent again, or
    // the 400 relayed as it came.
    void fix_parameters_for(const std::string& deployment);
    bool hold_refusal(long status, const FieldViews& headers);
    Taken hold_refusal_data(const char* data, size_t size);
    bool resend_fixed(const UpstreamResult& result);
    bool release_held_refusal();

    // The Chat->Responses bridge (exchange_bridge.cpp): a chat body a Responses-only
    // deployment takes goes to its Responses API; the answer comes back in the chat shape.
    void bridge_body(const std::string& deployment);
    UpstreamRequest try_request(const Route& route, const std::string& deployment);
    bool resend_bridged(const UpstreamResult& result);
    bool bridge_head(long status, const FieldViews& headers);
    Taken bridge_data(const char* data, size_t size);
    Taken bridge_stream_data(const char* data, size_t size);
    Taken bridge_flush();
    void bridge_done(const UpstreamResult& result);
    void bridge_stream_done(const UpstreamResult& result);

    // Relaying and the end (exchange_relay.cpp, accounting.cpp).
    bool relay_head(long status, const FieldViews& headers);
    void answer_models(const UpstreamResult& result);
    void relay_done(const UpstreamResult& result);
    void arm_heartbeat();
    // What the relay's answer to a piece means: flushed soon (heartbeat re-armed), or the
    // exchange paused until the client drains. Returns `taken`.
    Taken after_relay(Taken taken);
    void time_first_token();  // once a request: the first event reached the client
    void cut_short(const ProxyError& error);
    void finish();
    void end_accounting();
    std::string_view metric_model() const;
    std::string_view route_label() const;

    const Config& config_;
    Connection& connection_;
    ExchangeHost& host_;
    const LoopServices* services_ = nullptr;
    Phase phase_ = Phase::Receiving;
    int64_t started_ms_;
    Request request_;
    Route route_;
    AccessLogEntry log_;
    std::shared_ptr<const RoutingTable> routing_;  // the table in force when it arrived

    // Admission: the client's key, its place in its limits, its x-ratelimit-* headers.
    const ClientKey* key_ = nullptr;
    std::optional<KeyTicket> key_ticket_;
    KeyDecision key_headroom_;

    // The body: a JSON body read whole (its model is needed), any other in the spool.
    std::string body_;
    Spool spool_;
    std::string boundary_;
    MultipartModelScanner scanner_;  // no form until the body says so
    bool streamed_answer_ = false;        // the JSON body asks for "stream": true
    std::optional<ProxyError> refused_;  // what receiving found wrong, answered on the loop

    // Target tries: a model of the routing table, its targets, which were tried, the try.
    const std::vector<Target>* targets_ = nullptr;
    std::vector<bool> tried_;
    std::optional<TryTicket> try_;
    Pick no_target_;  // when a refused head leaves every target cooling, what to say
    TryResult answer_result_ = TryResult::Success;
    int64_t answer_retry_after_ms_ = -1;
    int64_t try_started_ms_ = 0;
    const EndpointSettings* upstream_config_;  // the endpoint the request went to (errors name it)
    TokenWait token_wait_;       // waiting for the endpoint's first Entra ID token
    bool token_waited_ = false;  // ...and it settled: no second wait
    // A 401 from Azure to the proxy's own token: the token is renewed once and the try sent
    // again as it was before its token (exchange_token.cpp).
    std::optional<std::pair<UpstreamRequest, RequestBody>> token_try_;
    std::string token_sent_;       // the Authorization line the try carried
    bool token_rejected_ = false;  // the 401 came: on_done sends the try again
    bool token_renewed_ = false;   // ...once only

    // A refusal held: Azure's 400 kept (bounded) until on_done decides; the try as it was
    // sent, to send again with the body fixed; what this request's body had fixed.
    struct HeldRefusal {
        long status = 0;
        Headers headers;
        std::string body;
    };
    std::optional<HeldRefusal> held_refusal_;
    std::optional<std::pair<UpstreamRequest, RequestBody>> refusal_try_;
    bool learn_params_ = false;   // a chat body in memory, no override: Azure's 400 may teach
    ParamSet params_fixed_ = 0;
    int param_resends_ = 0;
    std::string param_key_;       // the target the shared state remembers refusals under
    // The try's route (route_, or openai_route_: members, not copies) and model rewrite, to
    // send it again bridged.
    const Route* try_route_ = nullptr;
    Route openai_route_;          // route_ as an OpenAI endpoint of the routing file takes it
    bool try_rewrite_ = false;

    // The bridge: whether this try goes bridged, its Responses body, what it learned; its
    // answer translated as a stream, or collected (bounded) and translated at its end.
    bool bridged_ = false;
    bool learn_bridge_ = false;   // a chat try not bridged: Azure's OperationNotSupported may teach
    bool bridge_learned_ = false; // ...it did: this request's next try goes bridged
    bool bridge_include_usage_ = false;
    std::string bridged_body_;
    std::optional<ProxyError> bridge_refusal_;
    std::unique_ptr<ResponsesToChatStream> bridge_stream_;
    std::string bridge_pending_;  // translated, not yet taken by the client (the piece comes again)
    size_t bridge_sent_ = 0;      // ...of which this much went
    size_t bridge_consumed_ = 0;  // bytes of the piece coming again already translated
    std::optional<CollectedAnswer> bridge_answer_;
    Headers bridge_headers_;
    TokenUsage bridge_usage_;

    // Accounting: the request and its stream counted while they last, its usage.
    std::optional<GaugeTicket> in_flight_;
    std::optional<GaugeTicket> streaming_;
    UsageScanner usage_;
    bool first_token_timed_ = false;  // aop_time_to_first_token_seconds observed

    ResponseWriter writer_;
    Relay relay_;
    std::unique_ptr<Transfer> transfer_;
    std::optional<CollectedAnswer> collected_;  // the live models list, held whole
    DeadlineLink heartbeat_;
};

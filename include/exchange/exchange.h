// One request, from its params to the end of its answer: read (receive), routed and
// translated (serve), relayed from the upstream, answered. It runs on one event loop;
// only receive() may run elsewhere (a reader thread), before the loop takes it back.
#pragma once

#include <cstdint>
#include <memory>
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
#include "balancer.h"
#include "key_limits.h"
#include "metrics.h"
#include "router.h"
#include "spool.h"
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
    // The access-log line's fields, complete once the exchange has finished.
    AccessLogEntry& log_entry();
    bool finished() const { return finished_; }
    // The answer was cut short: end the request without END_REQUEST.
    bool cut() const { return cut_; }

    // UpstreamListener
    bool on_head(long status, const Headers& headers) override;
    Taken on_data(const char* data, size_t size) override;
    void on_done(const UpstreamResult& result) override;

private:
    enum class BodyUse { None, Json, Upload, Spooled };
    BodyUse body_use() const;
    bool read_body(BodyUse use);
    template <typename Keep>
    bool read_body_into(Keep keep);
    void fail(const ProxyError& error);
    bool admit();
    std::string quoted_request() const;

    void serve_route();
    void serve_deployment();
    void serve_upstream();
    void serve_models();
    void serve_metrics();
    bool admit_key_limits();
    RequestBody body_for(const std::string& deployment, bool rewrite_model);
    void start_try();
    void answer_no_target(const Pick& pick);
    bool can_retry();
    bool retry_after(const UpstreamResult& result);
    void settle_try(TryResult result, int64_t retry_after_ms);
    void end_accounting();
    std::string_view metric_model() const;
    std::string_view route_label() const;
    void start_upstream(const UpstreamRequest& request, RequestBody body);
    void answer_models(const UpstreamResult& result);
    void relay_done(const UpstreamResult& result);
    void arm_heartbeat();
    void release_request();
    void cut_short(const ProxyError& error);
    void finish();

    const Config& config_;
    Connection& connection_;
    ExchangeHost& host_;
    const LoopServices* services_ = nullptr;
    int64_t started_ms_;
    Request request_;
    Route route_;
    AccessLogEntry log_;
    std::shared_ptr<const RoutingTable> routing_;  // the table in force when it arrived
    const ClientKey* key_ = nullptr;  // the client's key, when keys are asked for
    bool key_counted_ = false;        // its limits count this request until it ends
    long long key_estimate_ = 0;      // tokens counted for it before the answer
    KeyDecision key_headroom_;        // its x-ratelimit-* headers

    // A model of the routing table: its targets, which were tried, the one being tried.
    const std::vector<Target>* targets_ = nullptr;
    std::vector<bool> tried_;
    int target_ = -1;
    uint32_t trial_ = 0;       // the open circuit's trial the try holds (its token; 0: none)
    bool try_open_ = false;    // the try holds a place in flight at its target
    bool retry_next_ = false;  // the answer's head was refused: try the next target...
    Pick no_target_;           // ...or, when every target is cooling, say so
    TryResult answer_result_ = TryResult::Success;
    int64_t answer_retry_after_ms_ = -1;
    int64_t try_started_ms_ = 0;
    const Config* upstream_config_;  // the endpoint the request went to (errors name it)
    UsageScanner usage_;
    bool counted_stream_ = false;   // in aop_active_streams
    bool first_event_seen_ = false;
    bool accounted_ = false;

    std::string body_;  // a JSON body, read whole: its model is needed
    Spool spool_;       // any other body
    std::string boundary_;
    MultipartModelScanner scanner_{""};
    bool streamed_answer_ = false;  // the JSON body asks for "stream": true
    bool receive_failed_ = false;
    ProxyError receive_error_;

    ResponseWriter writer_;
    Relay relay_;
    std::unique_ptr<Transfer> transfer_;
    bool paused_ = false;  // the transfer waits for the client to drain
    bool collect_ = false;  // the answer is held whole (the live models list)
    long collected_status_ = 0;
    std::string collected_type_, collected_;
    DeadlineLink heartbeat_;
    bool finished_ = false;
    bool cut_ = false;
};

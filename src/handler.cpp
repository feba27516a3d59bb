#include "handler.h"

#include <unistd.h>

#include <chrono>

#include "access_log.h"
#include "body.h"
#include "multipart.h"
#include "response.h"
#include "router.h"
#include "spool.h"
#include "text.h"
#include "translate.h"

namespace {

using Clock = std::chrono::steady_clock;

// Writes the answer to the client: the CGI head once, then body bytes as they come.
class ResponseWriter {
public:
    ResponseWriter(Client& client, ProxyMode mode) : client_(client), mode_(mode) {}

    bool head(int status, Headers headers) {
        status_ = status;
        head_sent_ = true;
        if (mode_ == ProxyMode::Azure)
            for (Header& cors : cors_headers()) headers.push_back(std::move(cors));
        std::string text = cgi_head(status, headers);
        return client_.write(text.data(), text.size());
    }

    bool body(const char* data, size_t size) {
        bytes_ += static_cast<long long>(size);
        return client_.write(data, size);
    }

    void complete(int status, const std::string& content_type, const std::string& body_text) {
        Headers headers = {{"Content-Type", content_type},
                           {"Content-Length", std::to_string(body_text.size())}};
        if (head(status, headers)) body(body_text.data(), body_text.size());
    }

    void error(const ProxyError& error) {
        error_code_ = error.code;
        complete(error.status, "application/json", error_body(error));
    }

    bool head_sent() const { return head_sent_; }
    int status() const { return status_; }
    long long bytes() const { return bytes_; }
    const std::string& error_code() const { return error_code_; }

private:
    Client& client_;
    ProxyMode mode_;
    std::string error_code_;  // of the error the proxy answered itself, if any
    bool head_sent_ = false;
    int status_ = 0;
    long long bytes_ = 0;
};

// Relays the upstream's answer through the writer, unchanged but for hop-by-hop headers.
class Relay : public UpstreamListener {
public:
    Relay(ResponseWriter& writer, const Config& config)
        : writer_(writer), mode_(config.mode), heartbeat_(config.heartbeat_ms) {}

    bool on_head(long status, const Headers& upstream_headers) override {
        Headers headers;
        for (const Header& header : upstream_headers) {
            if (!is_relayed_response_header(header.name, mode_)) continue;
            if (iequals(header.name, "Content-Type") &&
                starts_with(lowercase(header.value), "text/event-stream"))
                event_stream_ = true;
            headers.push_back(header);
        }
        // A known length lets clients show progress; an event stream gets an extra
        // line at its end, so it goes without one.
        for (const Header& header : upstream_headers)
            if (iequals(header.name, "Content-Length") && !event_stream_) headers.push_back(header);
        // nginx: do not buffer this answer, whatever fastcgi_buffering says.
        headers.push_back({"X-Accel-Buffering", "no"});
        return writer_.head(static_cast<int>(status), headers);
    }

    bool on_data(const char* data, size_t size) override {
        last_write_ = Clock::now();
        tail_.append(data + (size > 2 ? size - 2 : 0), size > 2 ? 2 : size);
        if (tail_.size() > 2) tail_.erase(0, tail_.size() - 2);
        return writer_.body(data, size);
    }

    // lighttpd and Apache notice a client that left only when they next write to it; an
    // SSE comment on an idle stream makes them write, so they drop the request and the
    // upstream transfer stops. Sent only between events, never inside one.
    bool on_idle() override {
        if (!event_stream_ || heartbeat_.count() == 0 || Clock::now() - last_write_ < heartbeat_)
            return true;
        if (!tail_.empty() && tail_ != "\n\n") return true;
        last_write_ = Clock::now();
        static const char kHeartbeat[] = ": keep-alive\n\n";
        return writer_.body(kHeartbeat, sizeof kHeartbeat - 1);
    }

    // Azure omits the blank line that ends the last event; event-source parsers wait
    // for it. Like the seed, add it.
    void finish_event_stream() {
        if (event_stream_) writer_.body("\n", 1);
    }

private:
    ResponseWriter& writer_;
    ProxyMode mode_;
    std::chrono::milliseconds heartbeat_;
    Clock::time_point last_write_ = Clock::now();
    std::string tail_;  // the last two bytes relayed: "\n\n" marks an event boundary
    bool event_stream_ = false;
};

ProxyError make_error(int status, const std::string& message, const std::string& code,
                      const std::string& param = "",
                      const std::string& type = "invalid_request_error") {
    ProxyError error;
    error.status = status;
    error.message = message;
    error.code = code;
    error.param = param;
    error.type = type;
    return error;
}

ProxyError too_large(const Config& config) {
    return make_error(413,
                      "Request body is larger than this proxy's limit of " +
                          std::to_string(config.max_body_bytes) + " bytes.",
                      "request_too_large");
}

// Reads the client's body piece by piece, up to the configured limit, handing each piece
// to `keep`, which returns false (and sets the error) when it cannot keep it.
template <typename Keep>
bool read_body(const Config& config, Client& client, const Request& request, Keep keep,
               ProxyError& error) {
    if (request.content_length > config.max_body_bytes) {
        error = too_large(config);
        return false;
    }
    char buffer[65536];
    long long total = 0;
    for (;;) {
        long got = client.read_body(buffer, sizeof buffer);
        if (got < 0) {
            error = make_error(400, "The request body could not be read.", "body_read_error");
            return false;
        }
        if (got == 0) return true;
        total += got;
        if (total > config.max_body_bytes) {
            error = too_large(config);
            return false;
        }
        if (!keep(buffer, static_cast<size_t>(got))) return false;
    }
}

// Reads the whole body into memory (JSON bodies: they are small and must be parsed).
bool read_whole_body(const Config& config, Client& client, const Request& request,
                     std::string& body, ProxyError& error) {
    if (request.content_length > 0 && request.content_length <= config.max_body_bytes)
        body.reserve(static_cast<size_t>(request.content_length));
    auto keep = [&](const char* data, size_t size) {
        body.append(data, size);
        return true;
    };
    return read_body(config, client, request, keep, error);
}

// The model named by a JSON body; false with the error the client gets.
bool json_model(const std::string& body, std::string& model, ProxyError& error) {
    ModelField field = model_from_json(body);
    switch (field.status) {
        case ModelField::InvalidJson:
        case ModelField::NotAnObject:
            error = make_error(400,
                               "We could not parse the JSON body of your request. The API "
                               "expects a JSON object, and what was sent was not valid JSON.",
                               "invalid_json");
            return false;
        case ModelField::Missing:
            error = make_error(400, "You must provide a model parameter.", "missing_model", "model");
            return false;
        case ModelField::NotAString:
            error = make_error(400, "The model parameter must be a string.", "invalid_model", "model");
            return false;
        case ModelField::Found:
            break;
    }
    model = field.model;
    return true;
}

// Maps the model to its deployment (recorded in the log); false when the deployment could
// change the upstream URL.
bool map_deployment(const Config& config, const Route& route, const std::string& model,
                    AccessLogEntry& log, ProxyError& error) {
    log.model = model;
    log.deployment = route.deployment.empty() ? deployment_for_model(config, model) : route.deployment;
    if (is_safe_deployment(log.deployment)) return true;
    error = make_error(400,
                       "The model '" + model + "' maps to the deployment name '" + log.deployment +
                           "', which is not a valid Azure deployment name (letters, digits, "
                           "'-', '_', '.'). Add a mapping in AZURE_OPENAI_MODEL_MAPPER.",
                       "invalid_model", "model");
    return false;
}

// Responses and assistants: a JSON body's model becomes its deployment, in place. Bodies
// without a model, or that are not JSON, go as they are: Azure answers them.
bool map_body_model(const Config& config, const Route& route, std::string& body,
                    AccessLogEntry& log, ProxyError& error) {
    ModelField field = model_from_json(body);
    if (field.status != ModelField::Found) return true;
    if (!map_deployment(config, route, field.model, log, error)) return false;
    if (log.deployment != field.model) set_json_model(body, log.deployment);
    return true;
}

// Reads an upload into `spool` while looking for its form field "model".
bool spool_upload(const Config& config, Client& client, const Request& request,
                  MultipartModelScanner& scanner, Spool& spool, ProxyError& error) {
    auto keep = [&](const char* data, size_t size) {
        if (!spool.write(data, size)) {
            error = make_error(507, "The proxy could not store the upload (disk full?).",
                               "upload_storage_failed", "", "api_error");
            return false;
        }
        if (!scanner.found() && !scanner.failed()) scanner.feed(data, size);
        return true;
    };
    return read_body(config, client, request, keep, error);
}

const char* outcome_name(UpstreamOutcome outcome) {
    switch (outcome) {
        case UpstreamOutcome::Completed: return "ok";
        case UpstreamOutcome::Unreachable: return "upstream-unreachable";
        case UpstreamOutcome::TimedOut: return "upstream-timeout";
        case UpstreamOutcome::ClientGone: return "client-gone";
        case UpstreamOutcome::Stopped: return "stopping";
        case UpstreamOutcome::Failed: return "upstream-failed";
    }
    return "";
}

// The error a client gets when the upstream gave no answer to relay.
ProxyError upstream_error(UpstreamOutcome outcome, const Config& config) {
    if (outcome == UpstreamOutcome::TimedOut)
        return make_error(504,
                          "The upstream sent nothing for " +
                              std::to_string(config.upstream_timeout_s) + " seconds.",
                          "upstream_timeout", "", "api_error");
    if (outcome == UpstreamOutcome::Stopped)
        return make_error(503, "The proxy is shutting down; retry the request.",
                          "proxy_stopping", "", "api_error");
    return make_error(502, "The upstream at " + config.endpoint + " could not be reached.",
                      "upstream_unreachable", "", "api_error");
}

void relay_upstream(const Config& config, UpstreamClient& upstream, Client& client,
                    const UpstreamRequest& upstream_request, const RequestBody& body,
                    ResponseWriter& writer, AccessLogEntry& log) {
    // A request that queued while its client left is not worth paying for. (While a body
    // is still to be read, its bytes keep the descriptor busy: those are not checked.)
    if (!body.stream && client.gone()) {
        log.outcome = "client-gone";
        return;
    }
    Relay relay(writer, config);
    UpstreamResult result = upstream.send(upstream_request, body, client, relay);
    log.upstream_status = result.status;
    log.outcome = outcome_name(result.outcome);
    if (result.outcome == UpstreamOutcome::Completed) {
        relay.finish_event_stream();
    } else if (!writer.head_sent() && result.outcome != UpstreamOutcome::ClientGone) {
        writer.error(upstream_error(result.outcome, config));
    }
}

// chat/completions, embeddings, images, audio: find the deployment (URL, JSON body or
// upload), then send the body, byte for byte on dated API versions, with the deployment as
// its model on the v1 API.
void serve_deployment(const Config& config, UpstreamClient& upstream, Client& client,
                      const Request& request, const Route& route, ResponseWriter& writer,
                      AccessLogEntry& log) {
    const std::string* content_type = find_header(request.headers, "Content-Type");
    std::string boundary = multipart_boundary(content_type ? *content_type : "");
    MultipartModelScanner scanner(boundary);
    Spool spool;
    std::string body;
    std::string model = route.deployment.empty() ? route.model : route.deployment;
    ProxyError error;
    bool ok;
    if (!boundary.empty()) {
        ok = spool_upload(config, client, request, scanner, spool, error);
        if (ok && model.empty() && !scanner.found()) {
            error = make_error(400, "You must provide a model parameter (the form field 'model').",
                               "missing_model", "model");
            ok = false;
        }
        if (ok && model.empty()) model = scanner.model();
    } else {
        ok = read_whole_body(config, client, request, body, error) &&
             (!model.empty() || json_model(body, model, error));
    }
    ok = ok && map_deployment(config, route, model, log, error);
    if (ok && uses_v1_api(config) && boundary.empty() && !body.empty() &&
        !set_json_model(body, log.deployment)) {
        ok = json_model(body, model, error);  // not a JSON object: say so
    }
    if (!ok) {
        writer.error(error);
        return;
    }
    RequestBody source;
    if (boundary.empty()) {
        source.buffer = &body;
    } else {
        if (uses_v1_api(config) && scanner.found())
            spool.rewind(scanner.value_begin(), scanner.value_end(), log.deployment);
        else
            spool.rewind();
        source.spool = &spool;
    }
    relay_upstream(config, upstream, client,
                   build_upstream_request(config, request, route, log.deployment), source, writer,
                   log);
}

// Holds a small upstream answer whole, to be converted before it is sent.
class Collector : public UpstreamListener {
public:
    bool on_head(long status, const Headers& headers) override {
        status_ = status;
        const std::string* type = find_header(headers, "Content-Type");
        content_type_ = type ? *type : "application/json";
        return true;
    }
    bool on_data(const char* data, size_t size) override {
        body_.append(data, size);
        return body_.size() <= (8u << 20);  // a models list is small
    }
    long status_ = 0;
    std::string content_type_, body_;
};

// GET /v1/models and /v1/models/{id} from Azure, in OpenAI's shape.
void serve_live_models(const Config& config, UpstreamClient& upstream, Client& client,
                       const Request& request, ResponseWriter& writer, AccessLogEntry& log) {
    Route route;
    route.kind = RouteKind::Upstream;
    route.upstream_path = request.path.substr(3);  // "/models" or "/models/{id}", still encoded
    Collector collector;
    UpstreamResult result = upstream.send(build_upstream_request(config, request, route, ""),
                                          RequestBody(), client, collector);
    log.upstream_status = result.status;
    std::string converted;
    if (result.outcome != UpstreamOutcome::Completed)
        writer.error(upstream_error(result.outcome, config));
    else if (collector.status_ == 200 && azure_models_to_openai(collector.body_, converted))
        writer.complete(200, "application/json", converted);
    else
        writer.complete(static_cast<int>(collector.status_), collector.content_type_, collector.body_);
}

void serve(const Config& config, UpstreamClient& upstream, Client& client, const Request& request,
           ResponseWriter& writer, AccessLogEntry& log) {
    Route route = route_request(config, request.method, request.path);
    switch (route.kind) {
        case RouteKind::Preflight:
            writer.head(204, preflight_headers(request));
            return;
        case RouteKind::ListModels:
        case RouteKind::RetrieveModel:
            if (config.live_models)
                serve_live_models(config, upstream, client, request, writer, log);
            else if (route.kind == RouteKind::ListModels)
                writer.complete(200, "application/json", models_list_json(config));
            else if (is_listed_model(config, route.model_id))
                writer.complete(200, "application/json", model_json(route.model_id));
            else
                writer.error(make_error(404, "The model '" + route.model_id + "' does not exist.",
                                        "model_not_found", "model"));
            return;
        case RouteKind::InvalidPath:
            writer.error(make_error(400, "Invalid URL (" + request.method + " " + request.path +
                                             "): '.' and '..' path segments are not allowed.",
                                    "invalid_path"));
            return;
        case RouteKind::NotFound:
            writer.error(make_error(404, "Invalid URL (" + request.method + " " + request.path +
                                             "): this proxy has no such route.",
                                    "unknown_route"));
            return;
        case RouteKind::Deployment:
            serve_deployment(config, upstream, client, request, route, writer, log);
            return;
        case RouteKind::Realtime:
            writer.error(make_error(501,
                                    "The Realtime API runs over a WebSocket, which a FastCGI "
                                    "program cannot carry. Connect to Azure directly: "
                                    "wss://YOUR-RESOURCE.openai.azure.com/openai/realtime.",
                                    "realtime_not_supported"));
            return;
        case RouteKind::Upstream: {
            if (request.content_length > config.max_body_bytes) {
                writer.error(too_large(config));
                return;
            }
            RequestBody source;
            std::string body;
            if (route.body_model) {
                ProxyError error;
                if (!read_whole_body(config, client, request, body, error) ||
                    !map_body_model(config, route, body, log, error)) {
                    writer.error(error);
                    return;
                }
                source.buffer = &body;
            } else if (request.has_body) {
                source.stream = &client;
                source.length = request.content_length;
            }
            relay_upstream(config, upstream, client,
                           build_upstream_request(config, request, route, ""), source, writer, log);
            return;
        }
    }
}

void write_log(const AccessLogEntry& entry) {
    std::string line = format_access_log(
        entry, std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count());
    // One write(2) per line, so lines from threads never interleave.
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

}  // namespace

void handle_request(const Config& config, UpstreamClient& upstream, Client& client) {
    Clock::time_point start = Clock::now();
    Request request = request_from_params(client.params(), config);
    ResponseWriter writer(client, config.mode);
    AccessLogEntry log;
    log.method = request.method;
    log.path = request.path;
    log.outcome = "ok";
    serve(config, upstream, client, request, writer, log);
    log.status = writer.status();
    log.bytes = writer.bytes();
    if (!writer.error_code().empty()) log.outcome = writer.error_code();
    log.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    write_log(log);
}

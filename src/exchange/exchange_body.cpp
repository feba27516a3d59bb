// The exchange's body: which body a route needs, reading it (whole for a JSON body whose
// model is needed, spooled for any other), and handing it to a try.
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include "exchange.h"

#include "model_policy.h"
#include "realtime.h"
#include "translate.h"

Exchange::BodyUse Exchange::body_use() const {
    // A multipart form is spooled and scanned for its model; any other body is read whole.
    auto json_or_upload = [this] {
        const std::string_view* type = find_header(request_.headers, "Content-Type");
        return multipart_boundary(type ? *type : std::string_view()).empty() ? BodyUse::Json : BodyUse::Upload;
    };
    if (route_.kind == RouteKind::Deployment) return json_or_upload();
    if (route_.kind != RouteKind::Upstream) return BodyUse::None;
    // Realtime: client_secrets' JSON and a bare SDP offer are small and read whole; a
    // call's form is scanned for its field "session".
    if (route_.session_model) return BodyUse::Json;
    if (route_.realtime_call) return call_body(request_) == CallBody::Form ? BodyUse::Upload : BodyUse::Json;
    if (route_.body_model) return BodyUse::Json;
    if (route_.model_in_body && request_.has_body && models_restricted(config_, key_)) return json_or_upload();
    return request_.has_body ? BodyUse::Spooled : BodyUse::None;
}

// Reads the client's body piece by piece, up to the configured limit, handing each piece
// to `keep`, which returns false (having called refuse_later()) when it cannot keep it.
template <typename Keep>
bool Exchange::read_body_into(Keep keep) {
    char buffer[16384];
    long long total = 0;
    for (;;) {
        long got = connection_.read_body(buffer, sizeof buffer);
        if (got < 0 && connection_.read_timed_out()) {
            log_.outcome = "read-timeout";
            refuse_later(body_too_late());
            return false;
        }
        if (got < 0) {
            refuse_later(errors::body_unreadable());
            return false;
        }
        if (got == 0) return true;
        total += got;
        if (total > config_.max_body_bytes) {
            refuse_later(errors::body_too_large(config_.max_body_bytes));
            return false;
        }
        if (!keep(buffer, static_cast<size_t>(got))) return false;
    }
}

bool Exchange::read_body(BodyUse use) {
    if (use == BodyUse::Json) {
        if (request_.content_length > 0) body_.reserve(static_cast<size_t>(request_.content_length));
        return read_body_into([&](const char* data, size_t size) {
            body_.append(data, size);
            return true;
        });
    }
    if (use == BodyUse::Upload) {
        const std::string_view* type = find_header(request_.headers, "Content-Type");
        boundary_ = multipart_boundary(*type);
        scanner_ = route_.realtime_call ? MultipartModelScanner(boundary_, "session", kLongestSession)
                                        : MultipartModelScanner(boundary_);
    }
    // Uploads are read once to find their form field "model"; every body is held whole
    // (in memory while small, else in an unlinked temporary file) before it is sent.
    return read_body_into([&](const char* data, size_t size) {
        if (!spool_.write(data, size)) {
            refuse_later(errors::upload_not_stored());
            return false;
        }
        if (use == BodyUse::Upload && !scanner_.finished()) scanner_.feed(data, size);
        return true;
    });
}

// The body as the upstream is sent it: the JSON body or the spooled upload, with the model
// replaced by `deployment` when `rewrite_model`.
RequestBody Exchange::body_for(const std::string& deployment, bool rewrite_model) {
    RequestBody source;
    if (!boundary_.empty()) {
        if (rewrite_model && scanner_.found())
            spool_.rewind(scanner_.value_begin(), scanner_.value_end(), deployment);
        else
            spool_.rewind();
        source.spool = &spool_;
    } else if (route_.kind == RouteKind::Deployment || route_.body_model || !body_.empty()) {
        if (rewrite_model) set_json_model(body_, deployment);
        if (route_.kind == RouteKind::Deployment) fix_parameters_for(deployment);  // exchange_refusal.cpp
        source.buffer = bridged_ ? &bridged_body_ : &body_;
    } else if (request_.has_body) {
        spool_.rewind();
        source.spool = &spool_;
    }
    return source;
}

// What only the translation and another target's try need goes: the headers, the query,
// and the body once libcurl has sent it. A stream would otherwise hold its prompt (often
// tens of KiB) for its whole length.
void Exchange::release_request() {
    if (learn_bridge_) return;  // a refusal held may send the try again, bridged: its request is built anew
    RequestHeaders().swap(request_.headers);
    std::string().swap(request_.query);
    // A body that may be fixed and sent again after a refusal stays.
    std::string& sent = bridged_ ? bridged_body_ : body_;
    if (transfer_ && !sent.empty() && !learn_params_ && transfer_->body_sent(sent.size())) {
        std::string().swap(sent);
        std::string().swap(body_);  // bridged: the chat body it was made from
    }
}

// Serving the realtime API's HTTP calls (WebRTC session setup, realtime.h): the session's
// model mapped to its deployment wherever the call carries it (client_secrets' JSON, a
// call's form field `session`, a call's `?model=`), the call's body checked, then one try
// at the endpoint like any upstream route. No token usage comes back: a call counts as a
// request in the key's limits, nothing more.
// One of the steps of class Exchange (exchange.h): its unit tests are exchange_test.cpp.
#include "exchange.h"

#include "model_policy.h"
#include "realtime.h"
#include "translate.h"

namespace {

// Why a call's body cannot be sent, or nothing.
std::optional<ProxyError> call_body_error(const Request& request, const std::string& body,
                                          const MultipartModelScanner& form) {
    switch (call_body(request)) {
        case CallBody::Sdp:
            if (looks_like_sdp(body)) return std::nullopt;
            return errors::realtime_call_invalid("The body is not an SDP offer: it must start with the line v=0.");
        case CallBody::Form:
            if (form.ambiguous()) return errors::realtime_call_invalid("The form carries the field session twice.");
            if (form.failed() || !form.saw_field("sdp") || !form.found())
                return errors::realtime_call_invalid(
                    "The form must carry the fields sdp (the SDP offer) and session (the session's JSON, with its "
                    "model), each once; the session at most " + std::to_string(kLongestSession) + " bytes.");
            return std::nullopt;
        case CallBody::Other: break;
    }
    return errors::realtime_call_invalid(
        "A realtime call's body is the SDP offer (Content-Type: application/sdp, with the ephemeral key of "
        "/v1/realtime/client_secrets as Bearer) or a form (multipart/form-data) with the fields sdp and session.");
}

}  // namespace

// The session's model in `json` (its member "session", or the session object itself) mapped
// to its deployment, in place; false with the error the client gets.
bool Exchange::map_session_model(std::string& json, bool in_member, ProxyError& error) {
    SessionModel session = session_model(json, in_member);
    if (!model_found(session.field, error)) return false;
    if (!map_deployment(config_, key_, route_, session.field.model, log_, error)) return false;
    if (log_.deployment != session.field.model) json = with_session_model(json, session, log_.deployment);
    return true;
}

void Exchange::serve_realtime() {
    ProxyError error;
    bool ok = true;
    RequestBody source = body_for("", false);
    if (route_.realtime_call) {
        std::optional<ProxyError> refused = call_body_error(request_, body_, scanner_);
        if (refused) error = *refused;
        ok = !refused;
    }
    std::string model = query_value(request_.query, "model");
    if (ok && !model.empty()) {  // a call's model in its query (the bare SDP shape)
        ok = map_deployment(config_, key_, route_, model, log_, error);
        if (ok) request_.query = with_query_value(request_.query, "model", log_.deployment);
    }
    if (ok && route_.session_model) ok = map_session_model(body_, true, error);
    if (ok && route_.realtime_call && call_body(request_) == CallBody::Form) {
        std::string session = scanner_.model();
        ok = map_session_model(session, false, error);
        if (ok) spool_.rewind(scanner_.value_begin(), scanner_.value_end(), session);
    }
    if (!ok) {
        writer_.error(error);
        return;
    }
    if (!admit_key_limits()) return;
    start_upstream(build_upstream_request(config_, request_, route_, ""), source);
}

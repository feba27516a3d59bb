#include "realtime.h"

#include "client_keys.h"
#include "json_members.h"
#include "text.h"

namespace {

std::string_view bearer(const RequestHeaders& headers) {
    const std::string_view* authorization = find_header(headers, "Authorization");
    if (!authorization) return {};
    std::string_view value = trim_view(*authorization);
    return value.size() > 7 && istarts_with(value, "Bearer ") ? trim_view(value.substr(7)) : std::string_view();
}

std::string media_type(const Request& request) {
    const std::string_view* type = find_header(request.headers, "Content-Type");
    if (!type) return "";
    return lowercase(std::string(trim_view(type->substr(0, type->find(';')))));
}

}  // namespace

bool carries_ephemeral_key(const Request& request, const Route& route) {
    // openai mode passes every path through: its call is known by the path alone
    bool call = route.realtime_call || (route.kind == RouteKind::Upstream && request.method == "POST" &&
                                        ends_with(route.upstream_path, "/v1/realtime/calls"));
    return call && call_body(request) == CallBody::Sdp && !bearer(request.headers).empty();
}

std::string_view presented_client_key(const Request& request, const Route& route) {
    if (!carries_ephemeral_key(request, route)) return presented_key(request.headers);
    const std::string_view* api_key = find_header(request.headers, "Api-Key");
    return api_key ? trim_view(*api_key) : std::string_view();
}

CallBody call_body(const Request& request) {
    std::string type = media_type(request);
    if (type == "application/sdp") return CallBody::Sdp;
    if (type == "multipart/form-data") return CallBody::Form;
    return CallBody::Other;
}

bool looks_like_sdp(std::string_view body) {
    return body.substr(0, 4) == "v=0\r" || body.substr(0, 4) == "v=0\n";
}

SessionModel session_model(const std::string& body, bool in_member) {
    SessionModel session;
    session.end = body.size();
    JsonCheck check = check_json(body);
    if (!check.valid) {
        session.field.status = ModelField::InvalidJson;
        return session;
    }
    if (in_member) {
        JsonMemberSearch member = find_json_member(body, "session");
        if (!member.object) session.field.status = ModelField::NotAnObject;
        else if (member.count > 1 || member.escaped_keys > 0) session.field.status = ModelField::Ambiguous;
        else if (member.count == 0) session.field.status = ModelField::Missing;
        if (!member.object || member.count != 1 || member.escaped_keys > 0) return session;
        session.begin = member.value;
        session.end = member.value_end;
    }
    std::string object = body.substr(session.begin, session.end - session.begin);
    session.field = model_from_json(object);
    return session;
}

std::string with_session_model(const std::string& body, const SessionModel& session, const std::string& deployment) {
    std::string object = body.substr(session.begin, session.end - session.begin);
    if (!set_json_model(object, deployment)) return body;
    return body.substr(0, session.begin) + object + body.substr(session.end);
}

std::string query_value(const std::string& query, std::string_view name) {
    for (const std::string& pair : split(query, '&')) {
        size_t equals = pair.find('=');
        if (std::string_view(pair).substr(0, equals) == name)
            return equals == std::string::npos ? "" : percent_decode(pair.substr(equals + 1));
    }
    return "";
}

std::string with_query_value(const std::string& query, std::string_view name, const std::string& value) {
    std::string out;
    for (const std::string& pair : split(query, '&')) {
        bool named = std::string_view(pair).substr(0, pair.find('=')) == name;
        if (!out.empty()) out += '&';
        out += named ? std::string(name) + "=" + value : pair;
    }
    return out;
}

std::string proxy_call_location(const std::string& location, const std::string& endpoint, const std::string& mount) {
    static const std::string kAzurePath = "/openai/v1/realtime/calls/";
    std::string path = location;
    if (!endpoint.empty() && starts_with(location, endpoint + "/")) path = location.substr(endpoint.size());
    if (!starts_with(path, kAzurePath) || path.size() == kAzurePath.size()) return location;
    return mount + path.substr(std::string("/openai").size());
}

// Realtime WebSocket sessions: the decisions (realtime_socket.h).
#include "realtime_socket.h"

#include <sstream>

#include "client_keys.h"
#include "text.h"

namespace {

// The comma-separated entries of every Sec-WebSocket-Protocol header, trimmed.
std::vector<std::string> offered_protocols(const Headers& headers) {
    std::vector<std::string> offered;
    for (const Header& header : headers)
        if (iequals(header.name, "Sec-WebSocket-Protocol"))
            for (const std::string& entry : split(header.value, ','))
                if (!trim(entry).empty()) offered.push_back(trim(entry));
    return offered;
}

// A deployment or model goes into a URL's query unescaped: only these bytes.
bool url_safe_name(const std::string& name) { return name.size() <= 256 && is_word(name, "._-:"); }

}  // namespace

std::string realtime_presented_key(const Headers& headers) {
    std::string_view key = presented_key(headers);
    if (!key.empty()) return std::string(key);
    for (const std::string& entry : offered_protocols(headers))
        if (entry.size() > kKeySubprotocol.size() && entry.compare(0, kKeySubprotocol.size(), kKeySubprotocol) == 0)
            return entry.substr(kKeySubprotocol.size());
    return "";
}

std::string realtime_answer_protocol(const Headers& headers) {
    for (const std::string& entry : offered_protocols(headers))
        if (entry == "realtime") return entry;
    return "";
}

bool realtime_deployment(const EndpointSettings& settings, const std::string& model, std::string& deployment,
                         ProxyError& error) {
    if (model.empty()) {
        error = make_error(400, "A realtime session needs ?model= in its URL.", "missing_model", "model");
        return false;
    }
    auto mapped = settings.model_mapper.find(model);
    deployment = mapped != settings.model_mapper.end() ? mapped->second : model;
    if (!url_safe_name(deployment)) {
        error = make_error(400, "Invalid model name '" + quote_value(model) + "'.", "invalid_model", "model");
        return false;
    }
    return true;
}

bool realtime_upstream(const EndpointSettings& settings, const std::string& deployment,
                       const std::string& preview_api_version, RealtimeUpstream& upstream, std::string& error) {
    const std::string& url = settings.endpoint;
    size_t scheme_end = url.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : lowercase(url.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https") {
        error = "the endpoint is not an http(s) URL";
        return false;
    }
    upstream.tls = scheme == "https";
    size_t authority_begin = scheme_end + 3;
    size_t path_begin = url.find('/', authority_begin);
    std::string authority = url.substr(authority_begin, path_begin == std::string::npos ? std::string::npos
                                                                                         : path_begin - authority_begin);
    std::string base = path_begin == std::string::npos ? "" : url.substr(path_begin);
    int port = upstream.tls ? 443 : 80;
    if (authority.find(':') != std::string::npos && authority.back() != ']') {
        if (!split_host_port(authority, upstream.host, port)) {
            error = "the endpoint's host and port cannot be read";
            return false;
        }
    } else {
        upstream.host = authority;
    }
    if (!upstream.host.empty() && upstream.host.front() == '[') upstream.host = upstream.host.substr(1, upstream.host.size() - 2);
    upstream.port = std::to_string(port);
    if (settings.mode == ProxyMode::OpenAI)
        upstream.target = base + "/v1/realtime?model=" + deployment;
    else if (!preview_api_version.empty())
        upstream.target = base + "/openai/realtime?api-version=" + preview_api_version + "&deployment=" + deployment;
    else
        upstream.target = base + "/openai/v1/realtime?model=" + deployment;
    return true;
}

Headers realtime_upstream_headers(const EndpointSettings& settings, const std::string& client_key) {
    const std::string& key = settings.token.empty() ? client_key : settings.token;
    if (key.empty()) return {};
    if (settings.mode == ProxyMode::Azure) return {{"api-key", key}};
    return {{"Authorization", "Bearer " + key}};
}

int relayed_close_code(int code, bool upstream_closed) {
    bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                    (code >= 3000 && code <= 4999);
    if (sendable) return code;
    return upstream_closed ? 1011 : 1001;
}

std::string close_code_label(int code) { return code ? std::to_string(code) : "none"; }

std::string realtime_session_line(const RealtimeSessionLog& log) {
    std::ostringstream out;
    out << "realtime session key=" << log_safe(log.key_name.empty() ? "-" : log.key_name)
        << " model=" << log_safe(log.model) << " deployment=" << log_safe(log.deployment)
        << " duration_ms=" << log.duration_ms << " client_bytes=" << log.client_bytes
        << " upstream_bytes=" << log.upstream_bytes << " client_messages=" << log.client_messages
        << " upstream_messages=" << log.upstream_messages << " client_close=" << close_code_label(log.client_close)
        << " upstream_close=" << close_code_label(log.upstream_close) << " outcome=\"" << log.outcome << "\"";
    return out.str();
}

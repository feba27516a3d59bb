#include "translate.h"

#include <algorithm>

#include "realtime.h"
#include "text.h"

namespace {

// What a header is to the translation: hop-by-hop (never sent upstream), one of the two
// credential headers, one that means nothing to Azure or would leak client state (dropped
// in azure mode, as the credentials are), or any other.
enum class HeaderRole { Other, HopByHop, Authorization, ApiKey, PrivateToClient };

// A request header's name, its param's ("CONTENT_LENGTH") or its own ("content-length"), is
// `known`, written as a param: '_' or '-' for '_', a letter in either case. Most names come
// spelled as the known one is: one comparison a byte.
bool param_names_match(std::string_view name, std::string_view known) {
    if (name.size() != known.size()) return false;
    for (size_t i = 0; i < known.size(); ++i) {
        char a = name[i], k = known[i];
        if (a != k && (k == '_' ? a != '-' : (a ^ 0x20) != k)) return false;  // k: 'A'-'Z' or '_'
    }
    return true;
}

// A header's own name ("Content-Length", any case) is `known`, written as a param.
bool own_name_is(std::string_view name, std::string_view known) {
    if (name.size() != known.size()) return false;
    for (size_t i = 0; i < known.size(); ++i) {
        char a = name[i], k = known[i];
        if (k == '_' ? a != '-' : (a | 0x20) != (k | 0x20)) return false;
    }
    return true;
}

// By length first: a name matches none of the lengths or one or two names (every header of
// every request and answer is asked). `same(name, known)`: param_names_match for a
// request's header, which is then never written out to be asked, own_name_is for another.
template <typename Same>
HeaderRole role_of(std::string_view name, Same same) {
    using Role = HeaderRole;
    switch (name.size()) {
        case 2: return same(name, "TE") ? Role::HopByHop : Role::Other;
        case 4: return same(name, "HOST") ? Role::HopByHop : Role::Other;
        case 6: return same(name, "EXPECT") ? Role::HopByHop : same(name, "COOKIE") ? Role::PrivateToClient : Role::Other;
        case 7:
            if (same(name, "TRAILER") || same(name, "UPGRADE")) return Role::HopByHop;
            return same(name, "API_KEY") ? Role::ApiKey : Role::Other;
        case 10: return same(name, "CONNECTION") || same(name, "KEEP_ALIVE") ? Role::HopByHop : Role::Other;
        case 13: return same(name, "AUTHORIZATION") ? Role::Authorization : Role::Other;
        case 14:
            if (same(name, "CONTENT_LENGTH")) return Role::HopByHop;
            return same(name, "OPENAI_PROJECT") ? Role::PrivateToClient : Role::Other;
        case 15: return same(name, "ACCEPT_ENCODING") ? Role::HopByHop : Role::Other;
        case 16: return same(name, "PROXY_CONNECTION") ? Role::HopByHop : Role::Other;
        case 17: return same(name, "TRANSFER_ENCODING") ? Role::HopByHop : Role::Other;
        case 18: return same(name, "PROXY_AUTHENTICATE") ? Role::HopByHop : Role::Other;
        case 19:
            if (same(name, "PROXY_AUTHORIZATION")) return Role::HopByHop;
            return same(name, "OPENAI_ORGANIZATION") ? Role::PrivateToClient : Role::Other;
        default: return Role::Other;
    }
}

// The client's credential headers as the header loop met them (the first of each name).
struct ClientCredentials {
    const std::string_view* authorization = nullptr;
    const std::string_view* api_key = nullptr;
};

// Without "api-version" parameters: the proxy sets the version it is configured with.
// Looked at in place, pair by pair: most requests carry no query at all.
std::string query_without_api_version(std::string_view query) {
    std::string out;
    while (!query.empty()) {
        std::string_view pair = take_part(query, '&');
        if (pair.empty() || pair.substr(0, 12) == "api-version=" || pair == "api-version") continue;
        if (!out.empty()) out += '&';
        out += pair;
    }
    return out;
}

std::string bearer_credential(const std::string_view* authorization) {
    if (!authorization) return "";
    std::string_view value = trim_view(*authorization);  // one copy: the credential's
    if (value.size() > 7 && iequals(value.substr(0, 7), "Bearer ")) return std::string(trim_view(value.substr(7)));
    return "";
}

void add_azure_credentials(const EndpointSettings& config, const ClientCredentials& client, UpstreamHeaders& out) {
    if (!config.token.empty()) {
        out.add("api-key", config.token);
        return;
    }
    std::string bearer = bearer_credential(client.authorization);
    if (!bearer.empty()) {
        if (looks_like_jwt(bearer))
            out.add("Authorization", "Bearer " + bearer);
        else
            out.add("api-key", bearer);
        return;
    }
    if (client.api_key) out.add("api-key", *client.api_key);
}

// Dated API: /openai/deployments/{deployment}/{operation} and /openai/{path}, with the
// route's api-version. v1 API: /openai/v1/{operation or path} (the deployment travels as
// the body's model), api-version only for "preview".
std::string azure_url(const EndpointSettings& config, const Request& request, const Route& route,
                      const std::string& deployment) {
    bool deployment_route = route.kind == RouteKind::Deployment;
    std::string_view operation = deployment_route ? std::string_view(route.operation)
                                                  : std::string_view(route.upstream_path).substr(1);
    std::string url;  // appended in place, one allocation: it is built for every request
    url.reserve(config.endpoint.size() + deployment.size() + operation.size() + request.query.size() + 64);
    url.append(config.endpoint).append("/openai");
    if (route.realtime) {  // GA realtime: the v1 API only
        std::string rest = query_without_api_version(request.query);
        url.append("/v1/").append(operation);
        if (!rest.empty()) url.append("?").append(rest);
        return url;
    }
    if (uses_v1_api(config))
        url.append("/v1/").append(operation);
    else if (deployment_route)
        url.append("/deployments/").append(deployment).append("/").append(operation);
    else
        url.append("/").append(operation);
    const char* separator = "?";
    std::string_view version = api_version_for(config, operation);
    if (version != "v1") {
        url.append("?api-version=").append(version);
        separator = "&";
    }
    std::string rest = query_without_api_version(request.query);
    if (!rest.empty()) url.append(separator).append(rest);
    return url;
}

}  // namespace

std::vector<std::string_view> UpstreamHeaders::lines() const {
    std::vector<std::string_view> lines;
    std::string_view rest(text_);
    while (!rest.empty()) {
        size_t end = rest.find('\0');
        lines.push_back(rest.substr(0, end));
        rest.remove_prefix(end + 1);
    }
    return lines;
}

std::string deployment_for_model(const Config& config, const std::string& model) {
    auto it = config.model_mapper.find(model);
    if (it != config.model_mapper.end()) return it->second;
    std::string deployment = model;  // one copy, then the dots and colons taken out in place
    deployment.erase(std::remove_if(deployment.begin(), deployment.end(), [](char c) { return c == '.' || c == ':'; }),
                     deployment.end());
    return deployment;
}

bool model_allowed(const Config& config, const std::string& model, const std::string& deployment) {
    return model_in_list(config, config.allowed_models, model, deployment);
}

bool model_in_list(const Config& config, const std::vector<std::string>& list, const std::string& model,
                   const std::string& deployment) {
    if (list.empty()) return true;
    for (const std::string& allowed : list)
        if ((!model.empty() && model == allowed) || deployment == deployment_for_model(config, allowed)) return true;
    return false;
}

namespace {

// The bytes of a deployment name that cannot change the URL it goes in: letters, digits
// and "-_.~" (is_word's set, asked of a table: this is asked on every request).
struct DeploymentBytes {
    bool safe[256];
    constexpr DeploymentBytes() : safe() {
        for (int c = 0; c < 256; ++c)
            safe[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                      c == '_' || c == '.' || c == '~';
    }
};
constexpr DeploymentBytes kDeploymentBytes;

}  // namespace

bool is_safe_deployment(const std::string& deployment) {
    std::string_view name(deployment);
    if (name.empty() || name.size() > 256 || name == "." || name == "..") return false;
    for (unsigned char c : name)
        if (!kDeploymentBytes.safe[c]) return false;
    return true;
}

// Three base64url parts split by dots, looked at in place.
bool looks_like_jwt(const std::string& credential) {
    if (credential.find('.') == std::string::npos) return false;  // an API key: one search
    std::string_view rest(credential);
    for (int part = 0; part < 3; ++part) {
        bool separated = false;
        if (!is_word(take_part(rest, '.', &separated), "-_") || separated != (part < 2)) return false;
    }
    return true;
}

bool is_hop_by_hop(std::string_view name) {
    // A lambda, not the function itself: each use of role_of its own copy, the comparison inlined.
    return role_of(name, [](std::string_view a, std::string_view k) { return own_name_is(a, k); }) ==
           HeaderRole::HopByHop;
}

namespace {

// The client's headers that go upstream, each name written as a header's ("X-Stainless-Os"),
// known by its param's ("X_STAINLESS_OS") without being written first; its credential
// headers noted on the way.
ClientCredentials add_client_headers(const EndpointSettings& config, const Request& request, bool ephemeral,
                                     UpstreamHeaders& out) {
    bool azure = config.mode == ProxyMode::Azure;
    ClientCredentials client;
    for (const RequestHeader& header : request.headers) {
        HeaderRole role =
            role_of(header.name, [](std::string_view a, std::string_view k) { return param_names_match(a, k); });
        if (role == HeaderRole::HopByHop) continue;
        if (role == HeaderRole::Authorization && !client.authorization) client.authorization = &header.value;
        if (role == HeaderRole::ApiKey && !client.api_key) client.api_key = &header.value;
        bool credential = role == HeaderRole::Authorization || role == HeaderRole::ApiKey;
        if (ephemeral && credential) {
            if (role != HeaderRole::Authorization) continue;
        } else if (azure && role != HeaderRole::Other) {
            continue;
        } else if (!azure && !config.token.empty() && credential) {
            continue;  // the server-side key replaces the client's credential, whichever header carries it
        }
        out.add_request_header(header.name, header.value);
    }
    return client;
}

}  // namespace

UpstreamRequest build_upstream_request(const EndpointSettings& config, const Request& request,
                                       const Route& route, const std::string& deployment) {
    UpstreamRequest upstream;
    upstream.method = request.method;
    bool azure = config.mode == ProxyMode::Azure;
    if (azure) {
        upstream.url = azure_url(config, request, route, deployment);
    } else {
        upstream.url = config.endpoint + route.upstream_path;
        if (!request.query.empty()) upstream.url += "?" + request.query;
    }

    size_t text_size = 64 + config.token.size();  // room for the credential's line
    for (const RequestHeader& header : request.headers) text_size += header.name.size() + 2 + header.value.size() + 1;
    upstream.headers.reserve(text_size);
    // A realtime call's ephemeral key is the upstream's credential for it (Azure's or
    // OpenAI's): it goes as it is, alone; "api-key" then carried the proxy's own key.
    bool ephemeral = carries_ephemeral_key(request, route);
    ClientCredentials client = add_client_headers(config, request, ephemeral, upstream.headers);
    if (ephemeral) {
        // the client's ephemeral key, kept above, is the call's only credential
    } else if (azure && config.credential.source != CredentialSource::None)
        upstream.credential = &config.credential;  // its token is added as the try starts
    else if (azure)
        add_azure_credentials(config, client, upstream.headers);
    else if (!config.token.empty())
        upstream.headers.add("Authorization", "Bearer " + config.token);
    // No "Expect: 100-continue" round trip (Azure answers at once anyway): the transfer
    // says so where libcurl would ask for one (upstream_transfer.cpp, add_request_headers).
    return upstream;
}

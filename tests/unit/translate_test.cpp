// translate.cpp: model mapping, deployment URLs, headers to Azure, and the allow list.
#include <boost/test/unit_test.hpp>

#include "kept_headers.h"

#include <algorithm>

#include "text.h"
#include "translate.h"

namespace {

Config azure() {
    Config config;
    config.endpoint = "https://res.openai.azure.com";
    config.model_mapper = {{"gpt-3.5-turbo", "gpt-35-turbo"}};
    return config;
}

Request chat(Headers headers, std::string query = "") {
    Request request;
    request.method = "POST";
    request.path = "/v1/chat/completions";
    request.query = std::move(query);
    request.headers = kept_headers(std::move(headers));
    return request;
}

Route upstream_route(const std::string& path) {
    Route route;
    route.kind = RouteKind::Upstream;
    route.upstream_path = path;
    return route;
}

Route deployment_route() {
    Route route;
    route.kind = RouteKind::Deployment;
    route.operation = "chat/completions";
    return route;
}

bool has(const UpstreamHeaders& headers, const std::string& line) {
    std::vector<std::string_view> lines = headers.lines();
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

bool has_name(const UpstreamHeaders& headers, const std::string& prefix) {
    std::vector<std::string_view> lines = headers.lines();
    return std::any_of(lines.begin(), lines.end(),
                       [&](std::string_view l) { return l.substr(0, prefix.size()) == prefix; });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(translate)

BOOST_AUTO_TEST_CASE(model_mapping_follows_the_seed) {
    Config config = azure();
    BOOST_TEST(deployment_for_model(config, "gpt-3.5-turbo") == "gpt-35-turbo");
    BOOST_TEST(deployment_for_model(config, "gpt-4.1") == "gpt-41");
    BOOST_TEST(deployment_for_model(config, "ft:gpt-35-turbo:org::id1") == "ftgpt-35-turboorgid1");
    BOOST_TEST(deployment_for_model(config, "my-deployment") == "my-deployment");
}

BOOST_AUTO_TEST_CASE(unsafe_deployments_are_recognised) {
    for (const char* bad : {"", ".", "..", "../x", "a/b", "a?b", "a#b", "a b", "a\nb", "a%2Fb", "a\x01"})
        BOOST_TEST(!is_safe_deployment(bad), bad);
    for (const char* good : {"gpt-35-turbo", "prod_4o", "v1.2", "a~b"})
        BOOST_TEST(is_safe_deployment(good), good);
    // A NUL inside is no word character: strchr would find the terminator of the extras.
    BOOST_TEST(!is_safe_deployment(std::string("gpt\0-4o", 7)));
    BOOST_TEST(!is_safe_deployment("caf\xc3\xa9"));  // a byte past ASCII
    BOOST_TEST(is_safe_deployment(std::string(256, 'a')));
    BOOST_TEST(!is_safe_deployment(std::string(257, 'a')));
    BOOST_TEST(!is_word(std::string("alice\0", 6), "-_.@"));
}

BOOST_AUTO_TEST_CASE(deployment_url_carries_the_api_version) {
    UpstreamRequest up = build_upstream_request(azure(), chat({}), deployment_route(), "gpt-35-turbo");
    BOOST_TEST(up.url ==
               "https://res.openai.azure.com/openai/deployments/gpt-35-turbo/chat/completions"
               "?api-version=2024-10-21");
    BOOST_TEST(up.method == "POST");
}

BOOST_AUTO_TEST_CASE(client_query_is_kept_but_not_its_api_version) {
    UpstreamRequest up = build_upstream_request(
        azure(), chat({}, "api-version=1999-01-01&foo=bar"), deployment_route(), "d");
    BOOST_TEST(up.url.find("api-version=2024-10-21&foo=bar") != std::string::npos);
    BOOST_TEST(up.url.find("1999") == std::string::npos);
    up = build_upstream_request(azure(), chat({}, "&api-version&a=1&&api-version=x&b=2&"), deployment_route(), "d");
    BOOST_TEST(up.url == "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&a=1&b=2");
}

BOOST_AUTO_TEST_CASE(other_paths_keep_method_query_and_get_a_per_route_version) {
    Config config = azure();
    config.route_api_versions = {{"responses", "2025-04-01-preview"}, {"files/special", "2099-01-01"}};
    Request request = chat({}, "limit=2&after=x");
    request.method = "GET";
    Route route = upstream_route("/files");
    UpstreamRequest up = build_upstream_request(config, request, route, "");
    BOOST_TEST(up.url == "https://res.openai.azure.com/openai/files?api-version=2024-10-21&limit=2&after=x");
    BOOST_TEST(up.method == "GET");
    route.upstream_path = "/responses/resp_1";
    BOOST_TEST(build_upstream_request(config, request, route, "").url.find("/openai/responses/resp_1?api-version=2025-04-01-preview") != std::string::npos);
    route.upstream_path = "/files/special/x";
    BOOST_TEST(build_upstream_request(config, request, route, "").url.find("api-version=2099-01-01") != std::string::npos);
    route.upstream_path = "/files/specialist";  // a prefix must end at a '/'
    BOOST_TEST(build_upstream_request(config, request, route, "").url.find("api-version=2024-10-21") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(v1_api_urls_carry_no_deployment) {
    Config config = azure();
    config.api_version = "v1";
    UpstreamRequest up = build_upstream_request(config, chat({}), deployment_route(), "gpt-35-turbo");
    BOOST_TEST(up.url == "https://res.openai.azure.com/openai/v1/chat/completions");
    config.api_version = "preview";
    BOOST_TEST(build_upstream_request(config, chat({}, "a=1"), upstream_route("/files"), "").url ==
               "https://res.openai.azure.com/openai/v1/files?api-version=preview&a=1");
}

BOOST_AUTO_TEST_CASE(bearer_key_becomes_api_key) {
    UpstreamRequest up = build_upstream_request(
        azure(), chat({{"Authorization", "Bearer abc123"}, {"Content-Type", "application/json"}}),
        deployment_route(), "d");
    BOOST_TEST(has(up.headers, "api-key: abc123"));
    BOOST_TEST(!has_name(up.headers, "Authorization"));
    BOOST_TEST(has(up.headers, "Content-Type: application/json"));
}

BOOST_AUTO_TEST_CASE(a_bearer_key_is_taken_in_any_case_without_its_spaces) {
    UpstreamRequest up = build_upstream_request(azure(), chat({{"Authorization", " bEARER   abc123 \t"}}),
                                                deployment_route(), "d");
    BOOST_TEST(has(up.headers, "api-key: abc123"));
    up = build_upstream_request(azure(), chat({{"Authorization", "Bearer    "}}), deployment_route(), "d");
    BOOST_TEST(!has_name(up.headers, "api-key"));
    BOOST_TEST(!has_name(up.headers, "Authorization"));
}

BOOST_AUTO_TEST_CASE(server_side_token_replaces_the_client_key) {
    Config config = azure();
    config.token = "server-key";
    UpstreamRequest up = build_upstream_request(
        config, chat({{"Authorization", "Bearer client"}, {"Api-Key", "client2"}}),
        deployment_route(), "d");
    BOOST_TEST(has(up.headers, "api-key: server-key"));
    BOOST_TEST(!has(up.headers, "api-key: client"));
    BOOST_TEST(!has(up.headers, "api-key: client2"));
    BOOST_TEST(!has_name(up.headers, "Authorization"));
}

BOOST_AUTO_TEST_CASE(entra_id_token_stays_a_bearer_token) {
    std::string jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_";
    BOOST_TEST(looks_like_jwt(jwt));
    BOOST_TEST(!looks_like_jwt("sk-abc.def"));
    BOOST_TEST(!looks_like_jwt("a..b"));
    BOOST_TEST(!looks_like_jwt("a.b.c.d"));  // four parts
    BOOST_TEST(!looks_like_jwt("a.b."));     // the third empty
    BOOST_TEST(!looks_like_jwt("a.b"));
    BOOST_TEST(!looks_like_jwt("a.b.c=")); // not base64url
    UpstreamRequest up = build_upstream_request(azure(), chat({{"Authorization", "Bearer " + jwt}}),
                                                deployment_route(), "d");
    BOOST_TEST(has(up.headers, "Authorization: Bearer " + jwt));
    BOOST_TEST(!has_name(up.headers, "api-key"));
}

BOOST_AUTO_TEST_CASE(every_hop_by_hop_name_is_known_in_any_case_and_no_other) {
    for (std::string name : {"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
                             "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
                             "Accept-Encoding"}) {
        BOOST_TEST(is_hop_by_hop(name), name);
        BOOST_TEST(is_hop_by_hop(lowercase(name)), name);
    }
    for (const char* name : {"", "T", "Tf", "Hosts", "Expects", "Trailers", "Connectiox", "Content-Type", "Accept",
                             "Proxy-Authorizatio", "Authorization", "X-Request-Id", "Keep_Alive", "CONTENT_LENGTH",
                             "Content-Lengtx", "T\xc5"})
        BOOST_TEST(!is_hop_by_hop(name), name);
}

BOOST_AUTO_TEST_CASE(hop_by_hop_and_private_headers_stay_behind) {
    UpstreamRequest up = build_upstream_request(
        azure(),
        chat({{"Host", "proxy"}, {"Connection", "keep-alive"}, {"Transfer-Encoding", "chunked"},
              {"Content-Length", "10"}, {"Cookie", "s=1"}, {"Openai-Organization", "org"},
              {"Openai-Project", "p"}, {"Accept-Encoding", "gzip"}, {"X-Stainless-Os", "Linux"},
              {"Openai-Beta", "assistants=v2"}}),
        deployment_route(), "d");
    for (const char* gone : {"Host", "Connection", "Transfer-Encoding", "Content-Length", "Cookie",
                             "Openai-Organization", "Openai-Project", "Accept-Encoding"})
        BOOST_TEST(!has_name(up.headers, std::string(gone) + ":"), gone);
    BOOST_TEST(has(up.headers, "X-Stainless-Os: Linux"));
    BOOST_TEST(has(up.headers, "Openai-Beta: assistants=v2"));
    BOOST_TEST(!has_name(up.headers, "Expect:"));  // the transfer's own word (upstream_transfer.cpp)
}

// As the web server names them (params without "HTTP_"): known by those names, in any
// case, and written as headers; a name only near a known one goes as it came.
BOOST_AUTO_TEST_CASE(headers_named_as_params_are_known_and_written_as_headers) {
    UpstreamRequest up = build_upstream_request(
        azure(),
        chat({{"HOST", "proxy"}, {"CONNECTION", "keep-alive"}, {"CONTENT_LENGTH", "10"}, {"keep_alive", "5"},
              {"OPENAI_ORGANIZATION", "org"}, {"COOKIE", "s=1"}, {"API_KEY", "k-1"}, {"X_STAINLESS_OS", "Linux"},
              {"CONTENT_TYPE", "application/json"}, {"CONTENT_LENGTHS", "1"}, {"CONTENT-LENGTH", "2"},
              {"CONTENT.LENGTH", "3"}, {"AUTHORIZATION", "Bearer sk-2"}}),
        deployment_route(), "d");
    for (const char* gone : {"Host:", "Connection:", "Keep-Alive:", "Openai-Organization:", "Cookie:", "Api-Key:",
                             "Authorization:"})
        BOOST_TEST(!has_name(up.headers, gone), gone);
    BOOST_TEST(has(up.headers, "X-Stainless-Os: Linux"));
    BOOST_TEST(has(up.headers, "Content-Type: application/json"));
    BOOST_TEST(has(up.headers, "Content-Lengths: 1"));
    BOOST_TEST(has(up.headers, "Content.length: 3"));
    BOOST_TEST(!has_name(up.headers, "Content-Length:"));  // the "-" form is the header's own name: hop-by-hop too
    BOOST_TEST(has(up.headers, "api-key: sk-2"));            // the bearer key, before the api-key header
    BOOST_TEST(!has(up.headers, "api-key: k-1"));
}

BOOST_AUTO_TEST_CASE(openai_mode_passes_through) {
    Config config;
    config.mode = ProxyMode::OpenAI;
    config.endpoint = "https://api.openai.com";
    Request request = chat({{"Authorization", "Bearer sk-1"}, {"Host", "proxy"}}, "a=b");
    request.method = "GET";
    request.path = "/v1/files";
    Route route = upstream_route("/v1/files");
    UpstreamRequest up = build_upstream_request(config, request, route, "");
    BOOST_TEST(up.url == "https://api.openai.com/v1/files?a=b");
    BOOST_TEST(up.method == "GET");
    BOOST_TEST(has(up.headers, "Authorization: Bearer sk-1"));
    BOOST_TEST(!has_name(up.headers, "Host"));

    config.token = "sk-server";
    up = build_upstream_request(config, request, route, "");
    BOOST_TEST(has(up.headers, "Authorization: Bearer sk-server"));
    BOOST_TEST(!has(up.headers, "Authorization: Bearer sk-1"));
}

BOOST_AUTO_TEST_CASE(realtime_calls_go_to_the_v1_api_with_their_credential) {
    Config config = azure();
    config.token = "server-key";
    config.api_version = "2024-10-21";  // a dated API elsewhere: realtime still goes to v1
    Route calls = route_request(config, "POST", "/v1/realtime/calls");
    Request sdp = chat({{"Content-Type", "application/sdp"}, {"Authorization", "Bearer ek_1"}, {"Api-Key", "client"}},
                       "api-version=x&webrtcfilter=on");
    UpstreamRequest up = build_upstream_request(config, sdp, calls, "");
    BOOST_TEST(up.url == "https://res.openai.azure.com/openai/v1/realtime/calls?webrtcfilter=on");
    // the ephemeral key is the call's credential: as it came, and alone
    BOOST_TEST(has(up.headers, "Authorization: Bearer ek_1"));
    BOOST_TEST(!has_name(up.headers, "api-key"));
    BOOST_TEST(!has_name(up.headers, "Api-Key"));
    // a form: the server's key, the client's Bearer dropped
    Request form = chat({{"Content-Type", "multipart/form-data; boundary=b"}, {"Authorization", "Bearer client"}});
    up = build_upstream_request(config, form, calls, "");
    BOOST_TEST(has(up.headers, "api-key: server-key"));
    BOOST_TEST(!has_name(up.headers, "Authorization"));
    Route secrets = route_request(config, "POST", "/v1/realtime/client_secrets");
    up = build_upstream_request(config, chat({{"Authorization", "Bearer client"}}), secrets, "");
    BOOST_TEST(up.url == "https://res.openai.azure.com/openai/v1/realtime/client_secrets");
    BOOST_TEST(has(up.headers, "api-key: server-key"));
    BOOST_TEST(!has_name(up.headers, "Authorization"));
    // with the endpoint's Entra identity: its token on client_secrets, never on an ephemeral call
    config.token.clear();
    config.credential.source = CredentialSource::ClientSecret;
    BOOST_TEST(build_upstream_request(config, chat({}), secrets, "").credential == &config.credential);
    BOOST_TEST(!build_upstream_request(config, sdp, calls, "").credential);
}

// openai mode: the ephemeral key is OpenAI's credential for the call just as it is Azure's;
// the server's key never replaces it, and the proxy's own key (api-key) stays behind.
BOOST_AUTO_TEST_CASE(an_ephemeral_call_in_openai_mode_keeps_its_key_alone) {
    Config config;
    config.mode = ProxyMode::OpenAI;
    config.endpoint = "https://api.openai.com";
    config.token = "sk-server";
    Route calls = route_request(config, "POST", "/v1/realtime/calls");
    Request sdp = chat({{"Content-Type", "application/sdp"}, {"Authorization", "Bearer ek_1"}, {"Api-Key", "client"}});
    UpstreamRequest up = build_upstream_request(config, sdp, calls, "");
    BOOST_TEST(has(up.headers, "Authorization: Bearer ek_1"));
    BOOST_TEST(!has(up.headers, "Authorization: Bearer sk-server"));
    BOOST_TEST(!has_name(up.headers, "Api-Key"));
    Request form = chat({{"Content-Type", "multipart/form-data; boundary=b"}, {"Authorization", "Bearer client"}});
    up = build_upstream_request(config, form, calls, "");
    BOOST_TEST(has(up.headers, "Authorization: Bearer sk-server"));
    BOOST_TEST(!has(up.headers, "Authorization: Bearer client"));
}

BOOST_AUTO_TEST_SUITE_END()

// Request params (as a web server or an attacker on the FastCGI socket sends them) through
// routing and translation. Input: "NAME\0value\0NAME\0value\0...".
// Invariants: no upstream header line or URL carries CR, LF or NUL; a routed upstream path
// holds no segment that decodes to "." or ".." or holds '/' or '\'; a deployment used in
// a URL is safe.
#include <string>
#include <vector>

#include "invariant.h"
#include "config.h"
#include "request.h"
#include "api_routes.h"
#include "translate.h"

namespace {

bool clean_line(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> parts;
    size_t at = 0;
    while (at <= input.size() && parts.size() < 256) {
        size_t end = input.find('\0', at);
        if (end == std::string::npos) end = input.size();
        parts.push_back(input.substr(at, end - at));
        at = end + 1;
    }
    CgiParams params;
    for (size_t i = 0; i + 1 < parts.size(); i += 2) params.emplace_back(parts[i], parts[i + 1]);

    static Config config = [] {
        Config c;
        c.endpoint = "https://res.openai.azure.com";
        return c;
    }();
    Request request = request_from_params(params, config);
    Route route = route_request(config, request.method, request.path);
    // Only these go upstream (the models routes with AZURE_OPENAI_PROXY_MODELS_SOURCE=azure).
    bool upstream_route = route.kind == RouteKind::Deployment || route.kind == RouteKind::Upstream ||
                          route.kind == RouteKind::ListModels || route.kind == RouteKind::RetrieveModel;
    if (!request.malformed_param.empty() || !upstream_route) return 0;
    REQUIRE(!has_unsafe_segment(route.upstream_path));
    std::string deployment = route.deployment.empty() ? deployment_for_model(config, route.model.empty() ? "gpt-4o" : route.model)
                                                      : route.deployment;
    if (route.kind == RouteKind::Deployment && !is_safe_deployment(deployment)) return 0;
    UpstreamRequest upstream = build_upstream_request(config, request, route, deployment);
    REQUIRE(clean_line(upstream.url) && upstream.url.find(' ') == std::string::npos);
    // Lines are NUL-ended in one string: each one whole, with a name and a colon.
    for (std::string_view line : upstream.headers.lines()) REQUIRE(clean_line(line) && line.find(':') != std::string_view::npos);
    return 0;
}

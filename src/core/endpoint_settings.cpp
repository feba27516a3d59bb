// The upstream endpoint's settings from the environment: the mode, the URL, the
// api-versions, the model mapper and the server-side key. They are the defaults each
// endpoint of the routing file starts from.
#include "config.h"

#include "config_reading.h"
#include "credential_settings.h"
#include "text.h"

namespace {

const char* const kDefaultMapper = "gpt-3.5-turbo=gpt-35-turbo,gpt-3.5-turbo-0301=gpt-35-turbo-0301";

bool parse_mapper(const std::string& text, std::map<std::string, std::string>& mapper,
                  std::string& error) {
    const char* const variable = "AZURE_OPENAI_MODEL_MAPPER";
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!parse_pairs(variable, text, "model=deployment", pairs, error)) return false;
    for (auto& [model, deployment] : pairs)
        if (!check_model_name(variable, model, error)) return false;
    for (auto& [model, deployment] : pairs) mapper[model] = deployment;
    return true;
}

bool valid_api_version(const std::string& version) { return is_word(version, "-."); }

bool read_endpoint(const Environment& env, EndpointSettings& c, std::string& error) {
    c.endpoint = trim(environment_value(env, "AZURE_OPENAI_ENDPOINT"));
    if (c.endpoint.empty() && c.mode == ProxyMode::OpenAI) c.endpoint = "https://api.openai.com";
    if (c.endpoint.empty()) {
        error = "AZURE_OPENAI_ENDPOINT: not set; azure mode needs your resource URL, "
                "e.g. https://my-resource.openai.azure.com";
        return false;
    }
    if (!valid_base_url(c.endpoint)) {
        error = "AZURE_OPENAI_ENDPOINT: '" + c.endpoint +
                "' is not an http(s) URL like https://my-resource.openai.azure.com";
        return false;
    }
    while (c.endpoint.back() == '/') c.endpoint.pop_back();
    return true;
}

// AZURE_OPENAI_APIVERSION, and the routes that take another (Responses, Assistants…).
bool read_api_versions(const Environment& env, EndpointSettings& c, std::string& error) {
    std::string version = trim(environment_value(env, "AZURE_OPENAI_APIVERSION"));
    if (!version.empty()) c.api_version = version;
    if (!valid_api_version(c.api_version)) {
        error = "AZURE_OPENAI_APIVERSION: '" + c.api_version + "' is not an api-version like 2024-10-21, v1 or preview";
        return false;
    }
    std::string routes = environment_value(env, "AZURE_OPENAI_APIVERSION_ROUTES");
    if (!parse_pairs("AZURE_OPENAI_APIVERSION_ROUTES", routes.empty() ? default_route_api_versions() : routes,
                     "route=api-version", c.route_api_versions, error))
        return false;
    for (auto& [route, route_version] : c.route_api_versions) {
        while (!route.empty() && route.front() == '/') route.erase(0, 1);
        if (starts_with(route, "v1/")) route.erase(0, 3);
        if (!valid_api_version(route_version)) {
            error = "AZURE_OPENAI_APIVERSION_ROUTES: '" + route_version + "' is not an api-version";
            return false;
        }
    }
    return true;
}

}  // namespace

bool read_endpoint_settings(const Environment& env, EndpointSettings& c, std::string& error) {
    // In this order: the endpoint's default depends on the mode.
    if (!read_choice<ProxyMode>(env, "AZURE_OPENAI_PROXY_MODE",
                                {{"azure", ProxyMode::Azure}, {"openai", ProxyMode::OpenAI}},
                                "'azure' or 'openai'", c.mode, error) ||
        !read_endpoint(env, c, error) || !read_api_versions(env, c, error))
        return false;
    if (!parse_mapper(kDefaultMapper, c.model_mapper, error) ||
        !parse_mapper(environment_value(env, "AZURE_OPENAI_MODEL_MAPPER"), c.model_mapper, error))
        return false;
    if (!read_secret_setting("AZURE_OPENAI_TOKEN", trim(environment_value(env, "AZURE_OPENAI_TOKEN")), c.token, error) ||
        !read_credential_settings(env, c.credential, error)) return false;
    if (c.mode == ProxyMode::OpenAI && c.credential.source != CredentialSource::None) {
        error = "AZURE_OPENAI_PROXY_CREDENTIAL: an Entra ID identity is for Azure; openai mode sends AZURE_OPENAI_TOKEN";
        return false;
    }
    return true;
}

bool has_own_identity(const EndpointSettings& settings) {
    return !settings.token.empty() || settings.credential.source != CredentialSource::None;
}

// Accepts http(s)://authority[/path]; no query, fragment, userinfo or whitespace.
bool valid_base_url(const std::string& url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return false;
    std::string scheme = lowercase(url.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https") return false;
    std::string rest = url.substr(scheme_end + 3);
    size_t host_end = rest.find('/');
    std::string authority = rest.substr(0, host_end);
    if (authority.empty() || authority.find('@') != std::string::npos) return false;
    for (unsigned char c : url)
        if (c <= ' ' || c == '?' || c == '#' || c >= 0x7f) return false;
    return true;
}

const char* default_route_api_versions() {
    return "responses=2025-04-01-preview,assistants=2025-04-01-preview,"
           "threads=2025-04-01-preview,vector_stores=2025-04-01-preview";
}

bool uses_v1_api(const EndpointSettings& settings) {
    std::string_view version(settings.api_version);  // sizes first: no call for a dated version
    return version == "v1" || version == "preview";
}

// A reference into the settings and a view of the operation: asked for every Azure request,
// it copies nothing.
const std::string& api_version_for(const EndpointSettings& settings, std::string_view operation) {
    if (uses_v1_api(settings)) return settings.api_version;
    const std::string* best = nullptr;
    size_t best_length = 0;
    for (const auto& [route, version] : settings.route_api_versions) {
        // The first byte first: most routes differ there, and no comparison is called.
        bool matches = operation.size() >= route.size() && (route.empty() || operation[0] == route[0]) &&
                       operation.compare(0, route.size(), route) == 0 &&
                       (operation.size() == route.size() || operation[route.size()] == '/');
        if (matches && route.size() > best_length) {
            best = &version;
            best_length = route.size();
        }
    }
    return best ? *best : settings.api_version;
}

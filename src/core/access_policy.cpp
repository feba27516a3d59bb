// The access policy from the environment: the client and admin keys, the browser origins
// allowed, the models a client may ask for; and the checks over keys that span the
// configuration (a server-side key to replace client keys, an open relay).
#include "config.h"

#include <fstream>
#include <sstream>

#include "config_reading.h"
#include "routing.h"
#include "text.h"

namespace {

// AZURE_OPENAI_PROXY_API_KEYS and _ADMIN_KEYS: "name:key,key" or "@/path/to/file" (one
// entry a line).
bool read_keys(const Environment& env, const char* variable, std::vector<ClientKey>& keys, std::string& file_name,
               std::string& error) {
    std::string text = trim(environment_value(env, variable));
    if (text.empty()) return true;
    char separator = ',';
    if (text[0] == '@') {
        file_name = text.substr(1);
        std::ifstream file(file_name);
        std::ostringstream content;
        if (!file || !(content << file.rdbuf())) {
            error = std::string(variable) + ": cannot read the key file '" + file_name + "'";
            return false;
        }
        text = content.str();
        separator = '\n';
    }
    std::string problem;
    if (!parse_client_keys(text, separator, keys, problem)) {
        error = std::string(variable) + (file_name.empty() ? "" : " (" + file_name + ")") + ": " + problem;
        return false;
    }
    return true;
}

// Each key names one entry: a client key that is also an admin key, or two admin keys
// alike, would leave the logs in doubt about who sent a request.
bool read_client_keys(const Environment& env, AccessPolicy& c, std::string& error) {
    std::string admin_file;
    if (!read_keys(env, "AZURE_OPENAI_PROXY_API_KEYS", c.client_keys, c.client_keys_file, error) ||
        !read_keys(env, "AZURE_OPENAI_PROXY_ADMIN_KEYS", c.admin_keys, admin_file, error))
        return false;
    for (const auto& [entry, earlier] : shared_keys(environment_key_sources(c))) {
        error = entry + ": has the same key as " + earlier + "; a key may belong to one entry only";
        return false;
    }
    return true;
}

// AZURE_OPENAI_PROXY_CORS_ORIGINS: "*" or origins such as https://chat.example.com.
bool read_cors_origins(const Environment& env, AccessPolicy& c, std::string& error) {
    for (const std::string& origin : list_of(environment_value(env, "AZURE_OPENAI_PROXY_CORS_ORIGINS"))) {
        if (origin == "*") {
            c.cors_origins.clear();
            return true;
        }
        if (!valid_base_url(origin) || origin.find('/', origin.find("://") + 3) != std::string::npos) {
            error = "AZURE_OPENAI_PROXY_CORS_ORIGINS: '" + origin +
                    "' is not an origin like https://chat.example.com (or *)";
            return false;
        }
        c.cors_origins.push_back(origin);
    }
    return true;
}

}  // namespace

bool read_access_policy(const Environment& env, AccessPolicy& c, std::string& error) {
    if (!read_client_keys(env, c, error) || !read_cors_origins(env, c, error)) return false;
    c.allowed_models = list_of(environment_value(env, "AZURE_OPENAI_PROXY_ALLOWED_MODELS"));
    return check_model_names("AZURE_OPENAI_PROXY_ALLOWED_MODELS", c.allowed_models, error);
}

bool keys_need_token(const Config& c, std::string& error) {
    if (!has_client_keys(c) || has_own_identity(c)) return true;
    error = std::string(c.config_file.empty() ? "AZURE_OPENAI_PROXY_API_KEYS" : "client keys") +
            ": client keys are the proxy's own, not Azure's; set AZURE_OPENAI_TOKEN to the "
            "key the proxy sends upstream";
    return false;
}

std::vector<KeySource> environment_key_sources(const AccessPolicy& policy) {
    return {{"AZURE_OPENAI_PROXY_API_KEYS: ", &policy.client_keys},
            {"AZURE_OPENAI_PROXY_ADMIN_KEYS: ", &policy.admin_keys}};
}

bool has_client_keys(const Config& c) {
    return !c.client_keys.empty() || (c.routing && !c.routing->get()->keys.empty());
}

std::string open_relay_warning(const Config& c) {
    if (!has_own_identity(c) || has_client_keys(c)) return "";
    std::string identity = c.token.empty() ? "AZURE_OPENAI_PROXY_CREDENTIAL" : "AZURE_OPENAI_TOKEN";
    return "warning: " + identity + " is set and no client key is (neither AZURE_OPENAI_PROXY_API_KEYS "
           "nor the configuration file's keys): anyone who can reach this proxy spends your Azure key "
           "(an open relay). Set client keys before exposing it.";
}

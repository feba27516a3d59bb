// An endpoint's `credential` in the routing file: its members become the SDKs' variables
// and are read by the same reader as the environment's, so both say the same things.
// Tests: routing_file_test.cpp; end to end: entra-per-endpoint.test.mjs.
#include "routing_credential.h"

#include <set>
#include <utility>

#include "config_reading.h"
#include "credential_settings.h"
#include "text.h"

namespace {

struct Member {
    const char* name;
    const char* variable;
    bool secret;  // env:NAME, file:/path or the value, as an endpoint's key (read_routing_secret)
};

const Member kMembers[] = {
    {"source", "AZURE_OPENAI_PROXY_CREDENTIAL", false},
    {"tenant", "AZURE_TENANT_ID", false},
    {"client_id", "AZURE_CLIENT_ID", false},
    {"client_secret", "AZURE_CLIENT_SECRET", true},
    {"certificate", "AZURE_CLIENT_CERTIFICATE_PATH", false},
    {"certificate_password", "AZURE_CLIENT_CERTIFICATE_PASSWORD", true},
    {"federated_token_file", "AZURE_FEDERATED_TOKEN_FILE", false},
    {"authority_host", "AZURE_AUTHORITY_HOST", false},
    {"scope", "AZURE_OPENAI_PROXY_TOKEN_SCOPE", false},
    {"identity_endpoint", "IDENTITY_ENDPOINT", false},
    {"identity_header", "IDENTITY_HEADER", true},
    {"imds_endpoint", "AZURE_OPENAI_PROXY_IMDS_ENDPOINT", false},
};

const Member* member_named(const std::string& name) {
    for (const Member& m : kMembers)
        if (name == m.name) return &m;
    return nullptr;
}

// The reader's words name variables; the file's author wrote members.
std::string in_member_names(std::string error) {
    for (const Member& m : kMembers) {
        std::string variable = m.variable;
        for (size_t at = error.find(variable); at != std::string::npos; at = error.find(variable, at))
            error.replace(at, variable.size(), m.name);
    }
    return error;
}

}  // namespace

bool read_routing_secret(const std::string& value, EnvironmentLookup lookup, void* context, bool spaces,
                         std::string& secret, std::string& shown, std::string& error) {
    shown = starts_with(value, "env:") || starts_with(value, "file:") ? value : "inline";
    secret = value;
    if (starts_with(value, "env:")) {
        const std::string name = value.substr(4);
        secret = trim(lookup(name, context));
        if (secret.empty()) error = "the environment variable " + log_safe(name, 60) + " is not set";
        else if (starts_with(secret, "file:"))
            error = "env:" + log_safe(name, 60) + " names a file: write file:/path here";
    } else if (starts_with(value, "file:")) {
        const std::string path = value.substr(5);
        if (!read_secret_file(path, secret)) error = "cannot read '" + log_safe(path) + "'";
        else if (secret.empty()) error = "'" + log_safe(path) + "' is empty";
    }
    for (unsigned char c : secret)
        if (error.empty() && (c < ' ' || c >= 0x7f || (c == ' ' && !spaces)))
            error = spaces ? "holds a control character" : "holds a space or control character";
    return error.empty();
}

bool read_routing_credential(const cJSON* member, EnvironmentLookup lookup, void* context, CredentialSettings& settings,
                             std::string& error) {
    if (!cJSON_IsObject(member)) {
        error = "must be an object like {\"source\": \"client-secret\", \"tenant\": ..., \"client_id\": ..., \"client_secret\": \"env:NAME\"}";
        return false;
    }
    Environment variables;
    for (const cJSON* item = member->child; item; item = item->next) {
        const Member* m = member_named(item->string);
        if (!m) {
            error = "'" + log_safe(item->string, 40) + "' is not a member of a credential";
            return false;
        }
        if (!cJSON_IsString(item)) {
            error = std::string(m->name) + ": must be a string";
            return false;
        }
        std::string value = item->valuestring, shown;
        if (m->secret && !read_routing_secret(item->valuestring, lookup, context, true, value, shown, error)) {
            error = std::string(m->name) + ": " + error;
            return false;
        }
        variables[m->variable] = value;
    }
    if (!variables.count("AZURE_OPENAI_PROXY_CREDENTIAL")) {
        error = "source: is required (client-secret, client-certificate, workload-identity, managed-identity or default)";
        return false;
    }
    CredentialSettings read;
    if (!read_credential_settings(variables, read, error)) {
        error = in_member_names(error);
        return false;
    }
    settings = std::move(read);
    return true;
}

std::string endpoint_credential_problem(const cJSON* member, const std::string& key, ProxyMode mode, EnvironmentLookup lookup,
                                        void* context, CredentialSettings& settings) {
    std::string error;
    if (!key.empty()) return "and a key: give the endpoint one of them";
    if (mode != ProxyMode::Azure) return "is for Azure endpoints: Entra ID tokens are Azure's";
    read_routing_credential(member, lookup, context, settings, error);
    return error;
}

std::vector<HostCredential> host_credentials(const Config& config) {
    std::vector<HostCredential> found;
    std::set<std::string> identities;
    auto add = [&](const std::string& endpoint, const CredentialSettings& settings) {
        if (settings.source != CredentialSource::None && identities.insert(token_identity(settings)).second)
            found.push_back({endpoint, settings});
    };
    add("", config.credential);
    std::shared_ptr<const RoutingTable> table = config.routing ? config.routing->get() : nullptr;
    if (table)
        for (const Endpoint& endpoint : table->endpoints)
            if (endpoint.upstream) add(endpoint.name, endpoint.upstream->credential);
    return found;
}

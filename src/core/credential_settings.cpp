// The Entra ID credential of the single endpoint, read from the environment.
#include "credential_settings.h"

#include "client_assertion.h"
#include "config_reading.h"
#include "text.h"

namespace {

bool read_url(const Environment& env, const char* variable, std::string& url, std::string& error) {
    std::string value = trim(environment_value(env, variable));
    if (value.empty()) return true;
    if (!valid_base_url(value)) {
        error = std::string(variable) + ": '" + log_safe(value, 80) + "' is not an http(s) URL";
        return false;
    }
    url = value;
    return true;
}

bool read_source_pieces(const Environment& env, CredentialSettings& s, std::string& error) {
    s.tenant_id = trim(environment_value(env, "AZURE_TENANT_ID"));
    s.client_id = trim(environment_value(env, "AZURE_CLIENT_ID"));
    s.federated_token_file = trim(environment_value(env, "AZURE_FEDERATED_TOKEN_FILE"));
    std::string scope = trim(environment_value(env, "AZURE_OPENAI_PROXY_TOKEN_SCOPE"));
    if (!scope.empty()) s.scope = scope;
    if (!s.tenant_id.empty() && !is_word(s.tenant_id, "-.")) {
        error = "AZURE_TENANT_ID: '" + log_safe(s.tenant_id, 60) + "' is not a tenant id or domain";
        return false;
    }
    if (!is_word(s.scope, ":/._-")) {
        error = "AZURE_OPENAI_PROXY_TOKEN_SCOPE: '" + log_safe(s.scope, 80) + "' is not a scope like " + kDefaultTokenScope;
        return false;
    }
    if (s.source == CredentialSource::ClientSecret &&
        !read_secret_setting("AZURE_CLIENT_SECRET", trim(environment_value(env, "AZURE_CLIENT_SECRET")), s.client_secret, error))
        return false;
    if (s.source == CredentialSource::ClientCertificate) {
        s.certificate_path = trim(environment_value(env, "AZURE_CLIENT_CERTIFICATE_PATH"));
        std::string password = environment_value(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD");
        if (!password.empty() && !read_secret_setting("AZURE_CLIENT_CERTIFICATE_PASSWORD", password, s.certificate_password, error))
            return false;
    }
    if (s.source == CredentialSource::ManagedIdentity) {
        s.identity_header = trim(environment_value(env, "IDENTITY_HEADER"));
        if (!read_url(env, "IDENTITY_ENDPOINT", s.identity_endpoint, error) ||
            !read_url(env, "AZURE_OPENAI_PROXY_IMDS_ENDPOINT", s.imds_endpoint, error))
            return false;
    }
    return read_url(env, "AZURE_AUTHORITY_HOST", s.authority_host, error);
}

}  // namespace

CredentialSource default_credential_source(const Environment& env, std::string& reason) {
    auto set = [&env](const char* name) { return !trim(environment_value(env, name)).empty(); };
    bool principal = set("AZURE_TENANT_ID") && set("AZURE_CLIENT_ID");
    if (principal && set("AZURE_CLIENT_SECRET")) {
        reason = "AZURE_CLIENT_SECRET is set";
        return CredentialSource::ClientSecret;
    }
    if (principal && set("AZURE_CLIENT_CERTIFICATE_PATH")) {
        reason = "AZURE_CLIENT_CERTIFICATE_PATH is set";
        return CredentialSource::ClientCertificate;
    }
    if (principal && set("AZURE_FEDERATED_TOKEN_FILE")) {
        reason = "AZURE_FEDERATED_TOKEN_FILE is set";
        return CredentialSource::WorkloadIdentity;
    }
    reason = set("IDENTITY_ENDPOINT") ? "IDENTITY_ENDPOINT is set"
                                      : "no service principal or federated token is set: the instance metadata endpoint";
    return CredentialSource::ManagedIdentity;
}

// A certificate credential signs one assertion as the configuration is read: an unreadable
// file, a PEM without its private key, a key that is not the certificate's or a wrong
// password is refused now, in one line, not at the first token request.
bool check_client_certificate(const CredentialSettings& s, std::string& error) {
    AssertionSigner sign = installed_assertion_signer();
    if (s.source != CredentialSource::ClientCertificate || !sign) return true;
    std::string assertion;
    if (sign(s, token_endpoint_url(s), assertion, error)) return true;
    error = "AZURE_CLIENT_CERTIFICATE_PATH: " + error;
    return false;
}

bool read_credential_settings(const Environment& env, CredentialSettings& s, std::string& error) {
    const char* const variable = "AZURE_OPENAI_PROXY_CREDENTIAL";
    if (lowercase(trim(environment_value(env, variable))) == "default") {
        s.source = default_credential_source(env, s.default_reason);
    } else if (!read_choice<CredentialSource>(env, variable,
                                              {{"client-secret", CredentialSource::ClientSecret},
                                               {"client-certificate", CredentialSource::ClientCertificate},
                                               {"workload-identity", CredentialSource::WorkloadIdentity},
                                               {"managed-identity", CredentialSource::ManagedIdentity}},
                                              "client-secret, client-certificate, workload-identity, managed-identity "
                                              "or default",
                                              s.source, error)) {
        return false;
    }
    if (s.source == CredentialSource::None) return true;
    if (!read_source_pieces(env, s, error)) return false;
    std::string missing = missing_credential_piece(s);
    if (!missing.empty()) {
        error = missing;
        return false;
    }
    if (!check_client_certificate(s, error)) return false;
    if (!trim(environment_value(env, "AZURE_OPENAI_TOKEN")).empty()) {
        error = std::string(variable) + ": AZURE_OPENAI_TOKEN is set too; the proxy sends either a key or "
                                        "its own Entra ID token: unset one";
        return false;
    }
    return true;
}

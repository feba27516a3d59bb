// The token request of each credential source, Entra's answer read, the renewal schedule.
#include "credential.h"

#include <algorithm>
#include <cmath>

#include "client_assertion.h"
#include "json_ptr.h"
#include "text.h"

namespace {

// application/x-www-form-urlencoded and query values: everything but the unreserved bytes
// escaped (a secret may hold '+', '&' or '=').
bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string form_encode(const std::string& value) { return percent_encode(value, unreserved); }

std::string with_slash(std::string url) {
    if (url.empty() || url.back() != '/') url += '/';
    return url;
}

std::string add_query(const std::string& url, const std::string& query) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + query;
}

TokenRequest entra_request(const CredentialSettings& s, const std::string& proof) {
    TokenRequest r;
    r.method = "POST";
    r.url = token_endpoint_url(s);
    r.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
    r.body = "grant_type=client_credentials&client_id=" + form_encode(s.client_id) + "&scope=" +
             form_encode(s.scope) + "&" + proof;
    return r;
}

std::string assertion_proof(const std::string& assertion) {
    return "client_assertion_type=" + form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
           "&client_assertion=" + form_encode(assertion);
}

// Signed anew for each request (its jti and times are its own), by the signing edge.
TokenRequest certificate_request(const CredentialSettings& s) {
    std::string assertion, error;
    AssertionSigner sign = installed_assertion_signer();
    if (!sign) error = "no signer of client assertions in this program";
    else if (!sign(s, token_endpoint_url(s), assertion, error) && error.empty()) error = "the client assertion was not made";
    if (!error.empty()) {
        TokenRequest failed;
        failed.error = "AZURE_CLIENT_CERTIFICATE_PATH: " + error;
        return failed;
    }
    return entra_request(s, assertion_proof(assertion));
}

TokenRequest managed_identity_request(const CredentialSettings& s) {
    TokenRequest r;
    r.method = "GET";
    std::string query = "resource=" + form_encode(scope_resource(s.scope));
    if (!s.client_id.empty()) query += "&client_id=" + form_encode(s.client_id);
    if (!s.identity_endpoint.empty()) {
        r.url = add_query(s.identity_endpoint, "api-version=2019-08-01&" + query);
        r.headers = {"X-IDENTITY-HEADER: " + s.identity_header};
    } else {
        r.url = add_query(s.imds_endpoint, "api-version=2018-02-01&" + query);
        r.headers = {"Metadata: true"};
    }
    r.headers.push_back("Accept: application/json");
    return r;
}

// A count of seconds given as a number or a string of digits; -1 when absent or neither.
long long seconds_member(const cJSON* answer, const char* name) {
    const cJSON* item = cJSON_GetObjectItemCaseSensitive(answer, name);
    if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < 1e15)
        return static_cast<long long>(std::floor(item->valuedouble));
    if (cJSON_IsString(item)) return digits_value(trim(item->valuestring), 15);
    return -1;
}

std::string string_member(const cJSON* answer, const char* name) {
    const cJSON* item = cJSON_GetObjectItemCaseSensitive(answer, name);
    return cJSON_IsString(item) ? std::string(item->valuestring) : std::string();
}

// "AADSTS" and its digits, wherever Entra's description carries them.
std::string aadsts_code(const std::string& description) {
    size_t at = description.find("AADSTS");
    if (at == std::string::npos) return "";
    size_t end = at + 6;
    while (end < description.size() && description[end] >= '0' && description[end] <= '9') ++end;
    return end > at + 6 ? description.substr(at, end - at) : "";
}

void read_failure(long status, const cJSON* answer, TokenAnswer& out) {
    std::string code = string_member(answer, "error");
    std::string description = string_member(answer, "error_description");
    if (description.empty()) description = string_member(answer, "message");  // App Service's shape
    out.aadsts = aadsts_code(description);
    // The description's first line names the cause; the trace and correlation ids follow.
    description = description.substr(0, description.find_first_of("\r\n"));
    out.error = "the token endpoint answered " + std::to_string(status);
    if (!code.empty()) out.error += " " + log_safe(code, 60);
    if (!description.empty()) out.error += ": " + quote_value(description, 240);
}

}  // namespace

std::string credential_source_name(const CredentialSettings& s) {
    switch (s.source) {
        case CredentialSource::ClientSecret: return "client-secret";
        case CredentialSource::ClientCertificate: return "client-certificate";
        case CredentialSource::WorkloadIdentity: return "workload-identity";
        case CredentialSource::ManagedIdentity:
            return s.identity_endpoint.empty() ? "managed-identity (IMDS)" : "managed-identity (App Service)";
        case CredentialSource::None: break;
    }
    return "none";
}

std::string describe_credential(const CredentialSettings& s) {
    std::string line = credential_source_name(s);
    if (!s.default_reason.empty()) line += " (taken by default: " + s.default_reason + ")";
    if (!s.tenant_id.empty() && s.source != CredentialSource::ManagedIdentity) line += ", tenant " + s.tenant_id;
    if (!s.client_id.empty()) line += ", client " + s.client_id;
    return line + ", scope " + s.scope;
}

std::string token_identity(const CredentialSettings& c) {
    return credential_source_name(c) + '\n' + c.authority_host + '\n' + c.tenant_id + '\n' + c.client_id + '\n' +
           c.scope + '\n' + c.identity_endpoint + '\n' + c.imds_endpoint + '\n' + c.federated_token_file + '\n' + c.certificate_path;
}

std::string missing_credential_piece(const CredentialSettings& s) {
    bool entra = s.source == CredentialSource::ClientSecret || s.source == CredentialSource::WorkloadIdentity ||
                 s.source == CredentialSource::ClientCertificate;
    std::string needs = " the " + credential_source_name(s) + " credential needs it";
    if (entra && s.tenant_id.empty()) return "AZURE_TENANT_ID: not set;" + needs;
    if (entra && s.client_id.empty()) return "AZURE_CLIENT_ID: not set;" + needs;
    if (s.source == CredentialSource::ClientSecret && s.client_secret.empty())
        return "AZURE_CLIENT_SECRET: not set;" + needs;
    if (s.source == CredentialSource::ClientCertificate && s.certificate_path.empty())
        return "AZURE_CLIENT_CERTIFICATE_PATH: not set;" + needs;
    if (s.source == CredentialSource::WorkloadIdentity && s.federated_token_file.empty())
        return "AZURE_FEDERATED_TOKEN_FILE: not set;" + needs;
    if (!s.identity_endpoint.empty() && s.identity_header.empty())
        return "IDENTITY_HEADER: not set; IDENTITY_ENDPOINT (App Service) needs it";
    return "";
}

TokenRequest build_token_request(const CredentialSettings& s, const std::string& federated_token) {
    switch (s.source) {
        case CredentialSource::ClientSecret:
            return entra_request(s, "client_secret=" + form_encode(s.client_secret));
        case CredentialSource::ClientCertificate:
            return certificate_request(s);
        case CredentialSource::WorkloadIdentity:
            return entra_request(s, assertion_proof(trim(federated_token)));
        case CredentialSource::ManagedIdentity:
            return managed_identity_request(s);
        case CredentialSource::None: break;
    }
    return {};
}

std::string token_endpoint_url(const CredentialSettings& s) {
    return with_slash(s.authority_host) + form_encode(s.tenant_id) + "/oauth2/v2.0/token";
}

std::string scope_resource(const std::string& scope) {
    const std::string suffix = "/.default";
    return ends_with(scope, suffix) ? scope.substr(0, scope.size() - suffix.size()) : scope;
}

TokenAnswer read_token_answer(long status, const std::string& body, int64_t now_ms) {
    TokenAnswer out;
    out.status = status;
    JsonPtr answer(cJSON_ParseWithLength(body.data(), body.size()));
    if (!cJSON_IsObject(answer.get())) {
        out.error = "the token endpoint answered " + std::to_string(status) + " with no JSON object";
        return out;
    }
    if (status != 200) {
        read_failure(status, answer.get(), out);
        return out;
    }
    out.access_token = string_member(answer.get(), "access_token");
    long long expires_in = seconds_member(answer.get(), "expires_in");
    long long expires_on = seconds_member(answer.get(), "expires_on");
    long long refresh_in = seconds_member(answer.get(), "refresh_in");
    // expires_in first: relative, so a skewed clock here does not matter.
    if (expires_in >= 0) out.expires_at_ms = now_ms + expires_in * 1000;
    else if (expires_on >= 0) out.expires_at_ms = expires_on * 1000;
    if (refresh_in > 0) out.refresh_at_ms = now_ms + refresh_in * 1000;
    // A lifetime beyond any Entra gives (24 h for managed identities) is not believed: the
    // token is renewed as if it lived that long, not in years.
    if (out.expires_at_ms - now_ms > kLongestTokenLifeMs) out.expires_at_ms = now_ms + kLongestTokenLifeMs;
    bool printable = !out.access_token.empty() && is_word(out.access_token, "-._~+/=");
    if (!printable) out.error = "the token endpoint's answer holds no usable access_token";
    else if (out.expires_at_ms <= now_ms) out.error = "the token endpoint's answer holds no future expires_in or expires_on";
    out.ok = out.error.empty();
    if (!out.ok) out.access_token.clear();
    return out;
}

bool definitive_refusal(const TokenAnswer& answer) {
    if (answer.ok) return false;
    return answer.local_fault || answer.status == 400 || answer.status == 401 || answer.status == 403;
}

const char* token_outcome(const TokenAnswer& answer) {
    return answer.ok ? "ok" : definitive_refusal(answer) ? "refused" : "failed";
}

int64_t renewal_due_ms(int64_t obtained_ms, const TokenAnswer& answer) {
    int64_t half_life = obtained_ms + (answer.expires_at_ms - obtained_ms) / 2;
    if (answer.refresh_at_ms > obtained_ms && answer.refresh_at_ms < answer.expires_at_ms) return answer.refresh_at_ms;
    return half_life;
}

int64_t token_retry_delay_ms(int failures, int64_t usable_left_ms) {
    int64_t delay = 1000;
    for (int i = 1; i < failures && delay < kLongestTokenRetryMs; ++i) delay *= 2;
    if (delay > kLongestTokenRetryMs) delay = kLongestTokenRetryMs;
    if (usable_left_ms > 0 && delay > usable_left_ms / 2) delay = std::max(usable_left_ms / 2, kShortestTokenRetryMs);
    return delay;
}

// The second kept back covers the request's way to Azure and a clock a little behind.
int64_t token_usable_for_ms(int64_t expires_at_ms, int64_t now_ms) {
    return expires_at_ms - now_ms > 1000 ? expires_at_ms - now_ms - 1000 : 0;
}

bool token_usable(int64_t expires_at_ms, int64_t now_ms) { return token_usable_for_ms(expires_at_ms, now_ms) > 0; }

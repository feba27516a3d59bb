// Entra ID credentials the proxy holds for an endpoint (issue 23): the sources Azure's SDKs
// read, the token request each one sends, the reading of Entra's answer, and when a token
// is renewed. Pure: the token edge (token_keeper.cpp) reads the federated token file, sends
// the request and keeps the clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

enum class CredentialSource {
    None,              // the server's key, or the client's own credential passed on
    ClientSecret,      // a service principal: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
    ClientCertificate, // the same with AZURE_CLIENT_CERTIFICATE_PATH: a signed client assertion
    WorkloadIdentity,  // AKS / OIDC federation: AZURE_FEDERATED_TOKEN_FILE as the client assertion
    ManagedIdentity,   // IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service), else the IMDS endpoint
};

const char* const kDefaultTokenScope = "https://cognitiveservices.azure.com/.default";
const char* const kDefaultAuthorityHost = "https://login.microsoftonline.com/";
const char* const kDefaultImdsEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token";

// What one endpoint's identity is. The secret and the identity header are never shown
// (describe_credential leaves them out).
struct CredentialSettings {
    CredentialSource source = CredentialSource::None;
    std::string tenant_id;
    std::string client_id;  // managed identity: a user-assigned one (optional)
    std::string client_secret;
    std::string certificate_path;      // PEM: the certificate and its private key, read for every request
    std::string certificate_password;  // of an encrypted private key (optional)
    std::string federated_token_file;  // read anew for every token request (it rotates)
    std::string authority_host = kDefaultAuthorityHost;
    std::string identity_endpoint;  // App Service / Functions / Container Apps
    std::string identity_header;
    std::string imds_endpoint = kDefaultImdsEndpoint;  // AZURE_OPENAI_PROXY_IMDS_ENDPOINT
    std::string scope = kDefaultTokenScope;            // AZURE_OPENAI_PROXY_TOKEN_SCOPE
    std::string default_reason;  // AZURE_OPENAI_PROXY_CREDENTIAL=default: why it took this source
};

// "client-secret", "client-certificate", "workload-identity", "managed-identity" (App Service or IMDS), "none".
std::string credential_source_name(const CredentialSettings& settings);

// One line for the start-up log: the source, tenant, client and scope; never a secret.
std::string describe_credential(const CredentialSettings& settings);

// The identity's text (source, authority, tenant, client, scope, endpoints; never the
// secret): its hash names its token's row in the shared state; its first line is the
// source (credential_source_name), the row's metric label. Two endpoints with the same
// identity share one token.
std::string token_identity(const CredentialSettings& settings);

// Which variables the source lacks ("AZURE_TENANT_ID: not set; ..."); empty when complete.
std::string missing_credential_piece(const CredentialSettings& settings);

struct TokenRequest {
    std::string method;                // POST (Entra) or GET (managed identity)
    std::string url;
    std::vector<std::string> headers;  // "Name: value" lines
    std::string body;                  // form-encoded, for POST
    std::string error;                 // the client assertion could not be made: not sent
};

// Entra's v2.0 token endpoint of the tenant: also a certificate assertion's audience.
std::string token_endpoint_url(const CredentialSettings& settings);

// `federated_token`: the content of the federated token file (workload identity only).
TokenRequest build_token_request(const CredentialSettings& settings, const std::string& federated_token);

// The resource managed identity asks for: the scope without its "/.default".
std::string scope_resource(const std::string& scope);

// Entra's (or the identity endpoint's) answer, read.
struct TokenAnswer {
    bool ok = false;
    std::string access_token;
    int64_t expires_at_ms = 0;  // wall clock
    int64_t refresh_at_ms = 0;  // when Entra says to renew (refresh_in); 0: it did not say
    std::string aadsts;         // "AADSTS7000215" when Entra named one
    std::string error;          // for the log: status, error, description; no secret
    long status = 0;            // the token endpoint's HTTP status (0: no answer)
    bool local_fault = false;   // the request could not be made here (an unreadable federated token file)
};

// Whether a failed answer says the credential itself is wrong (a wrong secret, an unknown
// client or tenant, an unreadable federated token file): 400, 401 or 403 from the token
// endpoint, or a local fault. Unreachable, 404/410 (IMDS while an identity is assigned),
// 408, 429, 5xx and garbage are passing: the keeper retries.
bool definitive_refusal(const TokenAnswer& answer);
// The outcome label of aop_entra_token_requests_total: "ok", "refused" (definitive) or "failed".
const char* token_outcome(const TokenAnswer& answer);

// The longest life an answer's token is given (a longer expires_in is cut to it).
const int64_t kLongestTokenLifeMs = 24 * 3600 * 1000LL;

// `now_ms`: the wall clock when the answer arrived. expires_in and expires_on may be
// numbers or strings of digits (App Service sends expires_on as a string).
TokenAnswer read_token_answer(long status, const std::string& body, int64_t now_ms);

// When a token obtained at `obtained_ms` is renewed: at Entra's refresh_in, else at half
// its lifetime (a 5-s token and a 24-h one alike).
int64_t renewal_due_ms(int64_t obtained_ms, const TokenAnswer& answer);

// The wait before the next try after `failures` failed token requests in a row: 1 s,
// doubling, at most kLongestTokenRetryMs; while the current token is still usable for
// `usable_left_ms`, at most half of that (at least kShortestTokenRetryMs), so a short-lived
// token gets several tries before it expires.
const int64_t kLongestTokenRetryMs = 10000;
const int64_t kShortestTokenRetryMs = 250;
int64_t token_retry_delay_ms(int failures, int64_t usable_left_ms = 0);

// How long a token that expires at `expires_at_ms` may still be sent (0 when it may not).
int64_t token_usable_for_ms(int64_t expires_at_ms, int64_t now_ms);

// A token is sent until it truly expires: usable while a second of it is left, so a
// request does not reach Azure with a token that expired on the way.
bool token_usable(int64_t expires_at_ms, int64_t now_ms);

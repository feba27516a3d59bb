// credential.cpp: each source's token request, Entra's answers read (numbers or strings,
// errors with their AADSTS code), and the renewal schedule for short and long tokens.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <string>

#include "certificate_fixture.h"
#include "credential.h"
#include "routing_file_env.h"

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

CredentialSettings client_secret() {
    CredentialSettings s;
    s.source = CredentialSource::ClientSecret;
    s.tenant_id = "contoso.onmicrosoft.com";
    s.client_id = "11111111-2222";
    s.client_secret = "s3cret+&=/";
    return s;
}

bool has_header(const TokenRequest& r, const std::string& line) {
    for (const std::string& header : r.headers)
        if (header == line) return true;
    return false;
}

const int64_t kNow = 1'700'000'000'000;

}  // namespace

BOOST_AUTO_TEST_SUITE(credential)

BOOST_AUTO_TEST_CASE(client_secret_posts_the_form_to_the_tenants_v2_endpoint) {
    TokenRequest r = build_token_request(client_secret(), "");
    BOOST_TEST(r.method == "POST");
    BOOST_TEST(r.url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    BOOST_TEST(has_header(r, "Content-Type: application/x-www-form-urlencoded"));
    BOOST_TEST(r.body == "grant_type=client_credentials&client_id=11111111-2222&scope="
                         "https%3A%2F%2Fcognitiveservices.azure.com%2F.default&client_secret=s3cret%2B%26%3D%2F");
    CredentialSettings sovereign = client_secret();
    sovereign.authority_host = "https://login.microsoftonline.us";  // no trailing slash
    BOOST_TEST(build_token_request(sovereign, "").url == "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token");
}

// A certificate: the assertion the signing edge made, aud the same token endpoint it is sent to.
BOOST_AUTO_TEST_CASE(client_certificate_sends_a_signed_assertion_for_its_token_endpoint) {
    CredentialSettings s = client_secret();
    s.source = CredentialSource::ClientCertificate;
    s.client_secret.clear();
    std::string pem = write_temp(std::string(kTestCertificate) + kTestCertificateKey);
    s.certificate_path = pem;
    TokenRequest r = build_token_request(s, "");
    unlink(pem.c_str());
    s.certificate_path = "/nonexistent.pem";
    TokenRequest failed = build_token_request(s, "");
    BOOST_TEST(r.error == "");
    BOOST_TEST(r.url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    BOOST_TEST(has(r.body, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
    BOOST_TEST(has(r.body, "&client_assertion=eyJ"));
    BOOST_TEST(!has(r.body, "client_secret"));
    BOOST_TEST(failed.error == "AZURE_CLIENT_CERTIFICATE_PATH: cannot read '/nonexistent.pem'");
    BOOST_TEST(failed.url.empty());
}

BOOST_AUTO_TEST_CASE(workload_identity_sends_the_files_token_as_the_client_assertion) {
    CredentialSettings s = client_secret();
    s.source = CredentialSource::WorkloadIdentity;
    s.client_secret.clear();
    s.federated_token_file = "/var/run/secrets/azure/tokens/azure-identity-token";
    TokenRequest r = build_token_request(s, "eyJh.eyJi.c2ln\n");
    BOOST_TEST(r.method == "POST");
    BOOST_TEST(has(r.body, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
    BOOST_TEST(has(r.body, "&client_assertion=eyJh.eyJi.c2ln"));
    BOOST_TEST(!has(r.body, "client_secret"));
}

BOOST_AUTO_TEST_CASE(managed_identity_asks_imds_or_app_service_for_the_resource) {
    CredentialSettings s;
    s.source = CredentialSource::ManagedIdentity;
    TokenRequest imds = build_token_request(s, "");
    BOOST_TEST(imds.method == "GET");
    BOOST_TEST(imds.url == "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                           "&resource=https%3A%2F%2Fcognitiveservices.azure.com");
    BOOST_TEST(has_header(imds, "Metadata: true"));
    s.client_id = "user-assigned";
    s.identity_endpoint = "http://127.0.0.1:41234/msi/token";
    s.identity_header = "header-secret";
    TokenRequest app = build_token_request(s, "");
    BOOST_TEST(app.url == "http://127.0.0.1:41234/msi/token?api-version=2019-08-01"
                          "&resource=https%3A%2F%2Fcognitiveservices.azure.com&client_id=user-assigned");
    BOOST_TEST(has_header(app, "X-IDENTITY-HEADER: header-secret"));
    BOOST_TEST(!has_header(app, "Metadata: true"));
}

BOOST_AUTO_TEST_CASE(the_description_never_shows_a_secret) {
    CredentialSettings s = client_secret();
    s.identity_header = "header-secret";
    std::string line = describe_credential(s);
    BOOST_TEST(has(line, "client-secret"));
    BOOST_TEST(has(line, "contoso.onmicrosoft.com"));
    BOOST_TEST(!has(line, "s3cret"));
    BOOST_TEST(!has(line, "header-secret"));
}

// The identity names the shared state's row: a new secret of the same app keeps its row,
// another tenant or scope is another identity; the secret is never part of it.
BOOST_AUTO_TEST_CASE(the_identity_is_who_asks_never_the_secret) {
    CredentialSettings s = client_secret(), renewed = client_secret(), other = client_secret();
    renewed.client_secret = "another-s3cret";
    other.tenant_id = "fabrikam.onmicrosoft.com";
    BOOST_TEST(token_identity(s) == token_identity(renewed));
    BOOST_TEST(token_identity(s) != token_identity(other));
    other = client_secret();
    other.scope = "https://cognitiveservices.azure.us/.default";
    BOOST_TEST(token_identity(s) != token_identity(other));
    BOOST_TEST(token_identity(s).rfind("client-secret\n", 0) == 0u);
    BOOST_TEST(!has(token_identity(s), "s3cret"));
}

BOOST_AUTO_TEST_CASE(missing_pieces_name_their_variable) {
    CredentialSettings s = client_secret();
    BOOST_TEST(missing_credential_piece(s).empty());
    s.client_secret.clear();
    BOOST_TEST(missing_credential_piece(s).find("AZURE_CLIENT_SECRET") == 0u);
    s.tenant_id.clear();
    BOOST_TEST(missing_credential_piece(s).find("AZURE_TENANT_ID") == 0u);
    CredentialSettings app;
    app.source = CredentialSource::ManagedIdentity;
    BOOST_TEST(missing_credential_piece(app).empty());  // IMDS needs nothing
    app.identity_endpoint = "http://127.0.0.1:1/token";
    BOOST_TEST(missing_credential_piece(app).find("IDENTITY_HEADER") == 0u);
}

BOOST_AUTO_TEST_CASE(an_answer_gives_the_token_and_its_expiry_from_numbers_or_strings) {
    TokenAnswer entra = read_token_answer(200, R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.eyJ1.c2"})", kNow);
    BOOST_TEST(entra.ok);
    BOOST_TEST(entra.access_token == "eyJ0.eyJ1.c2");
    BOOST_TEST(entra.expires_at_ms == kNow + 3'599'000);
    BOOST_TEST(entra.refresh_at_ms == 0);
    TokenAnswer imds = read_token_answer(200, R"({"access_token":"a.b.c","expires_in":"86399","refresh_in":"43199"})", kNow);
    BOOST_TEST(imds.expires_at_ms == kNow + 86'399'000);
    BOOST_TEST(imds.refresh_at_ms == kNow + 43'199'000);
    // App Service: expires_on, epoch seconds as a string.
    TokenAnswer app = read_token_answer(200, R"({"access_token":"a.b.c","expires_on":"1700000005","resource":"x"})", kNow);
    BOOST_TEST(app.ok);
    BOOST_TEST(app.expires_at_ms == 1'700'000'005'000);
}

BOOST_AUTO_TEST_CASE(an_answer_without_a_usable_token_is_a_failure) {
    BOOST_TEST(!read_token_answer(200, "not json", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"expires_in":60})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c"})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c","expires_in":0})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a b\r\nX-Injected: 1","expires_in":60})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c","expires_in":"-5"})", kNow).ok);
}

BOOST_AUTO_TEST_CASE(entras_error_gives_its_aadsts_code_and_first_line) {
    TokenAnswer failed = read_token_answer(
        401,
        R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215]})",
        kNow);
    BOOST_TEST(!failed.ok);
    BOOST_TEST(failed.aadsts == "AADSTS7000215");
    BOOST_TEST(failed.error == "the token endpoint answered 401 invalid_client: AADSTS7000215: Invalid client secret provided.");
    TokenAnswer app = read_token_answer(400, R"({"statusCode":400,"message":"No managed identity"})", kNow);
    BOOST_TEST(has(app.error, "400: No managed identity"));
    BOOST_TEST(app.aadsts.empty());
    BOOST_TEST(has(read_token_answer(502, "<html>", kNow).error, "502 with no JSON object"));
}

BOOST_AUTO_TEST_CASE(renewal_at_refresh_in_else_at_half_life_for_any_lifetime) {
    TokenAnswer five_seconds;
    five_seconds.expires_at_ms = kNow + 5000;
    BOOST_TEST(renewal_due_ms(kNow, five_seconds) == kNow + 2500);
    TokenAnswer a_day;
    a_day.expires_at_ms = kNow + 86'400'000;
    BOOST_TEST(renewal_due_ms(kNow, a_day) == kNow + 43'200'000);
    a_day.refresh_at_ms = kNow + 3'600'000;
    BOOST_TEST(renewal_due_ms(kNow, a_day) == kNow + 3'600'000);
    a_day.refresh_at_ms = kNow + 90'000'000;  // after the expiry: ignored
    BOOST_TEST(renewal_due_ms(kNow, a_day) == kNow + 43'200'000);
}

BOOST_AUTO_TEST_CASE(failures_back_off_to_a_bound_and_a_token_serves_until_it_expires) {
    BOOST_TEST(token_retry_delay_ms(1) == 1000);
    BOOST_TEST(token_retry_delay_ms(2) == 2000);
    BOOST_TEST(token_retry_delay_ms(4) == 8000);
    BOOST_TEST(token_retry_delay_ms(5) == kLongestTokenRetryMs);
    BOOST_TEST(token_retry_delay_ms(500) == kLongestTokenRetryMs);
    // A token still usable for 1 s: tries every half of what is left, never below 250 ms.
    BOOST_TEST(token_retry_delay_ms(1, 1000) == 500);
    BOOST_TEST(token_retry_delay_ms(3, 300) == kShortestTokenRetryMs);
    BOOST_TEST(token_retry_delay_ms(3, 3'600'000) == 4000);  // a long-lived token: the backoff
    BOOST_TEST(token_usable_for_ms(kNow + 5000, kNow) == 4000);
    BOOST_TEST(token_usable_for_ms(kNow + 500, kNow) == 0);
    BOOST_TEST(token_usable(kNow + 5000, kNow));
    BOOST_TEST(token_usable(kNow + 1001, kNow));
    BOOST_TEST(!token_usable(kNow + 1000, kNow));
    BOOST_TEST(!token_usable(0, kNow));
}

BOOST_AUTO_TEST_CASE(managed_identity_resource_drops_default) {
    BOOST_TEST(scope_resource("https://cognitiveservices.azure.com/.default") == "https://cognitiveservices.azure.com");
    BOOST_TEST(scope_resource("api://custom") == "api://custom");
}

BOOST_AUTO_TEST_CASE(an_absurd_lifetime_is_cut_to_a_day_and_a_zero_or_negative_or_word_one_is_a_failure) {
    TokenAnswer years = read_token_answer(200, R"({"access_token":"a.b.c","expires_in":315360000})", kNow);
    BOOST_TEST(years.ok);
    BOOST_TEST(years.expires_at_ms == kNow + kLongestTokenLifeMs);
    BOOST_TEST(renewal_due_ms(kNow, years) == kNow + kLongestTokenLifeMs / 2);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c","expires_in":-3600})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c","expires_in":"soon"})", kNow).ok);
    BOOST_TEST(!read_token_answer(200, R"({"access_token":"a.b.c","expires_in":1e300})", kNow).ok);
}

BOOST_AUTO_TEST_CASE(a_refusal_of_the_credential_itself_is_definitive_a_passing_failure_is_not) {
    auto answer = [](long status, const std::string& body) { return read_token_answer(status, body, kNow); };
    const std::string refusal = R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."})";
    BOOST_TEST(definitive_refusal(answer(401, refusal)));
    BOOST_TEST(definitive_refusal(answer(400, R"({"error":"unauthorized_client","error_description":"AADSTS700016: x"})")));
    BOOST_TEST(definitive_refusal(answer(403, R"({"error":"x"})")));
    BOOST_TEST(!definitive_refusal(answer(503, R"({"error":"temporarily_unavailable","error_description":"AADSTS90033: x"})")));
    BOOST_TEST(!definitive_refusal(answer(429, R"({"error":"x"})")));
    BOOST_TEST(!definitive_refusal(answer(404, R"({"error":"x"})")));  // IMDS while the identity is assigned
    BOOST_TEST(!definitive_refusal(answer(200, "<html>a captive portal</html>")));
    TokenAnswer unreachable;
    unreachable.error = "the token endpoint could not be reached";
    BOOST_TEST(!definitive_refusal(unreachable));
    TokenAnswer unreadable;
    unreadable.local_fault = true;
    BOOST_TEST(definitive_refusal(unreadable));
    BOOST_TEST(!definitive_refusal(answer(200, R"({"access_token":"a.b.c","expires_in":60})")));
    BOOST_TEST(token_outcome(answer(401, refusal)) == std::string("refused"));
    BOOST_TEST(token_outcome(unreachable) == std::string("failed"));
    BOOST_TEST(token_outcome(answer(200, R"({"access_token":"a.b.c","expires_in":60})")) == std::string("ok"));
}

BOOST_AUTO_TEST_SUITE_END()

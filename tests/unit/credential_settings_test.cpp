// credential_settings.cpp: AZURE_OPENAI_PROXY_CREDENTIAL and the SDKs' variables, a secret
// from a file, one-line errors naming the missing variable and never the secret.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "azure_env.h"
#include "certificate_fixture.h"
#include "credential_settings.h"
#include "config.h"
#include "routing.h"
#include "routing_file_env.h"

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Environment service_principal(Environment extra = {}) {
    extra.emplace("AZURE_OPENAI_PROXY_CREDENTIAL", "client-secret");
    extra.emplace("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
    extra.emplace("AZURE_CLIENT_ID", "app-id");
    extra.emplace("AZURE_CLIENT_SECRET", "very-secret-value");
    return azure(extra);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(credential_settings)

BOOST_AUTO_TEST_CASE(unset_means_no_credential) {
    ConfigResult r = parse_config(azure({{"AZURE_TENANT_ID", "t"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST((r.config.credential.source == CredentialSource::None));
}

BOOST_AUTO_TEST_CASE(client_secret_reads_the_sdks_variables) {
    ConfigResult r = parse_config(service_principal({{"AZURE_OPENAI_PROXY_TOKEN_SCOPE", "https://cognitiveservices.azure.us/.default"},
                                                     {"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"}}));
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    const CredentialSettings& c = r.config.credential;
    BOOST_TEST((c.source == CredentialSource::ClientSecret));
    BOOST_TEST(c.tenant_id == "contoso.onmicrosoft.com");
    BOOST_TEST(c.client_secret == "very-secret-value");
    BOOST_TEST(c.scope == "https://cognitiveservices.azure.us/.default");
    BOOST_TEST(c.authority_host == "https://login.microsoftonline.us/");
    BOOST_TEST(has_own_identity(r.config));
    std::string shown = describe_config(r.config);
    BOOST_TEST(contains(shown, "Entra ID credential: client-secret"));
    BOOST_TEST(!contains(shown, "very-secret-value"));
}

BOOST_AUTO_TEST_CASE(the_secret_may_come_from_a_file) {
    std::string path = "/tmp/aop-credential-settings-test-secret";
    std::ofstream(path) << "from-the-file\n";
    ConfigResult r = parse_config(service_principal({{"AZURE_CLIENT_SECRET", "file:" + path}}));
    std::remove(path.c_str());
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(r.config.credential.client_secret == "from-the-file");
    Environment unreadable = service_principal();
    unreadable["AZURE_CLIENT_SECRET"] = "file:/nonexistent/secret";
    ConfigResult missing = parse_config(unreadable);
    BOOST_TEST(!missing.ok);
    BOOST_TEST(missing.error.find("AZURE_CLIENT_SECRET: cannot read") == 0u);
}

BOOST_AUTO_TEST_CASE(a_missing_piece_is_one_line_naming_it_never_the_secret) {
    Environment env = service_principal();
    env.erase("AZURE_TENANT_ID");
    ConfigResult r = parse_config(env);
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_TENANT_ID: not set") == 0u);
    BOOST_TEST(!contains(r.error, "very-secret-value"));
    BOOST_TEST(!contains(r.error, "\n"));
    Environment workload = azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "workload-identity"}, {"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "c"}});
    BOOST_TEST(parse_config(workload).error.find("AZURE_FEDERATED_TOKEN_FILE: not set") == 0u);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "managed-identity"}, {"IDENTITY_ENDPOINT", "http://127.0.0.1:9/t"}}))
                   .error.find("IDENTITY_HEADER") == 0u);
}

BOOST_AUTO_TEST_CASE(bad_words_and_urls_are_refused) {
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "certificate"}})).error.find("AZURE_OPENAI_PROXY_CREDENTIAL") == 0u);
    BOOST_TEST(parse_config(service_principal({{"AZURE_AUTHORITY_HOST", "login.microsoftonline.com"}})).error.find("AZURE_AUTHORITY_HOST") == 0u);
    BOOST_TEST(parse_config(service_principal({{"AZURE_TENANT_ID", "a/../b"}})).error.find("AZURE_TENANT_ID") == 0u);
    BOOST_TEST(parse_config(service_principal({{"AZURE_OPENAI_TOKEN", "key"}})).error.find("AZURE_OPENAI_PROXY_CREDENTIAL") == 0u);
    BOOST_TEST(contains(parse_config(service_principal({{"AZURE_OPENAI_PROXY_MODE", "openai"}})).error, "openai mode"));
}

BOOST_AUTO_TEST_CASE(managed_identity_reads_app_service_or_the_imds_override) {
    ConfigResult imds = parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "Managed-Identity"},
                                            {"AZURE_OPENAI_PROXY_IMDS_ENDPOINT", "http://127.0.0.1:8123/metadata/identity/oauth2/token"}}));
    BOOST_REQUIRE_MESSAGE(imds.ok, imds.error);
    BOOST_TEST(imds.config.credential.imds_endpoint == "http://127.0.0.1:8123/metadata/identity/oauth2/token");
    ConfigResult app = parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "managed-identity"},
                                           {"IDENTITY_ENDPOINT", "http://127.0.0.1:8124/msi/token"},
                                           {"IDENTITY_HEADER", "hdr"}}));
    BOOST_REQUIRE_MESSAGE(app.ok, app.error);
    BOOST_TEST(app.config.credential.identity_header == "hdr");
    BOOST_TEST(!contains(describe_config(app.config), "hdr"));
}

BOOST_AUTO_TEST_CASE(client_keys_are_allowed_with_a_credential_instead_of_a_key) {
    ConfigResult r = parse_config(service_principal({{"AZURE_OPENAI_PROXY_API_KEYS", "alice=sk-alice-1234567890"}}));
    BOOST_TEST_MESSAGE(r.error);
    BOOST_TEST(r.ok);
}

BOOST_AUTO_TEST_CASE(a_routing_file_endpoint_sends_its_own_key_not_the_environments_identity) {
    std::string file = write_temp(R"({"endpoints": {"east": {"url": "https://east.openai.azure.com", "key": "east-key-123"}},
                                     "models": {"gpt-4o": ["east"]}})");
    ConfigResult r = parse_config(service_principal({{"AZURE_OPENAI_PROXY_CONFIG", file}}));
    unlink(file.c_str());
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    const EndpointSettings& east = *r.config.routing->get()->endpoints.at(0).upstream;
    BOOST_TEST(east.token == "east-key-123");
    BOOST_TEST((east.credential.source == CredentialSource::None));
    BOOST_TEST((r.config.credential.source == CredentialSource::ClientSecret));
}

// DefaultAzureCredential's order: the environment's secret, then its certificate, then
// workload identity, then managed identity (App Service, else IMDS).
BOOST_AUTO_TEST_CASE(default_takes_the_sdks_order) {
    Environment principal = {{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "c"}};
    auto with = [&principal](Environment extra) {
        extra.insert(principal.begin(), principal.end());
        return extra;
    };
    std::string reason;
    BOOST_TEST((default_credential_source(with({{"AZURE_CLIENT_SECRET", "s"}, {"AZURE_CLIENT_CERTIFICATE_PATH", "/p"},
                                                {"AZURE_FEDERATED_TOKEN_FILE", "/f"}}), reason) == CredentialSource::ClientSecret));
    BOOST_TEST(reason == "AZURE_CLIENT_SECRET is set");
    BOOST_TEST((default_credential_source(with({{"AZURE_CLIENT_CERTIFICATE_PATH", "/p"}, {"AZURE_FEDERATED_TOKEN_FILE", "/f"}}), reason) ==
                CredentialSource::ClientCertificate));
    BOOST_TEST((default_credential_source(with({{"AZURE_FEDERATED_TOKEN_FILE", "/f"}}), reason) == CredentialSource::WorkloadIdentity));
    // A secret without the tenant is not a service principal: on to the next.
    BOOST_TEST((default_credential_source({{"AZURE_CLIENT_ID", "c"}, {"AZURE_CLIENT_SECRET", "s"}}, reason) ==
                CredentialSource::ManagedIdentity));
    BOOST_TEST(contains(reason, "instance metadata"));
    BOOST_TEST((default_credential_source({{"IDENTITY_ENDPOINT", "http://x/msi"}}, reason) == CredentialSource::ManagedIdentity));
    BOOST_TEST(reason == "IDENTITY_ENDPOINT is set");
}

BOOST_AUTO_TEST_CASE(default_says_which_source_it_took) {
    ConfigResult r = parse_config(service_principal({{"AZURE_OPENAI_PROXY_CREDENTIAL", "default"}}));
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST((r.config.credential.source == CredentialSource::ClientSecret));
    BOOST_TEST(contains(describe_config(r.config), "Entra ID credential: client-secret (taken by default: AZURE_CLIENT_SECRET is set)"));
    ConfigResult mi = parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "default"}, {"AZURE_CLIENT_ID", "user-assigned"}}));
    BOOST_REQUIRE_MESSAGE(mi.ok, mi.error);
    BOOST_TEST(mi.config.credential.client_id == "user-assigned");
    BOOST_TEST(contains(describe_config(mi.config), "managed-identity (IMDS) (taken by default"));
}

BOOST_AUTO_TEST_CASE(client_certificate_is_checked_as_the_configuration_is_read) {
    std::string pem = write_temp(std::string(kTestCertificate) + kTestCertificateKey);
    std::string bare = write_temp(kTestCertificate);
    Environment base = {{"AZURE_OPENAI_PROXY_CREDENTIAL", "client-certificate"}, {"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "c"}};
    Environment good = base, keyless = base, unset = base;
    good.emplace("AZURE_CLIENT_CERTIFICATE_PATH", pem);
    keyless.emplace("AZURE_CLIENT_CERTIFICATE_PATH", bare);
    ConfigResult ok = parse_config(azure(good)), no_key = parse_config(azure(keyless)), missing = parse_config(azure(unset));
    unlink(pem.c_str());
    unlink(bare.c_str());
    BOOST_REQUIRE_MESSAGE(ok.ok, ok.error);
    BOOST_TEST(ok.config.credential.certificate_path == pem);
    BOOST_TEST(contains(describe_config(ok.config), "Entra ID credential: client-certificate, tenant t, client c"));
    BOOST_TEST(no_key.error.find("AZURE_CLIENT_CERTIFICATE_PATH: '" + bare + "' holds no private key") == 0u, no_key.error);
    BOOST_TEST(missing.error.find("AZURE_CLIENT_CERTIFICATE_PATH: not set") == 0u, missing.error);
}

BOOST_AUTO_TEST_SUITE_END()

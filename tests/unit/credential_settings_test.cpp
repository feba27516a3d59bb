// credential_settings.cpp: AZURE_OPENAI_PROXY_CREDENTIAL and the SDKs' variables, a secret
// from a file, one-line errors naming the missing variable and never the secret.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "azure_env.h"
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
    BOOST_TEST(contains(parse_config(azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "default"}})).error, "not supported yet"));
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

BOOST_AUTO_TEST_SUITE_END()

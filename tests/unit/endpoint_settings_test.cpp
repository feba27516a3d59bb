// endpoint_settings.cpp: what an upstream endpoint needs: mode, URL, api-versions, the model mapper.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "azure_env.h"
#include "config.h"

BOOST_AUTO_TEST_SUITE(endpoint_settings)

BOOST_AUTO_TEST_CASE(mapper_adds_to_and_overrides_the_defaults) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER",
                                          " gpt-4o = prod-4o ,gpt-3.5-turbo=my35,"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.model_mapper.at("gpt-4o") == "prod-4o");
    BOOST_TEST(r.config.model_mapper.at("gpt-3.5-turbo") == "my35");
    BOOST_TEST(r.config.model_mapper.at("gpt-3.5-turbo-0301") == "gpt-35-turbo-0301");
}

BOOST_AUTO_TEST_CASE(mapper_pair_without_equals_is_refused_naming_the_variable) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=a,gpt-4"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_MODEL_MAPPER") == 0u);
    BOOST_TEST(r.error.find("gpt-4") != std::string::npos);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "a=b=c"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "=b"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "a="}})).ok);
}

// A Docker or Kubernetes secret mounted as a file, as the container image documents.
BOOST_AUTO_TEST_CASE(the_server_key_may_come_from_a_file_and_is_never_shown) {
    std::string path = "/tmp/aop-endpoint-settings-test-token";
    std::ofstream(path) << "  key-from-a-mounted-secret\n";
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_TOKEN", "file:" + path}}));
    std::remove(path.c_str());
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(r.config.token == "key-from-a-mounted-secret");
    BOOST_TEST(describe_config(r.config).find("key-from-a-mounted-secret") == std::string::npos);
    ConfigResult missing = parse_config(azure({{"AZURE_OPENAI_TOKEN", "file:/nonexistent/token"}}));
    BOOST_TEST(!missing.ok);
    BOOST_TEST(missing.error == "AZURE_OPENAI_TOKEN: cannot read '/nonexistent/token'");
    ConfigResult control = parse_config(azure({{"AZURE_OPENAI_TOKEN", "key\r\nX-Injected: 1"}}));
    BOOST_TEST(!control.ok);
    BOOST_TEST(control.error == "AZURE_OPENAI_TOKEN: holds a control character");
}

BOOST_AUTO_TEST_CASE(azure_mode_needs_an_endpoint) {
    ConfigResult r = parse_config({});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_ENDPOINT") == 0u);
}

BOOST_AUTO_TEST_CASE(openai_mode_defaults_to_api_openai_com) {
    ConfigResult r = parse_config({{"AZURE_OPENAI_PROXY_MODE", "openai"}});
    BOOST_REQUIRE(r.ok);
    BOOST_TEST((r.config.mode == ProxyMode::OpenAI));
    BOOST_TEST(r.config.endpoint == "https://api.openai.com");
}

BOOST_AUTO_TEST_CASE(unknown_mode_is_refused) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_MODE", "bedrock"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_PROXY_MODE") == 0u);
}

BOOST_AUTO_TEST_CASE(endpoint_must_be_an_http_url) {
    for (const char* bad : {"res.openai.azure.com", "ftp://res", "https://", "https://a b.com",
                            "https://res.com/?x=1", "https://user@res.com", "javascript:alert(1)"}) {
        ConfigResult r = parse_config({{"AZURE_OPENAI_ENDPOINT", bad}});
        BOOST_TEST(!r.ok, bad);
        BOOST_TEST(r.error.find("AZURE_OPENAI_ENDPOINT") == 0u);
    }
    BOOST_TEST(parse_config({{"AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9999"}}).ok);
    BOOST_TEST(parse_config({{"AZURE_OPENAI_ENDPOINT", "https://gw.example.com/azure/"}}).ok);
}

BOOST_AUTO_TEST_CASE(route_api_versions_default_to_previews_for_responses_and_assistants) {
    ConfigResult r = parse_config(azure());
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(api_version_for(r.config, "responses") == "2025-04-01-preview");
    BOOST_TEST(api_version_for(r.config, "assistants/asst_1") == "2025-04-01-preview");
    BOOST_TEST(api_version_for(r.config, "chat/completions") == "2024-10-21");
    ConfigResult custom = parse_config(azure({{"AZURE_OPENAI_APIVERSION_ROUTES", "/v1/batches=2025-01-01-preview"}}));
    BOOST_REQUIRE(custom.ok);
    BOOST_TEST(api_version_for(custom.config, "batches/b1/cancel") == "2025-01-01-preview");
    BOOST_TEST(api_version_for(custom.config, "responses") == "2024-10-21");
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_APIVERSION_ROUTES", "responses"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_APIVERSION_ROUTES", "responses=a&b"}})).ok);
}

BOOST_AUTO_TEST_SUITE_END()

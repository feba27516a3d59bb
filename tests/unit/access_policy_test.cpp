// access_policy.cpp: who may use the proxy: client keys (listed or in a file), admin keys, CORS origins; the open-relay warning.
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <cstdio>
#include <fstream>

#include "azure_env.h"
#include "config.h"
#include "request.h"
#include "response.h"

BOOST_AUTO_TEST_SUITE(access_policy)

BOOST_AUTO_TEST_CASE(client_keys_need_a_server_key) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "sk-client-key-1"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("AZURE_OPENAI_TOKEN") != std::string::npos);
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "sk-client-key-1"}, {"AZURE_OPENAI_TOKEN", "azure"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.client_keys.size() == 1u);
    BOOST_TEST(open_relay_warning(r.config).empty());
    BOOST_TEST(describe_config(r.config).find("sk-client") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(keys_come_from_a_file) {
    std::string path = "/tmp/aoai-unit-keys-" + std::to_string(::getpid());
    std::ofstream(path) << "alice:sk-alice-123\n";
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "@" + path}, {"AZURE_OPENAI_TOKEN", "t"}}));
    std::remove(path.c_str());
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.client_keys.at(0).name == "alice");
    r = parse_config(azure({{"AZURE_OPENAI_PROXY_API_KEYS", "@/nonexistent/keys"}, {"AZURE_OPENAI_TOKEN", "t"}}));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("/nonexistent/keys") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_server_key_without_client_keys_is_an_open_relay) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_TOKEN", "azure-key"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(open_relay_warning(r.config).find("open relay") != std::string::npos);
    BOOST_TEST(open_relay_warning(parse_config(azure()).config).empty());
}

BOOST_AUTO_TEST_CASE(cors_origins_are_origins) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "https://a.example, http://b.example:8080"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(r.config.cors_origins.size() == 2u);
    BOOST_TEST(parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "*"}})).config.cors_origins.empty());
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "https://a.example/path"}})).ok);
    BOOST_TEST(!parse_config(azure({{"AZURE_OPENAI_PROXY_CORS_ORIGINS", "a.example"}})).ok);

    std::string listed = "https://a.example";
    Headers allowed = cors_headers_for(r.config.cors_origins, &listed);
    BOOST_TEST(*find_header(allowed, "Access-Control-Allow-Origin") == "https://a.example");
    std::string other = "https://evil.example";
    BOOST_TEST(!find_header(cors_headers_for(r.config.cors_origins, &other), "Access-Control-Allow-Origin"));
    BOOST_TEST(*find_header(cors_headers_for(r.config.cors_origins, nullptr), "Vary") == "Origin");
}

BOOST_AUTO_TEST_SUITE_END()

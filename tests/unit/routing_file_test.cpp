// The routing file's JSON (routing_file.cpp): every mistake a line naming the file and the
// path, names within their bounds, no more targets and keys than the shared state holds,
// strict JSON; and what an endpoint it defines holds — the environment's endpoint
// settings with the file's overrides, nothing of the process or of the access policy.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <utility>
#include <vector>
#include <type_traits>

#include "azure_env.h"
#include "bounds.h"
#include "config.h"
#include "routing.h"
#include "routing_credential.h"
#include "routing_file_env.h"

// An endpoint holds its upstream settings only: no process setting (timeouts, listening,
// the shared state) and no key of the access policy can be read through it.
static_assert(std::is_same_v<decltype(Endpoint::upstream), std::shared_ptr<const EndpointSettings>>);
static_assert(!std::is_base_of_v<ProcessSettings, EndpointSettings>);
static_assert(!std::is_base_of_v<AccessPolicy, EndpointSettings>);

namespace {

std::string file_keys(const std::string& name, void*) { return name == "EAST_KEY" ? "east-secret" : ""; }

const char* const kTwoEndpoints = R"({
  "endpoints": {
    "east": {"url": "https://east.example/", "key": "env:EAST_KEY", "api_version": "2025-01-01-preview"},
    "oai": {"url": "https://api.openai.com", "key": "sk-inline", "mode": "openai"}
  },
  "models": {"gpt-4o": ["east", "oai/gpt-4o"]}
})";

// The environment's defaults, with a process setting and a client key that no endpoint
// should carry.
Config environment_defaults() {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o"},
                                         {"AZURE_OPENAI_APIVERSION_ROUTES", "responses=2025-03-01-preview"},
                                         {"AZURE_OPENAI_TOKEN", "server-key-123"},
                                         {"AZURE_OPENAI_PROXY_API_KEYS", "team:client-key-123"},
                                         {"AZURE_OPENAI_PROXY_CONNECT_TIMEOUT", "7"}}));
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    return r.config;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(routing_file)

BOOST_AUTO_TEST_CASE(an_endpoints_settings_are_the_files_overrides_over_the_environments) {
    Config base = environment_defaults();
    RoutingTable table;
    std::vector<std::string> errors;
    BOOST_REQUIRE(parse_routing("f.json", kTwoEndpoints, base, file_keys, nullptr, table, errors));
    BOOST_REQUIRE(table.endpoints.size() == 2u);

    EndpointSettings east = base;  // the environment's, then what the file says of east
    east.endpoint = "https://east.example";
    east.token = "east-secret";
    east.api_version = "2025-01-01-preview";
    const EndpointSettings& read_east = *table.endpoints[0].upstream;
    BOOST_TEST((read_east.mode == east.mode));
    BOOST_TEST(read_east.endpoint == east.endpoint);
    BOOST_TEST(read_east.api_version == east.api_version);
    BOOST_TEST((read_east.route_api_versions == east.route_api_versions));
    BOOST_TEST((read_east.model_mapper == east.model_mapper));
    BOOST_TEST(read_east.token == east.token);
    BOOST_TEST(read_east.model_mapper.at("gpt-4o") == "prod-4o");  // inherited

    const EndpointSettings& oai = *table.endpoints[1].upstream;
    BOOST_TEST((oai.mode == ProxyMode::OpenAI));
    BOOST_TEST(oai.endpoint == "https://api.openai.com");
    BOOST_TEST(oai.token == "sk-inline");
    BOOST_TEST(oai.api_version == base.api_version);  // not overridden
    BOOST_TEST((oai.route_api_versions == base.route_api_versions));
}

BOOST_AUTO_TEST_CASE(every_mistake_is_a_line_naming_file_and_path) {
    ConfigResult r = with_file(R"({"endpoints": {"e": {"url": "https://e.example", "key": "env:MISSING"},
                                    "f": {"url": "https://f.example", "key": "k", "colour": 1}},
                                    "models": {"m": ["nowhere"], "n": "e"},
                                    "keys": {"k": {"key": "short"}, "bad name": {"key": "long-enough-key"}},
                                    "retry": {"max_tries": 0}, "extra": true})");
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("(top).extra: is not a known setting") != std::string::npos, r.error);
    r = with_file(R"({"endpoints": {"e": {"url": "https://e.example", "key": "env:MISSING"},
                                    "f": {"url": "https://f.example", "key": "k", "colour": 1}},
                     "models": {"m": ["nowhere"], "n": "e"},
                     "keys": {"k": {"key": "short"}, "bad name": {"key": "long-enough-key"}},
                     "retry": {"max_tries": 0}})");
    BOOST_TEST(!r.ok);
    for (const char* expected : {"endpoints.e.key: the environment variable MISSING is not set",
                                 "endpoints.f.colour: is not a known setting",
                                 "models.m[0]: the endpoint 'nowhere' is not defined",
                                 "models.n: must be a non-empty list", "keys.k.key: a key must be at least 8",
                                 "keys.bad name: a key's name", "retry.max_tries: must be a whole number from 1 to 20"})
        BOOST_TEST(r.error.find(expected) != std::string::npos, expected << " in " << r.error);
    BOOST_TEST(r.error.find(": ") != std::string::npos);
    BOOST_TEST(r.error.find("/tmp/aop-routing-") == 0u);
    BOOST_TEST(!with_file("{not json").ok);
    BOOST_TEST(!with_file(R"({"endpoints": {"e": {"url": "https://e.example", "key": "k"}, "e": {"url": "https://e.example", "key": "k"}}})").ok);
}

// The names of the file are checked where they enter, against include/bounds.h: each
// mistake one line naming the path and the limit.
BOOST_AUTO_TEST_CASE(names_in_the_file_are_bounded_naming_the_limit) {
    const std::string endpoint_too_long(kLongestEndpointName + 1, 'e'), model_too_long(kLongestConfiguredModel + 1, 'm'),
        key_too_long(kLongestKeyName + 1, 'k');
    ConfigResult r = with_file(R"({"endpoints": {")" + endpoint_too_long + R"(": {"url": "https://e.example", "key": "k"},
                                                  "e": {"url": "https://e.example", "key": "k"}},
                                    "models": {")" + model_too_long + R"(": ["e"], "control\u0001": ["e"],
                                               "long-target": ["e/)" + std::string(kLongestTargetName - 1, 'd') + R"("]},
                                    "keys": {")" + key_too_long + R"(": {"key": "long-enough-key"},
                                             "k": {"key": "long-enough-key-2", "models": [")" + model_too_long + R"(", "a\nb"]}}})");
    BOOST_TEST(!r.ok);
    for (const std::string& expected :
         {"endpoints." + endpoint_too_long + ": an endpoint's name may have at most " + std::to_string(kLongestEndpointName) + " bytes",
          "models." + model_too_long.substr(0, 100), "a model's name may have at most " + std::to_string(kLongestConfiguredModel) + " bytes",
          std::string("models.control\\x01: a model's name may not hold control characters"),
          "models.long-target[0]: a target's name (endpoint/deployment) may have at most " + std::to_string(kLongestTargetName) + " bytes",
          "keys." + key_too_long + ": a key's name may have at most " + std::to_string(kLongestKeyName) + " bytes",
          std::string("keys.k.models: a model's name may not hold control characters")})
        BOOST_TEST(r.error.find(expected) != std::string::npos, expected << " in " << r.error);
    // At the bounds, all is well.
    r = with_file(R"({"endpoints": {")" + std::string(kLongestEndpointName, 'e') + R"(": {"url": "https://e.example", "key": "k"},
                                     "e": {"url": "https://e.example", "key": "k"}},
                      "models": {")" + std::string(kLongestConfiguredModel, 'm') + R"(": ["e/)" + std::string(kLongestTargetName - 2, 'd') + R"("]},
                      "keys": {")" + std::string(kLongestKeyName, 'k') + R"(": {"key": "long-enough-key", "models": ["a b"]}}})");
    BOOST_TEST(r.ok, r.error);
    // A name of 1 MiB: a short line, not the name.
    r = with_file(R"({"endpoints": {")" + std::string(1 << 20, 'e') + R"(": {"url": "https://e.example", "key": "k"}}})");
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.size() < 400u, r.error.size());
}

BOOST_AUTO_TEST_CASE(keys_and_targets_beyond_the_shared_states_slots_are_refused) {
    auto keys_file = [](size_t count, const char* limits) {
        std::string json = R"({"keys": {)";
        for (size_t i = 0; i < count; ++i)
            json += (i ? "," : "") + std::string("\"k") + std::to_string(i) + R"(": {"key": "key-secret-)" +
                    std::to_string(i) + "\"" + limits + "}";
        return json + "}}";
    };
    BOOST_TEST(with_file(keys_file(kStateKeys, R"(, "requests_per_minute": 10)")).ok);
    ConfigResult r = with_file(keys_file(kStateKeys + 1, R"(, "concurrent": 2)"));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("keys: " + std::to_string(kStateKeys + 1) + " keys have limits") != std::string::npos, r.error);
    BOOST_TEST(r.error.find("at most " + std::to_string(kStateKeys)) != std::string::npos, r.error);
    BOOST_TEST(!with_file(keys_file(kStateKeys + 1, R"(, "realtime_sessions": 2)")).ok);
    // Keys without counted limits take no slot.
    BOOST_TEST(with_file(keys_file(kStateKeys + 1, R"(, "models": ["gpt-4o"])")).ok);

    auto targets_file = [](size_t count) {
        std::string json = R"({"endpoints": {"e": {"url": "https://e.example", "key": "k"}}, "models": {)";
        for (size_t i = 0; i < count; ++i)
            json += (i ? "," : "") + std::string("\"m") + std::to_string(i) + R"(": ["e/d)" + std::to_string(i) + R"(", "e/shared"])";
        return json + "}}";
    };
    BOOST_TEST(with_file(targets_file(kStateTargets - 1)).ok);  // and e/shared, named by every model, once
    r = with_file(targets_file(kStateTargets));
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("models: " + std::to_string(kStateTargets + 1) + " targets") != std::string::npos, r.error);
    BOOST_TEST(r.error.find("at most " + std::to_string(kStateTargets)) != std::string::npos, r.error);
}

// cJSON would take a raw control byte inside a string, or \u0000, and end the string
// there: the rest of the value is silently gone.
BOOST_AUTO_TEST_CASE(a_raw_control_character_or_a_nul_in_the_file_is_refused) {
    const std::string endpoint = R"({"endpoints": {"e": {"url": "https://e.example)";
    const std::string rest = R"(", "key": "k"}},
  "models": {"m": ["e"]}})";
    BOOST_REQUIRE(with_file(endpoint + rest).ok);
    ConfigResult r = with_file(endpoint + std::string("\0.evil.example", 14) + rest);
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("line 1, column 47: a raw control character (0x00)") != std::string::npos, r.error);
    r = with_file(endpoint + rest + std::string("\0{}", 3));
    BOOST_TEST(!r.ok, "bytes after the document");
    BOOST_TEST(r.error.find("line 2, column 26") != std::string::npos, r.error);
    r = with_file(endpoint + rest.substr(0, rest.size() - 3) + "\x01\"]}}");
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("(0x01)") != std::string::npos, r.error);
    r = with_file(endpoint + R"(\u0000.evil.example)" + rest);
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error.find("line 1, column 47: \\u0000") != std::string::npos, r.error);
    BOOST_TEST(r.error.find('\0') == std::string::npos);
}

// Each endpoint its own Entra ID identity (issue 23): two tenants, two credentials, the
// secret from the environment or a file and never shown; mistakes named by member.
BOOST_AUTO_TEST_CASE(an_endpoints_credential_is_its_own_identity) {
    std::string secret_file = write_temp("west-secret-value\n");
    ConfigResult r = with_file(R"({"endpoints": {
        "east": {"url": "https://east.example", "credential": {"source": "client-secret", "tenant": "tenant-east",
                 "client_id": "app-east", "client_secret": "env:EAST_SECRET", "authority_host": "http://127.0.0.1:9/"}},
        "west": {"url": "https://west.example", "credential": {"source": "client-secret", "tenant": "tenant-west",
                 "client_id": "app-west", "client_secret": "file:)" + secret_file + R"("}},
        "keyed": {"url": "https://keyed.example", "key": "keyed-key-123"}},
        "models": {"gpt-4o": ["east", "west", "keyed"]}})",
                               {{"EAST_SECRET", "east-secret-value"}});
    unlink(secret_file.c_str());
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    const auto& endpoints = r.config.routing->get()->endpoints;
    const CredentialSettings& east = endpoints.at(0).upstream->credential;
    const CredentialSettings& west = endpoints.at(1).upstream->credential;
    BOOST_TEST((east.source == CredentialSource::ClientSecret));
    BOOST_TEST(east.tenant_id == "tenant-east");
    BOOST_TEST(east.client_secret == "east-secret-value");
    BOOST_TEST(east.authority_host == "http://127.0.0.1:9/");
    BOOST_TEST(west.tenant_id == "tenant-west");
    BOOST_TEST(west.client_secret == "west-secret-value");
    BOOST_TEST(endpoints.at(0).upstream->token.empty());
    BOOST_TEST((endpoints.at(2).upstream->credential.source == CredentialSource::None));
    std::string shown = describe_config(r.config);
    BOOST_TEST(shown.find("key none, Entra ID credential client-secret, tenant tenant-east, client app-east") != std::string::npos, shown);
    BOOST_TEST(shown.find("secret-value") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_credential_mistake_names_the_member) {
    auto error_of = [](const std::string& endpoint) {
        return with_file(R"({"endpoints": {"e": )" + endpoint + R"(}, "models": {"gpt-4o": ["e"]}})").error;
    };
    auto has = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };
    std::string both = error_of(R"({"url": "https://e.example", "key": "k", "credential": {"source": "managed-identity"}})");
    BOOST_TEST(has(both, "endpoints.e.credential: and a key"), both);
    std::string tenant = error_of(R"({"url": "https://e.example", "credential": {"source": "client-secret", "client_id": "c", "client_secret": "inline-secret-1"}})");
    BOOST_TEST(has(tenant, "endpoints.e.credential: tenant: not set"), tenant);
    BOOST_TEST(!has(tenant, "inline-secret-1"));
    std::string member = error_of(R"({"url": "https://e.example", "credential": {"source": "client-secret", "password": "x"}})");
    BOOST_TEST(has(member, "'password' is not a member of a credential"), member);
    std::string source = error_of(R"({"url": "https://e.example", "credential": {"tenant": "t"}})");
    BOOST_TEST(has(source, "source: is required"), source);
    std::string word = error_of(R"({"url": "https://e.example", "credential": {"source": "kerberos"}})");
    BOOST_TEST(has(word, "source: 'kerberos'"), word);
    std::string missing = error_of(R"({"url": "https://e.example", "credential": {"source": "client-secret", "tenant": "t", "client_id": "c", "client_secret": "env:NOT_SET_ANYWHERE"}})");
    BOOST_TEST(has(missing, "client_secret: the environment variable NOT_SET_ANYWHERE is not set"), missing);
    std::string openai = error_of(R"({"url": "https://e.example", "mode": "openai", "credential": {"source": "managed-identity"}})");
    BOOST_TEST(has(openai, "is for Azure endpoints"), openai);
    std::string neither = error_of(R"({"url": "https://e.example"})");
    BOOST_TEST(has(neither, "endpoints.e.key: is required"), neither);
}

// What the start tries and each worker keeps renewed (routing_credential.h): the
// environment's identity first, then each endpoint's, once each.
BOOST_AUTO_TEST_CASE(the_hosts_credentials_are_each_identity_once) {
    const std::string principal = R"("source": "client-secret", "client_id": "app", "client_secret": "inline-secret-1")";
    ConfigResult r = with_file(R"({"endpoints": {
        "east": {"url": "https://east.example", "credential": {)" + principal + R"(, "tenant": "tenant-east"}},
        "east2": {"url": "https://east2.example", "credential": {)" + principal + R"(, "tenant": "tenant-east"}},
        "west": {"url": "https://west.example", "credential": {)" + principal + R"(, "tenant": "tenant-west"}},
        "keyed": {"url": "https://keyed.example", "key": "keyed-key-123"}},
        "models": {"gpt-4o": ["east", "east2", "west", "keyed"]}})");
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    std::vector<HostCredential> found = host_credentials(r.config);
    BOOST_REQUIRE(found.size() == 2u);
    BOOST_TEST(found[0].endpoint == "east");
    BOOST_TEST(found[1].endpoint == "west");
    BOOST_TEST(found[1].settings.tenant_id == "tenant-west");

    Environment env = azure({{"AZURE_OPENAI_PROXY_CREDENTIAL", "managed-identity"}});
    ConfigResult alone = parse_config(env);
    BOOST_REQUIRE_MESSAGE(alone.ok, alone.error);
    found = host_credentials(alone.config);
    BOOST_REQUIRE(found.size() == 1u);
    BOOST_TEST(found[0].endpoint.empty());
    BOOST_TEST((found[0].settings.source == CredentialSource::ManagedIdentity));
    BOOST_TEST(host_credentials(parse_config(azure({{"AZURE_OPENAI_TOKEN", "k"}})).config).empty());
}

// One reader for every secret of the file, a key's or a credential's, with the same words.
BOOST_AUTO_TEST_CASE(a_secret_of_the_file_is_read_one_way) {
    auto lookup = [](const std::string& name, void*) -> std::string {
        return name == "SET" ? " from-env \n" : name == "POINTS" ? "file:/run/secret" : "";
    };
    std::string empty_file = write_temp("\n"), full_file = write_temp("from-file\n");
    std::string secret, shown, error;
    BOOST_TEST(read_routing_secret("env:SET", lookup, nullptr, false, secret, shown, error));
    BOOST_TEST(secret == "from-env");
    BOOST_TEST(shown == "env:SET");
    BOOST_TEST(read_routing_secret("file:" + full_file, lookup, nullptr, false, secret, shown, error));
    BOOST_TEST(secret == "from-file");
    BOOST_TEST(read_routing_secret("the-secret", lookup, nullptr, false, secret, shown, error));
    BOOST_TEST(shown == "inline");
    BOOST_TEST(read_routing_secret("a pass phrase", lookup, nullptr, true, secret, shown, error));
    const std::pair<std::string, std::string> refused[] = {
        {"env:UNSET", "the environment variable UNSET is not set"},
        {"env:POINTS", "env:POINTS names a file: write file:/path here"},
        {"file:/nonexistent/aop-secret", "cannot read '/nonexistent/aop-secret'"},
        {"file:" + empty_file, "'" + empty_file + "' is empty"},
        {"two words", "holds a space or control character"},
    };
    for (const auto& [value, words] : refused) {
        error.clear();
        BOOST_TEST(!read_routing_secret(value, lookup, nullptr, false, secret, shown, error), value);
        BOOST_TEST(error == words);
    }
    unlink(empty_file.c_str());
    unlink(full_file.c_str());
}

BOOST_AUTO_TEST_SUITE_END()

// "parameters": a model or deployment's reasoning parameters fixed as the operator says
// (reasoning_params.h), a wrong value one line naming the path and the words it takes.
BOOST_AUTO_TEST_SUITE(routing_file_parameters)

BOOST_AUTO_TEST_CASE(parameters_override_the_families_per_name) {
    RoutingTable table;
    std::vector<std::string> errors;
    BOOST_REQUIRE(parse_routing("f.json", R"({"parameters": {"corp-llm": "reasoning", "o3-mini": "none", "picky": ["max_tokens", "top_p"], "codex-like": "responses"}})",
                                environment_defaults(), file_keys, nullptr, table, errors));
    BOOST_TEST(table.parameters.at("corp-llm") == reasoning_params());
    BOOST_TEST(table.parameters.at("o3-mini") == 0u);
    BOOST_TEST(table.parameters.at("picky") == (param_bit("max_tokens") | param_bit("top_p")));
    BOOST_TEST(describe_routing(table).find("parameters fixed for picky: max_tokens,top_p") != std::string::npos,
               describe_routing(table));
    // "responses": chat requests for it bridged to the Responses API (bridge_choice.h).
    BOOST_TEST(table.parameters.at("codex-like") == kResponsesOnly);
    BOOST_TEST(describe_routing(table).find("parameters fixed for codex-like: responses (chat bridged") != std::string::npos);
    for (const char* wrong : {R"("all")", R"(["seed"])", "3", R"([1])"}) {
        ConfigResult r = with_file(std::string(R"({"parameters": {"m": )") + wrong + "}}");
        BOOST_TEST(!r.ok);
        BOOST_TEST(r.error.find("parameters.m: must be \"reasoning\", \"none\", \"responses\" or a list") != std::string::npos, r.error);
    }
}

BOOST_AUTO_TEST_SUITE_END()

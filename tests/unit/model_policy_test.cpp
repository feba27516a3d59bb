// model_policy.cpp: one place for every route decides which model a body names, which
// deployment it goes to, and whether this client may use it.
#include <boost/test/unit_test.hpp>

#include <string>

#include "access_log.h"
#include "azure_env.h"
#include "model_policy.h"
#include "response.h"
#include "translate.h"

namespace {

Config configured(Environment extra = {}) {
    ConfigResult parsed = parse_config(azure(std::move(extra)));
    BOOST_REQUIRE_MESSAGE(parsed.ok, parsed.error);
    return parsed.config;
}

Route deployment_route(const std::string& model = "", const std::string& deployment = "") {
    Route route;
    route.kind = RouteKind::Deployment;
    route.operation = "chat/completions";
    route.model = model;
    route.deployment = deployment;
    return route;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(model_policy)

BOOST_AUTO_TEST_CASE(a_body_without_a_usable_model_gets_the_error_openai_gives) {
    std::string model;
    bool stream = false;
    ProxyError error;
    BOOST_TEST(!json_model("{\"stream\":true}", model, stream, error));
    BOOST_TEST(error.code == "missing_model");
    BOOST_TEST(stream);  // read even when the model is missing
    BOOST_TEST(!json_model("{\"model\":4}", model, stream, error));
    BOOST_TEST(error.code == "invalid_model");
    BOOST_TEST(!json_model("not json", model, stream, error));
    BOOST_TEST(error.code == "invalid_json");
    BOOST_TEST(!json_model(R"({"model":"a","model":"b"})", model, stream, error));
    BOOST_TEST(error.status == 400);
    BOOST_TEST(json_model(R"({"model":"gpt-4o"})", model, stream, error));
    BOOST_TEST(model == "gpt-4o");
}

BOOST_AUTO_TEST_CASE(the_mapper_names_the_deployment_and_the_log_records_both) {
    Config config = configured({{"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o"}});
    AccessLogEntry log;
    ProxyError error;
    BOOST_TEST(map_deployment(config, nullptr, deployment_route("gpt-4o"), "gpt-4o", log, error));
    BOOST_TEST(log.model == "gpt-4o");
    BOOST_TEST(log.deployment == "prod-4o");
    BOOST_TEST(map_deployment(config, nullptr, deployment_route("", "named-in-url"), "", log, error));
    BOOST_TEST(log.deployment == "named-in-url");
}

BOOST_AUTO_TEST_CASE(a_deployment_that_would_change_the_url_is_refused) {
    Config config = configured({{"AZURE_OPENAI_MODEL_MAPPER", "evil=../../x"}});
    AccessLogEntry log;
    ProxyError error;
    BOOST_TEST(!map_deployment(config, nullptr, deployment_route("evil"), "evil", log, error));
    BOOST_TEST(error.status == 400);
    BOOST_TEST(error.code == "invalid_model");
}

BOOST_AUTO_TEST_CASE(the_allow_list_and_the_keys_list_both_apply) {
    Config config = configured({{"AZURE_OPENAI_PROXY_ALLOWED_MODELS", "gpt-4o,o3"}});
    ClientKey key{"alice", "sk-alice-123", {}};
    key.limits.models = {"gpt-4o"};
    AccessLogEntry log;
    ProxyError error;
    BOOST_TEST(map_deployment(config, &key, deployment_route("gpt-4o"), "gpt-4o", log, error));
    BOOST_TEST(!map_deployment(config, &key, deployment_route("o3"), "o3", log, error));  // not alice's
    BOOST_TEST(error.code == "model_not_allowed");
    BOOST_TEST(map_deployment(config, nullptr, deployment_route("o3"), "o3", log, error));
    BOOST_TEST(!map_deployment(config, nullptr, deployment_route("gpt-5"), "gpt-5", log, error));
    BOOST_TEST(error.status == 403);
    BOOST_TEST(models_restricted(config, nullptr));
    BOOST_TEST(!models_restricted(configured(), nullptr));
    BOOST_TEST(models_restricted(configured(), &key));
}

BOOST_AUTO_TEST_CASE(a_responses_body_gets_its_deployment_in_place_and_the_rest_byte_for_byte) {
    Config config = configured({{"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o"}});
    Route route;
    route.kind = RouteKind::Upstream;
    route.body_model = true;
    std::string body = R"({"input":"hi",  "model":"gpt-4o","stream":true})";
    bool stream = false;
    AccessLogEntry log;
    ProxyError error;
    BOOST_TEST(map_body_model(config, nullptr, route, body, stream, log, error));
    BOOST_TEST(body == R"({"input":"hi",  "model":"prod-4o","stream":true})");
    BOOST_TEST(stream);
    std::string no_model = R"({"input":"hi"})";
    BOOST_TEST(map_body_model(config, nullptr, route, no_model, stream, log, error));  // Azure answers it
    BOOST_TEST(no_model == R"({"input":"hi"})");
    std::string twice = R"({"model":"a","model":"b"})";
    BOOST_TEST(!map_body_model(config, nullptr, route, twice, stream, log, error));
}

BOOST_AUTO_TEST_CASE(batches_are_refused_while_a_model_list_applies) {
    Route batch;
    batch.kind = RouteKind::Upstream;
    batch.batch = true;
    ProxyError error;
    BOOST_TEST(body_models_permitted(configured(), nullptr, batch, "{}", nullptr, error));
    Config limited = configured({{"AZURE_OPENAI_PROXY_ALLOWED_MODELS", "gpt-4o"}});
    BOOST_TEST(!body_models_permitted(limited, nullptr, batch, "{}", nullptr, error));
    BOOST_TEST(error.status == 403);
    BOOST_TEST(error.message.find("AZURE_OPENAI_PROXY_ALLOWED_MODELS") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_fine_tuning_bodys_base_model_is_checked_against_the_list) {
    Route job;
    job.kind = RouteKind::Upstream;
    job.model_in_body = true;
    Config limited = configured({{"AZURE_OPENAI_PROXY_ALLOWED_MODELS", "gpt-4o"}});
    ProxyError error;
    BOOST_TEST(body_models_permitted(limited, nullptr, job, R"({"model":"gpt-4o"})", nullptr, error));
    BOOST_TEST(!body_models_permitted(limited, nullptr, job, R"({"model":"o3"})", nullptr, error));
    BOOST_TEST(body_models_permitted(limited, nullptr, job, R"({"training_file":"f"})", nullptr, error));
}

BOOST_AUTO_TEST_CASE(the_allow_list_holds_models_and_where_they_go) {
    ConfigResult r = parse_config(azure({{"AZURE_OPENAI_PROXY_ALLOWED_MODELS", "gpt-4o, gpt-4.1"},
                                         {"AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o"}}));
    BOOST_REQUIRE(r.ok);
    BOOST_TEST(model_allowed(r.config, "gpt-4o", "prod-4o"));
    BOOST_TEST(model_allowed(r.config, "gpt-4.1", "gpt-41"));
    BOOST_TEST(model_allowed(r.config, "", "prod-4o"));   // /v1/deployments/prod-4o/...
    BOOST_TEST(!model_allowed(r.config, "", "gpt-4o"));   // not where gpt-4o goes
    BOOST_TEST(!model_allowed(r.config, "o3", "o3"));
    BOOST_TEST(model_allowed(parse_config(azure()).config, "o3", "o3"));
    BOOST_TEST(models_list_json(r.config).find("gpt-5") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

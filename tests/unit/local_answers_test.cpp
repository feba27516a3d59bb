// local_answers.cpp: what the proxy answers itself, without the upstream, and what it
// leaves to the upstream.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "fakes.h"
#include "local_answers.h"
#include "response_writer.h"

namespace {

// The proxy's own answers over a shared state of their own.
struct LocalAnswers : TempSharedState {
    LocalAnswers() {
        config.endpoint = "https://res.openai.azure.com";
    }
    // The answer a route gets; "" when it goes upstream.
    std::string answer(RouteKind kind, const std::string& from = "127.0.0.1", const std::string& model_id = "") {
        Route route;
        route.kind = kind;
        route.model_id = model_id;
        request.remote_address = from;
        FakeConnection connection;
        ResponseWriter writer(connection, ProxyMode::Azure);
        return answer_locally(route, request, config, *state, writer) ? connection.answer : "";
    }
    Config config;
    Request request;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(local_answers, LocalAnswers)

BOOST_AUTO_TEST_CASE(health_and_routes_without_use_are_answered_here) {
    BOOST_TEST(has(answer(RouteKind::Health), "Status: 200 OK"));
    request.method = "TRACE";
    std::string refused = answer(RouteKind::MethodNotAllowed);
    BOOST_TEST(has(refused, "Status: 405"));
    BOOST_TEST(has(refused, "Allow: "));
    BOOST_TEST(has(answer(RouteKind::NotFound), "Status: 404"));
    BOOST_TEST(has(answer(RouteKind::InvalidPath), "Status: 400"));
    BOOST_TEST(has(answer(RouteKind::Realtime), "Status: 501"));
    BOOST_TEST(has(answer(RouteKind::Preflight), "Status: 204"));
}

BOOST_AUTO_TEST_CASE(deployments_and_the_rest_go_upstream) {
    BOOST_TEST(answer(RouteKind::Deployment).empty());
    BOOST_TEST(answer(RouteKind::Upstream).empty());
    config.live_models = true;
    BOOST_TEST(answer(RouteKind::ListModels).empty());
}

BOOST_AUTO_TEST_CASE(metrics_are_for_this_host_or_an_admin_key) {
    BOOST_TEST(has(answer(RouteKind::Metrics, "127.0.0.1"), "Status: 200"));
    BOOST_TEST(has(answer(RouteKind::Metrics, "::1"), "Status: 200"));
    BOOST_TEST(has(answer(RouteKind::Metrics, "203.0.113.9"), "Status: 403"));
    config.admin_keys = {{"ops", "sk-admin-key-1", {}}};
    request.headers = {{"Authorization", "Bearer sk-admin-key-1"}};
    BOOST_TEST(has(answer(RouteKind::Metrics, "203.0.113.9"), "Status: 200"));
    request.headers = {{"Authorization", "Bearer sk-admin-key-2"}};
    BOOST_TEST(has(answer(RouteKind::Metrics, "203.0.113.9"), "Status: 403"));
}

BOOST_AUTO_TEST_CASE(the_models_list_is_the_configured_one) {
    config.model_mapper = {{"my-model", "prod"}};
    std::string list = answer(RouteKind::ListModels);
    BOOST_TEST(has(list, "\"id\":\"my-model\""));
    BOOST_TEST(has(answer(RouteKind::RetrieveModel, "127.0.0.1", "my-model"), "Status: 200"));
    BOOST_TEST(has(answer(RouteKind::RetrieveModel, "127.0.0.1", "no-such-model"), "Status: 404"));
}

BOOST_AUTO_TEST_SUITE_END()

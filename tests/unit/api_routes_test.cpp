// api_routes.cpp: which answer a method and path get, and paths no route may take.
#include <boost/test/unit_test.hpp>

#include "api_routes.h"

namespace {
Config azure() {
    Config config;
    config.endpoint = "https://res.openai.azure.com";
    return config;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(api_routes)

BOOST_AUTO_TEST_CASE(deployment_routes) {
    for (const char* op : {"chat/completions", "completions", "embeddings"}) {
        Route r = route_request(azure(), "POST", std::string("/v1/") + op);
        BOOST_TEST((r.kind == RouteKind::Deployment));
        BOOST_TEST(r.operation == op);
    }
    // A base URL ending in '/' gives "//v1/..." and a trailing '/' is harmless.
    BOOST_TEST((route_request(azure(), "POST", "//v1//chat/completions/").kind == RouteKind::Deployment));
}

BOOST_AUTO_TEST_CASE(doubled_slashes_never_reach_the_upstream) {
    Route models = route_request(azure(), "GET", "/v1//models");
    BOOST_TEST((models.kind == RouteKind::ListModels));
    BOOST_TEST(models.upstream_path == "/models");
    BOOST_TEST(route_request(azure(), "GET", "/v1//models//gpt-4o").upstream_path == "/models/gpt-4o");
    BOOST_TEST(route_request(azure(), "GET", "//v1//files//file-1/content").upstream_path == "/files/file-1/content");
}

BOOST_AUTO_TEST_CASE(inline_routes) {
    BOOST_TEST((route_request(azure(), "GET", "/v1/models").kind == RouteKind::ListModels));
    Route one = route_request(azure(), "GET", "/v1/models/gpt-4o");
    BOOST_TEST((one.kind == RouteKind::RetrieveModel));
    BOOST_TEST(one.model_id == "gpt-4o");
    BOOST_TEST((route_request(azure(), "OPTIONS", "/anything").kind == RouteKind::Preflight));
}

BOOST_AUTO_TEST_CASE(unknown_routes) {
    BOOST_TEST((route_request(azure(), "POST", "/v2/chat/completions").kind == RouteKind::NotFound));
    BOOST_TEST((route_request(azure(), "POST", "/").kind == RouteKind::NotFound));
    BOOST_TEST((route_request(azure(), "POST", "/v1/").kind == RouteKind::NotFound));
}

BOOST_AUTO_TEST_CASE(every_deployment_operation) {
    for (const char* op : {"images/generations", "images/edits", "audio/transcriptions",
                           "audio/translations", "audio/speech"}) {
        Route r = route_request(azure(), "POST", std::string("/v1/") + op);
        BOOST_TEST((r.kind == RouteKind::Deployment), op);
    }
}

BOOST_AUTO_TEST_CASE(other_paths_go_to_openai_with_any_method) {
    for (const char* method : {"GET", "POST", "DELETE"}) {
        Route r = route_request(azure(), method, "/v1/files/file-1/content");
        BOOST_TEST((r.kind == RouteKind::Upstream));
        BOOST_TEST(r.upstream_path == "/files/file-1/content");
    }
    BOOST_TEST(route_request(azure(), "GET", "/v1/chat/completions").upstream_path == "/chat/completions");
    BOOST_TEST(route_request(azure(), "POST", "/v1/fine_tuning/jobs/ftjob-1/cancel").upstream_path ==
               "/fine_tuning/jobs/ftjob-1/cancel");
    BOOST_TEST(route_request(azure(), "POST", "/v1/responses").upstream_path == "/responses");
}

BOOST_AUTO_TEST_CASE(legacy_engine_and_deployment_forms) {
    Route engine = route_request(azure(), "POST", "/v1/engines/gpt-3.5-turbo/chat/completions");
    BOOST_TEST((engine.kind == RouteKind::Deployment));
    BOOST_TEST(engine.model == "gpt-3.5-turbo");
    BOOST_TEST(engine.operation == "chat/completions");
    Route deployment = route_request(azure(), "POST", "/v1/deployments/my%2Ddep/embeddings");
    BOOST_TEST(deployment.deployment == "my-dep");
    BOOST_TEST(deployment.operation == "embeddings");
    // not an operation Azure serves per deployment: passed on as a path
    BOOST_TEST((route_request(azure(), "POST", "/v1/engines/x/unknown").kind == RouteKind::Upstream));
}

BOOST_AUTO_TEST_CASE(realtime_is_recognised) {
    BOOST_TEST((route_request(azure(), "GET", "/v1/realtime").kind == RouteKind::Realtime));
    BOOST_TEST((route_request(azure(), "POST", "/v1/realtime/sessions").kind == RouteKind::Realtime));
    BOOST_TEST((route_request(azure(), "GET", "/v1/realtime/calls").kind == RouteKind::Realtime));
    BOOST_TEST((route_request(azure(), "POST", "/v1/realtime/calls/rtc_1").kind == RouteKind::Realtime));
    BOOST_TEST((route_request(azure(), "POST", "/v1/realtime/calls//hangup").kind == RouteKind::Realtime));
}

BOOST_AUTO_TEST_CASE(realtime_webrtc_calls_go_to_the_v1_api) {
    Route secrets = route_request(azure(), "POST", "/v1/realtime/client_secrets");
    BOOST_TEST((secrets.kind == RouteKind::Upstream));
    BOOST_TEST(secrets.upstream_path == "/realtime/client_secrets");
    BOOST_TEST((secrets.realtime && secrets.session_model && !secrets.realtime_call));
    Route calls = route_request(azure(), "POST", "/v1//realtime/calls/");
    BOOST_TEST((calls.kind == RouteKind::Upstream));
    BOOST_TEST(calls.upstream_path == "/realtime/calls");
    BOOST_TEST((calls.realtime && calls.realtime_call && !calls.session_model));
    Route hangup = route_request(azure(), "POST", "/v1/realtime/calls/rtc_1/hangup");
    BOOST_TEST((hangup.kind == RouteKind::Upstream));
    BOOST_TEST(hangup.upstream_path == "/realtime/calls/rtc_1/hangup");
    BOOST_TEST((hangup.realtime && !hangup.realtime_call && !hangup.session_model));
}

BOOST_AUTO_TEST_CASE(dot_segments_never_route) {
    for (const char* bad : {"/v1/../admin", "/v1/./models", "/v1/%2e%2E/x", "/v1/models/.."}) {
        BOOST_TEST((route_request(azure(), "GET", bad).kind == RouteKind::InvalidPath), bad);
        Config openai = azure();
        openai.mode = ProxyMode::OpenAI;
        BOOST_TEST((route_request(openai, "GET", bad).kind == RouteKind::InvalidPath), bad);
    }
}

BOOST_AUTO_TEST_CASE(openai_mode_passes_every_path) {
    Config config = azure();
    config.mode = ProxyMode::OpenAI;
    Route r = route_request(config, "DELETE", "/v1/files/file-1");
    BOOST_TEST((r.kind == RouteKind::Upstream));
    BOOST_TEST(r.upstream_path == "/v1/files/file-1");
    BOOST_TEST((route_request(config, "OPTIONS", "/v1/models").kind == RouteKind::Upstream));
}

// Routes whose body names a model the lists must see: fine-tuning jobs (a base model, not
// mapped) and, in openai mode, every POST; batches, whose models are in a file.
BOOST_AUTO_TEST_CASE(routes_that_name_a_model_in_the_body) {
    Route job = route_request(azure(), "POST", "/v1/fine_tuning/jobs/");
    BOOST_TEST(job.model_in_body);
    BOOST_TEST(!job.body_model);
    BOOST_TEST(!route_request(azure(), "GET", "/v1/fine_tuning/jobs").model_in_body);
    BOOST_TEST(!route_request(azure(), "POST", "/v1/fine_tuning/jobs/ftjob-1/cancel").model_in_body);
    BOOST_TEST(route_request(azure(), "POST", "/v1/batches").batch);
    BOOST_TEST(!route_request(azure(), "POST", "/v1/batches/batch_1/cancel").batch);
    BOOST_TEST(!route_request(azure(), "GET", "/v1/batches").batch);
    Config openai = azure();
    openai.mode = ProxyMode::OpenAI;
    BOOST_TEST(route_request(openai, "POST", "/v1/chat/completions").model_in_body);
    BOOST_TEST(route_request(openai, "POST", "/v1/batches/").batch);
    BOOST_TEST(!route_request(openai, "GET", "/v1/batches").batch);
    BOOST_TEST(!route_request(openai, "GET", "/v1/models").model_in_body);
}

BOOST_AUTO_TEST_CASE(segments_that_decode_to_separators_are_unsafe) {
    for (const char* path : {"/v1/files/a%2Fb", "/v1/files/a%5cb", "/v1/files/a\\b", "/v1/files/%2e%2E",
                             "/v1/files/a%00", "/v1/files/a%0d%0aX:1", "/v1/./models", "/v1/files/..",
                             "/v1/fi\x01les", "/v1/files/a\x7f", "/v1/files/a\tb", "/v1/files\\x"})
        BOOST_TEST(has_unsafe_segment(path), path);
    for (const char* path : {"/v1/files/file-abc", "/v1/models/gpt-4.1", "/v1/files/a%20b", "/v1/...x", "/v1/chat/completions"})
        BOOST_TEST(!has_unsafe_segment(path), path);
    BOOST_TEST(collapse_slashes("//v1///models/") == "/v1/models/");
    BOOST_TEST(collapse_slashes("/v1/models") == "/v1/models");
    BOOST_TEST(collapse_slashes("") == "");
    Config config;
    BOOST_TEST((route_request(config, "GET", "/v1/files/a%2Fb").kind == RouteKind::InvalidPath));
}

BOOST_AUTO_TEST_CASE(only_the_apis_methods_route) {
    Config config;
    for (const char* method : {"TRACE", "CONNECT", "PUT", "PATCH", "PROPFIND", "get", "POST\r\nX: 1", ""})
        BOOST_TEST((route_request(config, method, "/v1/files").kind == RouteKind::MethodNotAllowed), method);
    config.mode = ProxyMode::OpenAI;
    BOOST_TEST((route_request(config, "TRACE", "/v1/files").kind == RouteKind::MethodNotAllowed));
    BOOST_TEST((route_request(config, "DELETE", "/v1/files/f").kind == RouteKind::Upstream));
}

BOOST_AUTO_TEST_SUITE_END()

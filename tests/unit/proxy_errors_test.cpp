// proxy_errors.cpp: every error of the proxy's own has its status, type and code, shows a
// client's value only as a short escaped prefix, and never passes on libcurl's words.
#include <boost/test/unit_test.hpp>

#include <string>

#include "fakes.h"
#include "key_limits.h"
#include "proxy_errors.h"
#include "request.h"
#include "target_choice.h"
#include "upstream.h"

BOOST_AUTO_TEST_SUITE(proxy_errors)

BOOST_AUTO_TEST_CASE(each_error_has_the_status_and_code_clients_branch_on) {
    BOOST_TEST(errors::missing_key().status == 401);
    BOOST_TEST(errors::missing_key().code == "invalid_api_key");
    BOOST_TEST(errors::expired_key().code == "expired_api_key");
    BOOST_TEST(errors::body_too_large(1024).status == 413);
    BOOST_TEST(has(errors::body_too_large(1024).message, "1024 bytes"));
    BOOST_TEST(errors::body_too_late().status == 408);
    BOOST_TEST(errors::upload_not_stored().status == 507);
    BOOST_TEST(errors::upload_not_stored().type == "api_error");
    BOOST_TEST(errors::realtime_not_supported().status == 501);
    BOOST_TEST(errors::missing_model().param == "model");
    BOOST_TEST(errors::model_not_allowed("o3").status == 403);
    BOOST_TEST(errors::method_not_allowed("TRACE").status == 405);
    BOOST_TEST(errors::upstream_auth_failed().status == 503);
    BOOST_TEST(errors::upstream_auth_failed().code == "upstream_auth_failed");
}

BOOST_AUTO_TEST_CASE(a_clients_value_is_quoted_short_and_escaped) {
    Request request;
    request.method = "GET";
    request.path = "/v1/" + std::string(5000, 'x') + "\n\"";
    ProxyError error = errors::unknown_route(request);
    BOOST_TEST(error.status == 404);
    BOOST_TEST(error.message.size() < 300u);
    BOOST_TEST(!has(error.message, "\n"));
    ProxyError model = errors::model_not_found("gpt\x01\xff");
    BOOST_TEST(has(model.message, "'gpt\\x01\\xff'"));
    BOOST_TEST(errors::method_not_allowed(std::string(100, 'M')).message.size() < 120u);
}

BOOST_AUTO_TEST_CASE(no_target_is_a_429_while_cooling_else_a_503) {
    Pick cooling;
    cooling.cooling = true;
    cooling.retry_after_ms = 1500;
    ProxyError limited = errors::no_target(cooling, "gpt-4o");
    BOOST_TEST(limited.status == 429);
    BOOST_TEST(limited.code == "rate_limit_exceeded");
    BOOST_TEST(has(limited.message, "retry after 2 s"));
    ProxyError unhealthy = errors::no_target(Pick{}, "gpt-4o");
    BOOST_TEST(unhealthy.status == 503);
    BOOST_TEST(unhealthy.code == "no_healthy_deployment");
}

BOOST_AUTO_TEST_CASE(an_upstream_failure_names_its_cause_class_not_libcurls_words) {
    UpstreamResult result;
    result.error = "Failed to connect to 10.0.0.1 port 443 after 3 ms: Couldn't connect to server";
    result.outcome = UpstreamOutcome::ConnectFailed;
    ProxyError refused = errors::upstream_failed(result, "east");
    BOOST_TEST(refused.status == 502);
    BOOST_TEST(refused.code == "upstream_unreachable");
    BOOST_TEST(!has(refused.message, "10.0.0.1"));
    result.outcome = UpstreamOutcome::TimedOut;
    BOOST_TEST(errors::upstream_failed(result, "east").status == 504);
    result.outcome = UpstreamOutcome::TlsFailed;
    BOOST_TEST(errors::upstream_failed(result, "east").code == "upstream_tls_error");
    result.outcome = UpstreamOutcome::ProtocolError;
    result.answered = true;
    BOOST_TEST(has(errors::upstream_failed(result, "east").message, "broke off"));
}

BOOST_AUTO_TEST_CASE(waits_round_up_to_whole_seconds_and_keep_their_milliseconds) {
    BOOST_TEST(whole_seconds(0) == 0);
    BOOST_TEST(whole_seconds(1) == 1);
    BOOST_TEST(whole_seconds(1000) == 1);
    BOOST_TEST(whole_seconds(1001) == 2);
    Headers headers;
    add_retry_after(headers, 2500);
    BOOST_TEST(*find_header(headers, "Retry-After") == "3");
    BOOST_TEST(*find_header(headers, "Retry-After-Ms") == "2500");
}

BOOST_AUTO_TEST_CASE(rate_limit_headers_only_for_the_limits_a_key_has) {
    KeyDecision decision;
    BOOST_TEST(rate_limit_headers(decision).empty());
    decision.limit_tokens = 1000;
    decision.remaining_tokens = 400;
    Headers headers = rate_limit_headers(decision);
    BOOST_TEST(headers.size() == 2u);
    BOOST_TEST(*find_header(headers, "X-Ratelimit-Remaining-Tokens") == "400");
    BOOST_TEST(!find_header(headers, "X-Ratelimit-Limit-Requests"));
}

BOOST_AUTO_TEST_SUITE_END()

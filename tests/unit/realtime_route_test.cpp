// realtime_route.cpp: a realtime try's credential headers, how its handshake counts for its
// target, whether the next target is tried, and the preview route's api-version.
#include <boost/test/unit_test.hpp>

#include "realtime_route.h"

BOOST_AUTO_TEST_SUITE(realtime_route)

BOOST_AUTO_TEST_CASE(an_identity_sends_its_token_a_key_endpoint_its_key) {
    EndpointSettings keyed;
    keyed.token = "server-key";
    BOOST_TEST(!realtime_uses_token(keyed));
    Headers headers = realtime_credential_headers(keyed, "client-key", "Authorization: Bearer ignored");
    BOOST_REQUIRE(headers.size() == 1u);
    BOOST_TEST(headers[0].name == "api-key");
    BOOST_TEST(headers[0].value == "server-key");

    EndpointSettings keyless;
    keyless.credential.source = CredentialSource::ManagedIdentity;
    BOOST_TEST(realtime_uses_token(keyless));
    headers = realtime_credential_headers(keyless, "client-key", "Authorization: Bearer eyJ.a.b");
    BOOST_REQUIRE(headers.size() == 1u);
    BOOST_TEST(headers[0].name == "Authorization");
    BOOST_TEST(headers[0].value == "Bearer eyJ.a.b");
    // no token yet, or a line that is not one: nothing, never the client's key
    BOOST_TEST(realtime_credential_headers(keyless, "client-key", "").empty());
    BOOST_TEST(realtime_credential_headers(keyless, "client-key", "X-Other: Bearer x").empty());
    BOOST_TEST(realtime_credential_headers(keyless, "client-key", "Authorization:   ").empty());
}

BOOST_AUTO_TEST_CASE(unreachable_5xx_and_429_try_the_next_target_the_clients_refusals_do_not) {
    BOOST_TEST((realtime_try_result(true, 0) == TryResult::Success));
    BOOST_TEST((realtime_try_result(false, 0) == TryResult::Failed));
    BOOST_TEST((realtime_try_result(false, 503) == TryResult::Failed));
    BOOST_TEST((realtime_try_result(false, 429) == TryResult::RateLimited));
    BOOST_TEST((realtime_try_result(false, 401) == TryResult::Success));
    BOOST_TEST((realtime_try_result(false, 404) == TryResult::Success));
    RetryPolicy policy;
    policy.max_tries = 2;
    BOOST_TEST(realtime_tries_next(TryResult::Failed, 1, policy));
    BOOST_TEST(realtime_tries_next(TryResult::RateLimited, 1, policy));
    BOOST_TEST(!realtime_tries_next(TryResult::Failed, 2, policy));  // the policy's tries are spent
    BOOST_TEST(!realtime_tries_next(TryResult::Success, 1, policy));
}

BOOST_AUTO_TEST_CASE(the_preview_api_version_is_dated_and_url_safe) {
    BOOST_TEST(valid_realtime_api_version("2024-10-01-preview"));
    BOOST_TEST(valid_realtime_api_version("2025-04-01-preview"));
    BOOST_TEST(!valid_realtime_api_version(""));
    BOOST_TEST(!valid_realtime_api_version("2024-10-01&deployment=x"));
    BOOST_TEST(!valid_realtime_api_version("2024 10"));
    BOOST_TEST(!valid_realtime_api_version(std::string(65, '1')));
}

BOOST_AUTO_TEST_SUITE_END()

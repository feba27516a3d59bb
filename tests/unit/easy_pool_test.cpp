// easy_pool.h: the pool of libcurl easy handles: a completed transfer's handle is reused,
// any other destroyed.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "easy_pool.h"

BOOST_AUTO_TEST_SUITE(easy_pool)

namespace {

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

// A handle as libcurl 7.88 leaves it after a transfer that failed before it had a
// connection (here a URL it cannot parse, no network needed): it still holds its receive
// buffer, and refuses CURLOPT_BUFFERSIZE even after curl_easy_reset.
CURL* handle_after_failed_transfer() {
    CURL* easy = curl_easy_init();
    BOOST_REQUIRE(easy);
    BOOST_REQUIRE(curl_easy_setopt(easy, CURLOPT_URL, "http://bad host/") == CURLE_OK);
    BOOST_REQUIRE(curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 1024L) == CURLE_OK);
    BOOST_REQUIRE(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK);
    BOOST_REQUIRE(curl_easy_perform(easy) != CURLE_OK);
    return easy;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_spare_handle_libcurl_refuses_is_destroyed_and_the_request_configured_on_a_new_one) {
    EasyPool pool(4);
    pool.give_back(handle_after_failed_transfer(), true);  // as if it had completed
    BOOST_TEST(pool.spare() == 1u);
    std::vector<CURLcode> answers;
    std::vector<bool> freshes;
    CURLcode refused = CURLE_OK;
    CURL* easy = pool.take_configured(
        [&](CURL* handle, bool fresh, unsigned) {
            answers.push_back(curl_easy_setopt(handle, CURLOPT_BUFFERSIZE, 16384L));
            freshes.push_back(fresh);
            return answers.back();
        },
        refused);
    BOOST_REQUIRE(easy);
    BOOST_TEST(refused == CURLE_OK);
    BOOST_TEST(answers == (std::vector<CURLcode>{CURLE_BAD_FUNCTION_ARGUMENT, CURLE_OK}));
    BOOST_TEST(freshes == (std::vector<bool>{false, true}));  // the spare one, then a new one
    BOOST_TEST(pool.spare() == 0u);
    pool.give_back(easy, true);
    BOOST_TEST(pool.spare() == 1u);
}

BOOST_AUTO_TEST_CASE(a_handle_refused_when_new_too_ends_the_try_with_libcurls_reason) {
    EasyPool pool(4);
    int tries = 0;
    auto refuse = [&](CURL*, bool, unsigned) { ++tries; return CURLE_OUT_OF_MEMORY; };
    CURLcode refused = CURLE_OK;
    BOOST_TEST(pool.take_configured(refuse, refused) == nullptr);
    BOOST_TEST(refused == CURLE_OUT_OF_MEMORY);
    BOOST_TEST(tries == 1);  // a new handle refused: another new one would be too

    pool.give_back(curl_easy_init(), true);
    BOOST_TEST(pool.take_configured(refuse, refused) == nullptr);
    BOOST_TEST(tries == 3);  // the spare one, then once more on a new one
    BOOST_TEST(pool.spare() == 0u);  // both destroyed (the leak checker would say otherwise)
}

BOOST_AUTO_TEST_CASE(only_a_reusable_handle_is_kept_and_only_up_to_the_capacity) {
    EasyPool pool(2);
    pool.give_back(curl_easy_init(), false);  // its transfer failed
    BOOST_TEST(pool.spare() == 0u);
    for (int i = 0; i < 3; ++i) pool.give_back(curl_easy_init(), true);
    BOOST_TEST(pool.spare() == 2u);
    int configured = 0;
    CURLcode refused = CURLE_FAILED_INIT;
    CURL* easy = pool.take_configured([&](CURL*, bool, unsigned) { ++configured; return CURLE_OK; }, refused);
    BOOST_REQUIRE(easy);
    BOOST_TEST(refused == CURLE_OK);
    BOOST_TEST(configured == 1);
    BOOST_TEST(pool.spare() == 1u);
    pool.give_back(easy, true);
}

BOOST_AUTO_TEST_CASE(a_spare_handle_comes_back_with_what_its_last_user_said_it_left) {
    EasyPool pool(2);
    CURL* first = curl_easy_init();
    pool.give_back(first, true, 5);
    std::vector<unsigned> lefts;
    std::vector<CURL*> handles;
    CURLcode refused = CURLE_FAILED_INIT;
    auto note = [&](CURL* easy, bool, unsigned left) {
        lefts.push_back(left);
        handles.push_back(easy);
        return CURLE_OK;
    };
    CURL* spare = pool.take_configured(note, refused);
    CURL* fresh = pool.take_configured(note, refused);
    BOOST_TEST(lefts == (std::vector<unsigned>{5, 0}));  // a new handle has nothing left
    BOOST_TEST((spare == first && fresh != first && handles.back() == fresh));
    pool.give_back(spare, true);
    pool.give_back(fresh, true);
}

BOOST_AUTO_TEST_SUITE_END()

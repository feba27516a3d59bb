// The engine's pure parts: FastCGI request framing, the deadline queue, the pool of libcurl
// handles, when the access-log buffer wants writing.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "deadline_queue.h"
#include "easy_pool.h"
#include "fastcgi_frames.h"
#include "log_buffer.h"

namespace {

// One FastCGI record: version 1, `type`, request id 1, `content`, `padding` zero bytes.
void add_record(std::vector<unsigned char>& out, unsigned char type, const std::string& content,
                unsigned char padding = 0) {
    unsigned char header[8] = {1, type, 0, 1, static_cast<unsigned char>(content.size() >> 8),
                               static_cast<unsigned char>(content.size() & 0xff), padding, 0};
    out.insert(out.end(), header, header + 8);
    out.insert(out.end(), content.begin(), content.end());
    out.insert(out.end(), padding, 0);
}

std::vector<unsigned char> whole_request(const std::string& body) {
    std::vector<unsigned char> bytes;
    add_record(bytes, 1, std::string("\0\1\0\0\0\0\0\0", 8));  // BEGIN_REQUEST, responder
    add_record(bytes, 4, std::string("\x0e\x04REQUEST_METHODPOST"), 6);
    add_record(bytes, 4, "");
    if (!body.empty()) add_record(bytes, 5, body, 3);
    add_record(bytes, 5, "");
    return bytes;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fastcgi_frames)

BOOST_AUTO_TEST_CASE(a_whole_request_is_seen_complete_and_where_its_parts_end) {
    std::vector<unsigned char> bytes = whole_request("{\"model\":\"gpt-4o\"}");
    RequestScan scan = scan_fastcgi_request(bytes.data(), bytes.size());
    BOOST_TEST(scan.state == RequestScan::Complete);
    BOOST_TEST(scan.request_end == bytes.size());
    BOOST_TEST(scan.params_end == 16u + 8u + 20u + 6u + 8u);
}

BOOST_AUTO_TEST_CASE(every_cut_short_of_the_end_is_incomplete) {
    std::vector<unsigned char> bytes = whole_request("hello");
    for (size_t size = 0; size < bytes.size(); ++size) {
        RequestScan scan = scan_fastcgi_request(bytes.data(), size);
        BOOST_TEST(scan.state == RequestScan::Incomplete, "cut at " << size);
        BOOST_TEST((scan.params_end == 0 || scan.params_end <= size));
    }
}

BOOST_AUTO_TEST_CASE(a_stream_that_is_not_fastcgi_is_malformed) {
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    RequestScan scan = scan_fastcgi_request(reinterpret_cast<const unsigned char*>(http.data()), http.size());
    BOOST_TEST(scan.state == RequestScan::Malformed);
}

BOOST_AUTO_TEST_CASE(a_nul_in_a_param_is_seen_wherever_the_records_split_it) {
    std::vector<unsigned char> clean = whole_request("x");
    BOOST_TEST(!scan_fastcgi_request(clean.data(), clean.size()).params_hold_nul);

    // HTTP_X = "a\0b" after a long (four-byte length) param, the pair split over two records.
    std::string long_value(200, 'v');
    std::string pairs = std::string("\x04\x80\x00\x00\xc8", 5) + "LONG" + long_value +
                        std::string("\x06\x03", 2) + "HTTP_X" + std::string("a\0b", 3);
    std::vector<unsigned char> bytes;
    add_record(bytes, 1, std::string("\0\1\0\0\0\0\0\0", 8));
    add_record(bytes, 4, pairs.substr(0, 210));
    add_record(bytes, 4, pairs.substr(210));
    add_record(bytes, 4, "");
    add_record(bytes, 5, "");
    RequestScan scan = scan_fastcgi_request(bytes.data(), bytes.size());
    BOOST_TEST(scan.state == RequestScan::Complete);
    BOOST_TEST(scan.params_hold_nul);
    // A zero byte inside a four-byte length is no NUL in a value.
    std::string lengths_only = std::string("\x04\x80\x00\x00\xc8", 5) + "LONG" + long_value;
    std::vector<unsigned char> ok;
    add_record(ok, 4, lengths_only);
    add_record(ok, 4, "");
    BOOST_TEST(!scan_fastcgi_request(ok.data(), ok.size()).params_hold_nul);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(deadline_queue)

BOOST_AUTO_TEST_CASE(links_fall_due_in_the_order_they_were_last_armed) {
    DeadlineQueue queue(100);
    DeadlineLink a, b, c;
    BOOST_TEST(queue.next_due_ms() == DeadlineQueue::kNever);
    queue.arm(a, 0);
    queue.arm(b, 10);
    queue.arm(c, 20);
    queue.arm(a, 30);  // re-armed: now last
    BOOST_TEST(queue.next_due_ms() == 110);
    BOOST_TEST(queue.take_due(109) == nullptr);
    BOOST_TEST(queue.take_due(200) == &b);
    BOOST_TEST(queue.take_due(200) == &c);
    BOOST_TEST(queue.take_due(129) == nullptr);
    BOOST_TEST(queue.take_due(130) == &a);
    BOOST_TEST(queue.empty());
}

BOOST_AUTO_TEST_CASE(a_disarmed_link_never_falls_due) {
    DeadlineQueue queue(5);
    DeadlineLink a, b;
    queue.arm(a, 0);
    queue.arm(b, 1);
    queue.disarm(a);
    queue.disarm(a);  // twice is harmless
    BOOST_TEST(!a.armed());
    BOOST_TEST(queue.take_due(100) == &b);
    BOOST_TEST(queue.take_due(100) == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(deadline_queues)

BOOST_AUTO_TEST_CASE(a_link_moves_between_queues_and_each_disarms_only_its_own) {
    DeadlineQueue first(100), second(1000);
    DeadlineLink link;
    first.arm(link, 0);
    second.disarm(link);  // not in it: nothing happens to either queue
    BOOST_TEST(first.next_due_ms() == 100);
    BOOST_TEST(second.empty());
    second.arm(link, 0);  // moves
    BOOST_TEST(first.empty());
    BOOST_TEST(second.next_due_ms() == 1000);
    first.disarm(link);
    BOOST_TEST(link.armed());
    second.disarm(link);
    BOOST_TEST(!link.armed());
    BOOST_TEST(second.empty());
}

BOOST_AUTO_TEST_SUITE_END()

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
    CURLcode refused = CURLE_OK;
    CURL* easy = pool.take_configured(
        [&](CURL* handle) {
            answers.push_back(curl_easy_setopt(handle, CURLOPT_BUFFERSIZE, 16384L));
            return answers.back();
        },
        refused);
    BOOST_REQUIRE(easy);
    BOOST_TEST(refused == CURLE_OK);
    BOOST_TEST(answers == (std::vector<CURLcode>{CURLE_BAD_FUNCTION_ARGUMENT, CURLE_OK}));
    BOOST_TEST(pool.spare() == 0u);
    pool.give_back(easy, true);
    BOOST_TEST(pool.spare() == 1u);
}

BOOST_AUTO_TEST_CASE(a_handle_refused_when_new_too_ends_the_try_with_libcurls_reason) {
    EasyPool pool(4);
    int tries = 0;
    auto refuse = [&](CURL*) { ++tries; return CURLE_OUT_OF_MEMORY; };
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
    CURL* easy = pool.take_configured([&](CURL*) { ++configured; return CURLE_OK; }, refused);
    BOOST_REQUIRE(easy);
    BOOST_TEST(refused == CURLE_OK);
    BOOST_TEST(configured == 1);
    BOOST_TEST(pool.spare() == 1u);
    pool.give_back(easy, true);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(log_buffer)

// Nothing is written here: the lines stay in the buffer (a write would go to stderr).
BOOST_AUTO_TEST_CASE(an_empty_buffer_waits_for_nothing_and_lines_are_due_from_the_first) {
    engine_detail::LogBuffer buffer;
    BOOST_TEST(buffer.next_due_ms() == DeadlineQueue::kNever);
    buffer.add("one\n", 1000);
    BOOST_TEST(buffer.next_due_ms() == 1000 + engine_detail::LogBuffer::kDelayMs);
    buffer.add("two\n", 1030);  // a later line does not put the write off
    BOOST_TEST(buffer.next_due_ms() == 1000 + engine_detail::LogBuffer::kDelayMs);
}

BOOST_AUTO_TEST_SUITE_END()

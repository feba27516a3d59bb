// The engine's pure parts: FastCGI request framing and the deadline queue.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "deadline_queue.h"
#include "fastcgi_frames.h"

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

BOOST_AUTO_TEST_CASE(stdout_cost_counts_headers_and_padding_per_record) {
    BOOST_TEST(fastcgi_stdout_cost(0) == 0u);
    BOOST_TEST(fastcgi_stdout_cost(1) == 1u + 15u);
    BOOST_TEST(fastcgi_stdout_cost(8184) == 8184u + 15u);
    BOOST_TEST(fastcgi_stdout_cost(8185) == 8185u + 30u);
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

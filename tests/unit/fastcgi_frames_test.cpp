// fastcgi_frames.cpp: FastCGI request framing: where a request's params and body end, and
// whether all of it has arrived.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "fastcgi_frames.h"
#include "fastcgi_records.h"

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

BOOST_AUTO_TEST_CASE(an_answer_ends_with_an_empty_stdout_record_and_end_request) {
    std::string out = "before";
    append_fastcgi_end(out, 0x1234);
    std::vector<Record> records = records_in(out.substr(6));
    BOOST_REQUIRE(records.size() == 2u);
    BOOST_TEST(records[0].type == 6);
    BOOST_TEST(records[0].content.empty());
    BOOST_TEST(records[1].type == 3);
    BOOST_TEST(records[1].content == std::string(8, '\0'));  // status 0, request complete
    BOOST_TEST(out.size() == 6 + kFastCgiEndCost);
    BOOST_TEST(out.substr(6 + 2, 2) == "\x12\x34");  // the request's id
}

BOOST_AUTO_TEST_CASE(a_record_header_carries_type_id_length_and_padding) {
    char header[8];
    put_fastcgi_header(header, kFastCgiStdout, 1, 8184, fastcgi_padding(8184));
    BOOST_TEST(std::string(header, 8) == std::string("\x01\x06\x00\x01\x1f\xf8\x00\x00", 8));
    BOOST_TEST(fastcgi_padding(5) == 3u);
    BOOST_TEST(fastcgi_padding(16) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

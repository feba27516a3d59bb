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

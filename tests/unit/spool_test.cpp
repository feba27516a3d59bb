// spool.cpp: a body held in memory while small, then in an unlinked temporary file, read
// back whole, in any piece sizes, with a span replaced (the model rewritten).
#include <boost/test/unit_test.hpp>

#include <string>

#include "spool.h"

namespace {

// Everything the spool gives from its start, read `piece` bytes at a time.
std::string read_all(Spool& spool, size_t piece) {
    std::string out;
    char buffer[4096];
    for (long n; (n = spool.read(buffer, piece)) > 0;) out.append(buffer, static_cast<size_t>(n));
    return out;
}

std::string pattern(size_t size) {
    std::string text(size, '\0');
    for (size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
    return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spool)

BOOST_AUTO_TEST_CASE(a_small_body_comes_back_as_written) {
    Spool spool(64);
    BOOST_REQUIRE(spool.write("hello ", 6));
    BOOST_REQUIRE(spool.write("world", 5));
    BOOST_TEST(spool.size() == 11);
    spool.rewind();
    BOOST_TEST(read_all(spool, 3) == "hello world");
    spool.rewind();  // again, from the start
    BOOST_TEST(read_all(spool, 4096) == "hello world");
}

BOOST_AUTO_TEST_CASE(a_body_past_the_memory_limit_goes_to_a_file_and_comes_back_whole) {
    Spool spool(1000);
    std::string body = pattern(100000);
    for (size_t at = 0; at < body.size(); at += 777) BOOST_REQUIRE(spool.write(body.data() + at, std::min<size_t>(777, body.size() - at)));
    BOOST_TEST(spool.size() == 100000);
    spool.rewind();
    BOOST_TEST(spool.output_size() == 100000);
    BOOST_TEST(read_all(spool, 1013) == body);
}

BOOST_AUTO_TEST_CASE(a_replaced_span_is_read_in_its_place_in_memory_and_on_file) {
    const std::string body = R"({"model":"gpt-4o","input":"hi"})";
    for (size_t limit : {size_t(1 << 20), size_t(4)}) {
        Spool spool(limit);
        BOOST_REQUIRE(spool.write(body.data(), body.size()));
        long long begin = static_cast<long long>(body.find("gpt-4o")), end = begin + 6;
        spool.rewind(begin, end, "prod-deployment");
        BOOST_TEST(spool.output_size() == static_cast<long long>(body.size()) - 6 + 15);
        for (size_t piece : {size_t(1), size_t(5), size_t(4096)}) {
            spool.rewind(begin, end, "prod-deployment");
            BOOST_TEST(read_all(spool, piece) == R"({"model":"prod-deployment","input":"hi"})", "limit " << limit << " piece " << piece);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_empty_body_reads_as_its_end) {
    Spool spool;
    spool.rewind();
    char byte;
    BOOST_TEST(spool.read(&byte, 1) == 0);
    BOOST_TEST(spool.output_size() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

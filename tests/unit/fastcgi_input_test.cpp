// fastcgi_input.cpp: a FastCGI request taken apart as its bytes arrive, wherever the reads
// split it; whatever a web server (or anyone who reaches the socket) sends.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "fastcgi_input.h"
#include "fastcgi_records.h"

std::ostream& operator<<(std::ostream& out, FastCgiInput::State state) { return out << static_cast<int>(state); }

namespace {

using State = FastCgiInput::State;

struct Outcome {
    State state = State::Begin;
    std::vector<std::pair<std::string, std::string>> params;
    std::string body;
    bool keep = false;
    bool together = true;  // each value right after its name
    bool past_end = false;
    bool plain = false;  // params_plain(): no CR, LF or NUL known to be in any name or value
};

// Feeds `bytes` in reads of `piece` bytes, taking the body out in small pieces as it comes.
Outcome read_all(const std::vector<unsigned char>& bytes, size_t piece) {
    FastCgiInput input;
    Outcome out;
    size_t at = 0;
    bool have_params = false;
    for (;;) {
        State state = input.take();
        if (!have_params && (state == State::Body || state == State::Ended)) {
            for (const auto& [name, value] : input.params()) out.params.emplace_back(name, value);
            out.keep = input.keep_connection();
            out.plain = input.params_plain();
            for (const auto& [name, value] : input.params()) out.together &= value.data() == name.data() + name.size();
            have_params = true;
            continue;  // what follows the params is taken by the next take()
        }
        char buffer[7];
        for (size_t got; (got = input.body(buffer, sizeof buffer)) > 0; state = input.take()) out.body.append(buffer, got);
        if (state == State::Ended || state == State::Failed || at == bytes.size()) {
            out.state = state;
            out.past_end = input.read_past_end();
            return out;
        }
        size_t size = std::min({piece, bytes.size() - at, kFastCgiReadSize});
        std::memcpy(input.room(), bytes.data() + at, size);
        input.filled(size);
        at += size;
    }
}

std::vector<unsigned char> begin_record(unsigned role = 1, bool keep = false) {
    std::vector<unsigned char> bytes;
    add_record(bytes, 1, std::string("\0", 1) + static_cast<char>(role) + static_cast<char>(keep ? 1 : 0) + std::string(5, '\0'));
    return bytes;
}

// A request whose PARAMS content is `pairs` (in one record) and whose body is empty.
std::vector<unsigned char> request_with_pairs(const std::string& pairs) {
    std::vector<unsigned char> bytes = begin_record();
    add_record(bytes, 4, pairs);
    add_record(bytes, 4, "");
    add_record(bytes, 5, "");
    return bytes;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fastcgi_input)

BOOST_AUTO_TEST_CASE(a_request_split_anywhere_reads_the_same_params_and_body) {
    std::string body(3000, 'b');
    body[0] = 'x';
    body.back() = 'y';
    std::vector<unsigned char> bytes = whole_request(body, true);
    Outcome whole = read_all(bytes, bytes.size());
    BOOST_TEST(whole.state == State::Ended);
    BOOST_REQUIRE(whole.params.size() == 1u);
    BOOST_TEST(whole.params[0].first == "REQUEST_METHOD");
    BOOST_TEST(whole.params[0].second == "POST");
    BOOST_TEST(whole.body == body);
    BOOST_TEST(whole.keep);
    BOOST_TEST(!whole.past_end);
    for (size_t piece : {1, 2, 3, 7, 8, 9, 13, 64, 1000}) {
        Outcome split = read_all(bytes, piece);
        BOOST_TEST(split.state == State::Ended, "reads of " << piece);
        BOOST_TEST((split.params == whole.params), "reads of " << piece);
        BOOST_TEST(split.body == body, "reads of " << piece);
    }
}

BOOST_AUTO_TEST_CASE(long_lengths_empty_values_and_pairs_split_over_records) {
    std::string long_value(300, 'v');
    std::string pairs = std::string("\x04\x80\x00\x01\x2c", 5) + "LONG" + long_value +
                        std::string("\x05\x00", 2) + "EMPTY" + std::string("\x06\x01", 2) + "HTTP_Xz";
    std::vector<unsigned char> bytes = begin_record(1, false);
    add_record(bytes, 4, pairs.substr(0, 3), 5);  // inside the four-byte length
    add_record(bytes, 4, pairs.substr(3, 200));
    add_record(bytes, 4, pairs.substr(203));
    add_record(bytes, 4, "");
    add_record(bytes, 5, "");
    for (size_t piece : {1, 5, 4096}) {
        Outcome out = read_all(bytes, piece);
        BOOST_TEST(out.state == State::Ended);
        BOOST_REQUIRE(out.params.size() == 3u);
        BOOST_TEST(out.params[0].second == long_value);
        BOOST_TEST(out.params[1].first == "EMPTY");
        BOOST_TEST(out.params[1].second.empty());
        BOOST_TEST(out.params[2].second == "z");
        BOOST_TEST(!out.keep);
        BOOST_TEST(out.together);
        BOOST_TEST(out.plain);  // an empty value's length (0) is no NUL in it
    }
}

// One scan of the whole block says whether a name or value may hold CR, LF or NUL; the
// lengths between them (10 and 13 here) are not looked at as bytes of a value.
BOOST_AUTO_TEST_CASE(line_breaks_are_seen_in_values_not_in_lengths) {
    std::string ten(10, 'a'), thirteen(13, 'b');
    Outcome plain = read_all(request_with_pairs(std::string("\x0d\x0a", 2) + "DOCUMENT_ROOT" + ten +
                                                std::string("\x06\x0d", 2) + "HTTP_X" + thirteen), 4);
    BOOST_REQUIRE(plain.params.size() == 2u);
    BOOST_TEST(plain.params[1].second == thirteen);
    BOOST_TEST(plain.plain);
    for (char bad : {'\r', '\n'}) {
        Outcome broken = read_all(request_with_pairs(std::string("\x06\x03HTTP_Xa", 9) + bad + "b"), 4);
        BOOST_REQUIRE(broken.params.size() == 1u);
        BOOST_TEST(broken.params[0].second == std::string("a") + bad + "b");
        BOOST_TEST(!broken.plain);
    }
}

// request.cpp refuses it; here it is kept whole, not cut short as a C string would be.
BOOST_AUTO_TEST_CASE(a_nul_in_a_name_or_value_is_kept_whole) {
    Outcome value = read_all(request_with_pairs(std::string("\x06\x03HTTP_Xa\0b", 11)), 3);
    BOOST_REQUIRE(value.params.size() == 1u);
    BOOST_TEST(value.params[0].second == std::string("a\0b", 3));
    BOOST_TEST(!value.plain);
    Outcome name = read_all(request_with_pairs(std::string("\x02\x01X\0v", 5)), 3);
    BOOST_REQUIRE(name.params.size() == 1u);
    BOOST_TEST(name.params[0].first == std::string("X\0", 2));
    BOOST_TEST(!name.plain);
}

BOOST_AUTO_TEST_CASE(lengths_that_run_past_the_params_fail) {
    for (const std::string& pairs : {
             std::string("\x04\x05NAMEval", 9),               // the value is cut short
             std::string("\x04", 1),                           // no value length
             std::string("\x80\x00\x01", 3),                   // a four-byte length cut short
             std::string("\xff\xff\xff\xff\x01XY", 7),         // a name of 2 GiB
             std::string("\x01\xff\xff\xff\xffN", 6),          // a value of 2 GiB
         }) {
        BOOST_TEST((read_all(request_with_pairs(pairs), 4).state == State::Failed));
    }
}

BOOST_AUTO_TEST_CASE(params_past_the_bound_fail_before_they_are_held) {
    std::vector<unsigned char> bytes = begin_record();
    std::string record(65535, 'p');
    for (size_t total = 0; total <= kFastCgiMaxParams; total += record.size()) add_record(bytes, 4, record);
    FastCgiInput input;
    size_t at = 0;
    State state = State::Begin;
    while (state != State::Failed && at < bytes.size()) {
        size_t size = std::min(bytes.size() - at, kFastCgiReadSize);
        std::memcpy(input.room(), bytes.data() + at, size);
        input.filled(size);
        at += size;
        state = input.take();
    }
    BOOST_TEST((state == State::Failed));
}

BOOST_AUTO_TEST_CASE(what_no_responder_gets_fails) {
    std::vector<unsigned char> not_fastcgi = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};
    BOOST_TEST((read_all(not_fastcgi, 100).state == State::Failed));
    std::vector<unsigned char> params_first;
    add_record(params_first, 4, "");
    BOOST_TEST((read_all(params_first, 100).state == State::Failed));
    BOOST_TEST((read_all(begin_record(2), 100).state == State::Failed));  // the authorizer role
    std::vector<unsigned char> aborted = request_with_pairs(std::string("\x01\x01XY", 4));
    aborted.resize(aborted.size() - 8);  // without the empty STDIN record
    add_record(aborted, 5, "some body");
    add_record(aborted, 2, "");  // FCGI_ABORT_REQUEST
    Outcome out = read_all(aborted, 100);
    BOOST_TEST((out.state == State::Failed));
    BOOST_TEST(out.body == "some body");
    std::vector<unsigned char> short_begin;
    add_record(short_begin, 1, std::string("\0\1\0\0", 4));
    BOOST_TEST((read_all(short_begin, 100).state == State::Failed));
}

BOOST_AUTO_TEST_CASE(management_records_and_other_requests_are_skipped) {
    std::vector<unsigned char> bytes;
    const unsigned char get_values[] = {1, 9, 0, 0, 0, 2, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // id 0, padded
    bytes.insert(bytes.end(), get_values, get_values + sizeof get_values);
    std::vector<unsigned char> request = whole_request("body");
    bytes.insert(bytes.end(), request.begin(), request.begin() + 16);  // BEGIN_REQUEST, id 1
    const unsigned char other[] = {1, 4, 0, 2, 0, 3, 0, 0, 'a', 'b', 'c'};  // PARAMS of request 2
    bytes.insert(bytes.end(), other, other + sizeof other);
    bytes.insert(bytes.end(), request.begin() + 16, request.end());
    for (size_t piece : {1, 100}) {
        Outcome out = read_all(bytes, piece);
        BOOST_TEST(out.state == State::Ended);
        BOOST_TEST(out.params.size() == 1u);
        BOOST_TEST(out.body == "body");
    }
}

BOOST_AUTO_TEST_CASE(bytes_after_the_request_are_left_and_seen) {
    std::vector<unsigned char> bytes = whole_request("one", true);
    std::vector<unsigned char> next = whole_request("two", true);
    bytes.insert(bytes.end(), next.begin(), next.end());
    Outcome out = read_all(bytes, bytes.size());
    BOOST_TEST(out.state == State::Ended);
    BOOST_TEST(out.body == "one");
    BOOST_TEST(out.past_end);
}

BOOST_AUTO_TEST_CASE(params_and_buffer_can_go_once_taken) {
    std::vector<unsigned char> bytes = whole_request("");
    FastCgiInput input;
    std::memcpy(input.room(), bytes.data(), bytes.size());
    input.filled(bytes.size());
    BOOST_TEST((input.take() == State::Body));  // the params first, whatever follows
    BOOST_TEST((input.take() == State::Ended));
    BOOST_TEST(input.request_id() == 1);
    input.release_params();
    BOOST_TEST(input.params().empty());
    BOOST_TEST((input.release_buffer() != nullptr));  // of the read size: for another connection
    BOOST_TEST(!input.has_buffer());
    char out[4];
    BOOST_TEST(input.body(out, sizeof out) == 0u);
    BOOST_TEST(!input.read_past_end());
}

BOOST_AUTO_TEST_CASE(params_rooms_come_back_empty_and_hold_the_next_requests_params) {
    std::vector<unsigned char> bytes = request_with_pairs(std::string("\x04\x03", 2) + "NAMEone");
    FastCgiInput first;
    std::memcpy(first.room(), bytes.data(), bytes.size());
    first.filled(bytes.size());
    BOOST_TEST((first.take() == State::Body));
    ParamsRooms rooms = first.release_params();
    BOOST_TEST(first.params().empty());
    BOOST_TEST(rooms.pairs.empty());
    BOOST_TEST(rooms.params.empty());
    rooms.pairs.reserve(512);
    rooms.params.reserve(32);
    const char* pairs_room = rooms.pairs.data();
    const CgiParam* params_room = rooms.params.data();

    std::vector<unsigned char> next = request_with_pairs(std::string("\x04\x03", 2) + "NAMEtwo");
    FastCgiInput second;
    second.lend_params_rooms(std::move(rooms));
    std::memcpy(second.room(), next.data(), next.size());
    second.filled(next.size());
    BOOST_TEST((second.take() == State::Body));
    BOOST_REQUIRE(second.params().size() == 1u);
    BOOST_TEST(second.params()[0].second == "two");  // nothing of the first request's
    BOOST_TEST((second.params().data() == params_room));
    BOOST_TEST((second.params()[0].first.data() == pairs_room + 2));  // after the two lengths
    ParamsRooms back = second.release_params();
    BOOST_TEST((back.params.data() == params_room));
    BOOST_TEST(back.pairs.capacity() >= 512u);
}

BOOST_AUTO_TEST_CASE(a_lent_buffer_reads_the_next_request_and_comes_back) {
    std::vector<unsigned char> first = whole_request("one");
    FastCgiInput used;
    std::memcpy(used.room(), first.data(), first.size());
    used.filled(first.size());
    BOOST_TEST((used.take() == State::Body));
    std::unique_ptr<unsigned char[]> held = used.release_buffer();
    BOOST_TEST((held == nullptr));  // the body waits in it: it stays
    char out[8];
    used.take();
    BOOST_TEST(used.body(out, sizeof out) == 3u);
    BOOST_TEST((used.take() == State::Ended));
    held = used.release_buffer();
    unsigned char* lent = held.get();
    BOOST_REQUIRE((lent != nullptr));

    std::vector<unsigned char> second = whole_request("two");
    FastCgiInput input;
    input.lend_buffer(std::move(held));
    BOOST_TEST((input.room() == lent));
    std::memcpy(input.room(), second.data(), second.size());
    input.filled(second.size());
    BOOST_TEST((input.take() == State::Body));
    BOOST_TEST(input.params().size() == 1u);
    input.take();
    BOOST_TEST(input.body(out, sizeof out) == 3u);
    BOOST_TEST(std::string(out, 3) == "two");
    BOOST_TEST((input.take() == State::Ended));
    BOOST_TEST((input.release_buffer().get() == lent));
}

BOOST_AUTO_TEST_CASE(a_buffer_grown_past_the_read_size_is_not_handed_back) {
    std::vector<unsigned char> bytes = whole_request("one");
    FastCgiInput input;
    // A header split over two reads: the second read's room is the first's unread bytes
    // plus kFastCgiReadSize.
    size_t at = 0;
    for (;;) {
        State state = input.take();
        char out[8];
        if (input.body(out, sizeof out) > 0) continue;
        if (state == State::Ended || at == bytes.size()) break;
        size_t size = std::min<size_t>(5, bytes.size() - at);
        std::memcpy(input.room(), bytes.data() + at, size);
        input.filled(size);
        at += size;
    }
    BOOST_TEST((input.state() == State::Ended));
    BOOST_TEST(input.has_buffer());
    BOOST_TEST((input.release_buffer() == nullptr));  // freed, not kept for another connection
    BOOST_TEST(!input.has_buffer());
}

BOOST_AUTO_TEST_SUITE_END()

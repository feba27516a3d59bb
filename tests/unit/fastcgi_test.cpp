// fastcgi.cpp: one connection from the web server, over a socket pair: the request read as
// it arrives, then taken apart; the answer framed as STDOUT records and ended with END_REQUEST, or cut
// without it, or broken off; writes held, never blocking, while the web server does not
// read, and sent once it does.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fastcgi.h"
#include "fastcgi_records.h"

namespace {

// The web server's end of a connection, and the proxy's FastCgiConnection on the other.
struct WebServer {
    WebServer() {
        int pair[2];
        BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
        ours = UniqueFd(pair[0]);
        connection = std::make_unique<FastCgiConnection>(UniqueFd(pair[1]));
    }
    void send(const std::vector<unsigned char>& bytes) {
        BOOST_REQUIRE(::write(ours.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }
    // What the proxy has written so far, without waiting.
    std::string received() {
        std::string out;
        char buffer[65536];
        for (ssize_t got; (got = recv(ours.get(), buffer, sizeof buffer, MSG_DONTWAIT)) > 0;) out.append(buffer, got);
        return out;
    }
    // The request sent and read as the engine does: read whole, then its params.
    void request(const std::string& body, bool keep = false) {
        send(whole_request(body, keep));
        size_t held = 0;
        bool closed = false;
        RequestScan scan = connection->read_arrived(65536, held, closed);
        BOOST_REQUIRE(scan.state == RequestScan::Complete);
        BOOST_REQUIRE(!closed);
        BOOST_REQUIRE(connection->read_params());
    }
    UniqueFd ours;
    std::unique_ptr<FastCgiConnection> connection;
};

const int kStdout = 6, kEndRequest = 3;

std::string stdout_of(const std::vector<Record>& records) {
    std::string out;
    for (const Record& record : records)
        if (record.type == kStdout) out += record.content;
    return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(fastcgi, WebServer)

BOOST_AUTO_TEST_CASE(a_request_is_read_and_its_answer_ends_with_end_request) {
    request("{\"model\":\"gpt-4o\"}");
    std::string method;
    for (const auto& [name, value] : connection->params())
        if (name == "REQUEST_METHOD") method = value;
    BOOST_TEST(method == "POST");
    char body[64];
    long got = connection->read_body(body, sizeof body);
    BOOST_TEST(std::string(body, got > 0 ? got : 0) == "{\"model\":\"gpt-4o\"}");
    BOOST_TEST(connection->read_body(body, sizeof body) == 0);
    BOOST_TEST(connection->body_consumed());

    BOOST_REQUIRE(connection->can_take(11));
    BOOST_REQUIRE(connection->write("Status: 200", 11));
    BOOST_TEST((connection->finish() == FastCgiConnection::Finish::Done));
    std::vector<Record> records = records_in(received());
    BOOST_REQUIRE(!records.empty());
    BOOST_TEST(stdout_of(records) == "Status: 200");
    BOOST_TEST(records.back().type == kEndRequest);
    BOOST_TEST(!connection->reusable());  // the web server did not ask to keep it
}

BOOST_AUTO_TEST_CASE(a_kept_connection_is_reusable_once_its_answer_ended_whole) {
    request("", true);
    BOOST_TEST(connection->keep_asked());
    BOOST_TEST(!connection->reusable());  // not before its end
    connection->write("x", 1);
    BOOST_TEST((connection->finish() == FastCgiConnection::Finish::Done));
    BOOST_TEST(connection->reusable());
}

BOOST_AUTO_TEST_CASE(a_cut_answer_has_no_end_request_and_a_broken_one_a_record_of_no_version) {
    request("");
    connection->write("Status: 200\r\n\r\npartial", 22);
    BOOST_TEST((connection->cut() == FastCgiConnection::Finish::Done));
    std::vector<Record> cut = records_in(received());
    BOOST_TEST(stdout_of(cut) == "Status: 200\r\n\r\npartial");
    for (const Record& record : cut) BOOST_TEST(record.type != kEndRequest);
    connection->break_off();
    std::string broken = received();
    BOOST_REQUIRE(broken.size() == 8u);
    BOOST_TEST(broken[0] == '\0');  // version 0: an error to every web server
    BOOST_TEST(!connection->reusable());
}

BOOST_AUTO_TEST_CASE(a_web_server_that_does_not_read_holds_the_answer_here_without_blocking) {
    request("");
    std::string piece(8000, 'a');
    size_t written = 0;
    // Past the budget can_take says no (the socket is full or the budget spent); a write
    // beyond it waits here and never blocks the loop.
    for (int i = 0; i < 10000 && connection->can_take(piece.size()); ++i) {
        BOOST_REQUIRE(connection->write(piece.data(), piece.size()));
        written += piece.size();
        connection->flush();
    }
    BOOST_TEST(!connection->can_take(piece.size()));
    BOOST_REQUIRE(connection->write(piece.data(), piece.size()));  // held
    written += piece.size();
    BOOST_TEST(connection->blocked());
    BOOST_TEST((connection->finish() == FastCgiConnection::Finish::Wait));

    std::string seen;
    for (int round = 0; round < 1000 && connection->blocked(); ++round) {
        seen += received();
        connection->writable();
    }
    BOOST_TEST(!connection->blocked());
    BOOST_TEST((connection->finish() == FastCgiConnection::Finish::Done));
    seen += received();
    std::vector<Record> records = records_in(seen);
    BOOST_TEST(stdout_of(records).size() == written);
    BOOST_TEST(records.back().type == kEndRequest);
}

BOOST_AUTO_TEST_CASE(reading_what_arrived_sees_an_incomplete_request_and_a_foreign_protocol) {
    std::vector<unsigned char> bytes = whole_request("hello");
    send(std::vector<unsigned char>(bytes.begin(), bytes.begin() + 20));
    size_t held = 0;
    bool closed = false;
    BOOST_TEST((connection->read_arrived(65536, held, closed).state == RequestScan::Incomplete));
    BOOST_TEST(held == 20u);
    BOOST_TEST(!closed);
    BOOST_TEST(!connection->bytes_waiting());  // read: the socket is empty
    // The rest arrives: the request is whole, from the bytes held and the ones read now.
    send(std::vector<unsigned char>(bytes.begin() + 20, bytes.end()));
    RequestScan whole = connection->read_arrived(65536, held, closed);
    BOOST_TEST((whole.state == RequestScan::Complete));
    BOOST_TEST(held == bytes.size());
    BOOST_TEST(whole.request_end == bytes.size());
    BOOST_REQUIRE(connection->read_params());
    char body[16];
    BOOST_TEST(connection->read_body(body, sizeof body) == 5);

    WebServer other;
    other.send({'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'});
    BOOST_TEST((other.connection->read_arrived(65536, held, closed).state == RequestScan::Malformed));
}

BOOST_AUTO_TEST_CASE(reading_what_arrived_stops_at_its_limit_and_sees_a_close) {
    std::vector<unsigned char> bytes = whole_request(std::string(40000, 'x'));
    send(bytes);
    size_t held = 0;
    bool closed = false;
    // 8 KiB a read: past 16 KiB it stops, the rest left in the socket.
    BOOST_TEST((connection->read_arrived(16384, held, closed).state == RequestScan::Incomplete));
    BOOST_TEST(held == 16384u);
    BOOST_TEST(connection->bytes_waiting());
    BOOST_TEST((connection->read_arrived(65536, held, closed).state == RequestScan::Complete));
    BOOST_TEST(held == bytes.size());
    BOOST_TEST(!closed);

    WebServer other;
    other.send(std::vector<unsigned char>(bytes.begin(), bytes.begin() + 100));
    other.ours.reset();  // gone mid-body
    // A short read says the socket is empty: the close is seen at the next look (epoll
    // reports it at once, with the bytes).
    BOOST_TEST((other.connection->read_arrived(65536, held, closed).state == RequestScan::Incomplete));
    BOOST_TEST(held == 100u);
    BOOST_TEST(!closed);
    BOOST_TEST((other.connection->read_arrived(65536, held, closed).state == RequestScan::Incomplete));
    BOOST_TEST(held == 100u);
    BOOST_TEST(closed);
}

BOOST_AUTO_TEST_CASE(a_web_server_that_left_makes_reading_fail_and_nothing_is_written) {
    std::vector<unsigned char> bytes = whole_request("hello");
    send(std::vector<unsigned char>(bytes.begin(), bytes.begin() + 12));
    ours.reset();  // gone mid-params
    BOOST_TEST(!connection->read_params());
    BOOST_TEST(!connection->write("x", 1));
    BOOST_TEST((connection->finish() == FastCgiConnection::Finish::Gone));
}

BOOST_AUTO_TEST_CASE(a_next_request_read_along_with_this_one_counts_as_bytes_waiting) {
    std::vector<unsigned char> two = whole_request("one", true);
    std::vector<unsigned char> next = whole_request("two", true);
    two.insert(two.end(), next.begin(), next.end());
    send(two);
    BOOST_REQUIRE(connection->read_params());
    char body[16];
    BOOST_TEST(connection->read_body(body, sizeof body) == 3);
    BOOST_TEST(connection->body_consumed());
    BOOST_TEST(connection->bytes_waiting());  // in the proxy's buffer, no longer in the socket
}

BOOST_AUTO_TEST_CASE(a_nul_in_a_param_is_kept_whole) {
    std::vector<unsigned char> bytes;
    add_record(bytes, 1, std::string("\0\1\0\0\0\0\0\0", 8));
    add_record(bytes, 4, std::string("\x06\x03HTTP_Xa\0b", 11));
    add_record(bytes, 4, "");
    add_record(bytes, 5, "");
    send(bytes);
    BOOST_REQUIRE(connection->read_params());
    BOOST_REQUIRE(connection->params().size() == 1u);
    BOOST_TEST(connection->params()[0].second == std::string("a\0b", 3));
}

BOOST_AUTO_TEST_SUITE_END()

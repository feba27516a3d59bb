#include <arpa/inet.h>
#include <sys/socket.h>

#include <boost/test/unit_test.hpp>

#include "web_server_addresses.h"

namespace {

PeerAddress peer(const char* text) {
    PeerAddress address;
    address.family = std::string(text).find(':') == std::string::npos ? AF_INET : AF_INET6;
    BOOST_REQUIRE(inet_pton(address.family, text, address.bytes) == 1);
    return address;
}

std::vector<PeerAddress> list(const std::string& text) {
    std::vector<PeerAddress> allowed;
    std::string error;
    BOOST_REQUIRE_MESSAGE(parse_web_server_addresses(text, allowed, error), error);
    return allowed;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(web_server_addresses)

BOOST_AUTO_TEST_CASE(an_empty_list_allows_every_peer) {
    BOOST_TEST(list("").empty());
    BOOST_TEST(list(" , ").empty());
    BOOST_TEST(web_server_allowed({}, peer("203.0.113.9")));
}

BOOST_AUTO_TEST_CASE(only_the_named_web_servers_are_allowed) {
    auto allowed = list("127.0.0.1, 10.0.0.5,::1");
    BOOST_TEST(allowed.size() == 3u);
    BOOST_TEST(web_server_allowed(allowed, peer("127.0.0.1")));
    BOOST_TEST(web_server_allowed(allowed, peer("10.0.0.5")));
    BOOST_TEST(web_server_allowed(allowed, peer("::1")));
    BOOST_TEST(!web_server_allowed(allowed, peer("10.0.0.6")));
    BOOST_TEST(!web_server_allowed(allowed, peer("127.0.0.2")));
    BOOST_TEST(!web_server_allowed(allowed, peer("::2")));
}

BOOST_AUTO_TEST_CASE(an_ipv4_peer_on_a_dual_stack_socket_matches_its_ipv4_entry) {
    BOOST_TEST(web_server_allowed(list("192.0.2.7"), peer("::ffff:192.0.2.7")));
    BOOST_TEST(!web_server_allowed(list("192.0.2.7"), peer("::ffff:192.0.2.8")));
    BOOST_TEST(web_server_allowed(list("::ffff:192.0.2.7"), peer("192.0.2.7")));
}

BOOST_AUTO_TEST_CASE(an_entry_that_is_no_address_is_refused_by_name) {
    std::vector<PeerAddress> allowed;
    std::string error;
    BOOST_TEST(!parse_web_server_addresses("127.0.0.1,webserver.local", allowed, error));
    BOOST_TEST(error.find("'webserver.local'") != std::string::npos);
    BOOST_TEST(!parse_web_server_addresses("10.0.0.0/8", allowed, error));
    BOOST_TEST(error.find("FCGI_WEB_SERVER_ADDRS") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_list_is_described_as_addresses) {
    BOOST_TEST(describe_web_server_addresses(list("127.0.0.1,::1")) == "127.0.0.1,::1");
}

BOOST_AUTO_TEST_SUITE_END()

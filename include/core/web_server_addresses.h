// FCGI_WEB_SERVER_ADDRS: the web servers allowed to connect to a FastCGI socket on TCP, as
// libfcgi read it for every FastCGI program ("127.0.0.1,10.0.0.5"; IPv6 addresses too). The
// proxy accepts its connections itself, so it keeps the variable's promise itself: a peer
// not in the list is closed unanswered. Unix sockets are not checked (their file's
// permissions guard them), nor is anything when the variable is unset.
#pragma once

#include <string>
#include <vector>

struct PeerAddress {
    int family = 0;                // AF_INET or AF_INET6
    unsigned char bytes[16] = {};  // network order; 4 used for AF_INET
};

// Parses the comma-separated list; false with `error` naming the entry that is no address
// (libfcgi ignored such an entry, leaving an operator who mistyped one believing a web
// server allowed that is not: refused instead).
bool parse_web_server_addresses(const std::string& text, std::vector<PeerAddress>& allowed, std::string& error);

// True when the peer (family and address bytes as accept() gave them) may be served: the
// list is empty, or it names the address. An IPv4 peer seen on a dual-stack socket
// (::ffff:a.b.c.d) matches its IPv4 entry.
bool web_server_allowed(const std::vector<PeerAddress>& allowed, const PeerAddress& peer);

// The list as the start-up log shows it.
std::string describe_web_server_addresses(const std::vector<PeerAddress>& allowed);

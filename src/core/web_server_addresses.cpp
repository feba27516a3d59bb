// FCGI_WEB_SERVER_ADDRS (web_server_addresses.h). Tested in tests/unit/web_server_addresses_test.cpp.
#include "web_server_addresses.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "text.h"

namespace {

const unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool same_address(const PeerAddress& a, const PeerAddress& b) {
    return a.family == b.family && std::memcmp(a.bytes, b.bytes, a.family == AF_INET ? 4 : 16) == 0;
}

// ::ffff:a.b.c.d as the IPv4 address it carries; any other address as it is.
PeerAddress unmapped(const PeerAddress& peer) {
    if (peer.family != AF_INET6 || std::memcmp(peer.bytes, kMappedPrefix, sizeof kMappedPrefix) != 0) return peer;
    PeerAddress v4;
    v4.family = AF_INET;
    std::memcpy(v4.bytes, peer.bytes + 12, 4);
    return v4;
}

}  // namespace

bool parse_web_server_addresses(const std::string& text, std::vector<PeerAddress>& allowed, std::string& error) {
    allowed.clear();
    for (const std::string& raw : split(text, ',')) {
        std::string entry = trim(raw);
        if (entry.empty()) continue;
        PeerAddress address;
        if (inet_pton(AF_INET, entry.c_str(), address.bytes) == 1) {
            address.family = AF_INET;
        } else if (inet_pton(AF_INET6, entry.c_str(), address.bytes) == 1) {
            address.family = AF_INET6;
        } else {
            error = "FCGI_WEB_SERVER_ADDRS: '" + log_safe(entry, 64) +
                    "' is not an IP address (a comma-separated list like 127.0.0.1,::1)";
            return false;
        }
        allowed.push_back(unmapped(address));
    }
    return true;
}

bool web_server_allowed(const std::vector<PeerAddress>& allowed, const PeerAddress& peer) {
    if (allowed.empty()) return true;
    PeerAddress seen = unmapped(peer);
    for (const PeerAddress& address : allowed)
        if (same_address(address, seen)) return true;
    return false;
}

std::string describe_web_server_addresses(const std::vector<PeerAddress>& allowed) {
    std::string out;
    for (const PeerAddress& address : allowed) {
        char text[INET6_ADDRSTRLEN] = "";
        if (!inet_ntop(address.family, address.bytes, text, sizeof text)) continue;
        out += (out.empty() ? "" : ",") + std::string(text);
    }
    return out;
}

// FastCGI records as a web server writes and reads them, for the unit tests of the
// framing and of the FastCGI edge.
#pragma once

#include <string>
#include <utility>
#include <vector>

// One FastCGI record: version 1, `type`, request id 1, `content`, `padding` zero bytes.
inline void add_record(std::vector<unsigned char>& out, unsigned char type, const std::string& content,
                       unsigned char padding = 0) {
    unsigned char header[8] = {1, type, 0, 1, static_cast<unsigned char>(content.size() >> 8),
                               static_cast<unsigned char>(content.size() & 0xff), padding, 0};
    out.insert(out.end(), header, header + 8);
    out.insert(out.end(), content.begin(), content.end());
    out.insert(out.end(), padding, 0);
}

// BEGIN_REQUEST (a responder; `keep`: FCGI_KEEP_CONN), REQUEST_METHOD=POST, the body.
inline std::vector<unsigned char> whole_request(const std::string& body, bool keep = false) {
    std::vector<unsigned char> bytes;
    add_record(bytes, 1, std::string("\0\1", 2) + static_cast<char>(keep ? 1 : 0) + std::string(5, '\0'));
    add_record(bytes, 4, std::string("\x0e\x04REQUEST_METHODPOST"), 6);
    add_record(bytes, 4, "");
    if (!body.empty()) add_record(bytes, 5, body, 3);
    add_record(bytes, 5, "");
    return bytes;
}

// The records in `bytes` as (version, type, content), as far as they are whole.
struct Record {
    int version, type;
    std::string content;
};
inline std::vector<Record> records_in(const std::string& bytes) {
    std::vector<Record> out;
    size_t at = 0;
    while (at + 8 <= bytes.size()) {
        auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[at + i]); };
        size_t length = (byte(4) << 8) | byte(5), padding = byte(6);
        if (at + 8 + length + padding > bytes.size()) break;
        out.push_back({byte(0), byte(1), bytes.substr(at + 8, length)});
        at += 8 + length + padding;
    }
    return out;
}

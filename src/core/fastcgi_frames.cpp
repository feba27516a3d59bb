#include "fastcgi_frames.h"

#include <cstring>

namespace {

const unsigned char kVersion1 = 1;
const unsigned char kParams = 4;
const unsigned char kStdin = 5;
const size_t kHeaderSize = 8;

}  // namespace

RequestScan scan_fastcgi_request(const unsigned char* data, size_t size) {
    RequestScan scan;
    size_t at = 0;
    while (size - at >= kHeaderSize) {
        const unsigned char* header = data + at;
        if (header[0] != kVersion1) {
            scan.state = RequestScan::Malformed;
            return scan;
        }
        size_t content = (static_cast<size_t>(header[4]) << 8) | header[5];
        size_t record = kHeaderSize + content + header[6];
        if (size - at < record) return scan;  // this record is not all there yet
        at += record;
        if (content != 0) continue;
        if (header[1] == kParams && scan.params_end == 0) scan.params_end = at;
        if (header[1] == kStdin) {
            scan.request_end = at;
            scan.state = RequestScan::Complete;
            return scan;
        }
    }
    return scan;
}

void put_fastcgi_header(char* at, unsigned char type, uint16_t id, size_t content, size_t padding) {
    const char header[kHeaderSize] = {
        static_cast<char>(kVersion1), static_cast<char>(type), static_cast<char>(id >> 8), static_cast<char>(id & 0xff),
        static_cast<char>(content >> 8), static_cast<char>(content & 0xff), static_cast<char>(padding), 0,
    };
    std::memcpy(at, header, kHeaderSize);
}

void append_fastcgi_end(std::string& out, uint16_t id) {
    const unsigned char kEndRequest = 3;
    char end[kFastCgiEndCost] = {};  // END_REQUEST's body: app status 0, FCGI_REQUEST_COMPLETE (0)
    put_fastcgi_header(end, kFastCgiStdout, id, 0, 0);
    put_fastcgi_header(end + kHeaderSize, kEndRequest, id, 8, 0);
    out.append(end, sizeof end);
}

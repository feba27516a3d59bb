#include "fastcgi_frames.h"

namespace {

const unsigned char kVersion1 = 1;
const unsigned char kParams = 4;
const unsigned char kStdin = 5;
const size_t kHeaderSize = 8;
const size_t kRecordContent = 8184;  // libfcgi's 8192-byte buffer less the header

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

size_t fastcgi_stdout_cost(size_t content) {
    size_t records = (content + kRecordContent - 1) / kRecordContent;
    return content + records * (kHeaderSize + 7);
}

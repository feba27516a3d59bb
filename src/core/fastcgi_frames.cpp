#include "fastcgi_frames.h"

#include <algorithm>
#include <cstring>

namespace {

const unsigned char kVersion1 = 1;
const unsigned char kParams = 4;
const unsigned char kStdin = 5;
const size_t kHeaderSize = 8;

// Walks the name-value pairs of PARAMS content, which may be split across records
// anywhere: lengths of one byte (< 128) or four (high bit set), then the name and value.
class ParamBytes {
public:
    void feed(const unsigned char* data, size_t size) {
        for (size_t i = 0; i < size;) {
            if (left_ == 0) {
                take_length_byte(data[i++]);
                continue;
            }
            // Inside a name or a value: all of it that is here, at once.
            size_t piece = std::min<size_t>(left_, size - i);
            if (std::memchr(data + i, 0, piece)) nul_ = true;
            i += piece;
            left_ -= piece;
            if (left_ == 0) next_field();
        }
    }
    bool nul() const { return nul_; }

private:
    void take_length_byte(unsigned char byte) {
        if (length_bytes_ == 0) {  // the first byte of a length
            if (byte & 0x80) {
                length_ = byte & 0x7f;
                length_bytes_ = 3;
                return;
            }
            length_ = byte;
        } else {
            length_ = (length_ << 8) | byte;
            if (--length_bytes_ > 0) return;
        }
        lengths_[lengths_read_++] = length_;
        if (lengths_read_ == 2) start_fields();
    }
    void start_fields() {
        field_ = 0;
        left_ = lengths_[0];
        if (left_ == 0) next_field();
    }
    void next_field() {
        if (field_ == 0) {
            field_ = 1;
            left_ = lengths_[1];
            if (left_ > 0) return;
        }
        lengths_read_ = 0;  // the next pair
    }

    unsigned long lengths_[2] = {0, 0};
    unsigned long length_ = 0;
    unsigned long left_ = 0;
    int length_bytes_ = 0;
    int lengths_read_ = 0;
    int field_ = 0;
    bool nul_ = false;
};

}  // namespace

RequestScan scan_fastcgi_request(const unsigned char* data, size_t size) {
    RequestScan scan;
    ParamBytes params;
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
        if (header[1] == kParams && scan.params_end == 0) {
            params.feed(header + kHeaderSize, content);
            scan.params_hold_nul = params.nul();
        }
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

// FastCGI framing facts the engine needs before it reads (fastcgi_input.h does that):
// whether the bytes waiting on a connection already hold a whole request; and the records
// of an answer, with what writing them costs on the wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

// How far the first bytes of a FastCGI connection go. The web server writes
// BEGIN_REQUEST, PARAMS records ending with an empty one, then STDIN records ending with
// an empty one. The reads of a request block; once every byte is there, none of them can.
struct RequestScan {
    enum State {
        Incomplete,  // more bytes are needed
        Complete,    // the whole request, through the empty STDIN record, is there
        Malformed,   // not FastCGI version 1: reading it fails without waiting
    } state = Incomplete;
    size_t params_end = 0;   // bytes through the empty PARAMS record; 0 while not seen
    size_t request_end = 0;  // bytes through the empty STDIN record; 0 while not seen
};

RequestScan scan_fastcgi_request(const unsigned char* data, size_t size);

// What ending a request adds: the empty STDOUT record and FCGI_END_REQUEST.
constexpr size_t kFastCgiEndCost = 8 + 16;

// An answer's STDOUT records carry at most this much each (libfcgi's 8 KiB buffer less the
// header, a multiple of 8: a full record needs no padding).
constexpr size_t kFastCgiRecordContent = 8184;
constexpr unsigned char kFastCgiStdout = 6;

// The 8 bytes of a record's header at `at` (version 1).
void put_fastcgi_header(char* at, unsigned char type, uint16_t id, size_t content, size_t padding);
// Zero bytes after `content` bytes of content, so the record ends on a multiple of 8.
inline size_t fastcgi_padding(size_t content) { return (8 - content % 8) % 8; }
// The end of an answer: the empty STDOUT record and END_REQUEST (request complete, status 0).
void append_fastcgi_end(std::string& out, uint16_t id);

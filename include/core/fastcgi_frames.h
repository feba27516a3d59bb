// FastCGI framing facts the engine needs without parsing the protocol itself (libfcgi
// does that): whether the bytes waiting on a connection already hold a whole request,
// and what writing an answer costs on the wire.
#pragma once

#include <cstddef>

// How far the first bytes of a FastCGI connection go. The web server writes
// BEGIN_REQUEST, PARAMS records ending with an empty one, then STDIN records ending with
// an empty one. libfcgi reads all of that with blocking reads; once every byte is
// there, none of those reads can block.
struct RequestScan {
    enum State {
        Incomplete,  // more bytes are needed
        Complete,    // the whole request, through the empty STDIN record, is there
        Malformed,   // not FastCGI version 1: libfcgi will refuse it without waiting
    } state = Incomplete;
    size_t params_end = 0;   // bytes through the empty PARAMS record; 0 while not seen
    // A param name or value holds a NUL byte: libfcgi keeps params as C strings and would
    // cut it short there, so the proxy would read another value than the web server sent.
    bool params_hold_nul = false;
    size_t request_end = 0;  // bytes through the empty STDIN record; 0 while not seen
};

RequestScan scan_fastcgi_request(const unsigned char* data, size_t size);

// What ending a request adds: the empty STDOUT record and FCGI_END_REQUEST.
constexpr size_t kFastCgiEndCost = 8 + 16;

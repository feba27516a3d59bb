// The web server's side of one request, whatever carries it (FastCGI or plain CGI).
#pragma once

#include <cstddef>

#include "request.h"

class Connection {
public:
    virtual ~Connection() = default;

    virtual const CgiParams& params() const = 0;
    // Whether no param's name or value is known to hold CR, LF or NUL (false: not known).
    virtual bool params_plain() const { return false; }

    // The params, and the request's views into them, are not looked at again: their rooms may go.
    virtual void release_params() {}

    // Reads up to `size` body bytes: the count, 0 at the end of the body, -1 on error.
    // Called only where waiting is allowed (plain CGI, a reader thread) or where every
    // byte of the body is known to have arrived.
    virtual long read_body(char* buffer, size_t size) = 0;
    // The last failed read failed because the client took too long.
    virtual bool read_timed_out() const { return false; }

    // Whether `size` more bytes of answer can be written without the web server having
    // to drain first. Writers of long answers check it and pause when it says no.
    virtual bool can_take(size_t size) const = 0;

    // Adds to the answer; what does not fit waits (bounded: only short writes skip
    // can_take). It reaches the web server by the end of the loop's iteration.
    // False once the web server's connection is gone.
    virtual bool write(const char* data, size_t size) = 0;
};

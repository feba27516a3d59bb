// The web server's side of one request, whatever carries it (FastCGI or plain CGI).
#pragma once

#include <cstddef>

#include "request.h"

class Client {
public:
    virtual ~Client() = default;
    virtual const CgiParams& params() const = 0;
    // Reads up to `size` body bytes: the count, 0 at the end of the body, -1 on error.
    virtual long read_body(char* buffer, size_t size) = 0;
    // Writes and flushes at once, so nothing waits in a buffer; false once the web
    // server's connection is gone.
    virtual bool write(const char* data, size_t size) = 0;
    // A descriptor that turns readable when the web server drops the request, or -1.
    virtual int watch_fd() const = 0;
    // True when the web server has dropped the request (its client went away).
    virtual bool gone() = 0;
};

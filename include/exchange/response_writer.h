// The last step before the web server: writes the answer through the connection, the CGI
// head once, then body bytes as they come, and remembers what it sent for the log.
#pragma once

#include <string>

#include "config.h"
#include "connection.h"
#include "response.h"

class ResponseWriter {
public:
    ResponseWriter(Connection& connection, ProxyMode mode)
        : connection_(connection), cors_(mode == ProxyMode::Azure ? &cors_fields() : nullptr) {}

    // The CORS headers for this request's origin (azure mode; set once its headers are known).
    void set_cors(const Config& config, const Request& request);

    bool head(int status, Headers headers);
    bool head_from(int status, const FieldViews& headers);  // headers held elsewhere (a relayed answer's)
    bool body(const char* data, size_t size);
    bool can_take(size_t size) const { return connection_.can_take(size); }

    // A whole answer: head and body, written at once.
    void complete(int status, const std::string& content_type, const std::string& body_text,
                  Headers extra = {});
    void error(const ProxyError& error, Headers extra = {});

    bool head_sent() const { return head_sent_; }
    // The answer cannot be completed: the request ends without FastCGI's END_REQUEST, so
    // the web server cuts the client's connection and no client takes it for whole.
    void cut_short() { cut_ = true; }
    bool cut() const { return cut_; }
    int status() const { return status_; }
    long long bytes() const { return bytes_; }
    const std::string& error_code() const { return error_code_; }

private:
    Connection& connection_;
    const std::string* cors_;  // fields added to every answer (head_fields); null: none (openai mode)
    std::string origin_cors_;  // for a proxy that names its origins
    std::string error_code_;  // of the error the proxy answered itself, if any
    bool head_sent_ = false;
    bool cut_ = false;
    int status_ = 0;
    long long bytes_ = 0;
};

// The libcurl edge: sends one UpstreamRequest and relays the answer as it arrives.
#pragma once

#include <curl/curl.h>

#include <string>

#include "client.h"
#include "config.h"
#include "request.h"
#include "spool.h"
#include "translate.h"

// How the caller hears of the upstream's answer. Returning false aborts the transfer.
class UpstreamListener {
public:
    virtual ~UpstreamListener() = default;
    virtual bool on_head(long status, const Headers& headers) = 0;
    virtual bool on_data(const char* data, size_t size) = 0;
    // Called when nothing arrived for a while; may write to the client.
    virtual bool on_idle() { return true; }
};

enum class UpstreamOutcome {
    Completed,    // the whole answer was relayed
    Unreachable,  // no connection, or it broke before an answer
    TimedOut,     // no byte from the upstream within the timeout
    ClientGone,   // the web server dropped the request; transfer aborted
    Stopped,      // the program is stopping; transfer aborted
    Failed,       // anything else (details in `error`)
};

// Where the request body comes from: a buffer already read, a spooled upload, or the
// client, streamed.
struct RequestBody {
    const std::string* buffer = nullptr;  // when set, sent as is
    Spool* spool = nullptr;               // when set, read from its start
    Client* stream = nullptr;             // when set, read while sending
    long long length = -1;                // stream length; -1 sends it chunked
};

struct UpstreamResult {
    UpstreamOutcome outcome = UpstreamOutcome::Failed;
    long status = 0;     // the upstream's HTTP status, 0 if none arrived
    std::string error;   // libcurl's message for logs; never contains headers
};

// One per thread: keeps its connections alive between requests.
class UpstreamClient {
public:
    // `stop_fd` turns readable when the program must stop.
    UpstreamClient(const Config& config, int stop_fd);
    ~UpstreamClient();
    UpstreamClient(const UpstreamClient&) = delete;
    UpstreamClient& operator=(const UpstreamClient&) = delete;

    UpstreamResult send(const UpstreamRequest& request, const RequestBody& body, Client& client,
                        UpstreamListener& listener);

private:
    const Config& config_;
    int stop_fd_;
    CURL* easy_;
    CURLM* multi_;
};

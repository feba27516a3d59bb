// The peek scanner sees whatever bytes arrive on the FastCGI socket: it never reads past
// them, and what it reports lies within them.

#include "invariant.h"
#include "fastcgi_frames.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    RequestScan scan = scan_fastcgi_request(data, size);
    REQUIRE(scan.params_end <= size && scan.request_end <= size);
    REQUIRE(scan.state != RequestScan::Complete || scan.request_end != 0);
    REQUIRE(!scan.request_end || scan.request_end >= scan.params_end);
    return 0;
}

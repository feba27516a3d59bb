// The process's descriptor limit, raised as far as it may go, and how many connections
// needing `per_item` descriptors each fit in it (descriptor_limit.cpp).
#pragma once

// At most `wanted` items of `per_item` descriptors (requests in flight: 2, the web server's
// connection and the upstream's; a realtime session: 2, the client's and Azure's), within
// the raised limit minus a reserve; when fewer fit, one line on stderr names `what` and
// `variable`, and the number that fits comes back.
long items_within_descriptors(long wanted, long per_item, const char* what, const char* variable);

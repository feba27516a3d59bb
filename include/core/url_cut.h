// An upstream URL cut where its origin ends. libcurl 7.88 parses the whole URL of every
// transfer, formats it whole again, and formats the path and the query together twice more
// (about 23,000 instructions of a small request's 168,700). Handed an origin it parsed once
// per loop, with the request target (path and query as they stand) set as its path
// (parsed_origins.cpp), it does none of that and sends the same request
// line — where it would have taken that path and that query as they stand.
#pragma once

#include <optional>
#include <string_view>

struct UrlCut {
    std::string_view origin;  // "scheme://authority"
    std::string_view target;  // the rest: the path from its '/', then any '?' and query
};

// The cut when the target is plain: printable ASCII without '#', '%' or a space, a path
// without "." or ".." segments, a '?' followed by a query. libcurl's parser would change or
// refuse anything else (dot segments resolved, a fragment cut off, percent escapes' case,
// control bytes refused), so such a URL is left to it: nullopt.
std::optional<UrlCut> cut_plain_url(std::string_view url);

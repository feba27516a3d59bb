// A request's headers for a test: Request holds views (request.h), so the strings they
// view are kept here for the test program's life.
#pragma once

#include <list>

#include "request.h"

inline RequestHeaders kept_headers(Headers headers) {
    static std::list<Headers> kept;  // a list: what is kept never moves
    kept.push_back(std::move(headers));
    RequestHeaders views;
    for (const Header& header : kept.back()) views.push_back({header.name, header.value});
    return views;
}

// What the proxy answers itself, without the upstream: CORS preflights, /healthz,
// /metrics, the configured models list, and the routes it has no use for (a bad path, an
// unknown route, a method the API lacks, realtime over FastCGI).
#pragma once

#include "config.h"
#include "request.h"
#include "response_writer.h"
#include "api_routes.h"

class SharedState;

// True when the route is answered here (through `writer`); false when it goes upstream.
bool answer_locally(const Route& route, const Request& request, const Config& config, SharedState& state,
                    ResponseWriter& writer);

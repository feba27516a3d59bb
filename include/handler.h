// Serves one request: route, answer inline or translate and relay the upstream's answer.
#pragma once

#include "client.h"
#include "config.h"
#include "upstream.h"

void handle_request(const Config& config, UpstreamClient& upstream, Client& client);

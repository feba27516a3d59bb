// Which credential, which target and which route a realtime session's try takes (issue 25,
// the companion azure-openai-proxy-realtime): plain decisions beside realtime_socket.h's,
// the Entra ID token and the targets' health handed in by the companion's edges.
#pragma once

#include <string>

#include "config.h"
#include "realtime_socket.h"
#include "target_choice.h"

// The endpoint's own Entra ID identity opens its sessions: a try waits for its token.
bool realtime_uses_token(const EndpointSettings& settings);

// The credential headers of the upstream handshake. An endpoint with an identity sends
// its token (`authorization`: the keeper's "Authorization: Bearer …" line), never a key;
// any other, realtime_upstream_headers() (its key, else the client's). Empty: none to send.
Headers realtime_credential_headers(const EndpointSettings& settings, const std::string& client_key,
                                    const std::string& authorization);

// How a try's handshake counts for its target, as an HTTP answer counts for chat: opened
// (101) or refused for the client's own reasons (401, 403, 404…) is the client's answer;
// unreachable (`status` 0: no connection, no TLS, no answer in time) or 5xx failed; 429 a
// rate limit.
TryResult realtime_try_result(bool opened, int status);

// A try that failed or met a rate limit goes to another target while the policy's tries
// (`tries` made so far) allow it; the client's own refusal (401, 404…) never does.
bool realtime_tries_next(TryResult result, int tries, const RetryPolicy& policy);

// AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION: a dated version such as
// 2024-10-01-preview, put in the preview route's query as it is (digits, letters, '-', '.').
bool valid_realtime_api_version(const std::string& version);

// One Entra ID token request, made and read with libcurl (blocking: the keeper's thread, or
// the start before any thread or worker), the federated token file read anew for it; the
// identity's text that names its token in the shared state; and the start's check of the
// credential, which stops the program on a definitive refusal.
#pragma once

#include <atomic>
#include <string>

#include "config.h"
#include "credential.h"
#include "routing_credential.h"

class SharedState;

// The token request's whole time, connection included: a slow endpoint fails it, and the
// keeper retries.
const long kTokenRequestTimeoutS = 10;
// How long the process that asks Entra holds the identity's lease in the shared state: the
// request's whole time and a margin (its death ends the lease sooner).
const int64_t kTokenLeaseMs = (kTokenRequestTimeoutS + 5) * 1000;
// A token answer is a few KiB; a longer one fails the request.
const size_t kLongestTokenAnswer = 64 * 1024;

// One token request; `stopping` aborts it. The error never holds the request (its secret).
TokenAnswer fetch_token(const CredentialSettings& credential, const ProcessSettings& transport,
                        const std::atomic<bool>& stopping);

// aop_entra_token_requests_total{source,outcome}, one more.
void count_token_request(SharedState& state, const CredentialSettings& credential, const TokenAnswer& answer);

// At start, before any worker or thread: the credential tried once (unless the shared state
// holds a token for it already, or another process is asking), the token left in `state`
// for the workers. False when Entra refused the credential for good: `line` says so, naming
// the endpoint (a routing file's; "" for the environment's), the source and Entra's code.
// Unreachable or 5xx: true, and `line` is a warning. `stopping` (set by SIGTERM) ends the
// check at once: true, `line` empty.
bool check_credential_at_start(const HostCredential& credential, const ProcessSettings& transport,
                               SharedState* state, const std::atomic<bool>& stopping, std::string& line);

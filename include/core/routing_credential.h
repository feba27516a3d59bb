// The `credential` member of a routing file's endpoint (issue 23): the endpoint's own Entra
// ID identity, so two resources in two tenants each get their own token.
//   {"source": "client-secret", "tenant": "...", "client_id": "...", "client_secret": "env:NAME"}
// Members: source (client-secret, client-certificate, workload-identity, managed-identity,
// default), tenant, client_id, client_secret and certificate_password (env:NAME,
// file:/path, or the value itself, as an endpoint's key), certificate (the PEM's path),
// federated_token_file, authority_host, scope, identity_endpoint, identity_header (a
// secret too), imds_endpoint. Checked as the environment's are
// (credential_settings.cpp), a certificate signed once.
#pragma once

#include <cjson/cJSON.h>

#include <string>
#include <vector>

#include "config.h"
#include "credential.h"
#include "routing.h"

// A secret of the routing file (an endpoint's or a client's key, a credential's
// client_secret, certificate_password or identity_header): "env:NAME" (the variable's
// value), "file:/path" (the file's content, trimmed) or the secret itself. `shown`: what
// may be shown of it ("env:NAME", "file:/path" or "inline"). false with `error`, words
// naming no secret: a variable unset or holding file:/path, a file unreadable or empty, a
// control character (or a space, unless `spaces`: a certificate's password may hold one).
bool read_routing_secret(const std::string& value, EnvironmentLookup lookup, void* context, bool spaces,
                         std::string& secret, std::string& shown, std::string& error);

// false with `error`: one line naming the member, never a secret.
bool read_routing_credential(const cJSON* member, EnvironmentLookup lookup, void* context, CredentialSettings& settings,
                             std::string& error);

// An endpoint's credential read in place of its key: the problem in one line (a key given
// as well, an endpoint in openai mode, the credential's own), or empty.
std::string endpoint_credential_problem(const cJSON* member, const std::string& key, ProxyMode mode, EnvironmentLookup lookup,
                                        void* context, CredentialSettings& settings);

// An Entra ID identity the host holds, and where it was found first: "" for the
// environment's endpoint (AZURE_OPENAI_PROXY_CREDENTIAL), else a routing-file endpoint's name.
struct HostCredential {
    std::string endpoint;
    CredentialSettings settings;
};

// Every identity of the configuration, once each (endpoints of one identity share its
// token): the environment's endpoint's first, then the routing file's endpoints' in order.
// What the start tries before any worker, and what each worker keeps renewed.
std::vector<HostCredential> host_credentials(const Config& config);

// The `credential` member of a routing file's endpoint (issue 23): the endpoint's own Entra
// ID identity, so two resources in two tenants each get their own token.
//   {"source": "client-secret", "tenant": "...", "client_id": "...", "client_secret": "env:NAME"}
// Members: source (client-secret, client-certificate, workload-identity, managed-identity,
// default), tenant, client_id, client_secret and certificate_password (env:NAME,
// file:/path, or the value itself, as an endpoint's key), certificate (the PEM's path),
// federated_token_file, authority_host, scope, identity_endpoint, identity_header
// (env:NAME or the value), imds_endpoint. Checked as the environment's are
// (credential_settings.cpp), a certificate signed once.
#pragma once

#include <cjson/cJSON.h>

#include <string>

#include "config.h"
#include "credential.h"
#include "routing.h"

// false with `error`: one line naming the member, never a secret.
bool read_routing_credential(const cJSON* member, EnvironmentLookup lookup, void* context, CredentialSettings& settings,
                             std::string& error);

// An endpoint's credential read in place of its key: the problem in one line (a key given
// as well, an endpoint in openai mode, the credential's own), or empty.
std::string endpoint_credential_problem(const cJSON* member, const std::string& key, ProxyMode mode, EnvironmentLookup lookup,
                                        void* context, CredentialSettings& settings);

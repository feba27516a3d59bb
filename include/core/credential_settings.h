// An endpoint's Entra ID credential from the environment, under the names Azure's SDKs read.
#pragma once

#include <string>

#include "config.h"
#include "credential.h"

// AZURE_OPENAI_PROXY_CREDENTIAL (client-secret, workload-identity, managed-identity) and
// the variables of its source: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
// (or file:/path), AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT,
// IDENTITY_HEADER, AZURE_OPENAI_PROXY_IMDS_ENDPOINT (tests), AZURE_OPENAI_PROXY_TOKEN_SCOPE.
// Unset: no credential. `error` is one line naming the variable, never a secret.
bool read_credential_settings(const Environment& env, CredentialSettings& settings, std::string& error);

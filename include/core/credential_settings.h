// An endpoint's Entra ID credential from the environment, under the names Azure's SDKs read.
#pragma once

#include <string>

#include "config.h"
#include "credential.h"

// AZURE_OPENAI_PROXY_CREDENTIAL (client-secret, client-certificate, workload-identity,
// managed-identity) and
// the variables of its source: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
// (or file:/path), AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_CERTIFICATE_PASSWORD (or
// file:/path), AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT,
// IDENTITY_HEADER, AZURE_OPENAI_PROXY_IMDS_ENDPOINT (tests), AZURE_OPENAI_PROXY_TOKEN_SCOPE.
// Unset: no credential. `error` is one line naming the variable, never a secret.
bool read_credential_settings(const Environment& env, CredentialSettings& settings, std::string& error);

// A client-certificate credential's PEM checked by signing one assertion (true for the
// other sources); `error` names the file and the cause, never the key or its password.
bool check_client_certificate(const CredentialSettings& settings, std::string& error);

// The source AZURE_OPENAI_PROXY_CREDENTIAL=default takes, decided once from the environment
// in the order of the SDKs' DefaultAzureCredential: the environment's service principal
// (AZURE_TENANT_ID + AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, else with
// AZURE_CLIENT_CERTIFICATE_PATH), workload identity (the same two with
// AZURE_FEDERATED_TOKEN_FILE), else managed identity (App Service when IDENTITY_ENDPOINT
// is set, else the instance metadata endpoint). `reason`: which variable decided it.
CredentialSource default_credential_source(const Environment& env, std::string& reason);

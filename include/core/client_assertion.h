// The client assertion of a certificate credential (issue 23): the JWT Entra takes instead
// of a secret, laid out as Azure's SDKs (MSAL) make it — RS256, the certificate's SHA-1
// and SHA-256 thumbprints in the header, aud the token endpoint, iss = sub the client id,
// a random jti, valid ten minutes. Pure: the OpenSSL edge (client_certificate.cpp) reads
// the PEM, signs, and brings the clock and the randomness.
#pragma once

#include <cstdint>
#include <string>

struct CredentialSettings;

struct AssertionFacts {
    std::string x5t;         // base64url SHA-1 of the certificate's DER
    std::string x5t_s256;    // base64url SHA-256 of the same
    std::string audience;    // the token endpoint's URL
    std::string client_id;
    std::string jti;         // random, one per assertion
    int64_t now_s = 0;
};

const int64_t kAssertionLifetimeS = 600;

std::string base64url(const std::string& bytes);

// "header.claims", both base64url JSON: what is signed.
std::string assertion_signing_input(const AssertionFacts& facts);

// The compact JWT: the signing input, ".", the signature in base64url.
std::string assertion_with_signature(const std::string& signing_input, const std::string& signature);

// Makes a certificate credential's client assertion for `audience` now, or says why not
// in one line (never the key or its password). Installed by the signing edge as the
// program starts; core holds no key, clock or randomness of its own.
using AssertionSigner = bool (*)(const CredentialSettings& settings, const std::string& audience,
                                 std::string& assertion, std::string& error);
void install_assertion_signer(AssertionSigner signer);
AssertionSigner installed_assertion_signer();  // null where no edge is linked (fuzz targets)

// The signing edge of certificate credentials (issue 23): the PEM read anew for each token
// request (a renewed certificate is taken), its certificate's thumbprints, the private key
// checked against it, the client assertion signed RS256 with OpenSSL, the clock and a
// random jti. Installs itself as core's AssertionSigner before main. Every OpenSSL handle
// is owned; every return checked; an error names the cause, never the key or password.
// Tests: client_certificate_test.cpp; through Entra's stand-in: entra-certificate.test.mjs.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "client_assertion.h"
#include "credential.h"
#include "text.h"

namespace {

const size_t kLongestPem = 1 << 20;  // a certificate with its key and chain is a few KiB

template <typename T, void (*Free)(T*)>
struct Freer {
    void operator()(T* handle) const { Free(handle); }
};
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using Certificate = std::unique_ptr<X509, Freer<X509, X509_free>>;
using PrivateKey = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using DigestContext = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;

// OpenSSL's reason for the last failure, its queue emptied.
std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    const char* reason = code ? ERR_reason_error_string(code) : nullptr;
    return reason ? reason : "unknown OpenSSL error";
}

bool read_pem(const std::string& path, std::string& text, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    if (!in || !(content << in.rdbuf())) {
        error = "cannot read '" + log_safe(path, 120) + "'";
        return false;
    }
    text = content.str();
    if (text.size() > kLongestPem) error = "'" + log_safe(path, 120) + "' is over 1 MiB: not a PEM certificate";
    return error.empty();
}

// The password callback: the configured password, or none (an encrypted key then fails).
int give_password(char* buffer, int size, int, void* password) {
    const std::string& text = *static_cast<const std::string*>(password);
    if (text.size() > static_cast<size_t>(size)) return -1;
    text.copy(buffer, text.size());
    return static_cast<int>(text.size());
}

struct Identity {
    Certificate certificate;
    PrivateKey key;
};

// The first certificate of the PEM (the leaf, as the SDKs take it) and its private key.
bool load_identity(const CredentialSettings& s, Identity& identity, std::string& error) {
    std::string text;
    if (!read_pem(s.certificate_path, text, error)) return false;
    std::string where = "'" + log_safe(s.certificate_path, 120) + "'";
    Bio certificates(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    Bio keys(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!certificates || !keys) {
        error = "out of memory reading " + where;
        return false;
    }
    identity.certificate.reset(PEM_read_bio_X509(certificates.get(), nullptr, nullptr, nullptr));
    if (!identity.certificate) {
        ERR_clear_error();
        error = where + " holds no PEM certificate";
        return false;
    }
    std::string password = s.certificate_password;
    identity.key.reset(PEM_read_bio_PrivateKey(keys.get(), nullptr, give_password, &password));
    if (!identity.key) {
        error = where + " holds no private key it can read (" + openssl_reason() + ")" +
                (s.certificate_password.empty() ? "; an encrypted key needs AZURE_CLIENT_CERTIFICATE_PASSWORD" : "");
        return false;
    }
    if (EVP_PKEY_base_id(identity.key.get()) != EVP_PKEY_RSA) {
        error = where + ": the private key is not RSA (Entra takes RS256 assertions)";
        return false;
    }
    if (X509_check_private_key(identity.certificate.get(), identity.key.get()) != 1) {
        ERR_clear_error();
        error = where + ": the private key is not the certificate's";
        return false;
    }
    return true;
}

bool thumbprint(const X509* certificate, const EVP_MD* digest, std::string& out) {
    unsigned char bytes[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(certificate, digest, bytes, &length) != 1) return false;
    out = base64url(std::string(reinterpret_cast<const char*>(bytes), length));
    return true;
}

bool sign_rs256(EVP_PKEY* key, const std::string& input, std::string& signature) {
    DigestContext context(EVP_MD_CTX_new());
    size_t length = 0;
    if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSignUpdate(context.get(), input.data(), input.size()) != 1 ||
        EVP_DigestSignFinal(context.get(), nullptr, &length) != 1)
        return false;
    signature.assign(length, '\0');
    if (EVP_DigestSignFinal(context.get(), reinterpret_cast<unsigned char*>(&signature[0]), &length) != 1) return false;
    signature.resize(length);
    return true;
}

// 16 random bytes as a UUID-shaped jti.
bool random_jti(std::string& jti) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    static const char hex[] = "0123456789abcdef";
    jti.clear();
    for (size_t i = 0; i < sizeof bytes; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) jti += '-';
        jti += hex[bytes[i] >> 4];
        jti += hex[bytes[i] & 15];
    }
    return true;
}

bool sign_client_assertion(const CredentialSettings& s, const std::string& audience, std::string& assertion,
                           std::string& error) {
    Identity identity;
    if (!load_identity(s, identity, error)) return false;
    AssertionFacts facts;
    facts.audience = audience;
    facts.client_id = s.client_id;
    facts.now_s = static_cast<int64_t>(std::time(nullptr));
    if (!thumbprint(identity.certificate.get(), EVP_sha1(), facts.x5t) ||
        !thumbprint(identity.certificate.get(), EVP_sha256(), facts.x5t_s256) || !random_jti(facts.jti)) {
        error = "cannot take the certificate's thumbprint or a random jti (" + openssl_reason() + ")";
        return false;
    }
    std::string input = assertion_signing_input(facts), signature;
    if (!sign_rs256(identity.key.get(), input, signature)) {
        error = "cannot sign the client assertion (" + openssl_reason() + ")";
        return false;
    }
    assertion = assertion_with_signature(input, signature);
    return true;
}

// Before main: the configuration's check and every token request find the signer. The
// program and the unit tests link every object file (no archive), so this always runs.
[[maybe_unused]] const bool installed = (install_assertion_signer(sign_client_assertion), true);

}  // namespace

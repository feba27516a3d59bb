// client_certificate.cpp: a client assertion signed with a fixed key verifies against its
// certificate (OpenSSL, as Entra checks it) and carries the certificate's thumbprint; an
// unreadable file, a PEM without its key or its certificate, and a key that is not the
// certificate's are refused in one line that holds no key.
#include <boost/test/unit_test.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <memory>
#include <string>

#include "certificate_fixture.h"
#include "client_assertion.h"
#include "credential.h"
#include "routing_file_env.h"

namespace {

CredentialSettings certificate_credential(const std::string& path) {
    CredentialSettings s;
    s.source = CredentialSource::ClientCertificate;
    s.tenant_id = "contoso";
    s.client_id = "11111111-2222";
    s.certificate_path = path;
    return s;
}

struct SignResult {
    bool ok = false;
    std::string assertion, error;
};

SignResult sign_with(const std::string& pem, const std::string& password = "") {
    std::string path = write_temp(pem);
    SignResult r;
    AssertionSigner sign = installed_assertion_signer();
    BOOST_REQUIRE(sign);
    CredentialSettings settings = certificate_credential(path);
    settings.certificate_password = password;
    r.ok = sign(settings, "https://login.example/contoso/oauth2/v2.0/token", r.assertion, r.error);
    unlink(path.c_str());
    return r;
}

// The RS256 signature checked with the certificate's public key.
bool verifies(const std::string& jwt) {
    size_t dot = jwt.rfind('.');
    std::string input = jwt.substr(0, dot), signature_text = jwt.substr(dot + 1);
    for (char& c : signature_text) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (signature_text.size() % 4) signature_text += '=';
    std::string signature(signature_text.size(), '\0');
    int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&signature[0]),
                                 reinterpret_cast<const unsigned char*>(signature_text.data()), static_cast<int>(signature_text.size()));
    if (length < 0) return false;
    signature.resize(static_cast<size_t>(length) - (signature_text.size() - signature_text.find_last_not_of('=') - 1));
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(kTestCertificate, -1), BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(X509_get_pubkey(certificate.get()), EVP_PKEY_free);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    return key && context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
           EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(client_certificate)

BOOST_AUTO_TEST_CASE(signs_an_assertion_the_certificate_verifies) {
    SignResult r = sign_with(std::string(kTestCertificate) + kTestCertificateKey);
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(verifies(r.assertion));
    std::string header = r.assertion.substr(0, r.assertion.find('.'));
    std::string again = base64url(std::string(R"({"alg":"RS256","typ":"JWT","x5t":")") + kTestCertificateX5t);
    // The header's JSON starts with alg, typ and the SHA-1 thumbprint (its first 48 bytes: 64 base64url characters).
    BOOST_TEST(header.substr(0, 64) == again.substr(0, 64));
    BOOST_TEST(!verifies(r.assertion.substr(0, r.assertion.size() - 4) + "AAAA"));
}

BOOST_AUTO_TEST_CASE(each_assertion_has_its_own_jti) {
    SignResult a = sign_with(std::string(kTestCertificateKey) + kTestCertificate);  // key first: also read
    SignResult b = sign_with(std::string(kTestCertificateKey) + kTestCertificate);
    BOOST_REQUIRE(a.ok && b.ok);
    BOOST_TEST(a.assertion != b.assertion);
}

BOOST_AUTO_TEST_CASE(an_encrypted_key_needs_its_password) {
    std::string pem = std::string(kTestCertificate) + kEncryptedTestCertificateKey;
    SignResult right = sign_with(pem, kEncryptedKeyPassword);
    BOOST_REQUIRE_MESSAGE(right.ok, right.error);
    BOOST_TEST(verifies(right.assertion));
    SignResult none = sign_with(pem);
    BOOST_TEST(!none.ok);
    BOOST_TEST(has(none.error, "an encrypted key needs AZURE_CLIENT_CERTIFICATE_PASSWORD"), none.error);
    SignResult wrong = sign_with(pem, "wrong-horse");
    BOOST_TEST(!wrong.ok);
    BOOST_TEST(has(wrong.error, "holds no private key it can read"), wrong.error);
    BOOST_TEST(!has(wrong.error, "wrong-horse"));
}

BOOST_AUTO_TEST_CASE(refuses_what_cannot_sign_in_one_line) {
    SignResult no_key = sign_with(kTestCertificate);
    BOOST_TEST(!no_key.ok);
    BOOST_TEST(has(no_key.error, "holds no private key"), no_key.error);
    SignResult no_certificate = sign_with(kTestCertificateKey);
    BOOST_TEST(has(no_certificate.error, "holds no PEM certificate"), no_certificate.error);
    SignResult other = sign_with(std::string(kTestCertificate) + kOtherKey);
    BOOST_TEST(has(other.error, "the private key is not the certificate's"), other.error);
    SignResult garbage = sign_with("not a pem at all");
    BOOST_TEST(!garbage.ok);
    for (const SignResult* r : {&no_key, &no_certificate, &other, &garbage}) {
        BOOST_TEST(r->error.find('\n') == std::string::npos);
        BOOST_TEST(!has(r->error, "PRIVATE KEY"));
    }
    std::string assertion, error;
    BOOST_TEST(!installed_assertion_signer()(certificate_credential("/nonexistent/cert.pem"), "aud", assertion, error));
    BOOST_TEST(error == "cannot read '/nonexistent/cert.pem'");
}

BOOST_AUTO_TEST_SUITE_END()

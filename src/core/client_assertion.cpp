// The client assertion's layout (client_assertion.h); tests: client_assertion_test.cpp.
#include "client_assertion.h"

#include "json_ptr.h"

namespace {

AssertionSigner signer = nullptr;  // set once, before main, by the signing edge

std::string encoded_json(const cJSON* object) { return base64url(print_json(object, "{}")); }

}  // namespace

std::string base64url(const std::string& bytes) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    auto byte = [&](size_t at) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])); };
    for (; i + 2 < bytes.size(); i += 3) {
        uint32_t group = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(group >> shift) & 63];
    }
    size_t left = bytes.size() - i;  // no padding in base64url (RFC 7515)
    if (left > 0) {
        uint32_t group = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        if (left == 2) out += alphabet[(group >> 6) & 63];
    }
    return out;
}

std::string assertion_signing_input(const AssertionFacts& facts) {
    JsonPtr header(cJSON_CreateObject());
    cJSON_AddStringToObject(header.get(), "alg", "RS256");
    cJSON_AddStringToObject(header.get(), "typ", "JWT");
    cJSON_AddStringToObject(header.get(), "x5t", facts.x5t.c_str());
    cJSON_AddStringToObject(header.get(), "x5t#S256", facts.x5t_s256.c_str());
    JsonPtr claims(cJSON_CreateObject());
    cJSON_AddStringToObject(claims.get(), "aud", facts.audience.c_str());
    cJSON_AddStringToObject(claims.get(), "iss", facts.client_id.c_str());
    cJSON_AddStringToObject(claims.get(), "sub", facts.client_id.c_str());
    cJSON_AddStringToObject(claims.get(), "jti", facts.jti.c_str());
    cJSON_AddNumberToObject(claims.get(), "nbf", static_cast<double>(facts.now_s));
    cJSON_AddNumberToObject(claims.get(), "iat", static_cast<double>(facts.now_s));
    cJSON_AddNumberToObject(claims.get(), "exp", static_cast<double>(facts.now_s + kAssertionLifetimeS));
    return encoded_json(header.get()) + "." + encoded_json(claims.get());
}

std::string assertion_with_signature(const std::string& signing_input, const std::string& signature) {
    return signing_input + "." + base64url(signature);
}

void install_assertion_signer(AssertionSigner installed) { signer = installed; }

AssertionSigner installed_assertion_signer() { return signer; }

// client_assertion.cpp: base64url as RFC 4648 gives it, and the assertion's header and
// claims as Azure's SDKs lay them out.
#include <boost/test/unit_test.hpp>

#include <cjson/cJSON.h>

#include <string>

#include "client_assertion.h"
#include "json_ptr.h"

namespace {

std::string base64url_decoded(std::string text) {
    for (char& c : text) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (text.size() % 4) text += '=';
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t group = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=') break;
        group = group << 6 | static_cast<uint32_t>(alphabet.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((group >> bits) & 0xff);
        }
    }
    return out;
}

JsonPtr part(const std::string& jwt, int index) {
    size_t start = 0;
    for (int i = 0; i < index; ++i) start = jwt.find('.', start) + 1;
    std::string text = base64url_decoded(jwt.substr(start, jwt.find('.', start) - start));
    return JsonPtr(cJSON_Parse(text.c_str()));
}

std::string text_of(const JsonPtr& object, const char* name) {
    const char* value = json_string_member(object.get(), name);
    return value ? value : "(none)";
}

double number_of(const JsonPtr& object, const char* name) {
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(object.get(), name));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(client_assertion)

BOOST_AUTO_TEST_CASE(base64url_has_no_padding_and_the_url_alphabet) {
    BOOST_TEST(base64url("") == "");
    BOOST_TEST(base64url("f") == "Zg");
    BOOST_TEST(base64url("fo") == "Zm8");
    BOOST_TEST(base64url("foo") == "Zm9v");
    BOOST_TEST(base64url("foob") == "Zm9vYg");
    BOOST_TEST(base64url("fooba") == "Zm9vYmE");
    BOOST_TEST(base64url("foobar") == "Zm9vYmFy");
    BOOST_TEST(base64url(std::string("\xfb\xff\xfe", 3)) == "-__-");
}

BOOST_AUTO_TEST_CASE(header_and_claims_are_the_sdks) {
    AssertionFacts facts;
    facts.x5t = "61SanPPm6ST8CB3mBytbR2_muMk";
    facts.x5t_s256 = "FDb7RikqKtmScmiPZx3Z54dkfYi5CWFZBGBPWobqgKY";
    facts.audience = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
    facts.client_id = "11111111-2222";
    facts.jti = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    facts.now_s = 1'700'000'000;
    std::string input = assertion_signing_input(facts);
    BOOST_TEST(input.find('=') == std::string::npos);
    JsonPtr header = part(input, 0), claims = part(input, 1);
    BOOST_REQUIRE(header);
    BOOST_REQUIRE(claims);
    BOOST_TEST(text_of(header, "alg") == "RS256");
    BOOST_TEST(text_of(header, "typ") == "JWT");
    BOOST_TEST(text_of(header, "x5t") == facts.x5t);
    BOOST_TEST(text_of(header, "x5t#S256") == facts.x5t_s256);
    BOOST_TEST(text_of(claims, "aud") == facts.audience);
    BOOST_TEST(text_of(claims, "iss") == "11111111-2222");
    BOOST_TEST(text_of(claims, "sub") == "11111111-2222");
    BOOST_TEST(text_of(claims, "jti") == facts.jti);
    BOOST_TEST(number_of(claims, "nbf") == 1'700'000'000.0);
    BOOST_TEST(number_of(claims, "iat") == 1'700'000'000.0);
    BOOST_TEST(number_of(claims, "exp") == 1'700'000'600.0);
    std::string jwt = assertion_with_signature(input, "sig");
    BOOST_TEST(jwt == input + ".c2ln");
}

BOOST_AUTO_TEST_SUITE_END()

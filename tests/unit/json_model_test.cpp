// json_model.cpp: strict JSON, and the body's model and stream read as cJSON reads them.
#include <boost/test/unit_test.hpp>

#include <string>

#include "json_members.h"
#include "json_model.h"

BOOST_AUTO_TEST_SUITE(json_model)

BOOST_AUTO_TEST_CASE(plain_json_is_valid) {
    JsonCheck c = check_json(R"( {"model":"gpt-4o","n":-1.5e+3,"a":[true,false,null,{}],"s":"\u00e9\n"} )");
    BOOST_TEST(c.valid);
    BOOST_TEST(c.model_keys == 1);
    BOOST_TEST(!c.model_ambiguous);
    BOOST_TEST(check_json("\"caf\xc3\xa9\"").valid);
    BOOST_TEST(check_json("[\"\xf0\x9f\x98\x80\"]").valid);
}

BOOST_AUTO_TEST_CASE(what_cjson_forgives_is_invalid) {
    BOOST_TEST(!check_json("{\"model\"\x01:\"a\"}").valid);     // a control byte as space
    BOOST_TEST(!check_json("{\"model\":\"a\x01\"}").valid);      // raw control in a string
    BOOST_TEST(!check_json("{\"model\":\"\xc3\x28\"}").valid);   // broken UTF-8
    BOOST_TEST(!check_json("{\"model\":\"\xe0\x80\xaf\"}").valid);  // overlong
    BOOST_TEST(!check_json("{\"model\":\"\xed\xa0\x80\"}").valid);  // a surrogate
    BOOST_TEST(!check_json("{\"a\":01}").valid);
    BOOST_TEST(!check_json("{\"a\":1,}").valid);
    BOOST_TEST(!check_json("{\"a\":1} x").valid);
    BOOST_TEST(!check_json("{\"a\":\"\\x\"}").valid);
    BOOST_TEST(!check_json("{\"a\":tru}").valid);
    BOOST_TEST(!check_json(std::string(600, '[') + std::string(600, ']')).valid);
    BOOST_TEST(check_json(std::string(500, '[') + std::string(500, ']')).valid);
    BOOST_TEST(!check_json("").valid);
    BOOST_TEST(!check_json(R"({"a":"\ud800"})").valid);        // a lone high surrogate (cJSON refuses it too)
    BOOST_TEST(!check_json(R"({"a":"\udc00"})").valid);        // a lone low one
    BOOST_TEST(check_json(R"({"a":"\ud83d\ude00"})").valid);  // a pair
}

// Plain bytes are stepped over eight at a time: a byte that is not plain is found at
// every place in a long model, before, inside and after a step.
BOOST_AUTO_TEST_CASE(a_byte_that_is_not_plain_is_found_anywhere_in_a_long_string) {
    const std::string plain = "abcdefghijklmnopqrstuvwxyz";
    for (size_t at = 0; at <= plain.size(); ++at) {
        std::string before = plain.substr(0, at), after = plain.substr(at);
        auto model = [&](const std::string& middle) { return "{\"model\":\"" + before + middle + after + "\"}"; };
        for (char raw : {'\x01', '\x1f', '\x7f'}) {
            JsonCheck c = check_json(model(std::string(1, raw)));
            BOOST_TEST((c.valid == (raw == '\x7f')), "byte " << int(raw) << " at " << at);
            if (!c.valid) BOOST_TEST(c.stopped_at == 10 + at);
        }
        BOOST_TEST(!check_json(model("\x80")).valid);
        BOOST_TEST(!check_json(model("\xff")).valid);
        BOOST_TEST(model_from_json(model("\\n\\\"")).model == before + "\n\"" + after);
        BOOST_TEST(model_from_json(model("\xc3\xa9\xf0\x9f\x98\x80")).model == before + "\xc3\xa9\xf0\x9f\x98\x80" + after);
        BOOST_TEST(model_from_json("{\"model\":\"" + before + "\"}").model == before);
        BOOST_TEST(!check_json("{\"model\":\"" + before).valid);  // never closed
    }
}

BOOST_AUTO_TEST_CASE(the_model_and_stream_are_read_as_cjson_reads_them) {
    ModelField field = model_from_json(R"({"stream":true,"model":"caf\u00e9 \ud83d\ude00","stream":false})");
    BOOST_TEST((field.status == ModelField::Found));
    BOOST_TEST(field.model == "caf\xc3\xa9 \xf0\x9f\x98\x80");
    BOOST_TEST(field.stream);  // the first "stream"
    BOOST_TEST(!model_from_json(R"({"model":"a","stream":"true"})").stream);
    BOOST_TEST(model_from_json(R"({"model":"a","str\u0065am":true})").stream);
    BOOST_TEST((model_from_json("{\"model\":\"" + std::string(2000, 'm') + "\"}").status == ModelField::TooLong));
    BOOST_TEST((model_from_json(R"({"model":null})").status == ModelField::Missing));
    BOOST_TEST((model_from_json(R"({"model":false})").status == ModelField::NotAString));
    BOOST_TEST((model_from_json(R"([1])").status == ModelField::NotAnObject));
}

BOOST_AUTO_TEST_CASE(a_model_named_twice_or_in_disguise_is_ambiguous) {
    BOOST_TEST(check_json(R"({"model":"a","model":"../../x"})").model_keys == 2);
    BOOST_TEST(check_json(R"({"mod\u0065l":"a"})").model_ambiguous);
    BOOST_TEST(check_json(R"({"model":"gpt-4\u0000x"})").model_ambiguous);
    // A raw NUL is no JSON at all (raw control bytes are refused in every string).
    BOOST_TEST((model_from_json(std::string("{\"model\":\"gpt-4\0x\"}", 19)).status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json(R"({"model":"gpt-4\u0000x"})").status == ModelField::Ambiguous));
    BOOST_TEST(check_json(R"({"x":{"model":"a"},"model":"b"})").model_keys == 1);
    BOOST_TEST((model_from_json(R"({"model":"a","model":"b"})").status == ModelField::Ambiguous));
    BOOST_TEST((model_from_json("{\"model\"\x01:\"a\"}").status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json(R"({"model":"a"})").status == ModelField::Found));
}

BOOST_AUTO_TEST_CASE(model_field_is_read_from_json) {
    BOOST_TEST((model_from_json(R"({"model":"gpt-4o","x":1})").status == ModelField::Found));
    BOOST_TEST(model_from_json(R"({"model":"gpt-4o"})").model == "gpt-4o");
    BOOST_TEST((model_from_json("{\"model\":").status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json("").status == ModelField::InvalidJson));
    BOOST_TEST((model_from_json("[1]").status == ModelField::NotAnObject));
    BOOST_TEST((model_from_json("{}").status == ModelField::Missing));
    BOOST_TEST((model_from_json(R"({"model":null})").status == ModelField::Missing));
    BOOST_TEST((model_from_json(R"({"model":4})").status == ModelField::NotAString));
}

BOOST_AUTO_TEST_CASE(only_a_true_stream_field_asks_for_a_stream) {
    BOOST_TEST(model_from_json(R"({"model":"gpt-4o","stream":true})").stream);
    BOOST_TEST(model_from_json(R"({"stream":true})").stream);
    BOOST_TEST(!model_from_json(R"({"model":"gpt-4o","stream":false})").stream);
    BOOST_TEST(!model_from_json(R"({"model":"gpt-4o","stream":"true"})").stream);
    BOOST_TEST(!model_from_json(R"({"model":"gpt-4o","x":{"stream":true}})").stream);
    BOOST_TEST(!model_from_json(R"({"model":"gpt-4o"})").stream);
}

BOOST_AUTO_TEST_CASE(usage_is_asked_of_a_stream_leaving_every_other_byte) {
    std::string body = " {\"model\":\"gpt-4o\",\"stream\":true,\"n\":1.50}";
    BOOST_TEST(!model_from_json(body).stream_options);
    BOOST_REQUIRE(add_stream_usage(body));
    BOOST_TEST(body == " {\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\",\"stream\":true,\"n\":1.50}");
    ModelField field = model_from_json(body);
    BOOST_TEST(field.stream_options);
    BOOST_TEST(field.model == "gpt-4o");
    std::string nested = "{\"metadata\":{\"stream_options\":1}}";
    BOOST_TEST(!model_from_json(nested).stream_options);  // only the top level counts
    std::string list = "[1]";
    BOOST_TEST(!add_stream_usage(list));
}

BOOST_AUTO_TEST_CASE(a_top_level_member_is_found_with_its_span) {
    std::string json = "{\"a\":{\"model\":1},\"s\\u0041\":2, \"session\" : {\"x\":[1,\"}\"]}}";
    JsonMemberSearch member = find_json_member(json, "session");
    BOOST_TEST(member.object);
    BOOST_TEST(member.count == 1);
    BOOST_TEST(member.escaped_keys == 1);
    BOOST_TEST(json.substr(member.value, member.value_end - member.value) == "{\"x\":[1,\"}\"]}");
    BOOST_TEST(find_json_member(json, "model").count == 0);  // nested keys are not top-level
    BOOST_TEST(!find_json_member("[]", "a").object);
    // a text that breaks off: set_json_model refuses it rather than add a model
    std::string broken = "{\"a\":";
    BOOST_TEST(!set_json_model(broken, "m"));
}

BOOST_AUTO_TEST_SUITE_END()


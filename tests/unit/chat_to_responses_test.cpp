// chat_to_responses.cpp and chat_messages.cpp: a Chat Completions body rebuilt as a
// Responses API body; what has no equivalent refused with the parameter named; hostile
// bodies refused within bounds.
#include <boost/test/unit_test.hpp>

#include <cjson/cJSON.h>

#include <string>

#include "chat_to_responses.h"
#include "json_ptr.h"

namespace {

// The translated body as a tree; fails the test when the request was refused.
JsonPtr bridged(const std::string& chat) {
    BridgedRequest result = chat_to_responses(chat);
    BOOST_TEST_REQUIRE(result.ok, result.refusal.param + ": " + result.refusal.message);
    return JsonPtr(cJSON_Parse(result.body.c_str()));
}

std::string printed(const cJSON* json) { return print_json(json, "?"); }
std::string field(const JsonPtr& body, const char* name) { return printed(cJSON_GetObjectItemCaseSensitive(body.get(), name)); }

BridgeRefusal refusal(const std::string& chat) {
    BridgedRequest result = chat_to_responses(chat);
    BOOST_TEST(!result.ok);
    BOOST_TEST(result.body.empty());
    return result.refusal;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chat_to_responses_suite)

BOOST_AUTO_TEST_CASE(system_and_developer_messages_become_instructions_joined_by_a_blank_line) {
    JsonPtr body = bridged(R"({"model":"o3-pro","messages":[{"role":"system","content":"Be brief."},
        {"role":"developer","content":[{"type":"text","text":"Answer in French."},{"type":"text","text":"No lists."}]},
        {"role":"user","content":"Hi","name":"ann"}]})");
    BOOST_TEST(field(body, "instructions") == R"("Be brief.\n\nAnswer in French.\nNo lists.")");
    BOOST_TEST(field(body, "input") == R"([{"role":"user","content":"Hi"}])");
    BOOST_TEST(field(body, "model") == R"("o3-pro")");
    BOOST_TEST(field(body, "store") == "false");  // Chat Completions' default, not Responses'
}

BOOST_AUTO_TEST_CASE(text_image_and_file_parts_become_input_parts) {
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"high"}},
        {"type":"image_url","image_url":{"url":"https://example.com/a.png"}},
        {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBE"}}]}]})");
    BOOST_TEST(field(body, "input") ==
        R"([{"role":"user","content":[{"type":"input_text","text":"What is this?"},)"
        R"({"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"high"},)"
        R"({"type":"input_image","image_url":"https://example.com/a.png","detail":"auto"},)"
        R"({"type":"input_file","file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}]}])");
}

BOOST_AUTO_TEST_CASE(a_tool_round_trip_becomes_function_call_items_and_outputs) {
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21}"},
        {"role":"assistant","content":"It is 21 degrees."}]})");
    BOOST_TEST(field(body, "input") ==
        R"([{"role":"user","content":"Weather in Paris?"},)"
        R"({"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},)"
        R"({"type":"function_call_output","call_id":"call_1","output":"{\"temp\":21}"},)"
        R"({"role":"assistant","content":"It is 21 degrees."}])");
}

BOOST_AUTO_TEST_CASE(assistant_and_tool_texts_from_strings_parts_or_a_refusal) {
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":"a"},
        {"role":"assistant","content":[{"type":"text","text":"one"},{"type":"refusal","refusal":"two"}]},
        {"role":"assistant","content":"","refusal":"I will not."},
        {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}]})");
    BOOST_TEST(field(body, "input") == R"([{"role":"user","content":"a"},{"role":"assistant","content":"one\ntwo"},)"
        R"({"role":"assistant","content":"I will not."},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},)"
        R"({"type":"function_call_output","call_id":"c","output":"x\ny"}])");
}

BOOST_AUTO_TEST_CASE(tools_become_flat_and_not_strict_unless_asked) {
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                 {"type":"function","function":{"name":"now","strict":true}}],
        "tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false})");
    BOOST_TEST(field(body, "tools") ==
        R"([{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false},)"
        R"({"type":"function","name":"now","parameters":{"type":"object","properties":{}},"strict":true}])");
    BOOST_TEST(field(body, "tool_choice") == R"({"type":"function","name":"get_weather"})");
    BOOST_TEST(field(body, "parallel_tool_calls") == "false");
}

BOOST_AUTO_TEST_CASE(tool_choice_words_and_allowed_tools) {
    BOOST_TEST(field(bridged(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required"})"), "tool_choice") == R"("required")");
    BOOST_TEST(field(bridged(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"allowed_tools",
        "allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"a"}}]}}})"), "tool_choice") ==
        R"({"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"a"}]})");
    BOOST_TEST(refusal(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})").param == "tool_choice");
}

BOOST_AUTO_TEST_CASE(json_schema_response_format_and_verbosity_become_text) {
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":"x"}],"verbosity":"low",
        "response_format":{"type":"json_schema","json_schema":{"name":"answer","strict":true,"schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}}})");
    BOOST_TEST(field(body, "text") == R"({"verbosity":"low","format":{"type":"json_schema","name":"answer",)"
        R"("schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false},"strict":true}})");
    BOOST_TEST(field(bridged(R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})"), "text") ==
               R"({"format":{"type":"json_object"}})");
}

BOOST_AUTO_TEST_CASE(sampling_limits_reasoning_and_the_rest_pass) {
    BridgedRequest result = chat_to_responses(R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":50,
        "max_completion_tokens":300,"reasoning_effort":"high","temperature":0.5,"top_p":0.9,"user":"u-1","metadata":{"a":"b"},
        "store":true,"stream":true,"stream_options":{"include_usage":true},"n":1,"logprobs":false,"presence_penalty":0,"seed":null})");
    BOOST_TEST_REQUIRE(result.ok);
    BOOST_TEST(result.stream);
    BOOST_TEST(result.include_usage);
    BOOST_TEST(result.body == R"({"model":"m","max_output_tokens":300,"reasoning":{"effort":"high"},"temperature":0.5,"top_p":0.9,)"
                              R"("user":"u-1","metadata":{"a":"b"},"store":true,"stream":true,"input":[{"role":"user","content":"x"}]})");
    BOOST_TEST(field(bridged(R"({"model":"m","max_tokens":70,"messages":[{"role":"user","content":"x"}]})"), "max_output_tokens") == "70");
    BOOST_TEST(field(bridged(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]})"), "max_output_tokens") == "16");
    BOOST_TEST(!chat_to_responses(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").include_usage);
}

BOOST_AUTO_TEST_CASE(parameters_with_no_responses_equivalent_are_refused_by_name) {
    const char* cases[][2] = {{R"("n":2)", "n"}, {R"("logprobs":true)", "logprobs"}, {R"("top_logprobs":3)", "top_logprobs"},
        {R"("logit_bias":{"50256":-100})", "logit_bias"}, {R"("audio":{"voice":"alloy","format":"wav"})", "audio"},
        {R"("modalities":["text","audio"])", "modalities"}, {R"("prediction":{"type":"content","content":"x"})", "prediction"},
        {R"("functions":[{"name":"f"}])", "functions"}, {R"("function_call":"auto")", "function_call"},
        {R"("stop":["\n"])", "stop"}, {R"("seed":42)", "seed"}, {R"("frequency_penalty":0.5)", "frequency_penalty"}};
    for (const auto& [json, param] : cases) {
        BridgeRefusal refused = refusal(std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],)") + json + "}");
        BOOST_TEST(refused.param == param);
        BOOST_TEST(refused.code == "unsupported_parameter");
        BOOST_TEST(refused.message.find(param) != std::string::npos);
    }
    BridgeRefusal unknown = refusal(R"({"model":"m","messages":[{"role":"user","content":"x"}],"data_sources":[]})");
    BOOST_TEST(unknown.code == "unknown_parameter");
    BOOST_TEST(unknown.param == "data_sources");
}

BOOST_AUTO_TEST_CASE(faulty_messages_are_refused_where_they_are) {
    auto param_of = [](const std::string& messages) {
        return refusal(R"({"model":"m","messages":)" + messages + "}").param;
    };
    BOOST_TEST(param_of("[]") == "messages");
    BOOST_TEST(param_of(R"([{"role":"user","content":"a"},{"role":"robot","content":"b"}])") == "messages[1].role");
    BOOST_TEST(param_of(R"([{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}])") == "messages[0].content[0]");
    BOOST_TEST(param_of(R"([{"role":"tool","content":"x"}])") == "messages[0].tool_call_id");
    BOOST_TEST(param_of(R"([{"role":"assistant","tool_calls":[{"id":"c","type":"custom"}]}])") == "messages[0].tool_calls[0]");
    BOOST_TEST(param_of(R"([{"role":"system","content":[{"type":"image_url","image_url":{"url":"x"}}]}])") == "messages[0].content[0]");
    BOOST_TEST(param_of(R"([{"role":"function","name":"f","content":"x"}])") == "messages[0].role");
    BOOST_TEST(refusal(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"x"}}]})").param == "tools[0]");
}

BOOST_AUTO_TEST_CASE(hostile_bodies_are_refused_within_bounds) {
    std::string many = R"({"model":"m","messages":[)";
    for (int i = 0; i < 10000; ++i) many += std::string(i ? "," : "") + R"({"role":"user","content":"hi"})";
    many += "]}";
    BridgeRefusal too_many = refusal(many);
    BOOST_TEST(too_many.code == "request_too_large");
    BOOST_TEST(too_many.param == "messages");

    std::string deep = R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":)";
    deep += std::string(100000, '[') + std::string(100000, ']') + "}";
    BOOST_TEST(refusal(deep).code == "request_too_large");

    std::string huge(kMaxBridgedBody + 1, ' ');
    BOOST_TEST(refusal(huge).code == "request_too_large");
    BOOST_TEST(refusal("[1,2]").code == "invalid_json");
    BOOST_TEST(refusal("{\"model\":\"m\xfa\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}").code == "invalid_json");
    BOOST_TEST(refusal(R"({"model":"m","messages":[{"role":"user","content":"x\u0000y"}]})").code == "invalid_json");
    BOOST_TEST(refusal(R"({"model":"m","messages":[{"role":"user","content":"x"}],"\u0001evil\"key":1})").code == "unknown_parameter");

    std::string big_text(8 * 1024 * 1024, 'a');  // a long text within the limits passes whole
    JsonPtr body = bridged(R"({"model":"m","messages":[{"role":"user","content":")" + big_text + R"("}]})");
    BOOST_TEST(std::string(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(body.get(), "input"), 0), "content")->valuestring).size() == big_text.size());
}

BOOST_AUTO_TEST_SUITE_END()

// responses_answer.cpp: a whole Responses API answer made a chat.completion; failures stay
// failures with the upstream's words.
#include <boost/test/unit_test.hpp>

#include <string>

#include "json_ptr.h"
#include "responses_answer.h"

namespace {

const std::string kUsage = R"("usage":{"input_tokens":25,"input_tokens_details":{"cached_tokens":5},"output_tokens":120,)"
                           R"("output_tokens_details":{"reasoning_tokens":64},"total_tokens":145})";

std::string response(const std::string& status, const std::string& output, const std::string& more = "") {
    return R"({"id":"resp_67ccd2bed1ec8190","object":"response","created_at":1741476542,"status":")" + status +
           R"(","error":null,"incomplete_details":null,"model":"o3-pro-2025-06-10","output":[)" + output + "]," + more + kUsage + "}";
}

const std::string kReasoning = R"({"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Thinking."}]})";
const std::string kMessage = R"({"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[)"
                             R"({"type":"output_text","text":"Hello, ","annotations":[]},{"type":"output_text","text":"world!",)"
                             R"("annotations":[{"type":"url_citation","start_index":0,"end_index":5,"url":"https://example.com","title":"Ex"}]}]})";

JsonPtr chat_of(const std::string& body) {
    ChatAnswer answer = responses_to_chat_answer(body, 200, "client-model");
    BOOST_TEST_REQUIRE(answer.ok, answer.error.message);
    return JsonPtr(cJSON_Parse(answer.body.c_str()));
}
const cJSON* at(const cJSON* json, std::initializer_list<const char*> path) {
    for (const char* name : path) json = name[0] == '#' ? cJSON_GetArrayItem(json, name[1] - '0') : cJSON_GetObjectItemCaseSensitive(json, name);
    return json;
}
std::string printed(const cJSON* json) { return print_json(json, "absent"); }

}  // namespace

BOOST_AUTO_TEST_SUITE(responses_answer_suite)

BOOST_AUTO_TEST_CASE(a_text_answer_becomes_a_chat_completion_with_its_usage) {
    ChatAnswer answer = responses_to_chat_answer(response("completed", kReasoning + "," + kMessage), 200, "client-model");
    BOOST_TEST_REQUIRE(answer.ok);
    BOOST_TEST(answer.body ==
        R"({"id":"chatcmpl-67ccd2bed1ec8190","object":"chat.completion","created":1741476542,"model":"o3-pro-2025-06-10",)"
        R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world!","refusal":null,"annotations":[)"
        R"({"type":"url_citation","url_citation":{"start_index":0,"end_index":5,"url":"https://example.com","title":"Ex"}}]},)"
        R"("logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":120,"total_tokens":145,)"
        R"("prompt_tokens_details":{"cached_tokens":5},"completion_tokens_details":{"reasoning_tokens":64}}})");
    BOOST_TEST(answer.usage.input_tokens == 25);
    BOOST_TEST(answer.usage.output_tokens == 120);
    BOOST_TEST(answer.usage.cached_tokens == 5);
    BOOST_TEST(answer.usage.reasoning_tokens == 64);
}

BOOST_AUTO_TEST_CASE(function_calls_become_tool_calls) {
    JsonPtr chat = chat_of(response("completed", kReasoning + R"(,{"type":"function_call","id":"fc_1","call_id":"call_abc",)"
        R"("name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"},{"type":"function_call","id":"fc_2",)"
        R"("call_id":"call_def","name":"now","arguments":"{}","status":"completed"})"));
    const cJSON* choice = at(chat.get(), {"choices", "#0"});
    BOOST_TEST(printed(at(choice, {"finish_reason"})) == R"("tool_calls")");
    BOOST_TEST(printed(at(choice, {"message", "content"})) == "null");
    BOOST_TEST(printed(at(choice, {"message", "tool_calls"})) ==
        R"([{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},)"
        R"({"id":"call_def","type":"function","function":{"name":"now","arguments":"{}"}}])");
}

BOOST_AUTO_TEST_CASE(a_refusal_becomes_the_message_refusal) {
    JsonPtr chat = chat_of(response("completed", R"({"type":"message","id":"m","role":"assistant","content":[{"type":"refusal","refusal":"I can't help with that."}]})"));
    BOOST_TEST(printed(at(chat.get(), {"choices", "#0", "message", "refusal"})) == R"("I can't help with that.")");
    BOOST_TEST(printed(at(chat.get(), {"choices", "#0", "message", "content"})) == "null");
}

BOOST_AUTO_TEST_CASE(an_incomplete_answer_finishes_with_length_or_content_filter) {
    JsonPtr cut = chat_of(response("incomplete", kReasoning, R"("incomplete_details":{"reason":"max_output_tokens"},)"));
    BOOST_TEST(printed(at(cut.get(), {"choices", "#0", "finish_reason"})) == R"("length")");
    std::string filtered = response("incomplete", kMessage);
    filtered.replace(filtered.find(R"("incomplete_details":null)"), 25, R"("incomplete_details":{"reason":"content_filter"})");
    BOOST_TEST(printed(at(chat_of(filtered).get(), {"choices", "#0", "finish_reason"})) == R"("content_filter")");
}

BOOST_AUTO_TEST_CASE(the_clients_model_stands_when_the_answer_names_none) {
    JsonPtr chat = chat_of(R"({"id":"resp_1","object":"response","status":"completed","output":[]})");
    BOOST_TEST(printed(at(chat.get(), {"model"})) == R"("client-model")");
    BOOST_TEST(printed(at(chat.get(), {"usage"})) == "absent");
}

BOOST_AUTO_TEST_CASE(failures_stay_failures_in_the_upstreams_words) {
    ChatAnswer refused = responses_to_chat_answer(
        R"({"error":{"message":"Invalid 'max_output_tokens': integer below minimum value.","type":"invalid_request_error","param":"max_output_tokens","code":"integer_below_min_value"}})",
        400, "m");
    BOOST_TEST(!refused.ok);
    BOOST_TEST(refused.error.status == 400);
    BOOST_TEST(refused.error.code == "integer_below_min_value");
    BOOST_TEST(refused.error.param == "max_output_tokens");
    BOOST_TEST(refused.error.type == "invalid_request_error");

    ChatAnswer failed = responses_to_chat_answer(
        R"({"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"The model failed."},"output":[]})", 200, "m");
    BOOST_TEST(!failed.ok);
    BOOST_TEST(failed.error.status == 502);
    BOOST_TEST(failed.error.code == "server_error");
    BOOST_TEST(failed.error.message == "The model failed.");

    for (const char* faulty : {"", "not json", "{\"object\":\"response\",\"status\":\"completed\",\"model\":\"\xfa\",\"output\":[]}", "[]", R"({"object":"chat.completion"})",
                               R"({"object":"response","status":"in_progress","output":[]})"}) {
        ChatAnswer answer = responses_to_chat_answer(faulty, 200, "m");
        BOOST_TEST(!answer.ok);
        BOOST_TEST(answer.error.status == 502);
        BOOST_TEST(error_body(answer.error).find("\"error\"") != std::string::npos);
    }
    ChatAnswer gateway = responses_to_chat_answer("<html>Bad gateway</html>", 503, "m");
    BOOST_TEST(gateway.error.status == 503);
    BOOST_TEST(gateway.error.message == "The upstream refused the request.");

    std::string long_words(5000, 'x');
    ChatAnswer wordy = responses_to_chat_answer(R"({"error":{"message":")" + long_words + R"("}})", 500, "m");
    BOOST_TEST(wordy.error.message.size() < 600);
}

BOOST_AUTO_TEST_SUITE_END()

// Streams the tests' Azure stand-in sent (tests/unit/fixtures/responses-*.sse, kept equal to
// what it sends by tests/integration/responses-stand-in.test.mjs) through the bridge's way
// back: the stream as chunks (responses_stream.h), cut anywhere, and its last event's whole
// response as an answer (responses_answer.h); both tell the same. The stand-in's faulty
// streams end with the proxy's error event, never [DONE].
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "json_ptr.h"
#include "responses_answer.h"
#include "responses_stream.h"

namespace {

std::string fixture(const std::string& name) {
    std::string here = __FILE__;
    std::ifstream file(here.substr(0, here.rfind('/') + 1) + "fixtures/" + name, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    BOOST_TEST_REQUIRE(!text.str().empty(), name);
    return text.str();
}

struct Chat {
    std::string content, tool_name, tool_arguments, finish_reason;
    long long reasoning_tokens = -1;
    bool done = false;             // [DONE] came
    bool completed = false;        // the translator says so
    std::string error_code;        // what ended it otherwise
    bool error_event = false;      // the client got the proxy's `event: error`
};

// The client's view of the chunks: the deltas joined, the finish reason, the usage.
Chat read_chunks(const std::string& out) {
    Chat chat;
    for (size_t at = 0; (at = out.find("data: ", at)) != std::string::npos;) {
        size_t end = out.find('\n', at);
        std::string data = out.substr(at + 6, end - at - 6);
        at = end;
        if (data == "[DONE]") { chat.done = true; continue; }
        JsonPtr chunk(cJSON_Parse(data.c_str()));
        BOOST_TEST_REQUIRE(chunk.get() != nullptr, data);
        cJSON* usage = cJSON_GetObjectItem(chunk.get(), "usage");
        if (usage) chat.reasoning_tokens = static_cast<long long>(cJSON_GetObjectItem(cJSON_GetObjectItem(usage, "completion_tokens_details"), "reasoning_tokens")->valuedouble);
        cJSON* choice = cJSON_GetArrayItem(cJSON_GetObjectItem(chunk.get(), "choices"), 0);
        cJSON* delta = cJSON_GetObjectItem(choice, "delta");
        if (cJSON_IsString(cJSON_GetObjectItem(choice, "finish_reason"))) chat.finish_reason = cJSON_GetObjectItem(choice, "finish_reason")->valuestring;
        if (cJSON_IsString(cJSON_GetObjectItem(delta, "content"))) chat.content += cJSON_GetObjectItem(delta, "content")->valuestring;
        cJSON* function = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(delta, "tool_calls"), 0), "function");
        if (cJSON_IsString(cJSON_GetObjectItem(function, "name"))) chat.tool_name = cJSON_GetObjectItem(function, "name")->valuestring;
        if (cJSON_IsString(cJSON_GetObjectItem(function, "arguments"))) chat.tool_arguments += cJSON_GetObjectItem(function, "arguments")->valuestring;
    }
    return chat;
}

Chat through_stream(const std::string& upstream, size_t piece, bool complete = true) {
    ResponsesToChatStream bridge({"client-model", true, 0});
    std::string out;
    for (size_t at = 0; at < upstream.size(); at += piece) bridge.feed(std::string_view(upstream).substr(at, piece), out);
    bridge.finish(out);
    BOOST_TEST(bridge.completed() == complete);
    Chat chat = read_chunks(out);
    chat.completed = bridge.completed();
    if (bridge.error()) chat.error_code = bridge.error()->code;
    chat.error_event = out.find("event: error\ndata: {\"error\":") != std::string::npos;
    return chat;
}

// The last event's "response", as a non-streamed answer would carry it.
JsonPtr last_response(const std::string& upstream) {
    size_t at = upstream.rfind("data: ");
    JsonPtr event(cJSON_Parse(upstream.substr(at + 6, upstream.find('\n', at) - at - 6).c_str()));
    return JsonPtr(cJSON_DetachItemFromObject(event.get(), "response"));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(responses_fixtures)

BOOST_AUTO_TEST_CASE(the_stand_ins_reasoning_stream_reads_as_text_with_its_reasoning_tokens) {
    std::string upstream = fixture("responses-o3-pro.sse");
    Chat whole = through_stream(upstream, upstream.size());
    BOOST_TEST(whole.content == "Hello from the mock! You said: What is the weather in Paris?");
    BOOST_TEST(whole.finish_reason == "stop");
    BOOST_TEST(whole.reasoning_tokens == 64);
    BOOST_TEST(whole.done);
    for (size_t piece : {1, 2, 7, 100, 1000}) BOOST_TEST(through_stream(upstream, piece).content == whole.content);

    ChatAnswer answer = responses_to_chat_answer(print_json(last_response(upstream).get(), ""), 200, "client-model");
    BOOST_TEST_REQUIRE(answer.ok);
    JsonPtr chat(cJSON_Parse(answer.body.c_str()));
    cJSON* message = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(chat.get(), "choices"), 0), "message");
    BOOST_TEST(std::string(cJSON_GetObjectItem(message, "content")->valuestring) == whole.content);
    BOOST_TEST(answer.usage.reasoning_tokens == 64);
}

BOOST_AUTO_TEST_CASE(the_stand_ins_function_call_stream_reads_as_a_tool_call) {
    std::string upstream = fixture("responses-gpt-5-codex-tool.sse");
    Chat whole = through_stream(upstream, 3);
    BOOST_TEST(whole.tool_name == "get_weather");
    BOOST_TEST(whole.tool_arguments == R"({"city":"Paris","days":1})");
    BOOST_TEST(whole.finish_reason == "tool_calls");
    BOOST_TEST(whole.content.empty());

    ChatAnswer answer = responses_to_chat_answer(print_json(last_response(upstream).get(), ""), 200, "client-model");
    BOOST_TEST_REQUIRE(answer.ok);
    BOOST_TEST(answer.body.find(R"("finish_reason":"tool_calls")") != std::string::npos);
    BOOST_TEST(answer.body.find(R"("arguments":"{\"city\":\"Paris\",\"days\":1}")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_events_and_fields_are_read_past) {
    Chat chat = through_stream(fixture("responses-o3-pro-unknown.sse"), 5);
    BOOST_TEST(chat.content == "Hello from the mock! You said: What is the weather in Paris?");
    BOOST_TEST(chat.done);
}

BOOST_AUTO_TEST_CASE(a_failed_response_an_error_event_and_an_event_not_json_end_with_the_error_event) {
    const std::pair<const char*, const char*> cases[] = {
        {"responses-o3-pro-failed.sse", "server_error"},
        {"responses-o3-pro-error-event.sse", "rate_limit_exceeded"},
        {"responses-o3-pro-bad-json.sse", "upstream_protocol_error"},
    };
    for (const auto& [name, code] : cases) {
        for (size_t piece : {3, 4096}) {
            Chat chat = through_stream(fixture(name), piece, false);
            BOOST_TEST(chat.error_code == code, name);
            BOOST_TEST(chat.error_event, name);
            BOOST_TEST(!chat.done, name);
        }
    }
    Chat failed = through_stream(fixture("responses-o3-pro-failed.sse"), 64, false);
    BOOST_TEST(failed.content == "Hello from the mock! You said: What is the weather in Paris?");  // what came before stays
}

BOOST_AUTO_TEST_SUITE_END()

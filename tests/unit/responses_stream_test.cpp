// responses_stream.cpp and chat_chunks.cpp: a Responses stream made a Chat Completions
// stream, event by event, whatever the cuts; faults end it visibly.
#include <boost/test/unit_test.hpp>

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <vector>

#include "json_model.h"
#include "responses_stream.h"

namespace {

std::string event(const std::string& type, const std::string& fields) {
    return "event: " + type + "\ndata: {\"type\":\"" + type + "\",\"sequence_number\":1" +
           (fields.empty() ? "" : "," + fields) + "}\n\n";
}

const std::string kCreated = event("response.created",
    R"("response":{"id":"resp_abc","object":"response","created_at":1741290958,"status":"in_progress","model":"o3-pro","output":[]})");
const std::string kUsage = R"("usage":{"input_tokens":11,"input_tokens_details":{"cached_tokens":3},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":30},"total_tokens":51})";

std::string completed(const std::string& status = "completed", const std::string& more = "") {
    return event("response." + status, R"("response":{"id":"resp_abc","status":")" + status +
                 R"(","output":[{"type":"message","content":[{"type":"output_text","text":"Hello, world!"}]}],)" +
                 more + kUsage + "}");
}

std::string text_answer() {
    return kCreated + event("response.in_progress", R"("response":{"id":"resp_abc","status":"in_progress"})") +
           event("response.output_item.added", R"("output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[]})") +
           event("response.reasoning_summary_text.delta", R"("item_id":"rs_1","output_index":0,"delta":"Thinking")") +
           event("response.output_item.added", R"("output_index":1,"item":{"type":"message","id":"msg_1","role":"assistant","content":[]})") +
           event("response.output_text.delta", R"("item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hello")") +
           event("response.output_text.delta", R"("item_id":"msg_1","output_index":1,"content_index":0,"delta":", wor")") +
           event("response.output_text.delta", R"("item_id":"msg_1","output_index":1,"content_index":0,"delta":"ld!")") +
           event("response.output_text.done", R"("item_id":"msg_1","output_index":1,"content_index":0,"text":"Hello, world!")") +
           completed();
}

struct Translated {
    std::string out;
    bool completed = false;
    std::string error_code;
    std::vector<std::string> data;  // each event's data line
};

Translated translate(const std::string& upstream, size_t piece, bool include_usage = false, bool end = true) {
    ResponsesToChatStream bridge({"o3-pro-client", include_usage, 1700000000});
    Translated result;
    for (size_t at = 0; at < upstream.size(); at += piece)
        if (!bridge.feed(std::string_view(upstream).substr(at, piece), result.out)) break;
    if (end) bridge.finish(result.out);
    result.completed = bridge.completed();
    if (bridge.error()) result.error_code = bridge.error()->code;
    for (size_t at = 0; (at = result.out.find("data: ", at)) != std::string::npos;) {
        size_t line_end = result.out.find('\n', at);
        result.data.push_back(result.out.substr(at + 6, line_end - at - 6));
        at = line_end;
    }
    return result;
}

using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;
Json parse(const std::string& text) { return Json(cJSON_Parse(text.c_str()), cJSON_Delete); }

// The choice's delta field `name` of each chunk, joined.
std::string joined(const Translated& result, const char* name) {
    std::string text;
    for (const std::string& data : result.data) {
        Json chunk = parse(data);
        cJSON* choice = cJSON_GetArrayItem(cJSON_GetObjectItem(chunk.get(), "choices"), 0);
        cJSON* field = cJSON_GetObjectItem(cJSON_GetObjectItem(choice, "delta"), name);
        if (cJSON_IsString(field)) text += field->valuestring;
    }
    return text;
}

std::string finish_reason(const Translated& result) {
    for (const std::string& data : result.data) {
        Json chunk = parse(data);
        cJSON* reason = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(chunk.get(), "choices"), 0), "finish_reason");
        if (cJSON_IsString(reason)) return reason->valuestring;
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(responses_stream)

BOOST_AUTO_TEST_CASE(a_text_answer_becomes_chunks_and_done_the_same_however_it_is_cut) {
    std::string upstream = text_answer();
    Translated whole = translate(upstream, upstream.size(), true);
    BOOST_TEST(whole.completed);
    BOOST_TEST_REQUIRE(whole.data.size() == 7u);  // role, 3 deltas, finish, usage, [DONE]
    for (size_t i = 0; i + 1 < whole.data.size(); ++i) BOOST_TEST(check_json(whole.data[i]).valid, whole.data[i]);
    Json first = parse(whole.data[0]);
    BOOST_TEST(std::string(cJSON_GetObjectItem(first.get(), "id")->valuestring) == "chatcmpl-abc");
    BOOST_TEST(std::string(cJSON_GetObjectItem(first.get(), "object")->valuestring) == "chat.completion.chunk");
    BOOST_TEST(std::string(cJSON_GetObjectItem(first.get(), "model")->valuestring) == "o3-pro");
    BOOST_TEST(cJSON_GetObjectItem(first.get(), "created")->valuedouble == 1741290958);
    BOOST_TEST(joined(whole, "role") == "assistant");
    BOOST_TEST(joined(whole, "content") == "Hello, world!");
    BOOST_TEST(finish_reason(whole) == "stop");
    Json usage = parse(whole.data[5]);
    BOOST_TEST(cJSON_GetArraySize(cJSON_GetObjectItem(usage.get(), "choices")) == 0);
    cJSON* counts = cJSON_GetObjectItem(usage.get(), "usage");
    BOOST_TEST(cJSON_GetObjectItem(counts, "prompt_tokens")->valuedouble == 11);
    BOOST_TEST(cJSON_GetObjectItem(counts, "completion_tokens")->valuedouble == 40);
    BOOST_TEST(cJSON_GetObjectItem(counts, "total_tokens")->valuedouble == 51);
    BOOST_TEST(cJSON_GetObjectItem(cJSON_GetObjectItem(counts, "completion_tokens_details"), "reasoning_tokens")->valuedouble == 30);
    BOOST_TEST(whole.data.back() == "[DONE]");
    for (size_t piece = 1; piece < upstream.size(); piece += 7) BOOST_TEST(translate(upstream, piece, true).out == whole.out, "piece " << piece);
    BOOST_TEST(translate(upstream, 5, false).data.size() == 6u);  // no usage chunk unless asked
}

BOOST_AUTO_TEST_CASE(function_calls_become_tool_call_chunks) {
    std::string upstream = kCreated +
        event("response.output_item.added", R"("output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_X","name":"get_weather","arguments":"","status":"in_progress"})") +
        event("response.function_call_arguments.delta", R"("item_id":"fc_1","output_index":0,"delta":"{\"city\":")") +
        event("response.function_call_arguments.delta", R"("item_id":"fc_1","output_index":0,"delta":"\"Paris\"}")") +
        event("response.output_item.added", R"("output_index":1,"item":{"type":"function_call","id":"fc_2","call_id":"call_Y","name":"get_time","arguments":""})") +
        event("response.function_call_arguments.delta", R"("item_id":"fc_2","output_index":1,"delta":"{}")") +
        completed();
    Translated result = translate(upstream, 3);
    BOOST_TEST(result.completed);
    BOOST_TEST(finish_reason(result) == "tool_calls");
    std::string arguments[2];
    std::string names;
    for (const std::string& data : result.data) {
        Json chunk = parse(data);
        cJSON* calls = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(chunk.get(), "choices"), 0), "delta"), "tool_calls");
        cJSON* call = cJSON_GetArrayItem(calls, 0);
        if (!call) continue;
        int index = cJSON_GetObjectItem(call, "index")->valueint;
        cJSON* function = cJSON_GetObjectItem(call, "function");
        if (cJSON* name = cJSON_GetObjectItem(function, "name")) names += std::string(name->valuestring) + "/" + cJSON_GetObjectItem(call, "id")->valuestring + ";";
        arguments[index] += cJSON_GetObjectItem(function, "arguments")->valuestring;
    }
    BOOST_TEST(names == "get_weather/call_X;get_time/call_Y;");
    BOOST_TEST(arguments[0] == "{\"city\":\"Paris\"}");
    BOOST_TEST(arguments[1] == "{}");
}

BOOST_AUTO_TEST_CASE(an_incomplete_answer_ends_with_its_reason) {
    std::string upstream = kCreated + event("response.output_text.delta", R"("delta":"Hel")");
    BOOST_TEST(finish_reason(translate(upstream + completed("incomplete", R"("incomplete_details":{"reason":"max_output_tokens"},)"), 4)) == "length");
    BOOST_TEST(finish_reason(translate(upstream + completed("incomplete", R"("incomplete_details":{"reason":"content_filter"},)"), 4)) == "content_filter");
}

BOOST_AUTO_TEST_CASE(failures_end_the_stream_with_an_error_event_never_done) {
    std::string start = kCreated + event("response.output_text.delta", R"("delta":"Hel")");
    Translated failed = translate(start + event("response.failed", R"("response":{"status":"failed","error":{"code":"server_error","message":"The model failed."}})"), 9);
    Translated error = translate(start + event("error", R"("code":"rate_limit_exceeded","message":"Slow down","param":null)"), 9);
    Translated cut = translate(start, 9);
    Translated not_json = translate(start + "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"]\n\n" + completed(), 9);
    Translated control = translate(start + "data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\x01\"}\n\n", 9);
    for (const Translated* result : {&failed, &error, &cut, &not_json, &control}) {
        BOOST_TEST(!result->completed);
        BOOST_TEST(result->out.find("[DONE]") == std::string::npos);
        BOOST_TEST(result->out.find("event: error\ndata: {\"error\":") != std::string::npos);
        BOOST_TEST(joined(*result, "content") == "Hel");
    }
    BOOST_TEST(failed.error_code == "server_error");
    BOOST_TEST(failed.out.find("The model failed.") != std::string::npos);
    BOOST_TEST(error.error_code == "rate_limit_exceeded");
    BOOST_TEST(cut.error_code == "upstream_protocol_error");
    BOOST_TEST(cut.out.find("ended before its response completed") != std::string::npos);
    BOOST_TEST(not_json.error_code == "upstream_protocol_error");
    BOOST_TEST(control.error_code == "upstream_protocol_error");
}

BOOST_AUTO_TEST_CASE(a_huge_delta_goes_out_in_pieces_and_the_held_part_stays_bounded) {
    std::string huge(10 * 1024 * 1024, 'x');
    std::string upstream = kCreated + event("response.output_text.delta", "\"delta\":\"" + huge + "\"") + completed();
    ResponsesToChatStream bridge({"m", false, 0});
    std::string out;
    size_t at = 0;
    size_t event_start = kCreated.size();
    for (; at < event_start + 200 * 1024; at += 4096) bridge.feed(std::string_view(upstream).substr(at, 4096), out);
    BOOST_TEST(out.size() > 100 * 1024u);  // out before the event ended: nothing held whole
    for (; at < upstream.size(); at += 65536) bridge.feed(std::string_view(upstream).substr(at, 65536), out);
    BOOST_TEST(bridge.completed());
    Translated whole = translate(upstream, 65536);
    BOOST_TEST(joined(whole, "content") == huge);
    // Broken off inside an escape: the chunk is closed validly, then the error.
    std::string broken = kCreated + "data: {\"type\":\"response.output_text.delta\",\"delta\":\"" + huge.substr(0, 100000) + "\\u00";
    Translated cut = translate(broken + "\x01", 4096);
    BOOST_TEST(cut.error_code == "upstream_protocol_error");
    for (size_t i = 0; i < cut.data.size(); ++i) BOOST_TEST(check_json(cut.data[i]).valid);
    BOOST_TEST(joined(cut, "content").size() == 100002u);  // "\u00" + "AA": one more character
}

BOOST_AUTO_TEST_CASE(what_is_not_translated_is_read_past_whatever_its_size) {
    std::string big_reasoning = event("response.reasoning_summary_text.delta", "\"delta\":\"" + std::string(300000, 'r') + "\"");
    std::string unknown = event("response.future_event", R"("x":{"y":[1,2,3]})");
    std::string upstream = kCreated + big_reasoning + unknown + ": keep-alive\n\n" +
                           event("response.output_text.delta", R"("delta":"ok")") + completed();
    Translated result = translate(upstream, 1000);
    BOOST_TEST(result.completed);
    BOOST_TEST(joined(result, "content") == "ok");
    // A type named only by the event line, and an upstream [DONE], are understood.
    Translated named = translate(kCreated + "event: response.output_text.delta\ndata: {\"delta\":\"by name\"}\n\n" +
                                 completed() + "data: [DONE]\n\n", 2);
    BOOST_TEST(joined(named, "content") == "by name");
    BOOST_TEST(named.completed);
}

BOOST_AUTO_TEST_SUITE_END()

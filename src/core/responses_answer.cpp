// Tests: tests/unit/responses_answer_test.cpp.
#include "responses_answer.h"

#include <cstring>
#include <utility>

#include "json_model.h"
#include "json_ptr.h"

namespace {

constexpr auto string_of = json_string_member;  // json_ptr.h
constexpr size_t kMaxUpstreamWords = 512;  // an upstream error's message: longer is cut

bool is(const char* text, const char* expected) { return text && !std::strcmp(text, expected); }
long long count_of(const cJSON* object, const char* name) {
    const cJSON* value = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsNumber(value) && value->valuedouble >= 0 && value->valuedouble < 1e15 ? static_cast<long long>(value->valuedouble) : -1;
}

ChatAnswer failed(int status, std::string message, const char* code, const char* param = nullptr, const char* type = nullptr) {
    if (message.size() > kMaxUpstreamWords) message = message.substr(0, kMaxUpstreamWords) + "...";
    ChatAnswer answer;
    answer.error = make_error(status, message, code ? code : "", param ? param : "", type ? type : "api_error");
    return answer;
}

// What the upstream said went wrong, in its own words ({"error":{...}} or a failed response's "error").
ChatAnswer upstream_error(const cJSON* error, int status, const char* fallback_code, const char* fallback_words) {
    const char* message = string_of(error, "message");
    const char* code = string_of(error, "code");
    return failed(status, message && *message ? message : fallback_words, code ? code : fallback_code,
                  string_of(error, "param"), string_of(error, "type"));
}

TokenUsage usage_of(const cJSON* usage) {
    TokenUsage counts;
    counts.input_tokens = count_of(usage, "input_tokens");
    counts.output_tokens = count_of(usage, "output_tokens");
    counts.cached_tokens = count_of(cJSON_GetObjectItemCaseSensitive(usage, "input_tokens_details"), "cached_tokens");
    counts.reasoning_tokens = count_of(cJSON_GetObjectItemCaseSensitive(usage, "output_tokens_details"), "reasoning_tokens");
    return counts;
}

// The assistant's message, gathered from the output items.
struct Gathered {
    std::string content, refusal;
    bool has_content = false, has_refusal = false;
    JsonPtr tool_calls{cJSON_CreateArray()};
    JsonPtr annotations{cJSON_CreateArray()};

    void citation(const cJSON* annotation) {
        if (!is(string_of(annotation, "type"), "url_citation")) return;
        cJSON* made = cJSON_CreateObject();
        cJSON_AddStringToObject(made, "type", "url_citation");
        cJSON* inside = cJSON_AddObjectToObject(made, "url_citation");
        for (const char* field : {"start_index", "end_index", "url", "title"}) {
            const cJSON* value = cJSON_GetObjectItemCaseSensitive(annotation, field);
            if (value) cJSON_AddItemToObject(inside, field, cJSON_Duplicate(value, false));
        }
        cJSON_AddItemToArray(annotations.get(), made);
    }
    void message(const cJSON* item) {
        const cJSON* parts = cJSON_GetObjectItemCaseSensitive(item, "content");
        for (const cJSON* part = cJSON_IsArray(parts) ? parts->child : nullptr; part; part = part->next) {
            const char* type = string_of(part, "type");
            if (is(type, "output_text") && string_of(part, "text")) {
                const cJSON* notes = cJSON_GetObjectItemCaseSensitive(part, "annotations");
                for (const cJSON* note = cJSON_IsArray(notes) ? notes->child : nullptr; note; note = note->next) citation(note);
                content += string_of(part, "text");
                has_content = true;
            } else if (is(type, "refusal") && string_of(part, "refusal")) {
                refusal += string_of(part, "refusal");
                has_refusal = true;
            }
        }
    }
    void function_call(const cJSON* item) {
        cJSON* call = cJSON_CreateObject();
        const char* arguments = string_of(item, "arguments");
        cJSON_AddStringToObject(call, "id", string_of(item, "call_id") ? string_of(item, "call_id") : "");
        cJSON_AddStringToObject(call, "type", "function");
        cJSON* function = cJSON_AddObjectToObject(call, "function");
        cJSON_AddStringToObject(function, "name", string_of(item, "name") ? string_of(item, "name") : "");
        cJSON_AddStringToObject(function, "arguments", arguments ? arguments : "");
        cJSON_AddItemToArray(tool_calls.get(), call);
    }
};

cJSON* message_json(Gathered& gathered) {
    cJSON* message = cJSON_CreateObject();
    cJSON_AddStringToObject(message, "role", "assistant");
    if (gathered.has_content) cJSON_AddStringToObject(message, "content", gathered.content.c_str());
    else cJSON_AddNullToObject(message, "content");
    if (gathered.has_refusal) cJSON_AddStringToObject(message, "refusal", gathered.refusal.c_str());
    else cJSON_AddNullToObject(message, "refusal");
    if (gathered.tool_calls->child) cJSON_AddItemToObject(message, "tool_calls", gathered.tool_calls.release());
    cJSON_AddItemToObject(message, "annotations", gathered.annotations.release());
    return message;
}

// A response that completed (or stopped short, "incomplete") made a chat.completion.
ChatAnswer completion(const cJSON* response, const std::string& client_model) {
    Gathered gathered;
    const cJSON* output = cJSON_GetObjectItemCaseSensitive(response, "output");
    for (const cJSON* item = cJSON_IsArray(output) ? output->child : nullptr; item; item = item->next) {
        const char* type = string_of(item, "type");
        if (is(type, "message")) gathered.message(item);
        else if (is(type, "function_call")) gathered.function_call(item);
    }
    bool incomplete = is(string_of(response, "status"), "incomplete");
    const char* reason = string_of(cJSON_GetObjectItemCaseSensitive(response, "incomplete_details"), "reason");
    const char* finish = chat_finish_reason(incomplete, reason ? reason : "", gathered.tool_calls->child != nullptr);
    const char* model = string_of(response, "model");
    long long created = count_of(response, "created_at");

    ChatAnswer answer;
    JsonPtr chat(cJSON_CreateObject());
    cJSON_AddStringToObject(chat.get(), "id", chat_id_for(string_of(response, "id") ? string_of(response, "id") : "bridge").c_str());
    cJSON_AddStringToObject(chat.get(), "object", "chat.completion");
    cJSON_AddNumberToObject(chat.get(), "created", static_cast<double>(created < 0 ? 0 : created));
    cJSON_AddStringToObject(chat.get(), "model", model && *model ? model : client_model.c_str());
    cJSON* choice = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(chat.get(), "choices"), choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON_AddItemToObject(choice, "message", message_json(gathered));
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", finish);
    const cJSON* usage = cJSON_GetObjectItemCaseSensitive(response, "usage");
    if (cJSON_IsObject(usage)) {
        answer.usage = usage_of(usage);
        cJSON_AddItemToObject(chat.get(), "usage", cJSON_Parse(chat_usage_json(answer.usage).c_str()));
    }
    if (string_of(response, "service_tier")) cJSON_AddStringToObject(chat.get(), "service_tier", string_of(response, "service_tier"));
    answer.body = print_json(chat.get(), "");
    if (answer.body.empty()) return failed(500, "The proxy ran out of memory.", "server_error");
    answer.ok = true;
    return answer;
}

}  // namespace

ChatAnswer responses_to_chat_answer(std::string_view responses_body, int upstream_status, const std::string& client_model) {
    if (responses_body.size() > kMaxBridgedAnswer)
        return failed(502, "The upstream's Responses answer is larger than the proxy bridges.", "upstream_protocol_error");
    JsonPtr answer(cJSON_ParseWithLength(responses_body.data(), responses_body.size()));
    const cJSON* error = cJSON_GetObjectItemCaseSensitive(answer.get(), "error");
    if (upstream_status >= 400 || upstream_status < 200) {
        int status = upstream_status >= 400 && upstream_status <= 599 ? upstream_status : 502;
        return upstream_error(error, status, "upstream_error", "The upstream refused the request.");
    }
    JsonCheck strict = check_json(responses_body);  // cJSON would pass on bytes that are not UTF-8
    bool faithful = strict.valid && strict.escaped_nul_at == std::string_view::npos;
    if (!faithful || !cJSON_IsObject(answer.get()) || !is(string_of(answer.get(), "object"), "response"))
        return failed(502, "The upstream's answer is not a Responses API answer.", "upstream_protocol_error");
    const char* status = string_of(answer.get(), "status");
    if (is(status, "completed") || is(status, "incomplete")) return completion(answer.get(), client_model);
    if (is(status, "failed")) return upstream_error(error, 502, "upstream_failed", "The upstream's response failed.");
    return failed(502, "The upstream's response ended neither completed nor incomplete.", "upstream_failed");
}

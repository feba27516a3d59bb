// Tests: tests/unit/chat_to_responses_test.cpp; fuzzed by fuzz/fuzz_chat_to_responses.cpp.
#include "chat_to_responses.h"

#include <cstdint>
#include <cstring>
#include <utility>

#include "chat_messages.h"
#include "json_model.h"
#include "json_ptr.h"
#include "text.h"

namespace {

// The deepest nesting of objects and arrays in a JSON text (strings skipped); stops counting
// once past `limit`.
size_t nesting_depth(std::string_view text, size_t limit) {
    size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t at = 0; at < text.size(); ++at) {
        char c = text[at];
        if (in_string) {
            if (c == '\\') ++at;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest && (deepest = depth) > limit) return deepest;
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

bool is_default_value(const char* name, const cJSON* value) {
    if (cJSON_IsNull(value)) return true;
    if (!std::strcmp(name, "n") || !std::strcmp(name, "top_logprobs"))
        return cJSON_IsNumber(value) && value->valuedouble == (name[0] == 'n' ? 1 : 0);
    if (!std::strcmp(name, "logprobs")) return cJSON_IsFalse(value);
    if (!std::strcmp(name, "presence_penalty") || !std::strcmp(name, "frequency_penalty"))
        return cJSON_IsNumber(value) && value->valuedouble == 0;
    if (!std::strcmp(name, "logit_bias")) return cJSON_IsObject(value) && !value->child;
    if (!std::strcmp(name, "stop")) return (cJSON_IsArray(value) && !value->child) || (cJSON_IsString(value) && !*value->valuestring);
    if (!std::strcmp(name, "modalities"))
        return cJSON_IsArray(value) && cJSON_GetArraySize(value) == 1 && cJSON_IsString(value->child) &&
               !std::strcmp(value->child->valuestring, "text");
    return false;  // seed, audio, prediction, functions, function_call, web_search_options: only null
}

const char* const kPassed[] = {"model", "stream", "temperature", "top_p", "parallel_tool_calls", "user", "metadata",
                               "store", "service_tier", "prompt_cache_key", "prompt_cache_options",
                               "prompt_cache_retention", "safety_identifier", "moderation"};
const char* const kNoEquivalent[] = {"n", "logprobs", "top_logprobs", "logit_bias", "stop", "modalities",
                                     "presence_penalty", "frequency_penalty", "seed", "audio", "prediction",
                                     "functions", "function_call", "web_search_options"};

bool listed(const char* name, const char* const* names, size_t count) {
    for (size_t i = 0; i < count; ++i)
        if (!std::strcmp(name, names[i])) return true;
    return false;
}

// The Responses body under construction, and the first refusal.
struct Bridge {
    JsonPtr out{cJSON_CreateObject()};
    cJSON* text = nullptr;  // "text": {format, verbosity}, made when first needed
    BridgedRequest result;

    bool refuse(std::string param, std::string message, const char* code) {
        if (result.refusal.code.empty()) result.refusal = {std::move(param), std::move(message), code};
        return false;
    }
    cJSON* text_object() {
        if (!text) text = cJSON_AddObjectToObject(out.get(), "text");
        return text;
    }
    bool copy(const char* name, const cJSON* value) {
        return cJSON_AddItemToObject(out.get(), name, json_borrowed(value));
    }
    bool parameter(const cJSON* item);
    bool tools(const cJSON* list);
    bool tool_choice(const cJSON* choice);
    bool response_format(const cJSON* format);
    bool stream_options(const cJSON* options);
    bool max_tokens(const char* name, const cJSON* value);
};

bool Bridge::tools(const cJSON* list) {
    if (!cJSON_IsArray(list)) return refuse("tools", "'tools' must be an array.", "invalid_value");
    if (static_cast<size_t>(cJSON_GetArraySize(list)) > kMaxBridgedTools)
        return refuse("tools", "The proxy bridges at most " + std::to_string(kMaxBridgedTools) + " tools.", "request_too_large");
    cJSON* tools = cJSON_AddArrayToObject(out.get(), "tools");
    size_t index = 0;
    for (const cJSON* tool = list->child; tool; tool = tool->next, ++index) {
        std::string param = "tools[" + std::to_string(index) + "]";
        cJSON* made = function_tool_to_responses(tool);
        if (!made) return refuse(param, "Only function tools ({\"type\":\"function\",\"function\":{\"name\":…}}) "
                                        "can be bridged to the Responses API.", "unsupported_value");
        cJSON_AddItemToArray(tools, made);
    }
    return true;
}

// "none" | "auto" | "required" | {type:function, function:{name}} | {type:allowed_tools, …}.
bool Bridge::tool_choice(const cJSON* choice) {
    cJSON* made = tool_choice_to_responses(choice);
    if (!made) return refuse("tool_choice", "This 'tool_choice' has no Responses API equivalent the proxy knows.", "unsupported_value");
    cJSON_AddItemToObject(out.get(), "tool_choice", made);
    return true;
}

bool Bridge::response_format(const cJSON* format) {
    const cJSON* type = cJSON_GetObjectItemCaseSensitive(format, "type");
    JsonPtr made(cJSON_CreateObject());
    if (cJSON_IsString(type) && (!std::strcmp(type->valuestring, "text") || !std::strcmp(type->valuestring, "json_object"))) {
        cJSON_AddStringToObject(made.get(), "type", type->valuestring);
    } else if (cJSON_IsString(type) && !std::strcmp(type->valuestring, "json_schema")) {
        const cJSON* schema = cJSON_GetObjectItemCaseSensitive(format, "json_schema");
        const cJSON* name = cJSON_GetObjectItemCaseSensitive(schema, "name");
        if (!cJSON_IsObject(schema) || !cJSON_IsString(name))
            return refuse("response_format.json_schema", "A json_schema response_format needs an object with a 'name'.", "invalid_value");
        cJSON_AddStringToObject(made.get(), "type", "json_schema");
        for (const char* field : {"name", "description", "schema", "strict"}) {
            const cJSON* value = cJSON_GetObjectItemCaseSensitive(schema, field);
            if (value && !cJSON_IsNull(value)) cJSON_AddItemToObject(made.get(), field, json_borrowed(value));
        }
    } else {
        return refuse("response_format.type", "'response_format.type' must be text, json_object or json_schema.", "invalid_value");
    }
    return cJSON_AddItemToObject(text_object(), "format", made.release());
}

bool Bridge::stream_options(const cJSON* options) {
    if (!cJSON_IsObject(options)) return refuse("stream_options", "'stream_options' must be an object.", "invalid_value");
    result.include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(options, "include_usage"));
    return true;
}

bool Bridge::max_tokens(const char* name, const cJSON* value) {
    if (!cJSON_IsNumber(value)) return refuse(name, "'" + std::string(name) + "' must be an integer.", "invalid_value");
    // max_completion_tokens wins over the older max_tokens, whichever comes first.
    cJSON* had = cJSON_GetObjectItemCaseSensitive(out.get(), "max_output_tokens");
    if (had && !std::strcmp(name, "max_tokens")) return true;
    if (had) cJSON_DeleteItemFromObjectCaseSensitive(out.get(), "max_output_tokens");
    // The Responses API refuses fewer than 16 (integer_below_min_value); a client's probe
    // with max_tokens 1 asks for "as little as may be", which 16 is.
    if (value->valuedouble >= 1 && value->valuedouble < kLeastOutputTokens)
        return cJSON_AddNumberToObject(out.get(), "max_output_tokens", kLeastOutputTokens) != nullptr;
    return copy("max_output_tokens", value);
}

bool Bridge::parameter(const cJSON* item) {
    const char* name = item->string;
    if (!std::strcmp(name, "messages")) return true;  // after the others (instructions)
    if (listed(name, kNoEquivalent, sizeof kNoEquivalent / sizeof *kNoEquivalent)) {
        if (is_default_value(name, item)) return true;
        return refuse(name, "The Responses API, the only one this deployment serves, has no equivalent of '" +
                                std::string(name) + "'; leave it out.", "unsupported_parameter");
    }
    if (cJSON_IsNull(item)) return true;  // null: as if absent
    if (listed(name, kPassed, sizeof kPassed / sizeof *kPassed)) return copy(name, item);
    if (!std::strcmp(name, "tools")) return tools(item);
    if (!std::strcmp(name, "tool_choice")) return tool_choice(item);
    if (!std::strcmp(name, "response_format")) return response_format(item);
    if (!std::strcmp(name, "stream_options")) return stream_options(item);
    if (!std::strcmp(name, "max_tokens") || !std::strcmp(name, "max_completion_tokens")) return max_tokens(name, item);
    if (!std::strcmp(name, "verbosity")) return cJSON_AddItemToObject(text_object(), "verbosity", json_borrowed(item));
    if (!std::strcmp(name, "reasoning_effort")) {
        cJSON* reasoning = cJSON_AddObjectToObject(out.get(), "reasoning");
        return cJSON_AddItemToObject(reasoning, "effort", json_borrowed(item));
    }
    return refuse(quote_value(name, 32), "Unknown parameter " + quote_value(name, 32) +
                                         ": the proxy cannot bridge it to the Responses API.", "unknown_parameter");
}

// The body printed once into a buffer of about its size (cJSON would grow its own by
// doubling, then copy it out); printed the usual way when it turns out larger.
std::string printed(const cJSON* body, size_t chat_size) {
    std::string text(chat_size + chat_size / 8 + 4096, '\0');
    if (text.size() < static_cast<size_t>(INT32_MAX) &&
        cJSON_PrintPreallocated(const_cast<cJSON*>(body), &text[0], static_cast<int>(text.size()), false)) {
        text.resize(std::strlen(text.c_str()));
        return text;
    }
    return print_json(body, "");
}

BridgedRequest refused(std::string param, std::string message, const char* code) {
    BridgedRequest result;
    result.refusal = {std::move(param), std::move(message), code};
    return result;
}

}  // namespace

BridgedRequest chat_to_responses(std::string_view chat_body) {
    if (chat_body.size() > kMaxBridgedBody)
        return refused("", "The request body is larger than the " + std::to_string(kMaxBridgedBody >> 20) +
                               " MiB the proxy bridges to the Responses API.", "request_too_large");
    if (nesting_depth(chat_body, kMaxBridgedDepth) > kMaxBridgedDepth)
        return refused("", "The request body nests deeper than the " + std::to_string(kMaxBridgedDepth) +
                               " levels the proxy bridges to the Responses API.", "request_too_large");
    // Strict JSON only: cJSON takes bytes that are not UTF-8 and ends a string at \u0000,
    // so the body rebuilt could say something other than what the client sent.
    JsonCheck strict = check_json(chat_body);
    if (!strict.valid || strict.escaped_nul_at != std::string_view::npos)
        return refused("", "The request body is not strict JSON (RFC 8259, UTF-8, no \\u0000 in strings).", "invalid_json");
    JsonPtr chat(cJSON_ParseWithLength(chat_body.data(), chat_body.size()));
    if (!cJSON_IsObject(chat.get())) return refused("", "The request body is not a JSON object.", "invalid_json");
    Bridge bridge;
    if (!bridge.out) return refused("", "The proxy ran out of memory.", "server_error");
    for (const cJSON* item = chat->child; item; item = item->next)
        if (!bridge.parameter(item)) return std::move(bridge.result);
    const cJSON* messages = cJSON_GetObjectItemCaseSensitive(chat.get(), "messages");
    BridgeRefusal fault;
    if (!messages_to_responses(messages, bridge.out.get(), fault))
        return refused(std::move(fault.param), std::move(fault.message), fault.code.c_str());
    if (!cJSON_GetObjectItemCaseSensitive(bridge.out.get(), "store")) cJSON_AddFalseToObject(bridge.out.get(), "store");
    bridge.result.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(chat.get(), "stream"));
    bridge.result.body = printed(bridge.out.get(), chat_body.size());
    if (bridge.result.body.empty()) return refused("", "The proxy ran out of memory.", "server_error");
    bridge.result.ok = true;
    return std::move(bridge.result);
}

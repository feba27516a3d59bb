// Tests: tests/unit/chat_to_responses_test.cpp (through chat_to_responses()).
#include "chat_messages.h"

#include <cstring>
#include <string>
#include <utility>

#include "json_ptr.h"

namespace {

constexpr auto string_of = json_string_member;  // json_ptr.h
bool is(const char* text, const char* expected) { return text && !std::strcmp(text, expected); }

// One message's translation; `param` is "messages[i]".
struct MessageBridge {
    cJSON* input;
    std::string& instructions;
    BridgeRefusal& refusal;
    std::string param;

    bool refuse(const std::string& where, std::string message, const char* code) {
        refusal = {param + where, std::move(message), code};
        return false;
    }
    bool too_many_parts(const cJSON* list, const std::string& where) {
        if (static_cast<size_t>(cJSON_GetArraySize(list)) <= kMaxBridgedParts) return false;
        refuse(where, "The proxy bridges at most " + std::to_string(kMaxBridgedParts) + " parts here.", "request_too_large");
        return true;
    }
    bool text_of(const cJSON* content, std::string& text, bool refusals_too);
    bool system(const cJSON* message);
    bool user(const cJSON* message);
    cJSON* user_part(const cJSON* part, const std::string& where);
    bool assistant(const cJSON* message);
    bool tool_call(const cJSON* call, const std::string& where);
    bool tool(const cJSON* message);
    bool translate(const cJSON* message);
};

// A content that must be text: a string, or text parts (joined by "\n"). Absent or null: "".
bool MessageBridge::text_of(const cJSON* content, std::string& text, bool refusals_too) {
    if (!content || cJSON_IsNull(content)) return true;
    if (cJSON_IsString(content)) return text.append(content->valuestring), true;
    if (!cJSON_IsArray(content)) return refuse(".content", "A message's content must be a string or an array of parts.", "invalid_value");
    if (too_many_parts(content, ".content")) return false;
    size_t index = 0;
    for (const cJSON* part = content->child; part; part = part->next, ++index) {
        const char* type = string_of(part, "type");
        const char* words = is(type, "text") ? string_of(part, "text") : is(type, "refusal") && refusals_too ? string_of(part, "refusal") : nullptr;
        if (!words) return refuse(".content[" + std::to_string(index) + "]", "Only text parts are bridged in this message.", "unsupported_value");
        if (index) text += '\n';
        text += words;
    }
    return true;
}

// System and developer messages become the instructions, joined by a blank line.
bool MessageBridge::system(const cJSON* message) {
    std::string text;
    if (!text_of(cJSON_GetObjectItemCaseSensitive(message, "content"), text, false)) return false;
    if (text.empty()) return true;
    if (!instructions.empty()) instructions += "\n\n";
    instructions += text;
    return true;
}

cJSON* MessageBridge::user_part(const cJSON* part, const std::string& where) {
    const char* type = string_of(part, "type");
    cJSON* made = cJSON_CreateObject();
    if (is(type, "text") && string_of(part, "text")) {
        cJSON_AddStringToObject(made, "type", "input_text");
        cJSON_AddItemToObject(made, "text", json_borrowed(cJSON_GetObjectItemCaseSensitive(part, "text")));
        return made;
    }
    const cJSON* image = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const char* url = cJSON_IsString(image) ? image->valuestring : string_of(image, "url");
    if (is(type, "image_url") && url) {
        const char* detail = string_of(image, "detail");
        cJSON_AddStringToObject(made, "type", "input_image");
        cJSON_AddItemToObject(made, "image_url", cJSON_CreateStringReference(url));  // a data URL may be large
        cJSON_AddStringToObject(made, "detail", detail ? detail : "auto");
        return made;
    }
    const cJSON* file = cJSON_GetObjectItemCaseSensitive(part, "file");
    if (is(type, "file") && cJSON_IsObject(file)) {
        cJSON_AddStringToObject(made, "type", "input_file");
        for (const char* field : {"file_id", "file_data", "filename"})
            if (string_of(file, field)) cJSON_AddItemToObject(made, field, cJSON_CreateStringReference(string_of(file, field)));
        return made;
    }
    cJSON_Delete(made);
    refuse(where, is(type, "input_audio") ? "Audio parts have no Responses API equivalent."
                                          : "A user part must be text, image_url or file.",
           is(type, "input_audio") ? "unsupported_value" : "invalid_value");
    return nullptr;
}

bool MessageBridge::user(const cJSON* message) {
    const cJSON* content = cJSON_GetObjectItemCaseSensitive(message, "content");
    cJSON* made = cJSON_CreateObject();
    cJSON_AddItemToArray(input, made);
    cJSON_AddStringToObject(made, "role", "user");
    if (cJSON_IsString(content)) return cJSON_AddItemToObject(made, "content", json_borrowed(content));
    if (!cJSON_IsArray(content)) return refuse(".content", "A user message's content must be a string or an array of parts.", "invalid_value");
    if (too_many_parts(content, ".content")) return false;
    cJSON* parts = cJSON_AddArrayToObject(made, "content");
    size_t index = 0;
    for (const cJSON* part = content->child; part; part = part->next, ++index) {
        cJSON* translated = user_part(part, ".content[" + std::to_string(index) + "]");
        if (!translated) return false;
        cJSON_AddItemToArray(parts, translated);
    }
    return true;
}

bool MessageBridge::tool_call(const cJSON* call, const std::string& where) {
    const cJSON* function = cJSON_GetObjectItemCaseSensitive(call, "function");
    const char* id = string_of(call, "id");
    const char* name = string_of(function, "name");
    const char* arguments = string_of(function, "arguments");
    if (!is(string_of(call, "type"), "function") || !id || !name)
        return refuse(where, "A tool call must be {\"id\",\"type\":\"function\",\"function\":{\"name\",\"arguments\"}}.", "invalid_value");
    cJSON* item = cJSON_CreateObject();
    cJSON_AddItemToArray(input, item);
    cJSON_AddStringToObject(item, "type", "function_call");
    cJSON_AddStringToObject(item, "call_id", id);
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddItemToObject(item, "arguments", cJSON_CreateStringReference(arguments ? arguments : ""));
    return true;
}

// Its text (or refusal) as an assistant message, then each tool call as a function_call item.
bool MessageBridge::assistant(const cJSON* message) {
    const cJSON* content = cJSON_GetObjectItemCaseSensitive(message, "content");
    const cJSON* refusal_text = cJSON_GetObjectItemCaseSensitive(message, "refusal");
    const cJSON* said = nullptr;  // a string borrowed as it is, else `text` joined from parts
    std::string text;
    if (cJSON_IsString(content) && *content->valuestring) said = content;
    else if (!cJSON_IsString(content) && !text_of(content, text, true)) return false;
    if (!said && text.empty() && cJSON_IsString(refusal_text) && *refusal_text->valuestring) said = refusal_text;
    if (said || !text.empty()) {
        cJSON* made = cJSON_CreateObject();
        cJSON_AddItemToArray(input, made);
        cJSON_AddStringToObject(made, "role", "assistant");
        cJSON_AddItemToObject(made, "content", said ? json_borrowed(said) : cJSON_CreateString(text.c_str()));
    }
    const cJSON* calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");
    if (!calls || cJSON_IsNull(calls)) return true;
    if (!cJSON_IsArray(calls)) return refuse(".tool_calls", "'tool_calls' must be an array.", "invalid_value");
    if (static_cast<size_t>(cJSON_GetArraySize(calls)) > kMaxBridgedTools)
        return refuse(".tool_calls", "The proxy bridges at most " + std::to_string(kMaxBridgedTools) + " tool calls in one message.", "request_too_large");
    size_t index = 0;
    for (const cJSON* call = calls->child; call; call = call->next, ++index)
        if (!tool_call(call, ".tool_calls[" + std::to_string(index) + "]")) return false;
    return true;
}

bool MessageBridge::tool(const cJSON* message) {
    const char* call_id = string_of(message, "tool_call_id");
    if (!call_id) return refuse(".tool_call_id", "A tool message needs its 'tool_call_id'.", "invalid_value");
    const cJSON* content = cJSON_GetObjectItemCaseSensitive(message, "content");
    std::string output;
    if (!cJSON_IsString(content) && !text_of(content, output, false)) return false;
    cJSON* item = cJSON_CreateObject();
    cJSON_AddItemToArray(input, item);
    cJSON_AddStringToObject(item, "type", "function_call_output");
    cJSON_AddStringToObject(item, "call_id", call_id);
    cJSON_AddItemToObject(item, "output", cJSON_IsString(content) ? json_borrowed(content) : cJSON_CreateString(output.c_str()));
    return true;
}

bool MessageBridge::translate(const cJSON* message) {
    const char* role = string_of(message, "role");
    if (is(role, "system") || is(role, "developer")) return system(message);
    if (is(role, "user")) return user(message);
    if (is(role, "assistant")) return assistant(message);
    if (is(role, "tool")) return tool(message);
    if (is(role, "function"))
        return refuse(".role", "Legacy function messages have no Responses API equivalent; use tools and tool messages.", "unsupported_value");
    return refuse(".role", "A message's role must be system, developer, user, assistant or tool.", "invalid_value");
}

// {type:function, name} from Chat's {type:function, function:{name}}; null otherwise.
cJSON* named_function(const cJSON* chat) {
    const char* name = string_of(cJSON_GetObjectItemCaseSensitive(chat, "function"), "name");
    if (!is(string_of(chat, "type"), "function") || !name) return nullptr;
    cJSON* made = cJSON_CreateObject();
    cJSON_AddStringToObject(made, "type", "function");
    cJSON_AddStringToObject(made, "name", name);
    return made;
}

}  // namespace

bool messages_to_responses(const cJSON* messages, cJSON* out, BridgeRefusal& refusal) {
    if (!cJSON_IsArray(messages) || !messages->child) {
        refusal = {"messages", "'messages' must be a non-empty array.", "invalid_value"};
        return false;
    }
    if (static_cast<size_t>(cJSON_GetArraySize(messages)) > kMaxBridgedMessages) {
        refusal = {"messages", "The proxy bridges at most " + std::to_string(kMaxBridgedMessages) +
                                   " messages to the Responses API.", "request_too_large"};
        return false;
    }
    std::string instructions;
    cJSON* input = cJSON_CreateArray();
    size_t index = 0;
    for (const cJSON* message = messages->child; message; message = message->next, ++index) {
        MessageBridge bridge{input, instructions, refusal, "messages[" + std::to_string(index) + "]"};
        if (!bridge.translate(message)) return cJSON_Delete(input), false;
    }
    if (!instructions.empty()) cJSON_AddStringToObject(out, "instructions", instructions.c_str());
    cJSON_AddItemToObject(out, "input", input);
    return true;
}

cJSON* function_tool_to_responses(const cJSON* tool) {
    const cJSON* function = cJSON_GetObjectItemCaseSensitive(tool, "function");
    cJSON* made = named_function(tool);
    if (!made) return nullptr;
    const char* description = string_of(function, "description");
    if (description) cJSON_AddStringToObject(made, "description", description);
    const cJSON* parameters = cJSON_GetObjectItemCaseSensitive(function, "parameters");
    if (cJSON_IsObject(parameters)) {
        cJSON_AddItemToObject(made, "parameters", json_borrowed(parameters));
    } else {
        cJSON* empty = cJSON_AddObjectToObject(made, "parameters");
        cJSON_AddStringToObject(empty, "type", "object");
        cJSON_AddObjectToObject(empty, "properties");
    }
    cJSON_AddBoolToObject(made, "strict", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(function, "strict")));
    return made;
}

cJSON* tool_choice_to_responses(const cJSON* choice) {
    if (cJSON_IsString(choice)) {
        for (const char* word : {"none", "auto", "required"})
            if (is(choice->valuestring, word)) return cJSON_CreateString(word);
        return nullptr;
    }
    if (!is(string_of(choice, "type"), "allowed_tools")) return named_function(choice);
    const cJSON* allowed = cJSON_GetObjectItemCaseSensitive(choice, "allowed_tools");
    const cJSON* tools = cJSON_GetObjectItemCaseSensitive(allowed, "tools");
    const char* mode = string_of(allowed, "mode");
    if (!cJSON_IsArray(tools) || !(is(mode, "auto") || is(mode, "required"))) return nullptr;
    cJSON* made = cJSON_CreateObject();
    cJSON_AddStringToObject(made, "type", "allowed_tools");
    cJSON_AddStringToObject(made, "mode", mode);
    cJSON* list = cJSON_AddArrayToObject(made, "tools");
    for (const cJSON* tool = tools->child; tool; tool = tool->next) {
        cJSON* named = named_function(tool);
        if (!named) return cJSON_Delete(made), nullptr;
        cJSON_AddItemToArray(list, named);
    }
    return made;
}

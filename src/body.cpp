#include "body.h"

#include <cjson/cJSON.h>

ModelField model_from_json(const std::string& body) {
    ModelField field;
    cJSON* root = cJSON_ParseWithLength(body.data(), body.size());
    if (!root) {
        field.status = ModelField::InvalidJson;
        return field;
    }
    if (!cJSON_IsObject(root)) {
        field.status = ModelField::NotAnObject;
    } else {
        field.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
        const cJSON* model = cJSON_GetObjectItemCaseSensitive(root, "model");
        if (!model || cJSON_IsNull(model)) {
            field.status = ModelField::Missing;
        } else if (!cJSON_IsString(model) || !model->valuestring) {
            field.status = ModelField::NotAString;
        } else {
            field.status = ModelField::Found;
            field.model = model->valuestring;
        }
    }
    cJSON_Delete(root);
    return field;
}

namespace {

size_t skip_space(const std::string& text, size_t at) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r'))
        ++at;
    return at;
}

// The end of the JSON string that starts at `at` (its opening quote), past the closing one.
size_t skip_string(const std::string& text, size_t at) {
    for (size_t i = at + 1; i < text.size(); ++i) {
        if (text[i] == '\\') ++i;
        else if (text[i] == '"') return i + 1;
    }
    return std::string::npos;
}

// The end of the JSON value that starts at `at`.
size_t skip_value(const std::string& text, size_t at) {
    if (at >= text.size()) return std::string::npos;
    if (text[at] == '"') return skip_string(text, at);
    if (text[at] != '{' && text[at] != '[') {
        size_t end = text.find_first_of(",}] \t\r\n", at);
        return end == std::string::npos ? text.size() : end;
    }
    int depth = 0;
    for (size_t i = at; i < text.size(); ++i) {
        if (text[i] == '"') {
            i = skip_string(text, i);
            if (i == std::string::npos) return i;
            --i;
        } else if (text[i] == '{' || text[i] == '[') {
            ++depth;
        } else if ((text[i] == '}' || text[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return std::string::npos;
}

std::string json_string(const std::string& value) {
    cJSON* item = cJSON_CreateString(value.c_str());
    char* printed = cJSON_PrintUnformatted(item);
    std::string out = printed ? printed : "\"\"";
    cJSON_free(printed);
    cJSON_Delete(item);
    return out;
}

}  // namespace

bool set_json_model(std::string& json, const std::string& model) {
    size_t at = skip_space(json, 0);
    if (at >= json.size() || json[at] != '{') return false;
    size_t open = at;
    at = skip_space(json, at + 1);
    while (at < json.size() && json[at] == '"') {
        size_t key_end = skip_string(json, at);
        if (key_end == std::string::npos) return false;
        bool is_model = json.compare(at, key_end - at, "\"model\"") == 0;
        at = skip_space(json, key_end);
        if (at >= json.size() || json[at] != ':') return false;
        size_t value = skip_space(json, at + 1);
        size_t value_end = skip_value(json, value);
        if (value_end == std::string::npos) return false;
        if (is_model) {
            json.replace(value, value_end - value, json_string(model));
            return true;
        }
        at = skip_space(json, value_end);
        if (at < json.size() && json[at] == ',') at = skip_space(json, at + 1);
    }
    bool empty = skip_space(json, open + 1) < json.size() && json[skip_space(json, open + 1)] == '}';
    json.insert(open + 1, "\"model\":" + json_string(model) + (empty ? "" : ","));
    return true;
}

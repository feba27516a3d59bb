// cJSON trees owned: a tree lives in a JsonPtr and is freed with it; printed text is
// copied out and freed at once. No cJSON_Delete by hand.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>

struct JsonDeleter {
    void operator()(cJSON* json) const { cJSON_Delete(json); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// The tree as compact JSON text; `fallback` when it cannot be printed (out of memory).
inline std::string print_json(const cJSON* json, const char* fallback) {
    std::unique_ptr<char, void (*)(void*)> text(cJSON_PrintUnformatted(json), cJSON_free);
    return text ? std::string(text.get()) : std::string(fallback);
}

// An object's member `name` when it is a string (its text), else null; null `object` too.
inline const char* json_string_member(const cJSON* object, const char* name) {
    const cJSON* value = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(value) ? value->valuestring : nullptr;
}

// `item` seen from another tree without a copy: its strings and members are borrowed, so
// the other tree must be printed while `item`'s own tree lives (deleting it frees nothing
// borrowed). A large body rebuilt this way costs its text once, not twice.
inline cJSON* json_borrowed(const cJSON* item) {
    if (cJSON_IsObject(item)) return cJSON_CreateObjectReference(item->child);
    if (cJSON_IsArray(item)) return cJSON_CreateArrayReference(item->child);
    if (cJSON_IsString(item)) return cJSON_CreateStringReference(item->valuestring);
    return cJSON_Duplicate(item, false);
}

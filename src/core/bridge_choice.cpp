#include "bridge_choice.h"

#include <cjson/cJSON.h>

#include <string>
#include <vector>

#include "json_ptr.h"
#include "text.h"

namespace {

// The name's '-'-separated segments, lowercased.
std::vector<std::string> segments(std::string_view name) {
    std::vector<std::string> out(1);
    for (char c : lowercase(std::string(name))) {
        if (c == '-' || c == '_') out.emplace_back();
        else out.back() += c;
    }
    return out;
}

// o1, o3, gpt-5, gpt-5.1, gpt-5.2, ...: the families whose "-pro" models are Responses-only.
bool pro_base(const std::vector<std::string>& parts, size_t& next) {
    if (parts[0] == "o1" || parts[0] == "o3") {
        next = 1;
        return true;
    }
    if (parts[0] != "gpt" || parts.size() < 2) return false;
    const std::string& version = parts[1];
    next = 2;
    return version == "5" || (version.compare(0, 2, "5.") == 0 && version.size() > 2);
}

// Whether `word` (lowercase letters only) is in the name at `at`, in any case: a letter
// ORed with 0x20 is its lowercase, and no other byte becomes a lowercase letter.
bool word_at(std::string_view name, size_t at, std::string_view word) {
    if (name.size() - at < word.size()) return false;
    for (size_t i = 0; i < word.size(); ++i)
        if (static_cast<char>(name[at + i] | 0x20) != word[i]) return false;
    return true;
}

// Whether the name holds "codex", "pro" or "computer" (any case), looked for in one pass.
bool holds_a_family_word(std::string_view name) {
    for (size_t at = 0; at < name.size(); ++at) {
        char c = static_cast<char>(name[at] | 0x20);  // 'c' or 'p' in either case, and no other letter
        if (c == 'c' && (word_at(name, at, "codex") || word_at(name, at, "computer"))) return true;
        if (c == 'p' && word_at(name, at, "pro")) return true;
    }
    return false;
}

}  // namespace

bool responses_only_family(std::string_view name) {
    // Every family below has a segment "codex", "pro" or "computer": a name with none of
    // them (most, on every request) is not split at all.
    if (!holds_a_family_word(name)) return false;
    std::vector<std::string> parts = segments(name);
    for (const std::string& part : parts)
        if (part == "codex") return true;
    size_t next = 0;
    if (pro_base(parts, next) && parts.size() > next && parts[next] == "pro") return true;
    return parts.size() >= 3 && parts[0] == "computer" && parts[1] == "use" && parts[2] == "preview";
}

bool bridge_to_responses(std::string_view model, std::string_view deployment, const ParamOverrides* overrides,
                         ParamSet learned) {
    if (overrides) {
        for (std::string_view name : {model, deployment}) {
            auto found = overrides->find(std::string(name));
            if (found != overrides->end()) return found->second & kResponsesOnly;
        }
    }
    // The deployment is most often the model's own name: asked once then.
    return responses_only_family(model) || (deployment != model && responses_only_family(deployment)) ||
           (learned & kResponsesOnly);
}

bool chat_not_supported(long status, std::string_view body) {
    if (status != 400 || body.size() > 64 * 1024) return false;
    JsonPtr json(cJSON_ParseWithLength(body.data(), body.size()));
    const cJSON* error = cJSON_GetObjectItemCaseSensitive(json.get(), "error");
    const cJSON* code = cJSON_GetObjectItemCaseSensitive(error, "code");
    return cJSON_IsString(code) && std::string_view(code->valuestring) == "OperationNotSupported";
}

#include "reasoning_params.h"

#include <cjson/cJSON.h>

#include <cstdlib>
#include <vector>

#include "json_members.h"
#include "json_ptr.h"
#include "text.h"

namespace {

// The parameters the proxy fixes. Azure's documentation of reasoning models lists them
// as not supported; Azure accepts a sampling parameter at its default value, so that
// one is left (nothing the deployment accepts is rewritten).
struct Param {
    const char* name;
    const char* default_value;  // kept when the value is this (numbers compared as numbers); null: never kept
};
const Param kParams[] = {
    {"max_tokens", nullptr},      // renamed, not dropped
    {"temperature", "1"},
    {"top_p", "1"},
    {"presence_penalty", "0"},
    {"frequency_penalty", "0"},
    {"logprobs", "false"},
    {"top_logprobs", nullptr},
    {"logit_bias", nullptr},
};
constexpr size_t kParamCount = sizeof kParams / sizeof kParams[0];
constexpr ParamSet kMaxTokens = 1;

// In any case, without a lowercased copy: every chat request's model and deployment are asked.
bool starts_family(std::string_view name, std::string_view family) {
    if (!istarts_with(name, family)) return false;
    return name.size() == family.size() || name[family.size()] == '-' || name[family.size()] == '.' ||
           name[family.size()] == '_';
}

// A value at the parameter's default, or null: Azure takes it as it is.
bool at_default(const Param& param, std::string_view value) {
    if (value == "null") return true;
    if (!param.default_value) return false;
    std::string_view wanted(param.default_value);
    if (value == wanted) return true;
    if (wanted == "false" || value.empty() || value[0] == '"' || value[0] == '{' || value[0] == '[') return false;
    std::string digits(value);
    return std::strtod(digits.c_str(), nullptr) == std::strtod(param.default_value, nullptr);
}

// A member's key as a JSON reader (Azure's) decodes it: "max\u005ftokens" is max_tokens.
std::string decoded_key(const std::string& json, const JsonMember& member) {
    std::string_view raw = member.key_text(json);
    if (raw.find('\\') == std::string_view::npos) return std::string(raw);
    JsonPtr key(cJSON_ParseWithLength(json.data() + member.key, member.key_end - member.key));
    return cJSON_IsString(key.get()) ? key->valuestring : std::string(raw);
}

}  // namespace

void add_rewrite(std::string& rewrites, const std::string& what) {
    if (!rewrites.empty()) rewrites += ',';
    rewrites += what;
}

ParamSet param_bit(std::string_view name) {
    for (size_t i = 0; i < kParamCount; ++i)
        if (name == kParams[i].name) return ParamSet(1) << i;
    return 0;
}

ParamSet reasoning_params() { return (ParamSet(1) << kParamCount) - 1; }

std::string param_names(ParamSet params) {
    std::string names;
    for (size_t i = 0; i < kParamCount; ++i)
        if (params & (ParamSet(1) << i)) add_rewrite(names, kParams[i].name);
    return names;
}

bool reasoning_family(std::string_view name) {
    // gpt-5, gpt-5-mini, gpt-5.1, gpt-5.2-mini, ...; not gpt-5-chat. Its '5' is asked first:
    // most names (gpt-4o, gpt-4.1, ...) go without a call.
    if (name.size() >= 5 && name[4] == '5' && istarts_with(name, "gpt-5"))
        return !starts_family(name, "gpt-5-chat") && (starts_family(name, "gpt-5") || istarts_with(name, "gpt-5."));
    if (name.empty() || (name[0] != 'o' && name[0] != 'O')) return false;  // most names, asked at once
    for (const char* family : {"o1", "o3", "o4-mini"})
        if (starts_family(name, family)) return true;
    return false;
}

std::string read_param_override(const cJSON* value, ParamSet& out) {
    const char* expected = "must be \"reasoning\", \"none\", \"responses\" or a list of the parameters fixed (" ;
    out = 0;
    if (cJSON_IsString(value) && std::string_view(value->valuestring) == "reasoning") out = reasoning_params();
    else if (cJSON_IsString(value) && std::string_view(value->valuestring) == "none") out = 0;
    else if (cJSON_IsString(value) && std::string_view(value->valuestring) == "responses") out = kResponsesOnly;
    else if (!cJSON_IsArray(value)) return expected + param_names(reasoning_params()) + ")";
    for (const cJSON* item = cJSON_IsArray(value) ? value->child : nullptr; item; item = item->next) {
        ParamSet bit = cJSON_IsString(item) ? param_bit(item->valuestring) : 0;
        if (!bit) return expected + param_names(reasoning_params()) + ")";
        out |= bit;
    }
    return "";
}

ParamSet params_to_fix(std::string_view model, std::string_view deployment, const ParamOverrides* overrides) {
    if (overrides) {
        for (std::string_view name : {model, deployment}) {
            auto found = overrides->find(std::string(name));
            if (found != overrides->end()) return found->second;
        }
    }
    // The deployment is most often the model's own name: asked once then.
    return reasoning_family(model) || (deployment != model && reasoning_family(deployment)) ? reasoning_params() : 0;
}

ParamSet fix_parameters(std::string& json, ParamSet fixes, std::string& rewrites) {
    std::vector<JsonMember> members;
    size_t open = 0;
    if (!fixes || !json_members(json, members, open)) return 0;
    bool has_completion_tokens = false, effort_none = false;
    std::vector<std::string> keys;
    for (const JsonMember& member : members) {
        keys.push_back(decoded_key(json, member));
        const std::string& key = keys.back();
        has_completion_tokens = has_completion_tokens || key == "max_completion_tokens";
        if (key == "reasoning_effort")
            effort_none = std::string_view(json).substr(member.value, member.value_end - member.value) == "\"none\"";
    }
    if (effort_none) fixes &= kMaxTokens;
    ParamSet changed = 0;
    bool later_left = false;
    std::vector<std::string> done;
    // From the last member to the first, so the spans still to edit stay right.
    for (size_t i = members.size(); i-- > 0;) {
        const JsonMember& member = members[i];
        ParamSet bit = param_bit(keys[i]) & fixes;
        if (!bit) {
            later_left = true;
            continue;
        }
        const Param& param = kParams[__builtin_ctz(bit)];
        std::string_view value = std::string_view(json).substr(member.value, member.value_end - member.value);
        if (bit == kMaxTokens && !has_completion_tokens) {
            json.replace(member.key, member.key_end - member.key, "\"max_completion_tokens\"");
            done.push_back("max_tokens>max_completion_tokens");
            later_left = true;
        } else if (bit == kMaxTokens || !at_default(param, value)) {
            remove_json_member(json, members, i, later_left);
            done.push_back(std::string("-") + param.name);
        } else {
            later_left = true;
            continue;
        }
        changed |= bit;
    }
    for (size_t i = done.size(); i-- > 0;) add_rewrite(rewrites, done[i]);  // in the body's order
    return changed;
}

ParamSet fixable_refusal(const std::string& body) {
    JsonPtr root(cJSON_ParseWithLength(body.data(), body.size()));
    const cJSON* error = cJSON_GetObjectItemCaseSensitive(root.get(), "error");
    const cJSON* code = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON* param = cJSON_GetObjectItemCaseSensitive(error, "param");
    if (!cJSON_IsString(code) || !cJSON_IsString(param)) return 0;
    std::string_view code_text(code->valuestring);
    if (code_text != "unsupported_parameter" && code_text != "unsupported_value") return 0;
    return param_bit(param->valuestring);
}

#include "json_members.h"

namespace {

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

}  // namespace

size_t json_skip_space(const std::string& text, size_t at) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r'))
        ++at;
    return at;
}

bool json_members(const std::string& json, std::vector<JsonMember>& members, size_t& open) {
    members.clear();
    size_t at = json_skip_space(json, 0);
    if (at >= json.size() || json[at] != '{') return false;
    open = at;
    at = json_skip_space(json, at + 1);
    while (at < json.size() && json[at] == '"') {
        JsonMember member;
        member.key = at;
        member.key_end = skip_string(json, at);
        if (member.key_end == std::string::npos) return false;
        at = json_skip_space(json, member.key_end);
        if (at >= json.size() || json[at] != ':') return false;
        member.value = json_skip_space(json, at + 1);
        member.value_end = skip_value(json, member.value);
        if (member.value_end == std::string::npos) return false;
        members.push_back(member);
        at = json_skip_space(json, member.value_end);
        if (at < json.size() && json[at] == ',') at = json_skip_space(json, at + 1);
    }
    return at < json.size() && json[at] == '}';
}

void remove_json_member(std::string& json, const std::vector<JsonMember>& members, size_t index, bool later_left) {
    const JsonMember& member = members[index];
    // Up to the next member (whose start no later edit moved): the comma and space go.
    if (later_left && index + 1 < members.size())
        json.erase(member.key, members[index + 1].key - member.key);
    else if (index > 0)  // the last one left: from the end of the one before, its comma included
        json.erase(members[index - 1].value_end, member.value_end - members[index - 1].value_end);
    else
        json.erase(member.key, member.value_end - member.key);
}

JsonMemberSearch find_json_member(const std::string& json, std::string_view key) {
    JsonMemberSearch found;
    std::vector<JsonMember> members;
    size_t open = 0;
    if (!json_members(json, members, open)) return found;
    found.object = true;
    for (const JsonMember& member : members) {
        std::string_view spelled = member.key_text(json);
        if (spelled.find('\\') != std::string_view::npos) ++found.escaped_keys;
        if (spelled == key && found.count++ == 0) {
            found.value = member.value;
            found.value_end = member.value_end;
        }
    }
    return found;
}

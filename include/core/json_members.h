// The top-level members of a JSON object's text, as byte spans, so a member can be
// renamed, replaced or removed while every other byte of the body stays as it was. The
// text is one the strict check (json_model.h's check_json) has passed: this walk does not
// check the grammar again, it only finds where members begin and end.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct JsonMember {
    size_t key = 0;        // the key's opening quote
    size_t key_end = 0;    // past its closing quote
    size_t value = 0;      // the value's first byte
    size_t value_end = 0;  // past its last byte
    // The key as written, without its quotes (escapes left as they are).
    std::string_view key_text(const std::string& json) const {
        return std::string_view(json).substr(key + 1, key_end - key - 2);
    }
};

// The first byte at or after `at` that is not JSON whitespace.
size_t json_skip_space(const std::string& text, size_t at);

// The top-level members of `json`, in order, and the offset of its opening brace in
// `open`. False when the text is not an object or ends inside one.
bool json_members(const std::string& json, std::vector<JsonMember>& members, size_t& open);

// Removes `members[index]` (one of json_members' answer for `json`) with the comma that
// joins it to its neighbours. Several go from the last to the first (the spans before an
// edit stay right), each told whether a member after it is still there (`later_left`).
void remove_json_member(std::string& json, const std::vector<JsonMember>& members, size_t index, bool later_left);

// A top-level member looked up by `key` as the text spells it: how many members carry that
// key, where the first one's value lies, and how many keys are spelled with escapes (any of
// which may decode to `key`: a caller that must be sure refuses them). For a text check_json
// found valid; `object` false when it is not an object (or breaks off).
struct JsonMemberSearch {
    bool object = false;
    int count = 0;
    int escaped_keys = 0;
    size_t value = std::string::npos, value_end = std::string::npos;
};
JsonMemberSearch find_json_member(const std::string& json, std::string_view key);

// A JSON body's "model" (and "stream"): found, checked, and rewritten in place, the rest of
// the body left byte for byte; a strict check of JSON text (the routing file uses it).
#pragma once

#include <string>
#include <string_view>

struct ModelField {
    // Ambiguous: "model" appears twice at the top level, is spelled with escapes, or its
    // value holds \u0000, so that readers of the body could disagree on it.
    // TooLong: longer than any deployment name could be (kept no further).
    enum Status { Found, InvalidJson, NotAnObject, Missing, NotAString, Ambiguous, TooLong } status = Missing;
    std::string model;
    bool stream = false;  // the object's top-level "stream" is true: the answer is an SSE stream
    bool stream_options = false;  // the object has a top-level "stream_options"
};

// The top-level "model" string of a JSON body (and whether it asks for a stream). The
// body must be strict JSON (RFC 8259, UTF-8): anything cJSON would forgive but another
// parser might read differently is InvalidJson.
ModelField model_from_json(const std::string& body);

// The longest model name kept; a longer one is refused without being copied.
constexpr size_t kLongestModel = 1024;

// One strict pass over a JSON text: the grammar of RFC 8259 with JSON's four whitespace
// bytes only, UTF-8 strings without raw control bytes or lone surrogates, nesting at most
// 512 deep. On the way it reads what the proxy needs of a top-level object: its "model"
// (decoded, as cJSON would) and whether "stream" is true.
struct JsonCheck {
    bool valid = false;
    bool object = false;          // the text is an object
    int model_keys = 0;           // top-level keys that decode to "model"
    bool model_ambiguous = false; // one is spelled with escapes, or its string holds \u0000
    enum Kind { Absent, Null, String, Other } model_kind = Absent;  // the first model's value
    std::string model;            // its string, when at most kLongestModel bytes
    bool model_too_long = false;
    bool stream = false;          // the first top-level "stream" is true
    bool stream_options = false;  // a top-level "stream_options" is there
    size_t stopped_at = 0;        // not valid: the offset of the first byte refused
    // The offset of the first \u0000 in any string: valid JSON, but a reader of C strings
    // (cJSON) ends the string there.
    size_t escaped_nul_at = std::string_view::npos;
};
JsonCheck check_json(std::string_view text);

// Adds "stream_options":{"include_usage":true} to a JSON object that has no
// "stream_options" (checked by the caller), first, leaving every other byte as it was.
bool add_stream_usage(std::string& json);

// A top-level member of a JSON object (`key` as the text spells it): how many members carry
// that key, where the first one's value lies, and how many keys are spelled with escapes
// (any of which may decode to `key`). For a text check_json found valid.
struct JsonMember {
    bool object = false;  // the text is an object
    bool complete = false;  // ...read to its closing '}'
    int count = 0;
    int escaped_keys = 0;
    size_t open = std::string::npos;  // the object's '{'
    size_t value = std::string::npos, value_end = std::string::npos;
};
JsonMember find_json_member(const std::string& json, std::string_view key);

// Replaces, or adds, the top-level "model" string of a JSON object, leaving every other
// byte as it was (numbers keep their digits). False when `json` is not an object.
bool set_json_model(std::string& json, const std::string& model);

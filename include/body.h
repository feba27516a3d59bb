// Reading what the proxy needs from a request body without changing it.
#pragma once

#include <string>
#include <string_view>

struct ModelField {
    // Ambiguous: "model" appears twice at the top level, is spelled with escapes, or its
    // value holds \u0000, so that readers of the body could disagree on it.
    enum Status { Found, InvalidJson, NotAnObject, Missing, NotAString, Ambiguous } status = Missing;
    std::string model;
    bool stream = false;  // the object's top-level "stream" is true: the answer is an SSE stream
};

// The top-level "model" string of a JSON body (and whether it asks for a stream). The
// body must be strict JSON (RFC 8259, UTF-8): anything cJSON would forgive but another
// parser might read differently is InvalidJson.
ModelField model_from_json(const std::string& body);

// Strict JSON: the grammar of RFC 8259 with JSON's four whitespace bytes only, UTF-8
// strings without raw control bytes, nesting at most 512 deep. `model_keys` counts the
// top-level keys that decode to "model"; `model_ambiguous` is set when one is spelled with
// escapes or a top-level model string holds \u0000.
struct JsonCheck {
    bool valid = false;
    int model_keys = 0;
    bool model_ambiguous = false;
};
JsonCheck check_json(std::string_view text);

// Replaces, or adds, the top-level "model" string of a JSON object, leaving every other
// byte as it was (numbers keep their digits). False when `json` is not an object.
bool set_json_model(std::string& json, const std::string& model);

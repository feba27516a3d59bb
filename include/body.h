// Reading what the proxy needs from a request body without changing it.
#pragma once

#include <string>

struct ModelField {
    enum Status { Found, InvalidJson, NotAnObject, Missing, NotAString } status = Missing;
    std::string model;
    bool stream = false;  // the object's top-level "stream" is true: the answer is an SSE stream
};

// The top-level "model" string of a JSON body (and whether it asks for a stream).
ModelField model_from_json(const std::string& body);

// Replaces, or adds, the top-level "model" string of a JSON object, leaving every other
// byte as it was (numbers keep their digits). False when `json` is not an object.
bool set_json_model(std::string& json, const std::string& model);

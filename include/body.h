// Reading what the proxy needs from a request body without changing it.
#pragma once

#include <string>

struct ModelField {
    enum Status { Found, InvalidJson, NotAnObject, Missing, NotAString } status = Missing;
    std::string model;
};

// The top-level "model" string of a JSON body.
ModelField model_from_json(const std::string& body);

// The environment of an azure-mode proxy for config tests: the endpoint plus `extra`.
#pragma once

#include "config.h"

inline Environment azure(Environment extra = {}) {
    extra.emplace("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/");
    return extra;
}

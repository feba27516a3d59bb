// The process's environment as the routing file's lookup of `env:NAME` secrets
// (routing.h's EnvironmentLookup), for the FastCGI program and the realtime companion alike.
#pragma once

#include <cstdlib>
#include <string>

inline std::string process_environment(const std::string& name, void*) {
    const char* value = std::getenv(name.c_str());
    return value ? value : "";
}

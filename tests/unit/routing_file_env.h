// A routing file for config tests: written to a temporary file and read through
// parse_config, as AZURE_OPENAI_PROXY_CONFIG, with a server-side key set.
#pragma once

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "azure_env.h"
#include "config.h"

inline std::string write_temp(const std::string& text) {
    char name[] = "/tmp/aop-routing-XXXXXX";
    int fd = mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return name;
}

inline ConfigResult with_file(const std::string& json, Environment extra = {}) {
    std::string file = write_temp(json);
    extra.emplace("AZURE_OPENAI_PROXY_CONFIG", file);
    extra.emplace("AZURE_OPENAI_TOKEN", "server-key-123");
    ConfigResult r = parse_config(azure(extra));
    unlink(file.c_str());
    return r;
}

// The programs' command lines (azure-openai-proxy and azure-openai-proxy-realtime): options
// that take a value (`--listen ADDRESS`), switches (`--check-config`), `--help` / `-h` and
// `--version`, read the same way by both.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

struct CommandLine {
    std::map<std::string, std::string> values;  // "--listen" -> "/run/x.sock"; the last one given wins
    std::set<std::string> switches;              // "--check-config"
    bool help = false, version = false;          // reading stops at either
    std::string unknown;                         // the first argument it does not know (or a value missing)
};

CommandLine read_command_line(int argc, const char* const* argv, const std::vector<std::string>& with_value,
                              const std::vector<std::string>& switches);

// The programs' command lines (command_line.h).
#include "command_line.h"

#include <algorithm>

namespace {
bool listed(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}
}  // namespace

CommandLine read_command_line(int argc, const char* const* argv, const std::vector<std::string>& with_value,
                              const std::vector<std::string>& switches) {
    CommandLine line;
    for (int i = 1; i < argc && !line.help && !line.version && line.unknown.empty(); ++i) {
        std::string argument = argv[i];
        if (listed(with_value, argument) && i + 1 < argc)
            line.values[argument] = argv[++i];
        else if (listed(switches, argument))
            line.switches.insert(argument);
        else if (argument == "--help" || argument == "-h")
            line.help = true;
        else if (argument == "--version")
            line.version = true;
        else
            line.unknown = argument;
    }
    return line;
}

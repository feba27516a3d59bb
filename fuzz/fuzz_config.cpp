// The environment: any value of any setting is read or refused with one line, and what
// the program prints about its settings never depends on a key's value.
#include <string>

#include "invariant.h"
#include "config.h"
#include "text.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    Environment env;
    for (const std::string& line : split(std::string(reinterpret_cast<const char*>(data), size), '\n')) {
        size_t eq = line.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string name = line.substr(0, eq);
        if (name.find("KEYS") != std::string::npos && line.size() > eq + 1 && line[eq + 1] == '@')
            continue;  // no file reads from fuzz input
        if (name.find("CONFIG") != std::string::npos) continue;  // the file: fuzz_routing
        env["AZURE_OPENAI_" + name] = line.substr(eq + 1);
    }
    ConfigResult result = parse_config(env);
    if (!result.ok) {
        REQUIRE(!result.error.empty() && result.error.find('\n') == std::string::npos);
        return 0;
    }
    // What is printed does not depend on the secrets' values: with other secrets in
    // their place (as many, as empty) it is the same text.
    Config other = result.config;
    if (!other.token.empty()) other.token = "a-different-token";
    for (ClientKey& key : other.client_keys) key.key = "another-key-" + key.name;
    REQUIRE(describe_config(result.config) == describe_config(other));
    return 0;
}

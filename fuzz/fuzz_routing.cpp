// The configuration file (AZURE_OPENAI_PROXY_CONFIG): any text is read or refused with
// one line per mistake, each naming the file; what --check-config prints never depends on
// a key's value.
#include <string>

#include "config.h"
#include "invariant.h"
#include "routing.h"
#include "text.h"

namespace {

// Every env:NAME resolves to a key derived from NAME and the round (file: is not read:
// the fuzzer's text must not reach the disk).
std::string lookup(const std::string& name, void* round) {
    return "key-" + std::to_string(*static_cast<int*>(round)) + "-" + name.substr(0, 20);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    if (text.find("file:") != std::string::npos) return 0;
    Config base;
    base.endpoint = "https://base.example";
    std::string printed[2];
    for (int round = 0; round < 2; ++round) {
        RoutingTable table;
        std::vector<std::string> errors;
        bool ok = parse_routing("f.json", text, base, lookup, &round, table, errors);
        REQUIRE(ok == errors.empty());
        for (const std::string& line : errors) REQUIRE(starts_with(line, "f.json: ") && line.find('\n') == std::string::npos);
        if (!ok) return 0;
        for (const Endpoint& endpoint : table.endpoints) REQUIRE(endpoint.upstream && !endpoint.upstream->token.empty());
        for (const auto& [model, targets] : table.models)
            for (const Target& target : targets) REQUIRE(target.endpoint < table.endpoints.size() && target.weight >= 1);
        printed[round] = describe_routing(table);
    }
    REQUIRE(printed[0] == printed[1]);
    return 0;
}

// Reasoning parameters: a strict JSON body whose parameters are fixed stays strict JSON,
// holds none of the refused members at odds with the rules (no max_tokens at the top), and
// keeps every other top-level member as it was; Azure's 400 is read without a crash.
#include <cjson/cJSON.h>

#include <string>

#include "invariant.h"
#include "json_model.h"
#include "reasoning_params.h"

namespace {

// A member the rules may rename or remove, or the name a renamed one takes.
bool untouched(const cJSON* member) {
    return param_bit(member->string) == 0 && std::string(member->string) != "max_completion_tokens";
}

// Equal values, printed (cJSON_Compare finds two equal objects unequal when a key repeats).
bool same(const cJSON* a, const cJSON* b) {
    char* x = cJSON_PrintUnformatted(a);
    char* y = cJSON_PrintUnformatted(b);
    bool equal = x && y && std::string(x) == y;
    cJSON_free(x);
    cJSON_free(y);
    return equal;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    (void)fixable_refusal(body);
    JsonCheck check = check_json(body);
    if (!check.valid || !check.object || check.escaped_nul_at != std::string::npos) return 0;
    std::string fixed = body;
    std::string rewrites;
    ParamSet changed = fix_parameters(fixed, reasoning_params(), rewrites);
    REQUIRE((changed == 0) == rewrites.empty());
    REQUIRE((changed == 0) == (fixed == body));
    REQUIRE(check_json(fixed).valid);
    cJSON* before = cJSON_ParseWithLength(body.data(), body.size());
    cJSON* after = cJSON_ParseWithLength(fixed.data(), fixed.size());
    REQUIRE(before && after);
    REQUIRE(!cJSON_GetObjectItemCaseSensitive(after, "max_tokens"));
    // Every member the rules do not touch is still there, in its place, equal.
    const cJSON* kept = after->child;
    for (const cJSON* item = before->child; item; item = item->next) {
        if (untouched(item)) {
            while (kept && !untouched(kept)) kept = kept->next;
            REQUIRE(kept && std::string(kept->string) == item->string && same(item, kept));
            kept = kept->next;
        }
    }
    while (kept && !untouched(kept)) kept = kept->next;
    REQUIRE(!kept);
    cJSON_Delete(before);
    cJSON_Delete(after);
    return 0;
}

// JSON bodies: what the proxy reads as the model is what cJSON reads, and a rewritten
// body names the new model, once, and stays strict JSON.
#include <cjson/cJSON.h>

#include <string>

#include "invariant.h"
#include "json_model.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    ModelField field = model_from_json(body);
    if (field.status == ModelField::InvalidJson || field.status == ModelField::Ambiguous) return 0;

    cJSON* root = cJSON_ParseWithLength(body.data(), body.size());
    REQUIRE(root != nullptr);  // strict JSON is JSON to cJSON too
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (field.status == ModelField::Found) {
        REQUIRE(cJSON_IsString(model) && field.model == model->valuestring);
    }
    cJSON_Delete(root);

    if (field.status == ModelField::NotAnObject) return 0;
    std::string rewritten = body;
    REQUIRE(set_json_model(rewritten, "deployment-1"));
    ModelField again = model_from_json(rewritten);
    REQUIRE(again.status == ModelField::Found && again.model == "deployment-1");
    REQUIRE(again.stream == field.stream);
    return 0;
}

#include "body.h"

#include <cjson/cJSON.h>

ModelField model_from_json(const std::string& body) {
    ModelField field;
    cJSON* root = cJSON_ParseWithLength(body.data(), body.size());
    if (!root) {
        field.status = ModelField::InvalidJson;
        return field;
    }
    if (!cJSON_IsObject(root)) {
        field.status = ModelField::NotAnObject;
    } else {
        const cJSON* model = cJSON_GetObjectItemCaseSensitive(root, "model");
        if (!model || cJSON_IsNull(model)) {
            field.status = ModelField::Missing;
        } else if (!cJSON_IsString(model) || !model->valuestring) {
            field.status = ModelField::NotAString;
        } else {
            field.status = ModelField::Found;
            field.model = model->valuestring;
        }
    }
    cJSON_Delete(root);
    return field;
}

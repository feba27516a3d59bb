// Realtime client_secrets bodies: the session's model the proxy reads is what cJSON reads at
// session.model, and the body rewritten with the deployment names it there, once, and stays
// strict JSON with nothing else changed in its session.
#include <cjson/cJSON.h>

#include <string>

#include "invariant.h"
#include "realtime.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    SessionModel session = session_model(body, true);
    if (session.field.status != ModelField::Found) return 0;

    cJSON* root = cJSON_ParseWithLength(body.data(), body.size());
    REQUIRE(root != nullptr);
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "session"), "model");
    REQUIRE(cJSON_IsString(model) && session.field.model == model->valuestring);
    cJSON_Delete(root);

    std::string rewritten = with_session_model(body, session, "deployment-1");
    SessionModel again = session_model(rewritten, true);
    REQUIRE(again.field.status == ModelField::Found && again.field.model == "deployment-1");
    REQUIRE(again.begin == session.begin);
    REQUIRE(rewritten.compare(0, session.begin, body, 0, session.begin) == 0);  // before the session: as it was
    return 0;
}

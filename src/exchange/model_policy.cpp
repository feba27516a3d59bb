// Model policy (model_policy.h): which model, which deployment, whether this client may
// use it.
#include "model_policy.h"

#include <optional>

#include "proxy_errors.h"
#include "text.h"
#include "translate.h"

namespace {

// The error a body gets for the model field it has; none when the field named a model.
std::optional<ProxyError> model_field_error(ModelField::Status status) {
    switch (status) {
        case ModelField::InvalidJson:
        case ModelField::NotAnObject: return errors::invalid_json();
        case ModelField::Missing: return errors::missing_model();
        case ModelField::NotAString: return errors::model_not_a_string();
        case ModelField::Ambiguous: return errors::model_named_twice();
        case ModelField::TooLong: return errors::model_too_long();
        case ModelField::Found: break;
    }
    return std::nullopt;
}

}  // namespace

// False, with the error the client gets, unless the body named a usable model.
bool model_found(const ModelField& field, ProxyError& error) {
    std::optional<ProxyError> refused = model_field_error(field.status);
    if (refused) error = std::move(*refused);
    return !refused;
}

// The model named by a JSON body (and whether it asks for a stream, and has
// stream_options); false with the error the client gets.
bool json_model(const std::string& body, std::string& model, bool& stream, ProxyError& error, bool* stream_options) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    if (stream_options) *stream_options = field.stream_options;
    if (field.status != ModelField::Found) return model_found(field, error);  // false, saying why
    model = std::move(field.model);
    return true;
}

// Whether the model (or the deployment a URL names) may be used: by
// AZURE_OPENAI_PROXY_ALLOWED_MODELS and by the client key's own list.
bool model_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                     const std::string& deployment, ProxyError& error) {
    // A deployment named in the URL is checked as a deployment, never as a model name.
    static const std::string kNone;
    const std::string& named = route.deployment.empty() ? model : kNone;  // a reference either way: no copy
    if (model_allowed(config, named, deployment) &&
        (!key || model_in_list(config, key->limits.models, named, deployment)))
        return true;
    error = errors::model_not_allowed(model);
    return false;
}

// Why an upload's form gave no model.
ProxyError upload_model_error(const MultipartModelScanner& form) {
    if (form.ambiguous()) return errors::upload_model_named_twice();
    if (form.failed()) return errors::upload_unreadable();
    return errors::upload_model_missing();
}

// Whether a model list applies to this client: AZURE_OPENAI_PROXY_ALLOWED_MODELS, or its
// key's `models`.
bool models_restricted(const Config& config, const ClientKey* key) {
    return !config.allowed_models.empty() || (key && !key->limits.models.empty());
}

// Routes whose body names a model that is not mapped (model_in_body), and batches, while a
// model list applies: the model must be permitted; a batch is refused, its models being
// inside an uploaded file the proxy does not read. `upload`: the scanned form, or null.
bool body_models_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& body,
                           const MultipartModelScanner* upload, ProxyError& error) {
    if (!models_restricted(config, key)) return true;
    if (route.batch) {
        error = errors::batch_refused(key && !key->limits.models.empty());
        return false;
    }
    if (!route.model_in_body) return true;
    if (upload && upload->failed()) {
        error = upload_model_error(*upload);
        return false;
    }
    if (upload) return !upload->found() || model_permitted(config, key, route, upload->model(), "", error);
    ModelField field = model_from_json(body);
    if (field.status == ModelField::Ambiguous || field.status == ModelField::TooLong) return model_found(field, error);
    return field.status != ModelField::Found || model_permitted(config, key, route, field.model, "", error);
}

// Maps the model to its deployment (recorded in the log); false when the deployment could
// change the upstream URL, or is not permitted.
bool map_deployment(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                    AccessLogEntry& log, ProxyError& error) {
    const size_t kLogged = 256;  // the log shows at most 200 bytes of it
    log.model.assign(model, 0, kLogged);
    std::string deployment = route.deployment.empty() ? deployment_for_model(config, model) : route.deployment;
    if (!is_safe_deployment(deployment)) {
        log.deployment.assign(deployment, 0, kLogged);
        error = errors::invalid_deployment(model, deployment);
        return false;
    }
    log.deployment = std::move(deployment);  // a safe one is at most 256 bytes: logged whole
    return model_permitted(config, key, route, model, log.deployment, error);
}

// Responses and assistants: a JSON body's model becomes its deployment, in place. Bodies
// without a model, or that are not JSON, go as they are: Azure answers them.
bool map_body_model(const Config& config, const ClientKey* key, const Route& route, std::string& body,
                    bool& stream, AccessLogEntry& log, ProxyError& error) {
    ModelField field = model_from_json(body);
    stream = field.stream;
    bool refused = field.status == ModelField::Ambiguous || field.status == ModelField::TooLong ||
                   (field.status == ModelField::InvalidJson && !body.empty());
    if (refused) return model_found(field, error);  // false, saying why
    if (field.status != ModelField::Found) return true;
    if (!map_deployment(config, key, route, field.model, log, error)) return false;
    if (log.deployment != field.model) set_json_model(body, log.deployment);
    return true;
}


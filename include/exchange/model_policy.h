// Model policy, one place for every route: which model a body names, which deployment it
// maps to, and whether this client may use it (AZURE_OPENAI_PROXY_ALLOWED_MODELS, the
// client key's own list). Plain functions over the request's parts: each returns false with
// the error the client gets (proxy_errors.h).
#pragma once

#include <string>

#include "access_log.h"
#include "json_model.h"
#include "client_keys.h"
#include "config.h"
#include "multipart.h"
#include "response.h"
#include "api_routes.h"

// False, with the error, unless the field named a usable model.
bool model_found(const ModelField& field, ProxyError& error);

// The model a JSON body names (and whether it asks for a stream, and has stream_options).
bool json_model(const std::string& body, std::string& model, bool& stream, ProxyError& error,
                bool* stream_options = nullptr);

// Whether the model (or the deployment a URL names) may be used by this client.
bool model_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                     const std::string& deployment, ProxyError& error);

// Why an upload's form gave no model.
ProxyError upload_model_error(const MultipartModelScanner& form);

// Whether a model list applies to this client.
bool models_restricted(const Config& config, const ClientKey* key);

// Routes whose body names a model that is not mapped (model_in_body), and batches, while a
// model list applies. `upload`: the scanned form, or null.
bool body_models_permitted(const Config& config, const ClientKey* key, const Route& route, const std::string& body,
                           const MultipartModelScanner* upload, ProxyError& error);

// Maps the model to its deployment (recorded in `log`); false when the deployment could
// change the upstream URL, or is not permitted.
bool map_deployment(const Config& config, const ClientKey* key, const Route& route, const std::string& model,
                    AccessLogEntry& log, ProxyError& error);

// Responses and assistants: a JSON body's model becomes its deployment, in place.
bool map_body_model(const Config& config, const ClientKey* key, const Route& route, std::string& body,
                    bool& stream, AccessLogEntry& log, ProxyError& error);

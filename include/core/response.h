// What the proxy answers itself: error bodies, CORS, the models list, and the CGI
// response head that carries any answer back to the web server.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "request.h"

// An error the proxy makes itself, shaped like OpenAI's: {"error":{message,type,param,code}}.
struct ProxyError {
    int status = 500;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param;  // empty: null
    std::string code;   // empty: null
};

ProxyError make_error(int status, const std::string& message, const std::string& code,
                      const std::string& param = "", const std::string& type = "invalid_request_error");

// 503 proxy_stopping: the program is stopping before the request could be answered.
ProxyError stopping_error();

std::string error_body(const ProxyError& error);

// "Status: 404 Not Found\r\nName: value\r\n...\r\n\r\n"
// `more` follows `headers` (the CORS headers of an azure-mode answer). Every field is made
// safe to pass on, wherever it came from: one whose name is not an HTTP token is dropped,
// and control bytes in a value (CR, LF, NUL, all but HTAB) become spaces (RFC 9110 §5.5).
std::string cgi_head(int status, const Headers& headers, const Headers& more = {});
// The same of headers held elsewhere (a relayed answer's, picked without copying them).
using HeaderRefs = std::vector<const Header*>;
std::string cgi_head(int status, const HeaderRefs& headers, const Headers& more);
// The same written into `head` (its room kept: what it held before is replaced), with
// `more` already written by head_fields (the text of fields every answer carries, made
// once instead of for each answer).
void cgi_head(std::string& head, int status, const HeaderRefs& headers, std::string_view more_fields);
// The fields' lines ("Name: value\r\n" each) as a head has them, made safe as above.
std::string head_fields(const Headers& headers);

// Upstream response headers that must not be relayed (hop-by-hop, framing, CORS that the
// proxy sets itself in azure mode).
bool is_relayed_response_header(const std::string& name, ProxyMode mode);
bool is_content_length(const std::string& name);  // in any case
// A Content-Type that says the answer is an event stream (SSE).
bool is_event_stream(const Header& header);

// Headers every azure-mode answer carries so browsers may read it, with any origin.
const Headers& cors_headers();
const std::string& cors_fields();  // the same written by head_fields, made once

// The same for a proxy that names its origins (AZURE_OPENAI_PROXY_CORS_ORIGINS): the
// request's Origin echoed when listed, no Allow-Origin at all when not.
Headers cors_headers_for(const std::vector<std::string>& origins, const std::string* origin);

// The inline answer to an OPTIONS preflight: allows what the browser asks for
// (cors_headers() come on top, as on every azure-mode answer).
Headers preflight_headers(const Request& request);

// OpenAI's list shape: the mapper's models plus the configured list of model names.
std::string models_list_json(const Config& config);
std::string model_json(const std::string& id);
bool is_listed_model(const Config& config, const std::string& id);

// Azure's model list (GET /openai/models) or one model, in OpenAI's shape. False when
// `azure_json` is not what Azure sends.
bool azure_models_to_openai(const std::string& azure_json, std::string& openai_json);

// What the proxy answers itself: error bodies, CORS, the models list, and the CGI
// response head that carries any answer back to the web server.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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

// A field of a head seen where it lies: in an upstream answer's head (AnswerHead), or in
// a Header's strings (field_views). Nothing is copied.
struct FieldView {
    std::string_view name;
    std::string_view value;
};
using FieldViews = std::vector<FieldView>;
FieldViews field_views(const Headers& headers);
Headers owned_headers(const FieldViews& fields);  // copies, to keep beyond the head's life
const std::string_view* find_field(const FieldViews& fields, std::string_view name);  // any case

// An upstream answer's head as libcurl hands it over, a field at a time: every field's
// name and value one after another in one string, its room (and the fields' places) kept
// for the next answer, not two strings a field. fields() sees them once the head is whole.
class AnswerHead {
public:
    void clear() { size_ = 0, fields_.clear(); }
    // One line of the head, "Name: value" (without its line end): false when it has no
    // colon, and is no field.
    bool add_line(std::string_view line);
    // Obsolete line folding (RFC 9112 §5.2): more of the last field's value, after a space.
    void fold(std::string_view more);
    bool empty() const { return fields_.empty(); }
    // Valid until the next add_line, fold or clear.
    const FieldViews& fields() const { return fields_; }
    size_t room() const { return capacity_; }  // bytes held for the text

private:
    void make_room(size_t more);
    char* append(std::string_view bytes);  // where they now are (there is room)
    // Each field's line, name to value, one after another: a buffer of its own rather than
    // a string, whose append checks again for the room made beforehand.
    std::unique_ptr<char[]> text_;
    size_t size_ = 0, capacity_ = 0;
    FieldViews fields_;  // into text_
};

// "Status: 404 Not Found\r\nName: value\r\n...\r\n\r\n"
// `more` follows `headers` (the CORS headers of an azure-mode answer). Every field is made
// safe to pass on, wherever it came from: one whose name is not an HTTP token is dropped,
// and control bytes in a value (CR, LF, NUL, all but HTAB) become spaces (RFC 9110 §5.5).
std::string cgi_head(int status, const Headers& headers, const Headers& more = {});
// The same written into `head` (its room kept: what it held before is replaced), with
// `more` already written by head_fields (the text of fields every answer carries, made
// once instead of for each answer).
void cgi_head(std::string& head, int status, const FieldViews& fields, std::string_view more_fields);
// The fields' lines ("Name: value\r\n" each) as a head has them, made safe as above.
std::string head_fields(const Headers& headers);

// What becomes of an upstream answer's field on its way to the client.
enum class AnswerField {
    Relayed,
    Dropped,        // hop-by-hop, framing, CGI's Status, CORS that azure mode sets itself
    ContentLength,  // relayed only where the answer is no event stream
    EventStream,    // a Content-Type that says the answer is an event stream (SSE): relayed
};
namespace answer_head_detail {
// For each length, a bit for each first letter, in any case, of the names answer_field
// drops or looks at (other bytes share bits with letters: they are merely looked at).
extern const std::array<uint32_t, 32> kLookedAtFirstBytes;
inline uint32_t first_byte_bit(char c) { return 1u << ((c | 0x20) & 31); }
AnswerField looked_at_field(const FieldView& field, ProxyMode mode);
}  // namespace answer_head_detail
// Told by a name's length and first byte alone where it is none of the names looked at:
// most of an answer's (x-request-id, apim-request-id, x-ms-*, Date) cost no compare.
inline AnswerField answer_field(const FieldView& field, ProxyMode mode) {
    using namespace answer_head_detail;
    size_t size = field.name.size();
    if (size < kLookedAtFirstBytes.size() && !(kLookedAtFirstBytes[size] & first_byte_bit(size ? field.name[0] : 0)))
        return AnswerField::Relayed;
    return looked_at_field(field, mode);
}
// Upstream response headers that must not be relayed (hop-by-hop, framing, CORS that the
// proxy sets itself in azure mode).
bool is_relayed_response_header(std::string_view name, ProxyMode mode);
bool is_content_length(std::string_view name);  // in any case
// A Content-Type that says the answer is an event stream (SSE).
bool is_event_stream(const FieldView& field);

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

#include "json_ptr.h"
#include "response.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <set>

#include "text.h"
#include "translate.h"

namespace {

// A fixed creation time keeps the list stable; clients only display it.
const double kModelCreated = 1700000000;

const char* reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "";
    }
}

char* put_text(char* at, std::string_view text) {
    std::memcpy(at, text.data(), text.size());
    return at + text.size();
}

// One field of a head, as the web server may pass it on (RFC 9110 §5.5): a name that is
// not a token is no field at all, and is dropped; in a value, CR, LF and NUL (and every
// other control byte but HTAB) become SP. Whatever an upstream sends, no byte of it can
// end a line or the head early, in the web server or in a client behind it.
// Written at `at`, in room made beforehand (a string's append costs more than the few
// bytes of a field it copies); returns where the next one goes.
char* put_field(char* at, const FieldView& header) {
    if (!is_http_token(header.name)) return at;
    at = put_text(at, header.name);
    at = put_text(at, ": ");
    char* value = at;
    at = put_text(at, header.value);
    if (has_byte_below_or(header.value, 0x20, 0x7f))  // else nothing to replace: the common case
        for (char* c = value; c < at; ++c) {
            unsigned char byte = static_cast<unsigned char>(*c);
            if ((byte < 0x20 && byte != '\t') || byte == 0x7f) *c = ' ';
        }
    return put_text(at, "\r\n");
}

std::string print_and_free(JsonPtr json) { return print_json(json.get(), "{}"); }

void add_string_or_null(cJSON* object, const char* name, const std::string& value) {
    if (value.empty())
        cJSON_AddNullToObject(object, name);
    else
        cJSON_AddStringToObject(object, name, value.c_str());
}

cJSON* model_object(const std::string& id, double created = kModelCreated,
                    const char* owner = "azure-openai-proxy") {
    cJSON* model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "id", id.c_str());
    cJSON_AddStringToObject(model, "object", "model");
    cJSON_AddNumberToObject(model, "created", created);
    cJSON_AddStringToObject(model, "owned_by", owner);
    return model;
}

// One Azure model entry in OpenAI's shape, or nullptr without an id.
cJSON* openai_model_from_azure(const cJSON* azure) {
    const cJSON* id = cJSON_GetObjectItemCaseSensitive(azure, "id");
    if (!cJSON_IsString(id)) return nullptr;
    const cJSON* created = cJSON_GetObjectItemCaseSensitive(azure, "created_at");
    if (!cJSON_IsNumber(created)) created = cJSON_GetObjectItemCaseSensitive(azure, "created");
    return model_object(id->valuestring, cJSON_IsNumber(created) ? created->valuedouble : 0, "azure");
}

std::set<std::string> listed_model_ids(const Config& config) {
    // An allow-list is the whole list: clients see only what they may use.
    if (!config.allowed_models.empty()) return {config.allowed_models.begin(), config.allowed_models.end()};
    std::set<std::string> ids(config.listed_models.begin(), config.listed_models.end());
    for (const auto& entry : config.model_mapper) ids.insert(entry.first);
    return ids;
}

}  // namespace

ProxyError make_error(int status, const std::string& message, const std::string& code,
                      const std::string& param, const std::string& type) {
    ProxyError error;
    error.status = status;
    error.message = message;
    error.code = code;
    error.param = param;
    error.type = type;
    return error;
}

ProxyError stopping_error() {
    return make_error(503, "The proxy is shutting down; retry the request.", "proxy_stopping", "", "api_error");
}

std::string error_body(const ProxyError& error) {
    JsonPtr root(cJSON_CreateObject());
    cJSON* body = cJSON_AddObjectToObject(root.get(), "error");
    cJSON_AddStringToObject(body, "message", error.message.c_str());
    cJSON_AddStringToObject(body, "type", error.type.c_str());
    add_string_or_null(body, "param", error.param);
    add_string_or_null(body, "code", error.code);
    return print_and_free(std::move(root));
}

FieldViews field_views(const Headers& headers) {
    FieldViews fields;
    fields.reserve(headers.size());
    for (const Header& header : headers) fields.push_back({header.name, header.value});
    return fields;
}

Headers owned_headers(const FieldViews& fields) {
    Headers headers;
    headers.reserve(fields.size());
    for (const FieldView& field : fields) headers.push_back({std::string(field.name), std::string(field.value)});
    return headers;
}

const std::string_view* find_field(const FieldViews& fields, std::string_view name) {
    for (const FieldView& field : fields)
        if (iequals(field.name, name)) return &field.value;
    return nullptr;
}

// The line up to its value's end, in one copy: the name and the value are seen in it.
bool AnswerHead::add_line(std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = trim_view(line.substr(0, colon));
    std::string_view value = trim_view(line.substr(colon + 1));
    if (value.empty()) value = line.substr(line.size());  // (its place: the end of what is kept)
    size_t kept = static_cast<size_t>(value.data() + value.size() - line.data());  // at least the colon
    if (capacity_ - size_ < kept) make_room(kept);
    const char* at = append(line.substr(0, kept));
    auto kept_part = [&](std::string_view part) { return std::string_view(at + (part.data() - line.data()), part.size()); };
    fields_.push_back({kept_part(name), kept_part(value)});
    return true;
}

// The last field's value ends the text: what is folded onto it is added there.
void AnswerHead::fold(std::string_view more) {
    if (fields_.empty()) return;
    more = trim_view(more);
    if (capacity_ - size_ < 1 + more.size()) make_room(1 + more.size());
    append(" ");
    append(more);
    std::string_view& value = fields_.back().value;
    value = std::string_view(value.data(), value.size() + 1 + more.size());
}

char* AnswerHead::append(std::string_view bytes) {
    char* at = text_.get() + size_;
    if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
    size_ += bytes.size();
    return at;
}

// Room for `more` bytes (there is less), so that appending them moves no field: the text
// moves, and its fields are seen at their new places.
void AnswerHead::make_room(size_t more) {
    size_t capacity = std::max({size_t{256}, 2 * capacity_, size_ + more});  // a head is some hundred bytes
    std::unique_ptr<char[]> larger(new char[capacity]);
    if (size_) std::memcpy(larger.get(), text_.get(), size_);
    auto moved = [&](std::string_view part) {
        return std::string_view(larger.get() + (part.data() - text_.get()), part.size());
    };
    for (FieldView& field : fields_) field = {moved(field.name), moved(field.value)};
    text_ = std::move(larger);
    capacity_ = capacity;
}

std::string cgi_head(int status, const Headers& headers, const Headers& more) {
    std::string head;
    cgi_head(head, status, field_views(headers), head_fields(more));
    return head;
}

void cgi_head(std::string& head, int status, const FieldViews& fields, std::string_view more_fields) {
    const char* reason = reason_phrase(status);
    size_t size = 32 + std::strlen(reason) + more_fields.size();  // "Status: ", the code, its reason, the line ends
    for (const FieldView& field : fields) size += field.name.size() + field.value.size() + 4;
    head.resize(size);
    char* at = put_text(&head[0], "Status: ");
    at = std::to_chars(at, at + 12, status).ptr;
    if (*reason) at = put_text(put_text(at, " "), reason);
    at = put_text(at, "\r\n");
    for (const FieldView& field : fields) at = put_field(at, field);
    if (!more_fields.empty()) at = put_text(at, more_fields);
    at = put_text(at, "\r\n");
    head.resize(static_cast<size_t>(at - head.data()));  // less where a field was dropped
}

std::string head_fields(const Headers& headers) {
    size_t size = 0;
    for (const Header& header : headers) size += header.name.size() + header.value.size() + 4;
    std::string fields(size, '\0');
    char* at = &fields[0];  // (an empty string's too: its terminating NUL)
    for (const Header& header : headers) at = put_field(at, {header.name, header.value});
    fields.resize(static_cast<size_t>(at - fields.data()));
    return fields;
}

// is_relayed_response_header's names (is_hop_by_hop's among them) and Content-Type, by
// length: a bit for the first letter of each (answer_head_detail::first_byte_bit).
const std::array<uint32_t, 32> answer_head_detail::kLookedAtFirstBytes = [] {
    std::array<uint32_t, 32> first{};
    for (std::string_view looked :
         {"Status", "Content-Length", "Content-Type", "Te", "Host", "Expect", "Trailer", "Upgrade", "Connection",
          "Keep-Alive", "Accept-Encoding", "Proxy-Connection", "Transfer-Encoding", "Proxy-Authenticate",
          "Proxy-Authorization"})
        first[looked.size()] |= first_byte_bit(looked[0]);
    for (size_t size = 15; size < first.size(); ++size) first[size] |= first_byte_bit('a');  // access-control-*
    return first;
}();

// By length again: Content-Type and Content-Length are the only names of theirs looked at.
AnswerField answer_head_detail::looked_at_field(const FieldView& field, ProxyMode mode) {
    switch (field.name.size()) {
        case 12: return is_event_stream(field) ? AnswerField::EventStream : AnswerField::Relayed;
        case 14: return is_content_length(field.name) ? AnswerField::ContentLength : AnswerField::Relayed;
        default: return is_relayed_response_header(field.name, mode) ? AnswerField::Relayed : AnswerField::Dropped;
    }
}

bool is_relayed_response_header(std::string_view name, ProxyMode mode) {
    if ((name.size() == 6 && iequals(name, "Status")) || is_content_length(name)) return false;
    if (is_hop_by_hop(name)) return false;
    return !(mode == ProxyMode::Azure && name.size() >= 15 && istarts_with(name, "access-control-"));
}

bool is_content_length(std::string_view name) { return name.size() == 14 && iequals(name, "Content-Length"); }

bool is_event_stream(const FieldView& field) {
    return field.name.size() == 12 && iequals(field.name, "Content-Type") && istarts_with(field.value, "text/event-stream");
}

namespace {
const char* const kExposedHeaders =
    "x-request-id, apim-request-id, x-ms-region, retry-after, retry-after-ms, "
    "x-ratelimit-limit-requests, x-ratelimit-limit-tokens, "
    "x-ratelimit-remaining-requests, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-requests, x-ratelimit-reset-tokens, location";  // location: a realtime call's
}  // namespace

const Headers& cors_headers() {
    static const Headers headers = {
        {"Access-Control-Allow-Origin", "*"},
        {"Access-Control-Expose-Headers", kExposedHeaders},
    };
    return headers;
}

const std::string& cors_fields() {
    static const std::string fields = head_fields(cors_headers());
    return fields;
}

Headers cors_headers_for(const std::vector<std::string>& origins, const std::string* origin) {
    Headers headers;
    for (const std::string& allowed : origins)
        if (origin && iequals(*origin, allowed)) {
            headers.push_back({"Access-Control-Allow-Origin", allowed});
            headers.push_back({"Access-Control-Expose-Headers", kExposedHeaders});
            break;
        }
    headers.push_back({"Vary", "Origin"});  // caches keep one answer per origin
    return headers;
}

Headers preflight_headers(const Request& request) {
    Headers headers;
    const std::string_view* method = find_header(request.headers, "Access-Control-Request-Method");
    headers.push_back({"Access-Control-Allow-Methods",
                       std::string(method && !method->empty() ? *method : "GET, POST, DELETE, OPTIONS")});
    const std::string_view* asked = find_header(request.headers, "Access-Control-Request-Headers");
    headers.push_back({"Access-Control-Allow-Headers",
                       std::string(asked && !asked->empty() ? *asked : "Authorization, Content-Type")});
    headers.push_back({"Access-Control-Max-Age", "86400"});
    headers.push_back({"Vary", "Access-Control-Request-Method, Access-Control-Request-Headers"});
    return headers;
}

std::string models_list_json(const Config& config) {
    JsonPtr root(cJSON_CreateObject());
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* data = cJSON_AddArrayToObject(root.get(), "data");
    for (const std::string& id : listed_model_ids(config))
        cJSON_AddItemToArray(data, model_object(id));
    return print_and_free(std::move(root));
}

std::string model_json(const std::string& id) { return print_and_free(JsonPtr(model_object(id))); }

bool is_listed_model(const Config& config, const std::string& id) {
    return listed_model_ids(config).count(id) > 0;
}

bool azure_models_to_openai(const std::string& azure_json, std::string& openai_json) {
    JsonPtr azure(cJSON_ParseWithLength(azure_json.data(), azure_json.size()));
    if (!cJSON_IsObject(azure.get())) return false;
    JsonPtr out;
    const cJSON* data = cJSON_GetObjectItemCaseSensitive(azure.get(), "data");
    if (cJSON_IsArray(data)) {
        out.reset(cJSON_CreateObject());
        cJSON_AddStringToObject(out.get(), "object", "list");
        cJSON* list = cJSON_AddArrayToObject(out.get(), "data");
        const cJSON* entry = nullptr;
        cJSON_ArrayForEach(entry, data)
            if (cJSON* model = openai_model_from_azure(entry)) cJSON_AddItemToArray(list, model);
    } else {
        out.reset(openai_model_from_azure(azure.get()));
    }
    if (!out) return false;
    openai_json = print_and_free(std::move(out));
    return true;
}

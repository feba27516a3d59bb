#include "body.h"

#include <cjson/cJSON.h>

namespace {

// One pass over a JSON text, strict where cJSON is lenient (see check_json).
class StrictJson {
public:
    explicit StrictJson(std::string_view text) : at_(text.data()), end_(text.data() + text.size()) {}

    JsonCheck run() {
        JsonCheck result;
        skip_space();
        result.valid = value(0) && (skip_space(), at_ == end_);
        result.model_keys = model_keys_;
        result.model_ambiguous = model_ambiguous_;
        return result;
    }

private:
    static const int kMaxDepth = 512;

    void skip_space() {
        while (at_ < end_ && (*at_ == ' ' || *at_ == '\t' || *at_ == '\n' || *at_ == '\r')) ++at_;
    }
    bool take(char c) {
        if (at_ >= end_ || *at_ != c) return false;
        ++at_;
        return true;
    }
    bool literal(const char* word) {
        for (; *word; ++word)
            if (!take(*word)) return false;
        return true;
    }

    bool value(int depth) {
        if (at_ >= end_ || depth > kMaxDepth) return false;
        switch (*at_) {
            case '{': return object(depth + 1);
            case '[': return array(depth + 1);
            case '"': return string(nullptr);
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default: return number();
        }
    }

    bool object(int depth) {
        ++at_;
        skip_space();
        if (take('}')) return true;
        for (;;) {
            std::string key;
            bool escaped = false;
            if (at_ >= end_ || *at_ != '"') return false;
            const char* key_start = at_;
            if (!string(depth == 1 ? &key : nullptr)) return false;
            bool is_model = depth == 1 && key == "model";
            if (is_model) {
                ++model_keys_;
                escaped = static_cast<size_t>(at_ - key_start) != 7;  // not spelled "model"
                if (escaped) model_ambiguous_ = true;
            }
            skip_space();
            if (!take(':')) return false;
            skip_space();
            if (is_model && at_ < end_ && *at_ == '"') {
                std::string model;
                if (!string(&model)) return false;
                if (model.find('\0') != std::string::npos) model_ambiguous_ = true;
            } else if (!value(depth)) {
                return false;
            }
            skip_space();
            if (take('}')) return true;
            if (!take(',')) return false;
            skip_space();
        }
    }

    bool array(int depth) {
        ++at_;
        skip_space();
        if (take(']')) return true;
        for (;;) {
            if (!value(depth)) return false;
            skip_space();
            if (take(']')) return true;
            if (!take(',')) return false;
            skip_space();
        }
    }

    bool number() {
        take('-');
        if (take('0')) {
        } else if (!digits()) {
            return false;
        }
        if (take('.') && !digits()) return false;
        if (at_ < end_ && (*at_ == 'e' || *at_ == 'E')) {
            ++at_;
            if (!take('+')) take('-');
            if (!digits()) return false;
        }
        return true;
    }
    bool digits() {
        const char* start = at_;
        while (at_ < end_ && *at_ >= '0' && *at_ <= '9') ++at_;
        return at_ > start;
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // A string; its decoded bytes go to `out` when given (\u escapes of ASCII only matter
    // there: a key or a model name compared with plain ASCII).
    bool string(std::string* out) {
        ++at_;
        while (at_ < end_) {
            unsigned char c = static_cast<unsigned char>(*at_);
            if (c == '"') {
                ++at_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                if (!escape(out)) return false;
            } else if (c < 0x80) {
                if (out) out->push_back(static_cast<char>(c));
                ++at_;
            } else {
                const char* start = at_;
                if (!utf8_sequence()) return false;
                if (out) out->append(start, at_);
            }
        }
        return false;
    }

    bool escape(std::string* out) {
        if (end_ - at_ < 2) return false;
        char kind = at_[1];
        at_ += 2;
        static const char kSimple[] = "\"\\/bfnrt";
        static const char kDecoded[] = "\"\\/\b\f\n\r\t";
        for (int i = 0; kSimple[i]; ++i)
            if (kind == kSimple[i]) {
                if (out) out->push_back(kDecoded[i]);
                return true;
            }
        if (kind != 'u' || end_ - at_ < 4) return false;
        int code = 0;
        for (int i = 0; i < 4; ++i) {
            int digit = hex(at_[i]);
            if (digit < 0) return false;
            code = code * 16 + digit;
        }
        at_ += 4;
        // Only the ASCII range matters to comparisons; others stand in as one non-ASCII byte.
        if (out) out->push_back(code < 0x80 ? static_cast<char>(code) : '\x80');
        return true;
    }

    // One well-formed UTF-8 sequence of two to four bytes (no overlongs, no surrogates,
    // nothing past U+10FFFF).
    bool utf8_sequence() {
        unsigned char lead = static_cast<unsigned char>(*at_);
        int length;
        unsigned char low = 0x80, high = 0xbf;
        if (lead >= 0xc2 && lead <= 0xdf) length = 2;
        else if (lead >= 0xe0 && lead <= 0xef) {
            length = 3;
            if (lead == 0xe0) low = 0xa0;
            if (lead == 0xed) high = 0x9f;
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            length = 4;
            if (lead == 0xf0) low = 0x90;
            if (lead == 0xf4) high = 0x8f;
        } else {
            return false;
        }
        if (end_ - at_ < length) return false;
        for (int i = 1; i < length; ++i) {
            unsigned char c = static_cast<unsigned char>(at_[i]);
            if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xbf)) return false;
        }
        at_ += length;
        return true;
    }

    const char* at_;
    const char* end_;
    int model_keys_ = 0;
    bool model_ambiguous_ = false;
};

}  // namespace

JsonCheck check_json(std::string_view text) { return StrictJson(text).run(); }

ModelField model_from_json(const std::string& body) {
    ModelField field;
    JsonCheck check = check_json(body);
    if (!check.valid) {
        field.status = ModelField::InvalidJson;
        return field;
    }
    if (check.model_keys > 1 || check.model_ambiguous) {
        field.status = ModelField::Ambiguous;
        return field;
    }
    cJSON* root = cJSON_ParseWithLength(body.data(), body.size());
    if (!root) {
        field.status = ModelField::InvalidJson;
        return field;
    }
    if (!cJSON_IsObject(root)) {
        field.status = ModelField::NotAnObject;
    } else {
        field.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
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

namespace {

size_t skip_space(const std::string& text, size_t at) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r'))
        ++at;
    return at;
}

// The end of the JSON string that starts at `at` (its opening quote), past the closing one.
size_t skip_string(const std::string& text, size_t at) {
    for (size_t i = at + 1; i < text.size(); ++i) {
        if (text[i] == '\\') ++i;
        else if (text[i] == '"') return i + 1;
    }
    return std::string::npos;
}

// The end of the JSON value that starts at `at`.
size_t skip_value(const std::string& text, size_t at) {
    if (at >= text.size()) return std::string::npos;
    if (text[at] == '"') return skip_string(text, at);
    if (text[at] != '{' && text[at] != '[') {
        size_t end = text.find_first_of(",}] \t\r\n", at);
        return end == std::string::npos ? text.size() : end;
    }
    int depth = 0;
    for (size_t i = at; i < text.size(); ++i) {
        if (text[i] == '"') {
            i = skip_string(text, i);
            if (i == std::string::npos) return i;
            --i;
        } else if (text[i] == '{' || text[i] == '[') {
            ++depth;
        } else if ((text[i] == '}' || text[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return std::string::npos;
}

std::string json_string(const std::string& value) {
    cJSON* item = cJSON_CreateString(value.c_str());
    char* printed = cJSON_PrintUnformatted(item);
    std::string out = printed ? printed : "\"\"";
    cJSON_free(printed);
    cJSON_Delete(item);
    return out;
}

}  // namespace

bool set_json_model(std::string& json, const std::string& model) {
    size_t at = skip_space(json, 0);
    if (at >= json.size() || json[at] != '{') return false;
    size_t open = at;
    at = skip_space(json, at + 1);
    while (at < json.size() && json[at] == '"') {
        size_t key_end = skip_string(json, at);
        if (key_end == std::string::npos) return false;
        bool is_model = json.compare(at, key_end - at, "\"model\"") == 0;
        at = skip_space(json, key_end);
        if (at >= json.size() || json[at] != ':') return false;
        size_t value = skip_space(json, at + 1);
        size_t value_end = skip_value(json, value);
        if (value_end == std::string::npos) return false;
        if (is_model) {
            json.replace(value, value_end - value, json_string(model));
            return true;
        }
        at = skip_space(json, value_end);
        if (at < json.size() && json[at] == ',') at = skip_space(json, at + 1);
    }
    bool empty = skip_space(json, open + 1) < json.size() && json[skip_space(json, open + 1)] == '}';
    json.insert(open + 1, "\"model\":" + json_string(model) + (empty ? "" : ","));
    return true;
}

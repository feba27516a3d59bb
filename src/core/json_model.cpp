#include "json_ptr.h"
#include "json_model.h"

#include <cjson/cJSON.h>

#include <cstdint>
#include <cstring>

#include "json_members.h"
#include "text.h"

namespace {

// The bytes a JSON string holds as they are: not '"', '\\', a control byte or a byte of a
// UTF-8 sequence (each looked at on its own).
struct PlainBytes {
    bool plain[256];
    constexpr PlainBytes() : plain() {
        for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
    }
};
constexpr PlainBytes kPlainBytes;

// The bytes of `word` (eight, first in its lowest byte) that a JSON string does not hold
// as they are, each marked by its high bit. Borrows only run up from such a byte, so the
// lowest mark is exact; marks above it may not be.
inline uint64_t unplain_bytes(uint64_t word) {
    const uint64_t ones = 0x0101010101010101ull;
    return ((word - ones * 0x20) | ((word ^ (ones * '"')) - ones) | ((word ^ (ones * '\\')) - ones) | word) &
           (ones * 0x80);
}

// The first byte from `at` that is not plain: eight at a time, the last few one by one.
inline const char* plain_run_end(const char* at, const char* end) {
    if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
        for (; end - at >= 8; at += 8) {
            uint64_t word;
            std::memcpy(&word, at, sizeof word);
            if (uint64_t marks = unplain_bytes(word)) return at + __builtin_ctzll(marks) / 8;
        }
    }
    while (at < end && kPlainBytes.plain[static_cast<unsigned char>(*at)]) ++at;
    return at;
}

// One pass over a JSON text, strict where cJSON is lenient (see check_json).
class StrictJson {
public:
    // `result` is filled in place: the caller's own, neither moved nor copied.
    StrictJson(std::string_view text, JsonCheck& result)
        : begin_(text.data()), at_(text.data()), end_(text.data() + text.size()), result_(result) {}

    void run() {
        skip_space();
        result_.object = at_ < end_ && *at_ == '{';
        result_.valid = value(0) && (skip_space(), at_ == end_);
        if (!result_.valid) result_.stopped_at = static_cast<size_t>(at_ - begin_);
    }

private:
    static const int kMaxDepth = 512;
    // A string's decoded bytes, kept in `out` up to `limit` (keys and the model only).
    struct Sink {
        char* out;
        size_t limit;
        size_t size = 0;
        bool overflow = false;
        void add(const char* data, size_t length) {
            if (!out) return;
            if (length > limit - size) {
                overflow = true;
            } else {
                std::memcpy(out + size, data, length);
                size += length;
            }
        }
    };

    void skip_space() {
        if (at_ < end_ && static_cast<unsigned char>(*at_) > ' ') return;  // most often no space at all: one test
        while (at_ < end_ && (*at_ == ' ' || *at_ == '\t' || *at_ == '\n' || *at_ == '\r')) ++at_;
    }
    bool take(char c) {
        if (at_ >= end_ || *at_ != c) return false;
        ++at_;
        return true;
    }
    // take(c) after any space; compact JSON has none, so `c` is looked for first.
    bool take_spaced(char c) {
        if (at_ < end_ && *at_ == c) {
            ++at_;
            return true;
        }
        skip_space();
        return take(c);
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
            case '"': {
                Sink none{nullptr, 0};
                return string(none);
            }
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default: return number();
        }
    }

    // A member's or an element's value: a string (most are) without a call of value(),
    // whose frame, big with everything it inlines, costs more than the string itself.
    bool inner_value(int depth) {
        if (depth <= kMaxDepth && at_ < end_ && *at_ == '"') {
            Sink none{nullptr, 0};
            return string(none);
        }
        return value(depth);
    }

    bool object(int depth) {
        ++at_;
        if (take_spaced('}')) return true;
        for (;;) {
            if (at_ >= end_ || *at_ != '"') return false;
            if (!member(depth)) return false;
            if (take_spaced('}')) return true;
            if (!take(',')) return false;
            skip_space();
        }
    }

    // One "key": value. At the top level, "model" and "stream" are read on the way.
    bool member(int depth) {
        char key[16];
        Sink key_sink{depth == 1 ? key : nullptr, sizeof key};
        const char* key_start = at_;
        if (!string(key_sink)) return false;
        bool top = depth == 1 && !key_sink.overflow;
        std::string_view name(key, key_sink.size);  // compared with literals: sizes first, no call
        bool is_model = top && name == "model";
        bool first_stream = top && name == "stream" && !seen_stream_;
        if (is_model) {
            if (++result_.model_keys > 1 || at_ - key_start != 7) result_.model_ambiguous = true;
        }
        if (!take_spaced(':')) return false;
        skip_space();
        if (top && name == "stream_options") result_.stream_options = true;
        if (first_stream) {
            seen_stream_ = true;
            result_.stream = end_ - at_ >= 4 && std::string_view(at_, 4) == "true";
        }
        if (!is_model || result_.model_keys > 1) return inner_value(depth);
        return model_value(depth);
    }

    bool model_value(int depth) {
        if (at_ >= end_) return false;
        if (*at_ != '"') {
            result_.model_kind = *at_ == 'n' ? JsonCheck::Null : JsonCheck::Other;
            return value(depth);
        }
        result_.model_kind = JsonCheck::String;
        char model[kLongestModel];
        Sink sink{model, sizeof model};
        if (!string(sink)) return false;
        result_.model_too_long = sink.overflow;
        if (sink.overflow) return true;
        result_.model.assign(model, sink.size);
        if (std::memchr(model, '\0', sink.size)) result_.model_ambiguous = true;
        return true;
    }

    bool array(int depth) {
        ++at_;
        if (take_spaced(']')) return true;
        for (;;) {
            if (!inner_value(depth)) return false;
            if (take_spaced(']')) return true;
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

    bool string(Sink& sink) {
        ++at_;
        for (;;) {
            const char* run = at_;
            at_ = plain_run_end(run, end_);
            sink.add(run, static_cast<size_t>(at_ - run));
            if (at_ >= end_) return false;
            if (*at_ == '"') {
                ++at_;
                return true;
            }
            if (!unplain(sink)) return false;
        }
    }

    // An escape or a UTF-8 sequence in a string, decoded into `sink`. Kept out of line:
    // most strings have none, and string() stays small without it.
    __attribute__((noinline)) bool unplain(Sink& sink) {
        unsigned char c = static_cast<unsigned char>(*at_);
        if (c < 0x20) return false;
        if (c == '\\') return escape(sink);
        const char* start = at_;
        if (!utf8_sequence()) return false;
        sink.add(start, static_cast<size_t>(at_ - start));
        return true;
    }

    bool hex4(unsigned& code) {
        if (end_ - at_ < 4) return false;
        code = 0;
        for (int i = 0; i < 4; ++i) {
            int digit = hex_digit(at_[i]);
            if (digit < 0) return false;
            code = code * 16 + static_cast<unsigned>(digit);
        }
        at_ += 4;
        return true;
    }

    bool escape(Sink& sink) {
        const char* start = at_;
        if (end_ - at_ < 2) return false;
        char kind = at_[1];
        at_ += 2;
        static const char kSimple[] = "\"\\/bfnrt";
        static const char kDecoded[] = "\"\\/\b\f\n\r\t";
        for (int i = 0; kSimple[i]; ++i)
            if (kind == kSimple[i]) {
                sink.add(&kDecoded[i], 1);
                return true;
            }
        unsigned code = 0;
        if (kind != 'u' || !hex4(code)) return false;
        if (code >= 0xdc00 && code <= 0xdfff) return false;  // a lone low surrogate
        if (code >= 0xd800 && code <= 0xdbff) {  // must pair with a low one
            unsigned low = 0;
            if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return false;
            at_ += 2;
            if (!hex4(low) || low < 0xdc00 || low > 0xdfff) return false;
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        }
        if (code == 0 && result_.escaped_nul_at == std::string_view::npos)
            result_.escaped_nul_at = static_cast<size_t>(start - begin_);
        char utf8[4];
        size_t length = encode_utf8(code, utf8);
        sink.add(utf8, length);
        return true;
    }

    static size_t encode_utf8(unsigned code, char* out) {
        if (code < 0x80) {
            out[0] = static_cast<char>(code);
            return 1;
        }
        if (code < 0x800) {
            out[0] = static_cast<char>(0xc0 | (code >> 6));
            out[1] = static_cast<char>(0x80 | (code & 0x3f));
            return 2;
        }
        if (code < 0x10000) {
            out[0] = static_cast<char>(0xe0 | (code >> 12));
            out[1] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out[2] = static_cast<char>(0x80 | (code & 0x3f));
            return 3;
        }
        out[0] = static_cast<char>(0xf0 | (code >> 18));
        out[1] = static_cast<char>(0x80 | ((code >> 12) & 0x3f));
        out[2] = static_cast<char>(0x80 | ((code >> 6) & 0x3f));
        out[3] = static_cast<char>(0x80 | (code & 0x3f));
        return 4;
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

    const char* begin_;
    const char* at_;
    const char* end_;
    JsonCheck& result_;
    bool seen_stream_ = false;
};

}  // namespace

JsonCheck check_json(std::string_view text) {
    JsonCheck result;
    StrictJson(text, result).run();
    return result;
}

ModelField model_from_json(const std::string& body) {
    ModelField field;
    JsonCheck check = check_json(body);
    field.stream = check.object && check.stream;
    field.stream_options = check.stream_options;
    if (!check.valid) field.status = ModelField::InvalidJson;
    else if (!check.object) field.status = ModelField::NotAnObject;
    else if (check.model_keys > 1 || check.model_ambiguous) field.status = ModelField::Ambiguous;
    else if (check.model_kind == JsonCheck::Absent || check.model_kind == JsonCheck::Null) field.status = ModelField::Missing;
    else if (check.model_kind == JsonCheck::Other) field.status = ModelField::NotAString;
    else if (check.model_too_long) field.status = ModelField::TooLong;
    else {
        field.status = ModelField::Found;
        field.model = std::move(check.model);
    }
    if (field.status == ModelField::InvalidJson) field.stream = false;
    return field;
}

namespace {

std::string json_string(const std::string& value) {
    JsonPtr item(cJSON_CreateString(value.c_str()));
    return print_json(item.get(), "\"\"");
}

}  // namespace

bool add_stream_usage(std::string& json) {
    size_t open = json_skip_space(json, 0);
    if (open >= json.size() || json[open] != '{') return false;
    bool empty = json_skip_space(json, open + 1) < json.size() && json[json_skip_space(json, open + 1)] == '}';
    json.insert(open + 1, std::string("\"stream_options\":{\"include_usage\":true}") + (empty ? "" : ","));
    return true;
}

bool set_json_model(std::string& json, const std::string& model) {
    std::vector<JsonMember> members;
    size_t open = 0;
    if (!json_members(json, members, open)) return false;
    for (const JsonMember& member : members)
        if (member.key_text(json) == "model") {
            json.replace(member.value, member.value_end - member.value, json_string(model));
            return true;
        }
    json.insert(open + 1, "\"model\":" + json_string(model) + (members.empty() ? "" : ","));
    return true;
}

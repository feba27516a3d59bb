// Tests: tests/unit/json_stream_test.cpp; fuzzed by fuzz/fuzz_responses_stream.cpp.
#include "json_stream.h"

#include <algorithm>
#include <cstring>

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_scalar_byte(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '+' || c == '-' || c == 'E';
}

// The next state of JSON's number grammar after `c`, or -1: 0 start, 1 after '-', 2 a
// leading 0, 3 whole digits, 4 after '.', 5 fraction digits, 6 after 'e', 7 after its
// sign, 8 exponent digits.
int number_step(int state, char c) {
    bool digit = c >= '0' && c <= '9';
    switch (state) {
    case 0: return c == '-' ? 1 : c == '0' ? 2 : digit ? 3 : -1;
    case 1: return c == '0' ? 2 : digit ? 3 : -1;
    case 2: return c == '.' ? 4 : (c == 'e' || c == 'E') ? 6 : -1;
    case 3: return digit ? 3 : c == '.' ? 4 : (c == 'e' || c == 'E') ? 6 : -1;
    case 4: return digit ? 5 : -1;
    case 5: return digit ? 5 : (c == 'e' || c == 'E') ? 6 : -1;
    case 6: return (c == '+' || c == '-') ? 7 : digit ? 8 : -1;
    case 7:
    case 8: return digit ? 8 : -1;
    default: return -1;
    }
}

}  // namespace

std::string json_string_inside(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            static const char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string json_string_words(std::string_view raw) {
    std::string out;
    for (size_t at = 0; at < raw.size(); ++at) {
        if (raw[at] != '\\' || at + 1 >= raw.size()) {
            out += raw[at];
            continue;
        }
        char c = raw[++at];
        if (c == 'u') {
            out += '?';  // not needed verbatim in an error's words
            at += 4;
        } else {
            out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' || c == 'b' || c == 'f' ? ' ' : c;
        }
    }
    return out;
}

void JsonStreamReader::reset() {
    path_.clear();
    state_ = State::Value;
    in_key_ = false;
    escape_ = 0;
    high_surrogate_ = false;
    utf8_needed_ = 0;
    utf8_low_ = 0x80;
    utf8_high_ = 0xBF;
    scalar_.clear();
    key_.clear();
    failed_in_string_ = false;
}

bool JsonStreamReader::at_path(std::initializer_list<std::string_view> keys) const {
    if (keys.size() != path_.size()) return false;
    size_t level = 0;
    for (std::string_view wanted : keys) {
        const Level& here = path_[level++];
        if (here.array || here.key != wanted) return false;
    }
    return true;
}

std::string JsonStreamReader::open_escape_completion() const {
    if (state_ != State::String && !failed_in_string_) return {};
    size_t typed = escape_ >= 2 ? static_cast<size_t>(escape_ - 2) : 0;
    if (high_surrogate_) {  // its low surrogate, or what is left of it
        if (escape_ == 0) return "\\uDC00";
        return escape_ == 1 ? "uDC00" : std::string("DC00").substr(typed);
    }
    if (escape_ == 1) return "n";  // "\\" + "n": a newline
    if (escape_ >= 2) {
        bool d_first = typed >= 1 && (hex_[0] == 'd' || hex_[0] == 'D');
        if (d_first && typed >= 2 && std::strchr("89abAB", hex_[1]))  // a high surrogate: paired
            return std::string("00").substr(typed - 2) + "\\uDC00";
        if (d_first && typed == 1) return "7FF";  // \uD7FF: the last before the surrogates
        return std::string("AAAA").substr(typed);
    }
    if (utf8_needed_ == 0) return {};
    // The rest of a UTF-8 sequence: the least byte its range allows, then plain continuations.
    std::string rest(1, static_cast<char>(utf8_low_));
    rest.append(static_cast<size_t>(utf8_needed_ - 1), '\x80');
    return rest;
}

bool JsonStreamReader::fail() {
    state_ = State::Failed;
    return false;
}

bool JsonStreamReader::feed(std::string_view piece) {
    const char* at = piece.data();
    const char* end = at + piece.size();
    while (at < end)
        if (!step(at, end)) return false;
    return true;
}

bool JsonStreamReader::finish() {
    if (state_ == State::Scalar) {
        const char* none = nullptr;
        if (!scalar_bytes(none, none)) return false;
    }
    if (state_ != State::Done) return fail();
    return true;
}

// One token's worth (or a run of a string) from `at`; advances it.
bool JsonStreamReader::step(const char*& at, const char* end) {
    if (state_ == State::String) return string_bytes(at, end);
    if (state_ == State::Scalar) return scalar_bytes(at, end);
    if (state_ == State::Failed) return false;
    char c = *at++;
    if (is_space(c)) return true;
    switch (state_) {
    case State::Value: return value_start(c);
    case State::KeyOrEnd:
        if (c == '}') return close_container(c);
        [[fallthrough]];
    case State::Key:
        if (c != '"') return fail();
        state_ = State::String;
        in_key_ = true;
        key_.clear();
        return true;
    case State::Colon:
        if (c != ':') return fail();
        path_.back().key = std::move(key_);
        key_.clear();
        state_ = State::Value;
        return true;
    case State::CommaOrEnd:
        if (c == ']' || c == '}') return close_container(c);
        if (c != ',') return fail();
        if (path_.back().array) {
            ++path_.back().index;
            state_ = State::Value;
        } else {
            state_ = State::Key;
        }
        return true;
    default: return fail();  // Done: only whitespace may follow
    }
}

bool JsonStreamReader::value_start(char c) {
    if (c == ']' && !path_.empty() && path_.back().array && path_.back().index == 0) {
        path_.back().index = -1;  // an empty array: no element was there
        return close_container(c);
    }
    if (c == '{' || c == '[') {
        if (path_.size() >= kMaxJsonDepth) return fail();
        path_.push_back(Level{c == '[', c == '[' ? 0 : -1, {}});
        state_ = c == '[' ? State::Value : State::KeyOrEnd;
        return true;
    }
    if (c == '"') {
        state_ = State::String;
        in_key_ = false;
        return true;
    }
    if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
        state_ = State::Scalar;
        scalar_.assign(1, c);
        number_state_ = number_step(0, c);
        return true;
    }
    return fail();
}

bool JsonStreamReader::close_container(char c) {
    if (path_.empty() || path_.back().array != (c == ']')) return fail();
    path_.pop_back();
    return end_value();
}

bool JsonStreamReader::end_value() {
    state_ = path_.empty() ? State::Done : State::CommaOrEnd;
    return true;
}

// A run of a string: plain bytes are passed by the piece, the rest checked one by one.
bool JsonStreamReader::string_bytes(const char*& at, const char* end) {
    const char* from = at;
    bool closed = false;
    while (at < end) {
        unsigned char c = static_cast<unsigned char>(*at);
        if (c == '"' && escape_ == 0 && utf8_needed_ == 0 && !high_surrogate_) {
            closed = true;
            break;
        }
        if (!string_byte(c)) {
            // What came before the faulty byte is reported, so that a copy of the string
            // ends where the reader's state (open_escape_completion) says it does.
            if (!in_key_ && at > from) visitor_.string_piece(*this, std::string_view(from, static_cast<size_t>(at - from)), false);
            failed_in_string_ = !in_key_;
            return fail();
        }
        ++at;
    }
    std::string_view run(from, static_cast<size_t>(at - from));
    if (in_key_) {
        // Kept cut one byte past the longest key, so that a cut key matches no wanted one.
        key_.append(run.substr(0, kMaxJsonKey + 1 - std::min(key_.size(), kMaxJsonKey + 1)));
    } else if (!run.empty() || closed) {
        visitor_.string_piece(*this, run, closed);
    }
    if (!closed) return true;
    ++at;  // the closing quote
    if (in_key_) {
        state_ = State::Colon;
        return true;
    }
    return end_value();
}

// An escape's byte: after '\\', one of JSON's escapes; after "\\u", four hex digits, whose
// UTF-16 surrogates must pair (a high one, then at once a low one), as the strict checker
// wants (json_model.h).
bool JsonStreamReader::escape_byte(char c) {
    if (escape_ == 1) {
        if (c == 0 || !std::strchr("\"\\/bfnrtu", c) || (high_surrogate_ && c != 'u')) return false;
        escape_ = c == 'u' ? 2 : 0;
        return true;
    }
    size_t typed = static_cast<size_t>(escape_ - 2);
    if (!is_hex(c)) return false;
    hex_[typed] = c;
    bool d_first = hex_[0] == 'd' || hex_[0] == 'D';
    bool low_second = typed == 1 && std::strchr("cdefCDEF", c);
    if (high_surrogate_ && ((typed == 0 && !d_first) || (typed == 1 && !low_second))) return false;
    if (!high_surrogate_ && typed == 1 && d_first && low_second) return false;  // a low one alone
    if (typed < 3) {
        ++escape_;
        return true;
    }
    escape_ = 0;
    high_surrogate_ = !high_surrogate_ && d_first && std::strchr("89abAB", hex_[1]);
    return true;
}

bool JsonStreamReader::string_byte(unsigned char c) {
    if (utf8_needed_ > 0) {
        if (c < utf8_low_ || c > utf8_high_) return false;
        --utf8_needed_;
        utf8_low_ = 0x80;
        utf8_high_ = 0xBF;
        return true;
    }
    if (escape_ >= 1) return escape_byte(static_cast<char>(c));
    if (high_surrogate_ && c != '\\') return false;  // a high surrogate's low one must follow at once
    if (c == '\\') {
        escape_ = 1;
        return true;
    }
    if (c < 0x20) return false;
    if (c < 0x80) return true;
    if (c >= 0xC2 && c <= 0xDF) utf8_needed_ = 1;
    else if (c >= 0xE0 && c <= 0xEF) utf8_needed_ = 2;
    else if (c >= 0xF0 && c <= 0xF4) utf8_needed_ = 3;
    else return false;
    if (c == 0xE0) utf8_low_ = 0xA0;
    if (c == 0xED) utf8_high_ = 0x9F;  // no UTF-16 surrogates
    if (c == 0xF0) utf8_low_ = 0x90;
    if (c == 0xF4) utf8_high_ = 0x8F;  // nothing past U+10FFFF
    return true;
}

// A number or literal: read to its first foreign byte. A number is checked as it comes
// (any length; kept to its first kMaxJsonScalar bytes), a literal whole. `at` null: the
// text ended.
bool JsonStreamReader::scalar_bytes(const char*& at, const char* end) {
    bool number = scalar_[0] != 't' && scalar_[0] != 'f' && scalar_[0] != 'n';
    while (at && at < end && is_scalar_byte(*at)) {
        if (number && (number_state_ = number_step(number_state_, *at)) < 0) return fail();
        if (!number && scalar_.size() >= 5) return fail();
        if (scalar_.size() < kMaxJsonScalar) scalar_ += *at;
        ++at;
    }
    if (at && at == end) return true;  // the piece ended: more may follow
    bool valid = number ? number_state_ == 2 || number_state_ == 3 || number_state_ == 5 || number_state_ == 8
                        : scalar_ == "true" || scalar_ == "false" || scalar_ == "null";
    if (!valid) return fail();
    visitor_.scalar(*this, scalar_);
    return end_value();
}

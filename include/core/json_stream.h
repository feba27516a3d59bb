// A JSON text read as it arrives, in pieces cut anywhere, holding only the path to where it
// is: an upstream event of any size (a Responses stream's `response.completed` carries the
// whole answer again) is read without being kept. Strict RFC 8259 (UTF-8 checked, no raw
// control bytes in strings, nesting at most kMaxJsonDepth); the first fault stops it.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

class JsonStreamReader;

// What the reader reports, in the text's order.
class JsonVisitor {
public:
    virtual ~JsonVisitor() = default;
    // A string value's bytes as the text has them (escapes kept, quotes left out), in
    // pieces as they arrive; `end` on the last (possibly empty) piece. The pieces joined are
    // valid inside a JSON string, so they may be copied into one as they are.
    virtual void string_piece(const JsonStreamReader& at, std::string_view raw, bool end) = 0;
    // A number (cut to kMaxJsonScalar bytes), true, false or null.
    virtual void scalar(const JsonStreamReader& at, std::string_view text) = 0;
};

constexpr size_t kMaxJsonDepth = 64;
constexpr size_t kMaxJsonKey = 64;      // longer keys are kept cut (and match nothing)
constexpr size_t kMaxJsonScalar = 64;   // a longer number is reported cut to this

class JsonStreamReader {
public:
    explicit JsonStreamReader(JsonVisitor& visitor) : visitor_(visitor) {}

    // Back to the start, for another text.
    void reset();
    // Reads one more piece; false once the text is faulty (then it reads nothing more).
    bool feed(std::string_view piece);
    // The text ended: true when it held exactly one complete value.
    bool finish();
    bool failed() const { return state_ == State::Failed; }
    // For a visitor: where the value reported lies. Path segments are object keys (raw,
    // as the text spells them) or, inside an array, "" with the element's index.
    size_t depth() const { return path_.size(); }
    std::string_view key(size_t level) const { return path_[level].key; }
    long index(size_t level) const { return path_[level].index; }
    // Whether the path is exactly these keys (arrays' elements match nothing).
    bool at_path(std::initializer_list<std::string_view> keys) const;
    // Inside a string value (or stopped by a faulty byte in one): what a copy of the pieces
    // reported so far must add before its closing quote to be valid (an open escape or
    // UTF-8 sequence completed); empty when nothing is open.
    std::string open_escape_completion() const;

private:
    enum class State { Value, KeyOrEnd, Key, Colon, CommaOrEnd, String, Scalar, Done, Failed };
    struct Level {
        bool array = false;
        long index = -1;
        std::string key;
    };
    bool step(const char*& at, const char* end);
    bool value_start(char c);
    bool string_bytes(const char*& at, const char* end);
    bool string_byte(unsigned char c);
    bool escape_byte(char c);
    bool scalar_bytes(const char*& at, const char* end);
    bool end_value();
    bool close_container(char c);
    bool fail();

    JsonVisitor& visitor_;
    std::vector<Level> path_;
    State state_ = State::Value;
    bool in_key_ = false;        // the string read is an object's key
    int escape_ = 0;             // 0: none; 1: after '\'; 2..5: after \u and (escape_ - 2) hex digits
    char hex_[4] = {};           // the \u escape's digits so far
    bool high_surrogate_ = false;  // the last escape was a high surrogate: its low one is due
    int utf8_needed_ = 0;        // continuation bytes still due
    unsigned char utf8_low_ = 0x80, utf8_high_ = 0xBF;  // the next continuation byte's range
    std::string scalar_;         // a number or literal being read (its first kMaxJsonScalar bytes)
    int number_state_ = 0;       // where a number is in its grammar (json_stream.cpp)
    std::string key_;            // the key being read
    bool failed_in_string_ = false;  // the fault was a byte inside a string value
};

// `text` made the inside of a JSON string: quotes, backslashes and control bytes escaped.
std::string json_string_inside(std::string_view text);
// The inside of a JSON string as a text has it (escapes kept) made plain words for a
// message: simple escapes decoded, \uXXXX shown as '?'.
std::string json_string_words(std::string_view raw);

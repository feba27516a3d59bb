// multipart/form-data: the `model` field of an upload, found without holding the body.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

// The boundary of a multipart/form-data Content-Type, or "" when it is not one.
std::string multipart_boundary(std::string_view content_type);

// Fed the body in pieces of any size, finds the form field named "model" and where its
// value lies in the body (so it can be replaced on the way out). Memory stays small
// whatever the body's size: only part headers and the model's value are kept. It reads on
// to the end: a second field "model" makes the form ambiguous (the proxy would check one
// model and the upstream might use the other), and the scan failed.
class MultipartModelScanner {
public:
    // `field`: the form field looked for ("model"; a realtime call's "session", whose JSON
    // names the model), kept up to `longest` bytes (a longer one fails the scan).
    explicit MultipartModelScanner(const std::string& boundary, const std::string& field = "model",
                                   size_t longest = 1024);
    // No form (a request that is no upload): failed from the start, as with an empty
    // boundary, made without a string of the boundary's (every exchange holds one).
    MultipartModelScanner();

    void feed(const char* data, size_t size);

    bool found() const { return found_ && state_ != State::Failed; }
    bool failed() const { return state_ == State::Failed; }
    bool ambiguous() const { return ambiguous_; }  // failed: "model" came twice
    bool finished() const { return state_ == State::Done || state_ == State::Failed; }
    const std::string& model() const { return model_; }  // the field's value
    // Whether a part of that name came, among the form's first 16 parts.
    bool saw_field(const std::string& name) const;
    long long value_begin() const { return value_begin_; }  // byte offsets in the body
    long long value_end() const { return value_end_; }

private:
    enum class State { Delimiter, AfterDelimiter, Headers, Content, ModelValue, Done, Failed };

    bool step(char c);  // false once nothing more needs reading
    bool match_delimiter(char c);
    void start_part();

    std::string delimiter_;  // "\r\n--" + boundary
    std::string field_;
    size_t longest_;
    std::vector<std::string> fields_;  // the parts' names, as they came
    State state_ = State::Delimiter;
    size_t matched_ = 2;     // the body's first delimiter has no leading CRLF
    std::string headers_;
    std::string model_;
    long long offset_ = 0;
    long long value_begin_ = -1;
    long long value_end_ = -1;
    bool model_part_ = false;
    bool found_ = false;
    bool ambiguous_ = false;
};

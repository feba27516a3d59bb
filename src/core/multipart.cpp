#include "multipart.h"

#include <cstring>

#include "text.h"

namespace {

const size_t kMaxHeaders = 16 * 1024;
const size_t kMaxFieldsRemembered = 16;

// The value of a `name=value` or `name="value"` parameter in a header line.
std::string header_parameter(const std::string& header, const std::string& name) {
    std::string lower = lowercase(header);
    for (size_t at = lower.find(name + "="); at != std::string::npos;
         at = lower.find(name + "=", at + 1)) {
        if (at > 0 && lower[at - 1] != ' ' && lower[at - 1] != ';' && lower[at - 1] != '\t')
            continue;  // "filename=" is not "name="
        size_t start = at + name.size() + 1;
        if (start < header.size() && header[start] == '"') {
            size_t end = header.find('"', start + 1);
            return header.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
        }
        size_t end = header.find_first_of("; \t\r\n", start);
        return header.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    return "";
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
    // Looked at in place: every JSON request's type passes here (no copies of it).
    if (!istarts_with(trim_view(content_type), "multipart/form-data")) return "";
    std::string boundary = header_parameter(std::string(content_type), "boundary");
    return boundary.size() <= 200 ? boundary : "";
}

MultipartModelScanner::MultipartModelScanner(const std::string& boundary, const std::string& field,
                                             size_t longest)
    : delimiter_("\r\n--" + boundary), field_(field), longest_(longest) {
    if (boundary.empty()) state_ = State::Failed;
}

MultipartModelScanner::MultipartModelScanner() : delimiter_("\r\n--"), field_("model"), longest_(1024) {
    state_ = State::Failed;
}

void MultipartModelScanner::feed(const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i, ++offset_) {
        if (state_ == State::Content && matched_ == 0) {
            // A part's content (most of an upload) matters only where a delimiter may
            // start: a CR. The bytes before the next one are passed over at once.
            const void* cr = std::memchr(data + i, '\r', size - i);
            size_t skipped = cr ? static_cast<size_t>(static_cast<const char*>(cr) - (data + i)) : size - i;
            i += skipped;
            offset_ += static_cast<long long>(skipped);
            if (i == size) return;
        }
        if (!step(data[i])) return;
    }
}

// Advances the delimiter match by one byte; true when the whole delimiter just matched.
// The delimiter's only CR is its first byte, so a mismatch restarts at 0 or 1.
bool MultipartModelScanner::match_delimiter(char c) {
    if (c == delimiter_[matched_]) {
        if (++matched_ < delimiter_.size()) return false;
        matched_ = 0;
        return true;
    }
    matched_ = c == '\r' ? 1 : 0;
    return false;
}

void MultipartModelScanner::start_part() {
    headers_.clear();
    model_part_ = false;
    state_ = State::Headers;
}

bool MultipartModelScanner::step(char c) {
    switch (state_) {
        case State::Delimiter:  // the preamble, up to the first delimiter
        case State::Content:
            if (match_delimiter(c)) state_ = State::AfterDelimiter;
            return true;
        case State::AfterDelimiter:  // "--" ends the body; otherwise the line ends
            if (c == '-') {
                state_ = State::Done;
                return false;
            }
            if (c == '\n') start_part();
            return true;
        case State::Headers:
            headers_ += c;
            if (headers_.size() > kMaxHeaders) {
                state_ = State::Failed;
                return false;
            }
            if (ends_with(headers_, "\r\n\r\n")) {
                for (const std::string& line : split(headers_, '\n'))
                    if (starts_with(lowercase(trim(line)), "content-disposition:")) {
                        std::string name = header_parameter(line, "name");
                        model_part_ = name == field_;
                        if (fields_.size() < kMaxFieldsRemembered) fields_.push_back(name.substr(0, 64));
                    }
                if (model_part_ && found_) {
                    ambiguous_ = true;
                    state_ = State::Failed;
                    return false;
                }
                state_ = model_part_ ? State::ModelValue : State::Content;
                if (model_part_) value_begin_ = offset_ + 1;
            }
            return true;
        case State::ModelValue:
            model_ += c;
            if (model_.size() > longest_ + delimiter_.size()) {
                state_ = State::Failed;
                return false;
            }
            if (match_delimiter(c)) {
                model_.resize(model_.size() - delimiter_.size());
                value_end_ = offset_ + 1 - static_cast<long long>(delimiter_.size());
                found_ = true;
                state_ = State::AfterDelimiter;  // read on: a second "model" must not pass
            }
            return true;
        case State::Done:
        case State::Failed:
            return false;
    }
    return false;
}

bool MultipartModelScanner::saw_field(const std::string& name) const {
    for (const std::string& seen : fields_)
        if (seen == name) return true;
    return false;
}

#include "fastcgi_input.h"

#include <algorithm>
#include <cstring>

#include "text.h"

namespace {

const unsigned char kVersion1 = 1;
const unsigned char kBeginRequest = 1;
const unsigned char kParams = 4;
const unsigned char kStdin = 5;
const size_t kHeaderSize = 8;
const size_t kBeginBodySize = 8;
const unsigned kResponder = 1;
const unsigned char kKeepConnection = 1;

// One length of a name-value pair at `at`: a byte below 128, or four bytes with the high
// bit of the first set. False when it runs past `end`. Its bytes, read, are blanked: a length
// of 10, 13 or 0 is no line break in a value (stores of their own, not a memset call).
bool pair_length(unsigned char*& at, const unsigned char* end, size_t& length) {
    if (at == end) return false;
    if (!(at[0] & 0x80)) {
        length = *at;
        *at++ = ' ';
        return true;
    }
    if (end - at < 4) return false;
    length = (static_cast<size_t>(at[0] & 0x7f) << 24) | (static_cast<size_t>(at[1]) << 16) |
             (static_cast<size_t>(at[2]) << 8) | at[3];
    at[0] = at[1] = at[2] = at[3] = ' ';
    at += 4;
    return true;
}

// A pair's two lengths: both of one byte, as nearly every param's are, read in place;
// else each as pair_length() reads it.
bool pair_lengths(unsigned char*& at, const unsigned char* end, size_t& name, size_t& value) {
    if (end - at >= 2 && !((at[0] | at[1]) & 0x80)) {
        name = at[0];
        value = at[1];
        at[0] = at[1] = ' ';
        at += 2;
        return true;
    }
    return pair_length(at, end, name) && pair_length(at, end, value);
}

}  // namespace

bool parse_fastcgi_pairs(std::string& pairs, CgiParams& params, bool& plain) {
    params.clear();
    plain = false;
    if (params.capacity() == 0) params.reserve(pairs.size() / 32 + 8);  // a pair is rarely shorter
    auto* at = reinterpret_cast<unsigned char*>(pairs.data());
    const auto* end = at + pairs.size();
    while (at != end) {
        size_t name = 0, value = 0;
        if (!pair_lengths(at, end, name, value)) return false;
        if (name > static_cast<size_t>(end - at) || value > static_cast<size_t>(end - at) - name) return false;
        const char* text = reinterpret_cast<const char*>(at);
        params.emplace_back(std::string_view(text, name), std::string_view(text + name, value));
        at += name + value;
    }
    // One scan of the whole block for every name and value (no byte below 14: no CR, LF
    // or NUL); a block with any such byte is looked at param by param (request.cpp).
    plain = !has_byte_below_or(pairs, '\r' + 1, '\r');
    return true;
}

unsigned char* FastCgiInput::room() {
    if (begin_ == end_) begin_ = end_ = 0;
    if (capacity_ - end_ < kFastCgiReadSize) {
        size_t unread = end_ - begin_;
        if (capacity_ - unread < kFastCgiReadSize) {  // a larger buffer, the unread bytes moved over
            std::unique_ptr<unsigned char[]> larger(new unsigned char[unread + kFastCgiReadSize]);
            if (unread) std::memcpy(larger.get(), buffer_.get() + begin_, unread);
            buffer_ = std::move(larger);
            capacity_ = unread + kFastCgiReadSize;
        } else if (unread) {
            std::memmove(buffer_.get(), buffer_.get() + begin_, unread);
        }
        begin_ = 0;
        end_ = unread;
    }
    return buffer_.get() + end_;
}

void FastCgiInput::filled(size_t size) { end_ += std::min(size, capacity_ - end_); }

FastCgiInput::State FastCgiInput::take() {
    State before = state_;
    while (state_ != State::Failed && state_ != State::Ended) {
        if (!in_record_) {
            if (end_ - begin_ < kHeaderSize) break;
            if (!take_header()) state_ = State::Failed;
            continue;
        }
        if (content_left_ > 0) {
            if (ours_ && type_ == kStdin) {  // handed out by body()
                body_ready_ = std::min(content_left_, end_ - begin_);
                break;
            }
            take_content();
            if (content_left_ > 0) break;
        }
        size_t skip = std::min(padding_left_, end_ - begin_);
        begin_ += skip;
        padding_left_ -= skip;
        if (padding_left_ > 0) break;
        in_record_ = false;
        if (ours_) end_record();
        // The params are whole: they are the caller's to read before what follows is taken
        // (a broken body fails the body, not the params).
        if (state_ == State::Body && before != State::Body) break;
    }
    return state_;
}

// A record's header: whether this request may have it here. Records of other requests and
// management records (request id 0, which no web server in front of the proxy sends) are
// skipped, unanswered.
bool FastCgiInput::take_header() {
    const unsigned char* header = buffer_.get() + begin_;
    begin_ += kHeaderSize;
    if (header[0] != kVersion1) return false;
    unsigned char type = header[1];
    uint16_t id = static_cast<uint16_t>((header[2] << 8) | header[3]);
    size_t content = (static_cast<size_t>(header[4]) << 8) | header[5];
    in_record_ = true;
    content_left_ = content;
    padding_left_ = header[6];
    type_ = type;
    empty_ = content == 0;
    ours_ = false;
    if (id == 0) return true;
    if (state_ == State::Begin) {
        if (type != kBeginRequest || content != kBeginBodySize) return false;
        request_id_ = id;
    } else if (id != request_id_) {
        return true;
    }
    ours_ = true;
    if (state_ == State::Params) return type == kParams && content <= kFastCgiMaxParams - pairs_.size();
    return state_ != State::Body || type == kStdin;  // not an abort, nor a record no responder gets
}

// A record of this request taken whole (its padding too): what it completes.
void FastCgiInput::end_record() {
    if (state_ == State::Begin) {
        unsigned role = (static_cast<unsigned char>(begin_body_[0]) << 8) | static_cast<unsigned char>(begin_body_[1]);
        keep_ = begin_body_[2] & kKeepConnection;
        state_ = role == kResponder ? State::Params : State::Failed;
    } else if (state_ == State::Params && empty_) {
        state_ = parse_fastcgi_pairs(pairs_, params_, params_plain_) ? State::Body : State::Failed;
    } else if (state_ == State::Body && empty_) {
        state_ = State::Ended;
    }
}

// Content of a record not handed to body(): BEGIN_REQUEST's, the pairs, or skipped.
void FastCgiInput::take_content() {
    size_t piece = std::min(content_left_, end_ - begin_);
    const char* at = reinterpret_cast<const char*>(buffer_.get() + begin_);
    if (ours_ && state_ == State::Params) pairs_.append(at, piece);
    if (ours_ && state_ == State::Begin) begin_body_.append(at, piece);
    begin_ += piece;
    content_left_ -= piece;
}

size_t FastCgiInput::body(char* out, size_t size) {
    size_t piece = std::min(size, body_ready_);
    if (piece == 0) return 0;
    std::memcpy(out, buffer_.get() + begin_, piece);
    begin_ += piece;
    content_left_ -= piece;
    body_ready_ -= piece;
    return piece;
}

ParamsRooms FastCgiInput::release_params() {
    ParamsRooms rooms{std::move(pairs_), std::move(params_)};
    pairs_ = std::string();
    params_ = CgiParams();
    params_plain_ = false;
    rooms.pairs.clear();
    rooms.params.clear();
    return rooms;
}

void FastCgiInput::lend_params_rooms(ParamsRooms rooms) {
    if (!pairs_.empty() || params_.capacity() != 0) return;  // pairs arrived, or a room is held
    rooms.pairs.clear();
    rooms.params.clear();
    pairs_.swap(rooms.pairs);
    params_.swap(rooms.params);
}

std::unique_ptr<unsigned char[]> FastCgiInput::release_buffer() {
    if (begin_ != end_) return nullptr;
    std::unique_ptr<unsigned char[]> gone = std::move(buffer_);
    if (capacity_ != kFastCgiReadSize) gone.reset();
    capacity_ = begin_ = end_ = 0;
    return gone;
}

void FastCgiInput::lend_buffer(std::unique_ptr<unsigned char[]> buffer) {
    if (buffer_ || !buffer) return;
    buffer_ = std::move(buffer);
    capacity_ = kFastCgiReadSize;
    begin_ = end_ = 0;
}

// A FastCGI request as it comes off the socket: BEGIN_REQUEST, the PARAMS records (the
// name-value pairs), then the STDIN records (the body). The edge reads bytes into room()
// and says how many with filled(); this class takes the records apart wherever the reads
// split them. The params are views into one buffer of their own (no allocation per
// param, as libfcgi's copy of each into the environment had).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "request.h"

// PARAMS content a request may hold, all pairs together: far above any web server's own
// bound on a request's head (lighttpd, nginx and Apache stop near 64 KiB by default).
constexpr size_t kFastCgiMaxParams = 1 << 20;
// What one read from the socket asks for: a small request arrives whole in one.
constexpr size_t kFastCgiReadSize = 8192;

// A request's params rooms: the pairs' bytes and the views into them. The edge keeps them
// emptied across requests (capacity kept), so that a request does not ask malloc for them.
struct ParamsRooms {
    std::string pairs;
    CgiParams params;
};

class FastCgiInput {
public:
    enum class State {
        Begin,   // waiting for BEGIN_REQUEST
        Params,  // reading the name-value pairs
        Body,    // the params are whole; STDIN records follow
        Ended,   // the empty STDIN record arrived
        Failed,  // not FastCGI as a responder's web server writes it
    };

    // Room for the next read (kFastCgiReadSize bytes), then how much arrived.
    unsigned char* room();
    void filled(size_t size);
    // The bytes read and not taken yet: before the first take(), all of them.
    const unsigned char* unread() const { return buffer_.get() + begin_; }
    size_t unread_size() const { return end_ - begin_; }

    // Takes what has arrived: the state says how far the request is.
    State take();
    State state() const { return state_; }
    // Body bytes taken and not handed out yet, at most `size` of them into `out`.
    size_t body(char* out, size_t size);
    // Bytes that arrived after the request's end (the next request on a kept connection).
    bool read_past_end() const { return state_ == State::Ended && begin_ != end_; }

    uint16_t request_id() const { return request_id_; }
    bool keep_connection() const { return keep_; }
    // Valid from State::Body until release_params().
    const CgiParams& params() const { return params_; }
    // Whether no param's name or value holds CR, LF or NUL, known from one scan of them all
    // (false: not known, each is looked at).
    bool params_plain() const { return params_plain_; }
    // The params go; their rooms come back emptied, for another request's lend_params_rooms().
    ParamsRooms release_params();
    // Rooms for the params to come, taken only before any pair arrived.
    void lend_params_rooms(ParamsRooms rooms);
    // The read buffer goes (a stream would hold it to its end) unless bytes wait in it.
    // One of kFastCgiReadSize bytes is handed back, for another connection's lend_buffer();
    // else nothing (none went, or a larger one was freed).
    std::unique_ptr<unsigned char[]> release_buffer();
    // A buffer of kFastCgiReadSize bytes for the reads to come, instead of one made at the
    // first read: the edge keeps them across connections (a new one costs malloc a search
    // of its bins a request). Taken only while there is none.
    bool has_buffer() const { return buffer_ != nullptr; }
    void lend_buffer(std::unique_ptr<unsigned char[]> buffer);

private:
    bool take_header();
    void take_content();
    void end_record();

    // Made at the first read, not zeroed (every byte read is written first).
    std::unique_ptr<unsigned char[]> buffer_;
    size_t capacity_ = 0;
    size_t begin_ = 0, end_ = 0;  // unread bytes in buffer_
    State state_ = State::Begin;
    uint16_t request_id_ = 0;
    bool keep_ = false;
    // The record being read: its type, whether it is this request's, what is left of it.
    unsigned char type_ = 0;
    bool ours_ = false;
    bool empty_ = false;
    size_t content_left_ = 0, padding_left_ = 0;
    bool in_record_ = false;
    std::string begin_body_;   // BEGIN_REQUEST's 8 bytes, as they arrive
    std::string pairs_;        // PARAMS content, as it arrives
    CgiParams params_;
    bool params_plain_ = false;
    size_t body_ready_ = 0;    // STDIN bytes at begin_ that body() may hand out
};

// The name-value pairs of PARAMS content (lengths of one byte, or four with the high bit
// set, then the name and the value), as views into `pairs`; false when a length runs past
// the end. A name's value follows it: the two lie together (request.cpp scans them at once).
// One pass into `params` as it is: a lent room holds a request's pairs without a malloc.
// The lengths, once read, are blanked in `pairs`, so that one scan of the whole block says
// whether any name or value may hold CR, LF or NUL (`plain`: none does).
bool parse_fastcgi_pairs(std::string& pairs, CgiParams& params, bool& plain);

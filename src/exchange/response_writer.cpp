#include "response_writer.h"

void ResponseWriter::set_cors(const Config& config, const Request& request) {
    if (!cors_ || config.cors_origins.empty()) return;
    const std::string_view* origin = find_header(request.headers, "Origin");
    std::string origin_text = origin ? std::string(*origin) : std::string();
    origin_cors_ = head_fields(cors_headers_for(config.cors_origins, origin ? &origin_text : nullptr));
    cors_ = &origin_cors_;
}

bool ResponseWriter::head(int status, Headers headers) { return head_from(status, field_views(headers)); }

bool ResponseWriter::head_from(int status, const FieldViews& headers) {
    status_ = status;
    head_sent_ = true;
    // Written into room the thread keeps for its next answers' heads (malloc and free a
    // request less); a head that made it larger than most gives it back.
    const size_t kKeptRoom = 16 * 1024;
    thread_local std::string room;
    cgi_head(room, status, headers, cors_ ? std::string_view(*cors_) : std::string_view());
    bool written = connection_.write(room.data(), room.size());
    if (room.capacity() > kKeptRoom) std::string().swap(room);
    return written;
}

bool ResponseWriter::body(const char* data, size_t size) {
    bytes_ += static_cast<long long>(size);
    return connection_.write(data, size);
}

void ResponseWriter::complete(int status, const std::string& content_type,
                              const std::string& body_text, Headers extra) {
    extra.push_back({"Content-Type", content_type});
    extra.push_back({"Content-Length", std::to_string(body_text.size())});
    if (head(status, std::move(extra))) body(body_text.data(), body_text.size());
}

void ResponseWriter::error(const ProxyError& error, Headers extra) {
    error_code_ = error.code;
    complete(error.status, "application/json", error_body(error), std::move(extra));
}

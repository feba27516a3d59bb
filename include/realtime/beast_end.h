// SocketEnd over one concrete Beast WebSocket stream. Included only by the file that owns
// that stream (client_socket.cpp, upstream_tls.cpp, upstream_plain.cpp), so each file
// instantiates Beast for one stream type (socket_end.h).
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <utility>

#include "socket_end.h"

template <class Stream>
class BeastEnd final : public SocketEnd {
public:
    using WebSocket = boost::beast::websocket::stream<Stream>;

    template <class... Args>
    BeastEnd(const EndLimits& limits, Args&&... args) : ws_(std::forward<Args>(args)...) {
        namespace websocket = boost::beast::websocket;
        ws_.read_message_max(limits.max_message_bytes);
        websocket::stream_base::timeout timeout;
        timeout.handshake_timeout = std::chrono::seconds(limits.handshake_timeout_s);
        timeout.idle_timeout = std::chrono::seconds(limits.idle_ping_s);
        timeout.keep_alive_pings = true;
        ws_.set_option(timeout);
    }

    WebSocket& ws() { return ws_; }

    void read(Received on_message) override {
        ws_.async_read(received_, [this, on_message = std::move(on_message)](boost::system::error_code ec, std::size_t) {
            WsMessage message{boost::beast::buffers_to_string(received_.data()), ws_.got_text()};
            received_.clear();
            // One big message must not cost the session its size for as long as it lasts.
            if (received_.capacity() > kKeptBufferBytes) received_.shrink_to_fit();
            on_message(ec, std::move(message));
        });
    }

    void write(WsMessage message, Done on_written) override {
        writing_ = std::move(message.data);
        ws_.text(message.text);
        ws_.async_write(boost::asio::buffer(writing_), [this, on_written = std::move(on_written)](boost::system::error_code ec,
                                                                                                 std::size_t) {
            std::string().swap(writing_);  // written: its memory goes back now, not at the next message
            on_written(ec);
        });
    }

    void close(int code, Done on_closed) override {
        ws_.async_close(boost::beast::websocket::close_reason(static_cast<std::uint16_t>(code)), std::move(on_closed));
    }

    int peer_close_code() const override { return ws_.reason().code; }

    void cut() override { boost::beast::close_socket(boost::beast::get_lowest_layer(ws_)); }

private:
    static constexpr std::size_t kKeptBufferBytes = 16 * 1024;

    WebSocket ws_;
    boost::beast::flat_buffer received_;
    std::string writing_;  // the message in flight: Beast writes from it until done
};

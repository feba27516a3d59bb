// The client's side of a realtime session (client_socket.h), over the one socket type the
// listener accepts. Tested through web servers in tests/integration/realtime-socket.test.mjs.
#include "client_socket.h"

#include <boost/beast/http.hpp>

#include "beast_end.h"

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using Socket = ClientConnection::Socket;

constexpr std::uint32_t kLongestRequestHead = 16 * 1024;

class ClientSocketConnection final : public ClientConnection {
public:
    ClientSocketConnection(Socket socket, const EndLimits& limits)
        : end_(std::make_unique<BeastEnd<Socket>>(limits, std::move(socket))) {
        parser_.header_limit(kLongestRequestHead);
        parser_.body_limit(0);
    }

    void read_request(std::function<void(bool, RealtimeRequest)> done) override {
        http::async_read(end_->ws().next_layer(), buffer_, parser_,
                         [this, done = std::move(done)](beast::error_code ec, std::size_t) {
                             if (ec) return done(false, RealtimeRequest{});
                             done(true, request_parts(parser_.get()));
                         });
    }

    void refuse(int status, const std::string& json_body, const Headers& headers, std::function<void()> done) override {
        answer_.result(static_cast<unsigned>(status));
        answer_.version(11);
        answer_.set(http::field::content_type, "application/json");
        answer_.set(http::field::connection, "close");
        for (const Header& header : headers) answer_.set(header.name, header.value);
        // The one 426 here is a WebSocket upgrade of another version (RFC 6455 4.4).
        if (status == 426) answer_.set(http::field::sec_websocket_version, "13");
        answer_.body() = json_body;
        answer_.prepare_payload();
        http::async_write(end_->ws().next_layer(), answer_, [this, done = std::move(done)](beast::error_code, std::size_t) {
            beast::error_code ignored;
            end_->ws().next_layer().shutdown(Socket::shutdown_send, ignored);
            done();
        });
    }

    void accept(const std::string& protocol, std::function<void(std::unique_ptr<SocketEnd>)> done) override {
        end_->ws().set_option(websocket::stream_base::decorator([protocol](websocket::response_type& answer) {
            answer.set(http::field::server, "azure-openai-proxy-realtime");
            if (!protocol.empty()) answer.set(http::field::sec_websocket_protocol, protocol);
        }));
        end_->ws().async_accept(parser_.get(), [this, done = std::move(done)](beast::error_code ec) {
            if (ec) return done(nullptr);
            done(std::move(end_));
        });
    }

    void cut() override {
        if (end_) end_->cut();
    }

private:
    static RealtimeRequest request_parts(const http::request<http::empty_body>& head) {
        RealtimeRequest request;
        request.method = std::string(head.method_string());
        request.target = std::string(head.target());
        for (const auto& field : head) request.headers.push_back({std::string(field.name_string()), std::string(field.value())});
        request.upgrade = websocket::is_upgrade(head);
        return request;
    }

    std::unique_ptr<BeastEnd<Socket>> end_;
    beast::flat_buffer buffer_;
    http::request_parser<http::empty_body> parser_;
    http::response<http::string_body> answer_;
};

}  // namespace

std::unique_ptr<ClientConnection> client_connection(Socket socket, const EndLimits& limits) {
    return std::make_unique<ClientSocketConnection>(std::move(socket), limits);
}

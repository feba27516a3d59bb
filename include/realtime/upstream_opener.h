// The steps that open Azure's WebSocket, for one stream type: resolve, connect (within the
// connect timeout), secure (`Secure`: the TLS handshake, or nothing), then the WebSocket
// handshake with the credential. Included by upstream_tls.cpp and upstream_plain.cpp only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "beast_end.h"
#include "target_choice.h"
#include "upstream_socket.h"

template <class Stream, class Secure>
class UpstreamOpener : public std::enable_shared_from_this<UpstreamOpener<Stream, Secure>> {
public:
    template <class... Args>
    UpstreamOpener(boost::asio::io_context& io, const UpstreamTarget& target, const EndLimits& limits,
                   UpstreamDone done, Args&&... stream_args)
        : resolver_(io), target_(target), done_(std::move(done)),
          end_(std::make_unique<BeastEnd<Stream>>(limits, std::forward<Args>(stream_args)...)) {}

    // Started, with the way to give it up (the handshake deadline passed meanwhile).
    UpstreamAbandon start() {
        auto self = this->shared_from_this();
        resolver_.async_resolve(target_.where.host, target_.where.port,
                                [self](boost::system::error_code ec, boost::asio::ip::tcp::resolver::results_type found) {
                                    if (ec) return self->fail("resolving the endpoint: " + ec.message());
                                    self->connect(found);
                                });
        std::weak_ptr<UpstreamOpener> weak = self;
        return [weak] {
            if (auto opener = weak.lock()) opener->abandon();
        };
    }

private:
    void connect(const boost::asio::ip::tcp::resolver::results_type& found) {
        auto self = this->shared_from_this();
        auto& lowest = boost::beast::get_lowest_layer(end_->ws());
        lowest.expires_after(std::chrono::seconds(target_.connect_timeout_s));
        lowest.async_connect(found, [self](boost::system::error_code ec, const boost::asio::ip::tcp::endpoint&) {
            if (ec) return self->fail("connecting: " + ec.message());
            // Each audio frame goes out as it comes: without it Nagle holds a small write
            // until the previous one is acknowledged, and a delayed ACK makes that 40 ms.
            boost::system::error_code not_fatal;  // without it the session works, only slower
            boost::beast::get_lowest_layer(self->end_->ws()).socket().set_option(boost::asio::ip::tcp::no_delay(true), not_fatal);
            Secure::run(self->end_->ws().next_layer(), self->target_.where.host, [self](boost::system::error_code tls) {
                if (tls) return self->fail("TLS: " + tls.message());
                self->handshake();
            });
        });
    }

    void handshake() {
        namespace websocket = boost::beast::websocket;
        auto self = this->shared_from_this();
        boost::beast::get_lowest_layer(end_->ws()).expires_never();  // the WebSocket keeps its own deadlines
        Headers headers = target_.headers;
        end_->ws().set_option(websocket::stream_base::decorator([headers](websocket::request_type& request) {
            request.set(boost::beast::http::field::user_agent, "azure-openai-proxy-realtime");
            for (const Header& header : headers) request.set(header.name, header.value);
        }));
        const RealtimeUpstream& where = target_.where;
        bool default_port = where.port == (where.tls ? "443" : "80");
        std::string host = where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host;
        end_->ws().async_handshake(answer_, default_port ? host : host + ":" + where.port, where.target,
                                   [self](boost::system::error_code ec) { self->handshaken(ec); });
    }

    void handshaken(boost::system::error_code ec) {
        UpstreamOpened opened;
        if (!ec) {
            opened.end = std::move(end_);
            return done_(std::move(opened));
        }
        if (ec == boost::beast::websocket::error::upgrade_declined) {
            opened.status = static_cast<int>(answer_.result_int());
            opened.body = answer_.body();
            Headers headers;  // a 429's wait cools its target down as long as Azure asked
            for (const auto& field : answer_) headers.push_back({std::string(field.name_string()), std::string(field.value())});
            opened.retry_after_ms = retry_after_ms(field_views(headers));
        }
        opened.error = "the WebSocket handshake: " + ec.message();
        done_(std::move(opened));
    }

    // The operation in flight ends with an error, and `done_` hears it.
    void abandon() {
        resolver_.cancel();
        if (end_) end_->cut();
    }

    void fail(const std::string& why) {
        UpstreamOpened opened;
        opened.error = why;
        done_(std::move(opened));
    }

    boost::asio::ip::tcp::resolver resolver_;
    UpstreamTarget target_;
    UpstreamDone done_;
    std::unique_ptr<BeastEnd<Stream>> end_;
    boost::beast::websocket::response_type answer_;
};

// Azure's side over plain TCP (an http:// endpoint: a local stand-in, a sidecar), and the
// choice between it and TLS (upstream_socket.h). Tested in tests/integration/realtime-socket.test.mjs.
#include "upstream_opener.h"

namespace {

struct NoTls {
    template <class Handler>
    static void run(boost::beast::tcp_stream&, const std::string&, Handler&& then) {
        then(boost::system::error_code{});
    }
};

}  // namespace

UpstreamAbandon open_plain_upstream(boost::asio::io_context& io, const UpstreamTarget& target, const EndLimits& limits,
                         UpstreamDone done) {
    auto opener = std::make_shared<UpstreamOpener<boost::beast::tcp_stream, NoTls>>(io, target, limits, std::move(done), io);
    return opener->start();
}

UpstreamAbandon open_upstream(boost::asio::io_context& io, boost::asio::ssl::context& tls, const UpstreamTarget& target,
                   const EndLimits& limits, UpstreamDone done) {
    if (target.where.tls) return open_tls_upstream(io, tls, target, limits, std::move(done));
    return open_plain_upstream(io, target, limits, std::move(done));
}

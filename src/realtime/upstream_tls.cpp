// Azure's side over TLS (upstream_socket.h): the server name sent (SNI), the certificate
// checked against the CA bundle and the endpoint's host. Tested in
// tests/integration/realtime-socket.test.mjs.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "upstream_opener.h"

namespace {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

struct ClientTls {
    template <class Handler>
    static void run(TlsStream& stream, const std::string& host, Handler&& then) {
        boost::system::error_code ec;
        // SNI: a name, never an address (RFC 6066).
        boost::asio::ip::make_address(host, ec);
        if (ec && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()))
            return then(boost::system::error_code(static_cast<int>(::ERR_get_error()), boost::asio::error::get_ssl_category()));
        stream.set_verify_mode(boost::asio::ssl::verify_peer);
        stream.set_verify_callback(boost::asio::ssl::host_name_verification(host));
        stream.async_handshake(boost::asio::ssl::stream_base::client, std::forward<Handler>(then));
    }
};

}  // namespace

UpstreamAbandon open_tls_upstream(boost::asio::io_context& io, boost::asio::ssl::context& tls, const UpstreamTarget& target,
                       const EndLimits& limits, UpstreamDone done) {
    auto opener = std::make_shared<UpstreamOpener<TlsStream, ClientTls>>(io, target, limits, std::move(done), io, tls);
    return opener->start();
}

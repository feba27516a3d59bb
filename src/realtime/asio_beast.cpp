// Asio, its TLS and Beast compiled once for the companion (BOOST_ASIO_SEPARATE_COMPILATION,
// BOOST_BEAST_SEPARATE_COMPILATION in the Makefile): every other file includes their
// headers only. Tested, as the whole companion, in tests/integration/realtime-socket.test.mjs.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>

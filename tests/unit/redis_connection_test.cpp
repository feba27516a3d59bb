// The Redis connection's bounded replies, without a Redis server: replies are fed to the
// reader of a context that never connected (a Unix socket path where nothing is). What
// fits is built as hiredis builds it; an array too long, an array inside an array or a
// string too long is refused, with why.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "bounds.h"
#include "redis_internal.h"

using namespace redis_internal;

namespace {

struct ContextFree {
    void operator()(redisContext* redis) const { redisFree(redis); }
};

// A context with hiredis' reader, bounded; its connection failed, which the reader ignores.
struct BoundedReader {
    BoundedReader() : redis(redisConnectUnix("/nonexistent/aop-redis-test.sock")) {
        BOOST_REQUIRE(redis);
        BOOST_REQUIRE(redis->reader);
        bound_replies(redis.get(), &refused);
    }
    // The reply `wire` makes, or null (refused or incomplete); `ok`: the reader's verdict.
    redisReply* read(const std::string& wire, bool& ok) {
        BOOST_REQUIRE(redisReaderFeed(redis->reader, wire.data(), wire.size()) == REDIS_OK);
        void* reply = nullptr;
        ok = redisReaderGetReply(redis->reader, &reply) == REDIS_OK;
        kept.reply = static_cast<redisReply*>(reply);
        return kept.reply;
    }
    std::unique_ptr<redisContext, ContextFree> redis;
    std::string refused;
    Reply kept;
};

std::string array_of_integers(size_t count) {
    std::string wire = "*" + std::to_string(count) + "\r\n";
    for (size_t i = 0; i < count; ++i) wire += ":" + std::to_string(i) + "\r\n";
    return wire;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_connection)

BOOST_AUTO_TEST_CASE(a_reply_within_bounds_is_built) {
    BoundedReader reader;
    bool ok = false;
    redisReply* reply = reader.read(array_of_integers(5), ok);
    BOOST_REQUIRE(ok);
    BOOST_REQUIRE(reply);
    BOOST_TEST(reply->type == REDIS_REPLY_ARRAY);
    BOOST_REQUIRE(reply->elements == 5u);
    BOOST_TEST(reply->element[4]->integer == 4);
    BOOST_TEST(reader.refused.empty());
}

BOOST_AUTO_TEST_CASE(an_array_of_every_target_is_within_bounds) {
    BoundedReader reader;
    bool ok = false;
    redisReply* reply = reader.read(array_of_integers(kStateTargets), ok);
    BOOST_TEST(ok);
    BOOST_REQUIRE(reply);
    BOOST_TEST(reply->elements == kStateTargets);
}

BOOST_AUTO_TEST_CASE(an_array_beyond_the_targets_is_refused_before_its_elements) {
    BoundedReader reader;
    bool ok = true;
    // Only the announcement: refused before any element is awaited or built.
    redisReply* reply = reader.read("*" + std::to_string(kStateTargets + 1) + "\r\n", ok);
    BOOST_TEST(!ok);
    BOOST_TEST(!reply);
    BOOST_TEST(reader.refused == "a reply announcing " + std::to_string(kStateTargets + 1) + " elements");
}

BOOST_AUTO_TEST_CASE(an_array_inside_an_array_is_refused) {
    BoundedReader reader;
    bool ok = true;
    BOOST_TEST(!reader.read("*2\r\n*1\r\n:1\r\n:2\r\n", ok));
    BOOST_TEST(!ok);
    BOOST_TEST(reader.refused == "a reply with an array inside an array");
}

BOOST_AUTO_TEST_CASE(a_string_beyond_4_KiB_is_refused_one_of_4_KiB_is_not) {
    BoundedReader fits;
    bool ok = false;
    redisReply* reply = fits.read("$4096\r\n" + std::string(4096, 'x') + "\r\n", ok);
    BOOST_TEST(ok);
    BOOST_REQUIRE(reply);
    BOOST_TEST(reply->len == 4096u);

    BoundedReader too_long;
    BOOST_TEST(!too_long.read("$4097\r\n" + std::string(4097, 'x') + "\r\n", ok));
    BOOST_TEST(!ok);
    BOOST_TEST(too_long.refused == "a reply with a string of 4097 bytes");
}

BOOST_AUTO_TEST_SUITE_END()

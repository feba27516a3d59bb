// The Redis edge's connection: made (AUTH, SELECT, the script loaded), one command at a
// time or pipelined, every reply read within the round's time and bounds, the connection
// closed and said once in the log when it fails.
#include "redis_sync.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "bounds.h"
#include "redis_internal.h"

namespace redis_internal {

namespace {

const int kTimeoutMs = 500;         // the longest a connection or one read may take
// The largest replies: five counts per key, one cooldown per target.
const int kMostElements = static_cast<int>(kStateTargets);
const size_t kLongestString = 4096;
const size_t kMostReplyBytes = 1 << 20;  // what the pipeline's replies may hold at once

// Replies are built by hiredis' own functions, within bounds: an array of at most
// kMostElements, none inside another, strings of at most kLongestString. A reply out of
// bounds is refused (hiredis then fails the connection, as out of memory; `privdata`
// says why). hiredis 0.14 (Debian 12) has no bound of its own on an array's length.
#if HIREDIS_MAJOR >= 1
using ElementCount = size_t;
#else
using ElementCount = int;
#endif

const redisReplyObjectFunctions* hiredis_functions = nullptr;  // set before any reply is read

void* refuse(const redisReadTask* task, const std::string& why) {
    if (task->privdata) *static_cast<std::string*>(task->privdata) = why;
    return nullptr;
}

void* bounded_array(const redisReadTask* task, ElementCount elements) {
    if (task->parent) return refuse(task, "a reply with an array inside an array");
    if (elements > static_cast<ElementCount>(kMostElements))
        return refuse(task, "a reply announcing " + std::to_string(elements) + " elements");
    return hiredis_functions->createArray(task, elements);
}

void* bounded_string(const redisReadTask* task, char* text, size_t length) {
    if (length > kLongestString) return refuse(task, "a reply with a string of " + std::to_string(length) + " bytes");
    return hiredis_functions->createString(task, text, length);
}

}  // namespace

void bound_replies(redisContext* redis, std::string* refused) {
    static const redisReplyObjectFunctions hiredis = *redis->reader->fn;
    static const redisReplyObjectFunctions bounded = [] {
        redisReplyObjectFunctions functions = hiredis;
        functions.createArray = bounded_array;
        functions.createString = bounded_string;
        return functions;
    }();
    hiredis_functions = &hiredis;
    redis->reader->fn = const_cast<redisReplyObjectFunctions*>(&bounded);
    redis->reader->privdata = refused;
}

int64_t steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

namespace {

// A command as hiredis takes it: each word binary-safe, with its length.
struct Argv {
    explicit Argv(const std::vector<std::string>& words) {
        for (const std::string& word : words) {
            argv.push_back(word.c_str());
            lengths.push_back(word.size());
        }
    }
    int count() const { return static_cast<int>(argv.size()); }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
};

}  // namespace

// A command for the pipeline. It fails only out of memory, which hiredis keeps in the
// context's error: the round's next read fails with it, and the connection is made anew.
void append(redisContext* redis, const std::vector<std::string>& words) {
    Argv command(words);
    redisAppendCommandArgv(redis, command.count(), command.argv.data(), command.lengths.data());
}

}  // namespace redis_internal

using namespace redis_internal;

bool RedisSync::connect() {
    const RedisAddress& address = config_.redis;
    timeval timeout = {0, kTimeoutMs * 1000};
    redis_ = address.unix_path.empty() ? redisConnectWithTimeout(address.host.c_str(), address.port, timeout)
                                       : redisConnectUnixWithTimeout(address.unix_path.c_str(), timeout);
    if (!redis_ || redis_->err) {
        went_down(redis_ ? redis_->errstr : "out of memory");
        return false;
    }
    bound_replies(redis_, &refused_);
    round_ends_ms_ = steady_ms() + kRoundMs;
    Reply auth, select, loaded;
    bool ready = redisSetTimeout(redis_, timeout) == REDIS_OK &&
                 (address.password.empty() || command({"AUTH", address.password}, auth.reply)) &&
                 (!address.db || command({"SELECT", std::to_string(address.db)}, select.reply)) &&
                 command({"SCRIPT", "LOAD", kShareScript}, loaded.reply) && loaded.reply->type == REDIS_REPLY_STRING &&
                 loaded.reply->len == 40 && std::strspn(loaded.reply->str, "0123456789abcdef") == 40;
    if (!ready) {
        went_down(redis_->err ? redis_->errstr : "AUTH, SELECT or SCRIPT LOAD refused");
        return false;
    }
    script_.assign(loaded.reply->str, 40);
    return true;
}

// One command, its reply read: false when the connection failed or Redis refused it.
bool RedisSync::command(const std::vector<std::string>& words, redisReply*& reply) {
    append(redis_, words);
    return read_reply(reply) && reply->type != REDIS_REPLY_ERROR;
}

// The next reply, as redisGetReply reads it, but within the round's time and the bytes a
// round's replies may hold; false when the connection failed, with its error set.
bool RedisSync::read_reply(redisReply*& reply) {
    void* read = nullptr;
    refused_.clear();
    int written = 0;
    bool ok = redisGetReplyFromReader(redis_, &read) == REDIS_OK;
    while (ok && !read && !written) ok = redisBufferWrite(redis_, &written) == REDIS_OK;
    while (ok && !read) {
        const char* why = stop_now_ ? "the proxy is stopping"
                          : steady_ms() > round_ends_ms_ ? "a round took too long"
                          : redis_->reader->len - redis_->reader->pos > kMostReplyBytes ? "replies beyond 1 MiB"
                                                                                          : nullptr;
        if (why) {
            redis_->err = REDIS_ERR_OTHER;
            std::snprintf(redis_->errstr, sizeof redis_->errstr, "%s", why);
            return false;
        }
        ok = redisBufferRead(redis_) == REDIS_OK && redisGetReplyFromReader(redis_, &read) == REDIS_OK;
    }
    if (!ok && !refused_.empty()) std::snprintf(redis_->errstr, sizeof redis_->errstr, "%s", refused_.c_str());
    reply = static_cast<redisReply*>(read);
    return ok;
}

void RedisSync::went_down(const std::string& why) {
    if (redis_) redisFree(redis_);
    redis_ = nullptr;
    if (down_) return;
    down_ = true;
    std::fprintf(stderr,
                 "azure-openai-proxy: warning: redis at %s unreachable (%s): per-key limits and cooldowns are this "
                 "host's until it answers\n",
                 config_.redis.shown.c_str(), why.c_str());
}


// The Redis edge (hiredis, blocking calls on its own thread, every reply checked).
#include "redis_sync.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "key_limits.h"
#include "routing.h"

namespace {

const int kSyncMs = 100;     // a round while Redis answers
const int kRetryMs = 1000;   // a new connection while it does not
const int kTimeoutMs = 500;  // the longest a connection or a round may take
const int64_t kMinuteMs = 60000;

// Keys: aop:k:<key>:<r|t>:<minute> (requests, tokens; expire after 3 minutes) and
// aop:cd:<target> (a cooldown's end in ms since the epoch; expires with it). Key and
// target names are plain words, checked when the configuration was read.
std::string counter(const std::string& key, const char* kind, int64_t minute) {
    return "aop:k:" + key + ":" + kind + ":" + std::to_string(minute);
}

long long number_of(const redisReply* reply) {
    if (!reply) return 0;
    if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
    if (reply->type == REDIS_REPLY_STRING) return std::strtoll(reply->str, nullptr, 10);
    return 0;  // nil: nothing counted
}

struct Reply {
    redisReply* reply = nullptr;
    ~Reply() {
        if (reply) freeReplyObject(reply);
    }
};

// Reads the next reply of a pipeline; false when the connection failed or Redis refused.
bool next_reply(redisContext* redis, Reply& out) {
    void* reply = nullptr;
    if (redisGetReply(redis, &reply) != REDIS_OK || !reply) return false;
    out.reply = static_cast<redisReply*>(reply);
    return out.reply->type != REDIS_REPLY_ERROR;
}

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

bool command_ok(redisContext* redis, const std::vector<std::string>& words) {
    Argv command(words);
    Reply reply;
    reply.reply = static_cast<redisReply*>(redisCommandArgv(redis, command.count(), command.argv.data(), command.lengths.data()));
    return reply.reply && reply.reply->type != REDIS_REPLY_ERROR;
}

// A command for the pipeline. It fails only out of memory, which hiredis keeps in the
// context's error: the round's next read fails with it, and the connection is made anew.
void append(redisContext* redis, const std::vector<std::string>& words) {
    Argv command(words);
    redisAppendCommandArgv(redis, command.count(), command.argv.data(), command.lengths.data());
}

// This host's counts since the last round: INCRBY and EXPIRE per counter; the number of
// commands appended.
size_t append_counts(redisContext* redis, const std::vector<KeyPending>& pending) {
    size_t writes = 0;
    for (const KeyPending& p : pending)
        for (auto [kind, window] : {std::pair<const char*, RateWindow>{"r", p.requests}, {"t", p.tokens}})
            for (int back = 0; back < 2; ++back) {
                long long amount = back ? window.previous : window.current;
                if (amount == 0) continue;
                std::string key = counter(p.name, kind, window.minute - back);
                append(redis, {"INCRBY", key, std::to_string(amount)});
                append(redis, {"EXPIRE", key, "180"});
                writes += 2;
            }
    return writes;
}

// Every limited key and every target of the table in force, used here yet or not.
void watched_names(const Config& config, std::vector<std::string>& keys, std::vector<std::string>& targets) {
    std::shared_ptr<const RoutingTable> table = config.routing ? config.routing->get() : nullptr;
    if (!table) return;
    for (const ClientKey& key : table->keys)
        if (counts_usage(key.limits)) keys.push_back(key.name);
    std::set<std::string> names;
    for (const auto& [model, model_targets] : table->models)
        for (const Target& target : model_targets)
            if (names.insert(target.name).second) targets.push_back(target.name);
}

// The replies to the MGETs of every host's counts, one per key, into the shared state.
bool read_key_counts(redisContext* redis, SharedState& state, const std::vector<std::string>& keys, int64_t minute,
                     int64_t now) {
    for (const std::string& key : keys) {
        Reply reply;
        if (!next_reply(redis, reply) || reply.reply->type != REDIS_REPLY_ARRAY || reply.reply->elements != 4)
            return false;
        redisReply** counts = reply.reply->element;
        state.apply_remote(key, {minute, number_of(counts[0]), number_of(counts[1])},
                           {minute, number_of(counts[2]), number_of(counts[3])}, now);
    }
    return true;
}

// The reply to the MGET of the targets' cooldowns: a later one there is taken here; a
// later one here is set there, to expire with it.
bool trade_cooldowns(redisContext* redis, SharedState& state, const std::vector<std::string>& targets, int64_t now) {
    std::map<std::string, int64_t> ours;
    for (const TargetView& view : state.targets()) ours[view.name] = view.health.cooldown_until_ms;
    Reply remote;
    if (!next_reply(redis, remote) || remote.reply->type != REDIS_REPLY_ARRAY || remote.reply->elements != targets.size())
        return false;
    size_t sets = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
        int64_t theirs = number_of(remote.reply->element[i]), mine = ours[targets[i]];
        if (theirs > mine) {
            state.merge_cooldown(targets[i], theirs);
        } else if (mine > now && mine > theirs) {
            append(redis, {"SET", "aop:cd:" + targets[i], std::to_string(mine), "PX", std::to_string(mine - now)});
            ++sets;
        }
    }
    for (size_t i = 0; i < sets; ++i) {
        Reply reply;
        if (!next_reply(redis, reply)) return false;
    }
    return true;
}

}  // namespace

RedisSync::RedisSync(const Config& config, SharedState& state) : config_(config), state_(state) {
    thread_ = std::thread([this] { run(); });
}

RedisSync::~RedisSync() {
    {
        std::lock_guard<std::mutex> hold(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (redis_) redisFree(redis_);
}

void RedisSync::run() {
    std::unique_lock<std::mutex> hold(mutex_);
    while (!stopping_) {
        hold.unlock();
        bool ok = (redis_ || connect()) && sync_once();
        if (!ok && redis_) went_down(redis_->err ? redis_->errstr : "it refused a command");
        if (ok && down_) {
            std::fprintf(stderr, "azure-openai-proxy: redis at %s answers again: limits and cooldowns are shared\n",
                         config_.redis.shown.c_str());
            down_ = false;
        }
        hold.lock();
        wake_.wait_for(hold, std::chrono::milliseconds(ok ? kSyncMs : kRetryMs), [this] { return stopping_; });
    }
}

bool RedisSync::connect() {
    const RedisAddress& address = config_.redis;
    timeval timeout = {0, kTimeoutMs * 1000};
    redis_ = address.unix_path.empty() ? redisConnectWithTimeout(address.host.c_str(), address.port, timeout)
                                       : redisConnectUnixWithTimeout(address.unix_path.c_str(), timeout);
    if (!redis_ || redis_->err) {
        went_down(redis_ ? redis_->errstr : "out of memory");
        return false;
    }
    if (redisSetTimeout(redis_, timeout) != REDIS_OK ||
        (!address.password.empty() && !command_ok(redis_, {"AUTH", address.password})) ||
        (address.db && !command_ok(redis_, {"SELECT", std::to_string(address.db)}))) {
        went_down(redis_->err ? redis_->errstr : "AUTH or SELECT refused");
        return false;
    }
    return true;
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

// One round, pipelined: add this host's counts, read every host's, trade cooldowns.
bool RedisSync::sync_once() {
    int64_t now = wall_clock_ms(), minute = now / kMinuteMs;
    std::vector<KeyPending> pending = state_.take_pending(now);
    size_t writes = append_counts(redis_, pending);
    std::vector<std::string> keys, targets;
    watched_names(config_, keys, targets);
    for (const std::string& key : keys)
        append(redis_, {"MGET", counter(key, "r", minute), counter(key, "r", minute - 1), counter(key, "t", minute),
                        counter(key, "t", minute - 1)});
    std::vector<std::string> cooldowns{"MGET"};
    for (const std::string& target : targets) cooldowns.push_back("aop:cd:" + target);
    if (!targets.empty()) append(redis_, cooldowns);

    bool ok = true;
    for (size_t i = 0; i < writes; ++i) {
        Reply reply;
        ok = next_reply(redis_, reply) && ok;
    }
    if (!ok) {
        state_.return_pending(pending, now);
        return false;
    }
    return read_key_counts(redis_, state_, keys, minute, now) &&
           (targets.empty() || trade_cooldowns(redis_, state_, targets, now));
}

// The Redis edge (hiredis, blocking calls on its own thread, every reply bounded and
// checked): the thread's schedule (a round every 100 ms, a failed connection retried after
// a doubling wait), which process of the host leads, and a round's steps (counts and shares
// taken, cooldowns traded). The connection is in redis_connection.cpp, a round's pure plan
// in redis_round.cpp.
// Tests: against a real Redis (tests/integration/redis.test.mjs); the pure parts in redis_round_test.cpp.
#include "redis_sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "key_limits.h"
#include "redis_internal.h"
#include "state_file.h"

using namespace redis_internal;

namespace {

const int kSyncMs = 100;            // a round while Redis answers
const int kFirstRetryMs = 250;      // a new connection after a failure; doubling up to
const int kLongestRetryMs = 2000;

}  // namespace

RedisSync::RedisSync(const Config& config, SharedState& state)
    : config_(config), state_(state), retry_ms_(kFirstRetryMs) {
    thread_ = std::thread([this] { run(); });
}

RedisSync::~RedisSync() {
    {
        std::lock_guard<std::mutex> hold(mutex_);
        stopping_ = true;
    }
    stop_now_ = true;
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (redis_) redisFree(redis_);
}

void RedisSync::run() {
    std::unique_lock<std::mutex> hold(mutex_);
    while (!stopping_) {
        hold.unlock();
        int wait_ms = kSyncMs;
        if (!lead() && redis_) {  // another process of the host took over: one connection a host
            redisFree(redis_);
            redis_ = nullptr;
        }
        if (leading_) {
            bool ok = (redis_ || connect()) && sync_once();
            if (!ok && redis_) went_down(redis_->err ? redis_->errstr : "it refused a command");
            if (ok && down_) {
                std::fprintf(stderr, "azure-openai-proxy: redis at %s answers again: limits and cooldowns are shared\n",
                             config_.redis.shown.c_str());
                down_ = false;
            }
            wait_ms = ok ? kSyncMs : retry_ms_;
            retry_ms_ = ok ? kFirstRetryMs : std::min(retry_ms_ * 2, kLongestRetryMs);
        }
        hold.lock();
        wake_.wait_for(hold, std::chrono::milliseconds(wait_ms), [this] { return stopping_; });
    }
}

// One process of the host talks to Redis: the one holding a write lock on the state
// file's first byte (an open file description's lock: it goes with the process, and
// another takes it at its next round). A private state, or a file that cannot be opened
// again: this process is a host of its own.
bool RedisSync::lead() {
    if (!state_.shared()) return leading_ = true;
    if (lock_.valid() && !same_file(state_file_path(config_), lock_.get())) {
        // The state file was rebuilt (a new file at the path): the lock on the old one
        // no longer says who leads; it is given up and taken, or not, on the new one.
        lock_.reset();
        leading_ = false;
    }
    if (leading_) return true;
    if (!lock_.valid()) {
        lock_.reset(::open(state_file_path(config_).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
        if (!lock_.valid()) return leading_ = true;
    }
    struct flock first_byte = {};
    first_byte.l_type = F_WRLCK;
    first_byte.l_whence = SEEK_SET;
    first_byte.l_len = 1;
    leading_ = fcntl(lock_.get(), F_OFD_SETLK, &first_byte) == 0;
    return leading_;
}

// One round, pipelined: per key, add this host's counts and take every host's and this
// host's share (one script each); then trade cooldowns.
bool RedisSync::sync_once() {
    int64_t now = wall_clock_ms();
    round_ends_ms_ = steady_ms() + kRoundMs;
    Watched watched = watched_names(config_);
    std::vector<KeyRound> keys = plan_keys(watched.keys, state_.take_pending(now), shares_);
    const std::string holder = holder_name(state_);
    for (const KeyRound& key : keys) append(redis_, script_call(script_, holder, key, now));
    std::vector<std::string> cooldowns{"MGET"};
    for (const std::string& target : watched.targets) cooldowns.push_back("aop:cd:" + target);
    if (!watched.targets.empty()) append(redis_, cooldowns);
    return take_shares(keys, now) &&
           (watched.targets.empty() || trade_cooldowns(watched.targets, watched.cooldown_cap_s, now));
}

// The scripts' replies, in order, into the shared state. When one fails, the counts of
// it and of the keys after it are given back, to be added at a later round.
bool RedisSync::take_shares(const std::vector<KeyRound>& keys, int64_t now) {
    int64_t minute = now / kMinuteMs;
    for (size_t i = 0; i < keys.size(); ++i) {
        const KeyRound& key = keys[i];
        Reply reply;
        long long values[5];
        bool ok = read_reply(reply.reply) && reply.reply->type == REDIS_REPLY_ARRAY && reply.reply->elements == 5;
        for (size_t v = 0; ok && v < 5; ++v) ok = integer_of(reply.reply->element[v], values[v]);
        if (!ok) {
            std::vector<KeyPending> unsent;
            for (size_t j = i; j < keys.size(); ++j) unsent.push_back(keys[j].counts);
            state_.return_pending(unsent, now);
            return false;
        }
        long long share = key.limit ? std::min<long long>(std::max(values[4], 0LL), key.limit) : -1;
        RateWindow requests{minute, shared_count(values[0]), shared_count(values[1])};
        RateWindow tokens{minute, shared_count(values[2]), shared_count(values[3])};
        state_.apply_remote(key.counts.name, window_with_share(requests, key.limit, share, now), tokens, now);
        if (key.limit) shares_[key.counts.name] = share;
        else shares_.erase(key.counts.name);
    }
    return true;
}

// The reply to the MGET of the targets' cooldowns: a later one there is taken here (at
// most cooldown_cap_seconds from now, and then written back so capped); a later one here
// is set there, to expire with it.
bool RedisSync::trade_cooldowns(const std::vector<std::string>& targets, long cap_s, int64_t now) {
    std::map<std::string, int64_t> ours;
    for (const TargetView& view : state_.targets()) ours[view.name] = view.health.cooldown_until_ms;
    Reply remote;
    if (!read_reply(remote.reply) || remote.reply->type != REDIS_REPLY_ARRAY || remote.reply->elements != targets.size())
        return false;
    const int64_t cap_ms = static_cast<int64_t>(cap_s) * 1000;
    size_t sets = 0;
    auto set = [&](const std::string& target, int64_t until) {
        append(redis_, {"SET", "aop:cd:" + target, std::to_string(until), "PX", std::to_string(until - now)});
        ++sets;
    };
    for (size_t i = 0; i < targets.size(); ++i) {
        long long theirs = 0;
        if (!integer_of(remote.reply->element[i], theirs) || theirs <= now) theirs = 0;  // none, or past
        bool beyond_cap = theirs - now > cap_ms;
        if (beyond_cap) theirs = now + cap_ms;
        int64_t mine = ours[targets[i]];
        if (theirs > mine) {
            state_.merge_cooldown(targets[i], theirs);
            if (beyond_cap) set(targets[i], theirs);
        } else if (mine > now && mine > theirs) {
            set(targets[i], mine);
        }
    }
    for (size_t i = 0; i < sets; ++i) {
        Reply reply;
        if (!read_reply(reply.reply)) return false;
    }
    return true;
}

// The Redis edge (hiredis, blocking calls on its own thread, every reply bounded and
// checked).
#include "redis_sync.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "bounds.h"
#include "key_limits.h"
#include "routing.h"
#include "state_file.h"

// A key's part of a round: what this host counted since the last, its requests limit
// (0: none), and the carry: what of the share in force here it may still use before the
// new one is in force (its admissions since the counts were taken).
struct KeyRound {
    KeyPending counts;
    long limit = 0;
    long long carry = 0;
};

namespace {

const int kSyncMs = 100;            // a round while Redis answers
const int kFirstRetryMs = 250;      // a new connection after a failure; doubling up to
const int kLongestRetryMs = 2000;
const int kTimeoutMs = 500;         // the longest a connection or one read may take
const int kRoundMs = 1500;          // the longest a round may take
const int64_t kMinuteMs = 60000;
// A host's share of a key stands this long in Redis: as long as the share's window stands
// in the host's shared state (3 s, shared_state.cpp), and a little more.
const int64_t kShareStandsMs = 3500;
// The largest replies: five counts per key, one cooldown per target.
const int kMostElements = static_cast<int>(kStateTargets);
const size_t kLongestString = 4096;
const size_t kMostReplyBytes = 1 << 20;  // what the pipeline's replies may hold at once

// Counters: aop:k:<key>:<r|t>:<minute> (requests, tokens; expire after 3 minutes); shares
// of a key's requests: the hash aop:k:<key>:shares (holder -> "share:until_ms"); a
// target's cooldown: aop:cd:<target> (its end in ms since the epoch; expires with it).
// Key and target names are plain words, checked when the configuration was read.
std::string counter(const std::string& key, const char* kind, int64_t minute) {
    return "aop:k:" + key + ":" + kind + ":" + std::to_string(minute);
}

// KEYS: requests this minute and the previous one, tokens the same, the shares.
// ARGV: holder, now (ms), the previous minute's weight, the requests limit (0: none), the
// carry (what of this host's last share it may still be using), then the counts to add
// (requests this minute, the previous one, tokens the same).
// Returns the four counts after adding and this host's share (-1: no limit).
const char* const kShareScript = R"lua(
local function add(key, amount)
  if amount ~= 0 then
    redis.call('INCRBY', key, amount)
    redis.call('EXPIRE', key, 180)
  end
end
for i = 1, 4 do add(KEYS[i], tonumber(ARGV[5 + i])) end
local function count(key) return math.max(tonumber(redis.call('GET', key)) or 0, 0) end
local r, rp, t, tp = count(KEYS[1]), count(KEYS[2]), count(KEYS[3]), count(KEYS[4])
local now, limit, carry = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
if limit <= 0 then return {r, rp, t, tp, -1} end
local hosts, held = 1, 0
local shares = redis.call('HGETALL', KEYS[5])
for i = 1, #shares, 2 do
  if shares[i] ~= ARGV[1] then
    local share, ends = string.match(shares[i + 1], '^(%d+):(%d+)$')
    if ends and tonumber(ends) > now then
      hosts = hosts + 1
      held = held + math.max(tonumber(share) - 1, 0)
    else
      redis.call('HDEL', KEYS[5], shares[i])
    end
  end
end
local left = limit - (r + math.floor(rp * tonumber(ARGV[3]))) - held
local share = 0
if left > 0 then share = math.min(left, math.ceil(left / hosts)) end
redis.call('HSET', KEYS[5], ARGV[1], math.max(share, carry) .. ':' .. (now + tonumber(ARGV[10])))
redis.call('PEXPIRE', KEYS[5], 2 * tonumber(ARGV[10]))
return {r, rp, t, tp, share}
)lua";

struct Reply {
    redisReply* reply = nullptr;
    ~Reply() {
        if (reply) freeReplyObject(reply);
    }
};

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

// A command for the pipeline. It fails only out of memory, which hiredis keeps in the
// context's error: the round's next read fails with it, and the connection is made anew.
void append(redisContext* redis, const std::vector<std::string>& words) {
    Argv command(words);
    redisAppendCommandArgv(redis, command.count(), command.argv.data(), command.lengths.data());
}

// An integer as Redis keeps one (as a reply, or a string of an optional '-' and digits);
// false for anything else, or beyond a long long.
bool integer_of(const redisReply* reply, long long& out) {
    if (reply->type == REDIS_REPLY_INTEGER) {
        out = reply->integer;
        return true;
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0 || reply->len > 20) return false;
    size_t sign = reply->str[0] == '-';
    if (reply->len == sign || std::strspn(reply->str + sign, "0123456789") != reply->len - sign) return false;
    errno = 0;
    out = std::strtoll(reply->str, nullptr, 10);
    return errno == 0;
}

// Every limited key and every target of the table in force, used here yet or not, and
// the longest cooldown the table allows.
struct Watched {
    std::map<std::string, long> keys;  // name -> requests per minute (0: none)
    std::vector<std::string> targets;
    long cooldown_cap_s = 0;
};

Watched watched_names(const Config& config) {
    Watched watched;
    std::shared_ptr<const RoutingTable> table = config.routing ? config.routing->get() : nullptr;
    if (!table) return watched;
    for (const ClientKey& key : table->keys)
        if (counts_usage(key.limits)) watched.keys[key.name] = key.limits.requests_per_minute;
    std::set<std::string> names;
    for (const auto& [model, model_targets] : table->models)
        for (const Target& target : model_targets)
            if (names.insert(target.name).second) watched.targets.push_back(target.name);
    watched.cooldown_cap_s = table->retry.cooldown_cap_s;
    return watched;
}

// Every watched key, and every other with counts to add.
std::vector<KeyRound> plan_keys(const std::map<std::string, long>& watched, std::vector<KeyPending> pending,
                                const std::map<std::string, long long>& shares) {
    std::vector<KeyRound> keys;
    std::set<std::string> planned;
    for (KeyPending& counts : pending) {
        auto limit = watched.find(counts.name);
        bool counted = counts.requests.current || counts.requests.previous || counts.tokens.current ||
                       counts.tokens.previous;
        if (limit == watched.end() && !counted) continue;
        KeyRound key{std::move(counts), limit == watched.end() ? 0 : limit->second, 0};
        auto share = shares.find(key.counts.name);
        long long taken = saturating_add(key.counts.requests.current, key.counts.requests.previous);
        if (key.limit && share != shares.end()) key.carry = std::max(0LL, saturating_sub(share->second, taken));
        planned.insert(key.counts.name);
        keys.push_back(std::move(key));
    }
    for (const auto& [name, limit] : watched)
        if (!planned.count(name)) keys.push_back({KeyPending{name, {}, {}}, limit, 0});
    return keys;
}

std::vector<std::string> script_call(const std::string& script, const std::string& holder, const KeyRound& key,
                                     int64_t now) {
    int64_t minute = now / kMinuteMs;
    const std::string& name = key.counts.name;
    // The counts were rolled to this minute when taken; what a minute before is "previous".
    const RateWindow& r = key.counts.requests;
    const RateWindow& t = key.counts.tokens;
    char weight[32];
    std::snprintf(weight, sizeof weight, "%.17g", previous_minute_weight(now));
    return {"EVALSHA", script, "5", counter(name, "r", minute), counter(name, "r", minute - 1),
            counter(name, "t", minute), counter(name, "t", minute - 1), "aop:k:" + name + ":shares",
            holder, std::to_string(now), weight, std::to_string(key.limit), std::to_string(key.carry),
            std::to_string(r.current), std::to_string(r.previous), std::to_string(t.current),
            std::to_string(t.previous), std::to_string(kShareStandsMs)};
}

// The name this host holds shares under: the shared state's, so that when another process
// of the host takes over the talking to Redis, the share it finds is its own host's, not
// another host's to wait out.
std::string holder_name(SharedState& state) {
    char name[24];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(state.host_id()));
    return name;
}

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

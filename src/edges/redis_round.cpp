// A round's pure part for the Redis edge: which keys a round carries and with what, the
// Lua script that takes a host's share and its call per key, the integers read from
// replies. No connection, no clock: the caller gives the time.
#include "redis_internal.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "key_limits.h"
#include "routing.h"

namespace redis_internal {

namespace {

// A host's share of a key stands this long in Redis: as long as the share's window stands
// in the host's shared state (3 s, shared_state.cpp), and a little more.
const int64_t kShareStandsMs = 3500;

}  // namespace

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

}  // namespace redis_internal

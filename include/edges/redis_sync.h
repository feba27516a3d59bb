// Sharing across hosts (AZURE_OPENAI_PROXY_REDIS_URL): a thread per process; in one
// process of each host (the one holding a lock on the state file), every 100 ms it adds
// what this host's keys counted to per-minute counters in Redis, reads every host's totals
// back into the shared state (where admissions use them), and trades targets' cooldowns
// both ways. Requests never wait for Redis: when it is down, limits and cooldowns are this
// host's, said once in the log, until it answers again.
//
// A key's requests per minute are shared out: in each round a host is given a share of
// what the key has left (left = limit - every host's count - the other hosts' shares, each
// but one request of it; its share: left / hosts, rounded up), taken in Redis atomically
// with its counts (one Lua script per key), and between rounds it admits only that
// share. So H hosts together admit at most limit + H - 1 requests in a sliding minute
// (each share but one is reserved), plus, per host, what the previous minute's count
// frees while a round lasts. A host that stops answering keeps its share 3.5 s, then it
// goes back to the others. Tokens per minute are summed as before: each host checks
// every host's counts.
//
// Every reply is bounded (its size, its array's length, its nesting) and every value
// checked: a count outside [0, 2^40] is clamped, a cooldown not a number or past is
// ignored, one beyond the routing file's cooldown_cap_seconds is capped (and written back
// capped). A reply out of bounds or malformed is a broken connection: closed, said once,
// made again after 250 ms, doubling to 2 s.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "config.h"
#include "shared_state.h"
#include "unique_fd.h"

struct redisContext;
struct redisReply;
struct KeyRound;

class RedisSync {
public:
    RedisSync(const Config& config, SharedState& state);
    ~RedisSync();  // stops the thread
    RedisSync(const RedisSync&) = delete;
    RedisSync& operator=(const RedisSync&) = delete;

private:
    void run();
    bool lead();
    bool connect();
    bool command(const std::vector<std::string>& words, redisReply*& reply);
    bool sync_once();
    bool read_reply(redisReply*& reply);
    bool take_shares(const std::vector<KeyRound>& keys, int64_t now);
    bool trade_cooldowns(const std::vector<std::string>& targets, long cap_s, int64_t now);
    void went_down(const std::string& why);

    const Config& config_;
    SharedState& state_;
    redisContext* redis_ = nullptr;
    std::string script_;            // the script's SHA1, as Redis gave it at connection
    std::map<std::string, long long> shares_;  // per key: the share in force here
    UniqueFd lock_;                 // the state file, for the lock on its first byte
    bool leading_ = false;          // this process talks to Redis for the host
    bool down_ = false;             // said so in the log; said again when it is back
    int retry_ms_ = 0;              // the wait before the next connection
    int64_t round_ends_ms_ = 0;     // when a round that has not finished is given up
    std::string refused_;           // why the reader refused a reply (its bounds say)
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::atomic<bool> stop_now_{false};  // read by a round in progress, without the mutex
    std::thread thread_;
};

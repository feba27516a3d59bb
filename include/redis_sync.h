// Sharing across hosts (AZURE_OPENAI_PROXY_REDIS_URL): a thread per process that, every
// 100 ms, adds what this host's keys counted to per-minute counters in Redis, reads every
// host's totals back into the shared state (where admissions use them), and trades
// targets' cooldowns both ways. Requests never wait for Redis: when it is down, limits and
// cooldowns are this host's, said once in the log, until it answers again.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "config.h"
#include "shared_state.h"

struct redisContext;

class RedisSync {
public:
    RedisSync(const Config& config, SharedState& state);
    ~RedisSync();  // stops the thread
    RedisSync(const RedisSync&) = delete;
    RedisSync& operator=(const RedisSync&) = delete;

private:
    void run();
    bool connect();
    bool sync_once();
    void went_down(const std::string& why);

    const Config& config_;
    SharedState& state_;
    redisContext* redis_ = nullptr;
    bool down_ = false;  // said so in the log; said again when it is back
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

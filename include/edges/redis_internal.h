// What the Redis edge's files share, and nothing else may use: redis_sync.cpp (the
// thread, who leads, a round's steps), redis_connection.cpp (the connection, its commands
// and its bounded replies), redis_round.cpp (a round's plan, the script and its calls, the
// integers in replies: pure, no connection).
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "shared_state.h"

// A key's part of a round: what this host counted since the last, its requests limit
// (0: none), and the carry: what of the share in force here it may still use before the
// new one is in force (its admissions since the counts were taken).
struct KeyRound {
    KeyPending counts;
    long limit = 0;
    long long carry = 0;
};

namespace redis_internal {

const int kRoundMs = 1500;          // the longest a round may take
const int64_t kMinuteMs = 60000;

// The script that adds a key's counts and takes this host's share (redis_round.cpp).
extern const char* const kShareScript;

struct Reply {
    redisReply* reply = nullptr;
    ~Reply() {
        if (reply) freeReplyObject(reply);
    }
};

// ---- redis_connection.cpp ----

// Replies built within bounds (an array of at most a state's targets, none inside another,
// strings of at most 4 KiB); why one was refused goes to `refused`.
void bound_replies(redisContext* redis, std::string* refused);
int64_t steady_ms();
// A command for the pipeline (its failure, out of memory, fails the next read).
void append(redisContext* redis, const std::vector<std::string>& words);

// ---- redis_round.cpp ----

// Counters: aop:k:<key>:<r|t>:<minute>.
std::string counter(const std::string& key, const char* kind, int64_t minute);
// An integer as Redis keeps one (as a reply, or a string of an optional '-' and digits);
// false for anything else, or beyond a long long.
bool integer_of(const redisReply* reply, long long& out);

// Every limited key and every target of the table in force, used here yet or not, and
// the longest cooldown the table allows.
struct Watched {
    std::map<std::string, long> keys;  // name -> requests per minute (0: none)
    std::vector<std::string> targets;
    long cooldown_cap_s = 0;
};

Watched watched_names(const Config& config);

// Every watched key, and every other with counts to add.
std::vector<KeyRound> plan_keys(const std::map<std::string, long>& watched, std::vector<KeyPending> pending,
                                const std::map<std::string, long long>& shares);
// The EVALSHA of the share script for one key at `now` (ms since the epoch).
std::vector<std::string> script_call(const std::string& script, const std::string& holder, const KeyRound& key,
                                     int64_t now);
std::string holder_name(SharedState& state);

}  // namespace redis_internal

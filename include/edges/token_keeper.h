// The Entra ID tokens the process holds: one keeper per credential, fetching its token
// before the first request needs it and renewing it in the background, so that no request
// waits for Entra but those that arrive before the first token.
//
// One token per identity for the host: with a shared state file, the keepers of every
// process share the identity's row (shared_state_tokens.cpp) and only the one holding its
// lease asks Entra; the others take its token from the row. Without one (state file
// "none", or the row table full), each process asks for its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "credential.h"
#include "event_loop.h"
#include "shared_state.h"

enum class TokenState {
    Ready,    // `authorization` holds the header line
    Pending,  // the first token is on its way: wait (TokenKeeper::when_settled)
    Failed,   // no usable token and the last request failed: `error` says why
};

struct TokenReading {
    TokenState state = TokenState::Pending;
    std::string authorization;  // "Authorization: Bearer ..."
    std::string error;          // for the log: the source and Entra's words (AADSTS...); no secret
};

class TokenKeeper;

// A request waiting for the first token; destroying it (its exchange ended) cancels the
// call: the keeper forgets it, and a call already posted to the loop does nothing. Made
// and destroyed on the waiting loop's thread.
class TokenWait {
public:
    TokenWait() = default;
    TokenWait(TokenKeeper* keeper, std::shared_ptr<bool> live) : keeper_(keeper), live_(std::move(live)) {}
    ~TokenWait() { cancel(); }
    TokenWait(TokenWait&& other) noexcept : keeper_(other.keeper_), live_(std::move(other.live_)) {}
    TokenWait& operator=(TokenWait&& other) noexcept {
        cancel();
        keeper_ = other.keeper_;
        live_ = std::move(other.live_);
        return *this;
    }
    TokenWait(const TokenWait&) = delete;
    bool active() const { return live_ != nullptr; }
    TokenWait& operator=(const TokenWait&) = delete;

private:
    void cancel();
    TokenKeeper* keeper_ = nullptr;
    std::shared_ptr<bool> live_;
};

// Why a thread of its own rather than a transfer in a loop's multi: the process has
// several loops and the token belongs to none of them; a thread that sleeps until the
// renewal is due costs nothing between renewals, a blocking libcurl call there cannot stall
// a loop, and requests meet it only under a mutex for the copy of a header line.
class TokenKeeper {
public:
    // `state`: the host's shared state (nullptr: this process's token alone); it outlives
    // the keeper (stop_token_keepers()).
    TokenKeeper(const CredentialSettings& credential, const ProcessSettings& transport, SharedState* state);
    ~TokenKeeper();
    TokenKeeper(const TokenKeeper&) = delete;
    TokenKeeper& operator=(const TokenKeeper&) = delete;

    // The token now, without waiting; thread-safe.
    TokenReading read();
    // `done` runs on `loop`'s thread once the token request under way has settled (got a
    // token or failed), unless the TokenWait was destroyed before.
    TokenWait when_settled(EventLoop& loop, std::function<void()> done);
    // The same for a loop of another kind (the realtime companion's Asio loop): `post` hands
    // it work from the keeper's thread.
    using Poster = std::function<void(std::function<void()>)>;
    TokenWait when_settled(Poster post, std::function<void()> done);

    // Azure refused `rejected_authorization`: unless the token was renewed since (or was
    // renewed for a refusal less than 5 s ago), it is dropped, here and in the host's row,
    // and the next request waits for a new one.
    void renew(const std::string& rejected_authorization);

    // Token requests made so far (successful or not), for tests and logs.
    long requests() const;

private:
    friend class TokenWait;
    void forget(const bool* live);
    struct Waiter {
        Poster post;
        std::function<void()> done;
        std::shared_ptr<bool> live;
    };
    void run();
    int64_t turn_alone();
    int64_t turn_shared();
    void settle(const TokenAnswer& answer, int64_t now_ms);
    // `turn`: the thread's own look (a reader's look does not end the first turn).
    void adopt(const SharedToken& row, bool turn = false);
    bool usable_now();
    void release_waiters();  // the caller holds mutex_

    const CredentialSettings credential_;
    const ProcessSettings transport_;
    const std::string source_;  // "client-secret, tenant ..., client ..." for the log
    const std::string identity_;  // its row in the shared state (token_identity)
    SharedState* const state_;
    std::atomic<bool> shared_;    // the row is used (false: no state, or no room in it)

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<bool> stopping_{false};
    std::string authorization_;
    int64_t expires_at_ms_ = 0;
    int failures_ = 0;  // in a row
    // The thread's first turn has settled (asked Entra, or taken the row's word): until then
    // a reader without a token waits for it rather than failing on the row's failures, so
    // a plain CGI call, a process of its own, tries once itself.
    bool turned_ = false;
    std::string last_error_;
    long requests_ = 0;
    std::vector<Waiter> waiters_;
    bool asked_ = false;
    int64_t renewed_for_refusal_ms_ = 0;  // a waiter came since the thread's last turn: it looks now
    std::thread thread_;  // last: started once everything above exists
};

// The process's keeper of `credential` (one per distinct identity and scope), started the
// first time it is asked for; it lives until stop_token_keepers(). `state`: as the
// constructor's, taken by the first call.
TokenKeeper& token_keeper_for(const CredentialSettings& credential, const ProcessSettings& transport,
                              SharedState* state);
// Stops every keeper (their threads joined), before the shared state they use goes.
void stop_token_keepers();

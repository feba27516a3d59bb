// The token keeper's thread: one token request at a time (token_fetch.h), the token held
// under a mutex, renewed when due; with a shared state, the host's row of the identity
// decides which process asks, and the others take its token.
// Tests: tests/integration/entra-credentials.test.mjs (through lighttpd, against the Entra
// stand-in); the request, answer and schedule it follows: credential_test.cpp; the row:
// shared_state_tokens_test.cpp.
#include "token_keeper.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "text.h"
#include "token_fetch.h"

namespace {

// While another process asks Entra, this one looks at the row this often for its answer.
const int64_t kLookAgainMs = 100;
// A process renews a token Azure refused at most this often.
const int64_t kRefusedAgainMs = 5000;

int64_t wall_now_ms() { return wall_clock_ms(); }

}  // namespace

TokenKeeper::TokenKeeper(const CredentialSettings& credential, const ProcessSettings& transport, SharedState* state)
    : credential_(credential), transport_(transport), source_(describe_credential(credential)),
      identity_(token_identity(credential)), state_(state), shared_(state != nullptr), thread_([this] { run(); }) {}

TokenKeeper::~TokenKeeper() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// Without a usable token of its own, a look at the host's row first: another process may
// have obtained one since this keeper's last turn (after an outage, the first to succeed).
TokenReading TokenKeeper::read() {
    if (shared_ && !usable_now()) adopt(state_->token_turn(identity_, wall_now_ms(), 0));
    TokenReading reading;
    std::lock_guard<std::mutex> lock(mutex_);
    if (token_usable(expires_at_ms_, wall_now_ms())) {
        reading.state = TokenState::Ready;
        reading.authorization = authorization_;
    } else if (failures_ > 0 && turned_) {
        reading.state = TokenState::Failed;
        reading.error = "Entra ID token (" + source_ + "): " + last_error_;
    }
    return reading;
}

bool TokenKeeper::usable_now() {
    std::lock_guard<std::mutex> lock(mutex_);
    return token_usable(expires_at_ms_, wall_now_ms());
}

TokenWait TokenKeeper::when_settled(EventLoop& loop, std::function<void()> done) {
    return when_settled([&loop](std::function<void()> work) { loop.post(std::move(work)); }, std::move(done));
}

TokenWait TokenKeeper::when_settled(Poster post, std::function<void()> done) {
    auto live = std::make_shared<bool>(true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        waiters_.push_back({std::move(post), std::move(done), live});
        asked_ = true;
        // Settled since the reader looked (the thread's turn ended in between): told now,
        // not at the next turn.
        if (token_usable(expires_at_ms_, wall_now_ms()) || (turned_ && failures_ > 0)) release_waiters();
    }
    wake_.notify_all();  // a token that expired unseen (a suspended host) is fetched now
    return TokenWait(this, live);
}

void TokenKeeper::forget(const bool* live) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it)
        if (it->live.get() == live) {
            waiters_.erase(it);
            return;
        }
}

void TokenWait::cancel() {
    if (!live_) return;
    *live_ = false;
    keeper_->forget(live_.get());
    live_.reset();
}

// The host's row drops it too: the next renewal goes through the lease like any other. A
// token renewed for a refusal and refused again soon after (one for another audience, a
// role not granted yet) is kept: another renewal would not help, and every request would
// cost a token request.
void TokenKeeper::renew(const std::string& rejected_authorization) {
    int64_t now_ms = wall_now_ms();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (authorization_ != rejected_authorization) return;  // renewed since
        if (renewed_for_refusal_ms_ != 0 && now_ms - renewed_for_refusal_ms_ < kRefusedAgainMs) return;
        renewed_for_refusal_ms_ = now_ms;
    }
    // The row first: a reader here that finds no token looks at the row, and must not
    // take the refused one back from it.
    if (shared_) state_->token_refused(identity_, rejected_authorization);
    std::lock_guard<std::mutex> lock(mutex_);
    if (authorization_ == rejected_authorization)
        expires_at_ms_ = 0;  // not usable: the next reader waits, and its wait wakes the thread
}

long TokenKeeper::requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

// Takes a token or counts a failure, then hands the waiting requests back to their loops,
// still under the lock: once TokenWait::cancel has made the keeper forget a waiter, nothing
// is posted to its loop.
void TokenKeeper::settle(const TokenAnswer& answer, int64_t now_ms) {
    if (state_) count_token_request(*state_, credential_, answer);
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_;
    turned_ = true;
    if (answer.ok) {
        if (failures_ > 0 || expires_at_ms_ == 0)
            std::fprintf(stderr, "azure-openai-proxy: Entra ID token (%s) obtained, valid %lld s\n", source_.c_str(),
                         static_cast<long long>((answer.expires_at_ms - now_ms) / 1000));
        authorization_ = "Authorization: Bearer " + answer.access_token;
        expires_at_ms_ = answer.expires_at_ms;
        failures_ = 0;
    } else {
        ++failures_;
        last_error_ = answer.error;
        std::fprintf(stderr, "azure-openai-proxy: Entra ID token (%s): %s; try %d failed, next in %lld ms\n",
                     source_.c_str(), answer.error.c_str(), failures_,
                     static_cast<long long>(token_retry_delay_ms(failures_, token_usable_for_ms(expires_at_ms_, now_ms))));
    }
    release_waiters();
}

void TokenKeeper::release_waiters() {
    std::vector<Waiter> waiting;
    waiting.swap(waiters_);
    for (Waiter& waiter : waiting) {
        std::function<void()> done = std::move(waiter.done);
        std::shared_ptr<bool> live = std::move(waiter.live);
        waiter.post([done = std::move(done), live = std::move(live)] {
            if (*live) done();
        });
    }
}

// The token another process put in the host's row (or its failure), taken as this
// process's; the waiting requests go on once there is a token or a failure to tell.
void TokenKeeper::adopt(const SharedToken& row, bool turn) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (turn) turned_ = true;
    int64_t now_ms = wall_now_ms();
    if (!row.authorization.empty() && token_usable(row.expires_at_ms, now_ms) &&
        (row.authorization != authorization_ || row.expires_at_ms > expires_at_ms_)) {
        authorization_ = row.authorization;
        expires_at_ms_ = row.expires_at_ms;
    }
    bool usable = token_usable(expires_at_ms_, now_ms);
    failures_ = usable ? 0 : row.failures;
    if (row.failures > 0) last_error_ = row.error;
    if (usable || failures_ > 0) release_waiters();
}

// Asks Entra; the next turn's time.
int64_t TokenKeeper::turn_alone() {
    TokenAnswer answer = fetch_token(credential_, transport_, stopping_);
    int64_t now_ms = wall_now_ms();
    if (!answer.ok && stopping_) return now_ms;  // cut by the process's end: not a failure
    settle(answer, now_ms);
    std::lock_guard<std::mutex> lock(mutex_);
    return answer.ok ? renewal_due_ms(now_ms, answer)
                     : now_ms + token_retry_delay_ms(failures_, token_usable_for_ms(expires_at_ms_, now_ms));
}

// The lease holder asks Entra and leaves the result in the row; the others take the row's
// token, and look again when it is due, when the lease holder should be done, or when a
// failure's retry is.
int64_t TokenKeeper::turn_shared() {
    int64_t now_ms = wall_now_ms();
    SharedToken row = state_->token_turn(identity_, now_ms, kTokenLeaseMs);
    if (!row.stored) {  // no room in the table: this process keeps its own token
        shared_ = false;
        return turn_alone();
    }
    if (!row.lease) {
        adopt(row, true);
        if (row.lease_until_ms > now_ms) return std::min(row.lease_until_ms, now_ms + kLookAgainMs);
        return std::max(row.retry_at_ms, row.renew_at_ms);
    }
    TokenAnswer answer = fetch_token(credential_, transport_, stopping_);
    now_ms = wall_now_ms();
    if (!answer.ok && stopping_) {  // cut by the process's end (a CGI call answered): the next process asks
        state_->token_abandoned(identity_);
        return now_ms;
    }
    int64_t next_ms = answer.ok ? renewal_due_ms(now_ms, answer)
                                : now_ms + token_retry_delay_ms(row.failures + 1, token_usable_for_ms(row.expires_at_ms, now_ms));
    if (answer.ok && !state_->token_obtained(identity_, "Authorization: Bearer " + answer.access_token,
                                             answer.expires_at_ms, next_ms))
        shared_ = false;  // too long for the row: this process's alone
    if (!answer.ok) state_->token_failed(identity_, answer.error, next_ms, definitive_refusal(answer));
    settle(answer, now_ms);
    return next_ms;
}

// Takes its turn, then sleeps until the next is due; a waiter arriving with no usable
// token wakes it early.
void TokenKeeper::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        asked_ = false;
        lock.unlock();
        int64_t due_ms = shared_ ? turn_shared() : turn_alone();
        lock.lock();
        auto due = std::chrono::system_clock::time_point(std::chrono::milliseconds(due_ms));
        wake_.wait_until(lock, due, [&] {
            bool needed = asked_ && !waiters_.empty() && failures_ == 0 && !token_usable(expires_at_ms_, wall_now_ms());
            return stopping_ || needed;
        });
    }
}

namespace {

std::mutex keepers_mutex;
std::map<std::string, std::unique_ptr<TokenKeeper>> keepers;

}  // namespace

TokenKeeper& token_keeper_for(const CredentialSettings& credential, const ProcessSettings& transport,
                              SharedState* state) {
    std::string identity = token_identity(credential);
    std::lock_guard<std::mutex> lock(keepers_mutex);
    std::unique_ptr<TokenKeeper>& keeper = keepers[identity];
    if (!keeper) keeper = std::make_unique<TokenKeeper>(credential, transport, state);
    return *keeper;
}

void stop_token_keepers() {
    std::map<std::string, std::unique_ptr<TokenKeeper>> stopping;
    {
        std::lock_guard<std::mutex> lock(keepers_mutex);
        stopping.swap(keepers);
    }
    stopping.clear();  // each keeper's thread joined
}

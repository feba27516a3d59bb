// The endpoint's own Entra ID token on a try: "Authorization: Bearer" from the process's
// token keeper; a request that arrives before the first token waits for it (without
// holding its loop), and one that finds no token answers 503 upstream_auth_failed.
// One of the steps of class Exchange (exchange.h); tests: tests/integration/entra-credentials.test.mjs.
#include "exchange.h"

#include "token_keeper.h"

void Exchange::start_with_token(const UpstreamRequest& request, RequestBody body) {
    TokenKeeper& keeper = token_keeper_for(*request.credential, config_, &services_->state);
    TokenReading token = keeper.read();
    if (token.state == TokenState::Pending && !token_waited_) {
        // The first token is on its way: this request goes when it is settled, whichever
        // way. The copy of the request lives in the call, which the exchange's end cancels.
        token_wait_ = keeper.when_settled(services_->loop, [this, request, body] {
            token_wait_ = TokenWait();
            if (finished()) return;
            token_waited_ = true;
            start_upstream(request, body);
            finish_unless_started();
        });
        return;
    }
    if (token.state != TokenState::Ready) {
        log_.error = token.error.empty() ? "Entra ID token: still none after the first request settled" : token.error;
        log_.outcome = "upstream-auth-failed";
        settle_try(TryResult::Abandoned, -1);
        writer_.error(errors::upstream_auth_failed());
        return;
    }
    if (!token_renewed_) {
        token_try_.emplace(request, body);
        token_sent_ = token.authorization;
    }
    UpstreamRequest authorized = request;
    authorized.credential = nullptr;
    authorized.headers.push_back(token.authorization);
    start_upstream(std::move(authorized), body);
}

// Azure said 401 to a token the keeper believed valid (revoked, or a clock behind): before
// the client heard anything, the keeper renews it (unless another request did already) and
// on_done sends the try again, once. Any other head: the copy of the try is not needed.
bool Exchange::refuse_rejected_token(long status) {
    if (status != 401 || !token_try_ || token_renewed_ || writer_.head_sent()) {
        token_try_.reset();
        return false;
    }
    token_renewed_ = token_rejected_ = true;
    token_keeper_for(*token_try_->first.credential, config_, &services_->state).renew(token_sent_);
    log_.error = "Azure refused the Entra ID token (401): renewed, the request sent again";
    return true;
}

void Exchange::resend_with_new_token() {
    token_rejected_ = false;
    token_waited_ = false;  // the renewal is waited for like the first token
    transfer_.reset();
    start_upstream(token_try_->first, token_try_->second);
    finish_unless_started();
}

void Exchange::finish_unless_started() {
    if (!transfer_ && !token_wait_.active()) finish();
}

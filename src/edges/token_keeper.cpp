// The token keeper's thread: one token request at a time with libcurl (the upstream's CA
// certificates and outbound proxy), the token held under a mutex, renewed when due.
// Tests: tests/integration/entra-credentials.test.mjs (through lighttpd, against the Entra
// stand-in); the request, answer and schedule it follows: credential_test.cpp.
#include "token_keeper.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "text.h"
#include "upstream.h"

namespace {

const size_t kLongestTokenAnswer = 1 << 20;  // a token answer is a few KiB
const long kTokenRequestTimeoutS = 30;

int64_t wall_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct EasyHandle {
    CURL* easy = curl_easy_init();
    ~EasyHandle() {
        if (easy) curl_easy_cleanup(easy);
    }
};

struct HeaderLines {
    curl_slist* list = nullptr;
    ~HeaderLines() { curl_slist_free_all(list); }
    bool add(const std::string& line) {
        curl_slist* grown = curl_slist_append(list, line.c_str());
        if (grown) list = grown;
        return grown != nullptr;
    }
};

size_t collect_answer(char* data, size_t size, size_t count, void* out) {
    auto* body = static_cast<std::string*>(out);
    size_t length = size * count;
    if (body->size() + length > kLongestTokenAnswer) return 0;  // libcurl fails the transfer
    body->append(data, length);
    return length;
}

bool read_whole_file(const std::string& path, std::string& content) {
    std::ifstream in(path);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf())) return false;
    content = text.str();
    return true;
}

// Aborts a token request under way when the process stops.
int stop_when_asked(void* stopping, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(stopping)->load() ? 1 : 0;
}

// One token request, sent and read; the error never holds the request (its secret).
TokenAnswer send_token_request(const TokenRequest& request, const ProcessSettings& transport,
                               const std::atomic<bool>& stopping) {
    TokenAnswer failed;
    EasyHandle handle;
    HeaderLines headers;
    for (const std::string& line : request.headers)
        if (!headers.add(line)) failed.error = "out of memory for the token request's headers";
    if (!handle.easy || !failed.error.empty()) {
        if (failed.error.empty()) failed.error = "libcurl cannot make a handle for the token request";
        return failed;
    }
    std::string body;
    char detail[CURL_ERROR_SIZE] = {};
    CURL* easy = handle.easy;
    CURLcode set = set_outbound_route(easy, transport);
    const CURLcode options[] = {
        curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()),
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.list),
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, transport.connect_timeout_s),
        curl_easy_setopt(easy, CURLOPT_TIMEOUT, kTokenRequestTimeoutS),
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, detail),
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_answer),
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body),
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L),
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, stop_when_asked),
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &stopping),
        request.method == "POST" ? curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str())
                                 : curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L),
    };
    for (CURLcode option : options)
        if (set == CURLE_OK) set = option;
    if (set != CURLE_OK) {
        failed.error = std::string("libcurl refused an option of the token request: ") + curl_easy_strerror(set);
        return failed;
    }
    CURLcode done = curl_easy_perform(easy);
    if (done != CURLE_OK) {
        failed.error = std::string("the token endpoint could not be reached: ") +
                       (detail[0] ? detail : curl_easy_strerror(done));
        return failed;
    }
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return read_token_answer(status, body, wall_now_ms());
}

}  // namespace

TokenKeeper::TokenKeeper(const CredentialSettings& credential, const ProcessSettings& transport)
    : credential_(credential), transport_(transport), source_(describe_credential(credential)),
      thread_([this] { run(); }) {}

TokenKeeper::~TokenKeeper() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

TokenReading TokenKeeper::read() {
    TokenReading reading;
    std::lock_guard<std::mutex> lock(mutex_);
    if (token_usable(expires_at_ms_, wall_now_ms())) {
        reading.state = TokenState::Ready;
        reading.authorization = authorization_;
    } else if (failures_ > 0) {
        reading.state = TokenState::Failed;
        reading.error = "Entra ID token (" + source_ + "): " + last_error_;
    }
    return reading;
}

TokenWait TokenKeeper::when_settled(EventLoop& loop, std::function<void()> done) {
    auto live = std::make_shared<bool>(true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        waiters_.push_back({&loop, std::move(done), live});
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

void TokenKeeper::renew(const std::string& rejected_authorization) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (authorization_ != rejected_authorization) return;
    expires_at_ms_ = 0;  // not usable: the next reader waits, and its wait wakes the thread
}

long TokenKeeper::requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

// The federated token file is read for every request: the cluster rotates it.
TokenAnswer TokenKeeper::fetch_once() {
    std::string federated_token;
    if (credential_.source == CredentialSource::WorkloadIdentity &&
        !read_whole_file(credential_.federated_token_file, federated_token)) {
        TokenAnswer failed;
        failed.error = "AZURE_FEDERATED_TOKEN_FILE: cannot read '" + log_safe(credential_.federated_token_file) + "'";
        return failed;
    }
    return send_token_request(build_token_request(credential_, federated_token), transport_, stopping_);
}

// Takes a token or counts a failure, then hands the waiting requests back to their loops,
// still under the lock: once TokenWait::cancel has made the keeper forget a waiter, nothing
// is posted to its loop.
void TokenKeeper::settle(const TokenAnswer& answer, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_;
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
    std::vector<Waiter> waiting;
    waiting.swap(waiters_);
    for (Waiter& waiter : waiting) {
        std::function<void()> done = std::move(waiter.done);
        std::shared_ptr<bool> live = std::move(waiter.live);
        waiter.loop->post([done = std::move(done), live = std::move(live)] {
            if (*live) done();
        });
    }
}

// Fetch, settle, sleep until the renewal (or the retry) is due; a waiter arriving with no
// usable token wakes it early.
void TokenKeeper::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        TokenAnswer answer = fetch_once();
        int64_t now_ms = wall_now_ms();
        settle(answer, now_ms);
        lock.lock();
        int64_t due_ms = answer.ok ? renewal_due_ms(now_ms, answer)
                                   : now_ms + token_retry_delay_ms(failures_, token_usable_for_ms(expires_at_ms_, now_ms));
        auto due = std::chrono::system_clock::time_point(std::chrono::milliseconds(due_ms));
        wake_.wait_until(lock, due, [&] {
            bool needed = !waiters_.empty() && failures_ == 0 && !token_usable(expires_at_ms_, wall_now_ms());
            return stopping_ || needed;
        });
    }
}

TokenKeeper& token_keeper_for(const CredentialSettings& credential, const ProcessSettings& transport) {
    static std::mutex mutex;
    // Destroyed at exit, each keeper stopping its thread.
    static std::map<std::string, std::unique_ptr<TokenKeeper>> keepers;
    std::string identity = credential_source_name(credential) + '\n' + credential.authority_host + '\n' +
                           credential.tenant_id + '\n' + credential.client_id + '\n' + credential.scope;
    std::lock_guard<std::mutex> lock(mutex);
    std::unique_ptr<TokenKeeper>& keeper = keepers[identity];
    if (!keeper) keeper = std::make_unique<TokenKeeper>(credential, transport);
    return *keeper;
}

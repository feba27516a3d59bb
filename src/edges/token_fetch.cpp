// One token request with libcurl (the upstream's CA certificates and outbound proxy, a
// total timeout, an answer of bounded size), and the start's check of the credential.
// Tests: tests/integration/entra-credentials.test.mjs and entra-hostile.test.mjs (through
// lighttpd, against the Entra stand-in); what is definitive: credential_test.cpp.
#include "token_fetch.h"

#include <curl/curl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "shared_state.h"
#include "text.h"
#include "upstream.h"

namespace {

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

struct AnswerBody {
    std::string text;
    bool too_long = false;
};

size_t collect_answer(char* data, size_t size, size_t count, void* out) {
    auto* body = static_cast<AnswerBody*>(out);
    size_t length = size * count;
    if (body->text.size() + length > kLongestTokenAnswer) {
        body->too_long = true;
        return 0;  // libcurl fails the transfer
    }
    body->text.append(data, length);
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

CURLcode set_options(CURL* easy, const TokenRequest& request, const ProcessSettings& transport, curl_slist* headers,
                     char* detail, AnswerBody& body, const std::atomic<bool>& stopping) {
    CURLcode set = set_outbound_route(easy, transport);
    const CURLcode options[] = {
        curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()),
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers),
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, std::min(transport.connect_timeout_s, kTokenRequestTimeoutS)),
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
    return set;
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
    AnswerBody body;
    char detail[CURL_ERROR_SIZE] = {};
    CURLcode set = set_options(handle.easy, request, transport, headers.list, detail, body, stopping);
    if (set != CURLE_OK) {
        failed.error = std::string("libcurl refused an option of the token request: ") + curl_easy_strerror(set);
        return failed;
    }
    CURLcode done = curl_easy_perform(handle.easy);
    if (body.too_long) {
        failed.error = "the token endpoint's answer is longer than " + std::to_string(kLongestTokenAnswer / 1024) +
                       " KiB: not read";
        return failed;
    }
    if (done != CURLE_OK) {
        failed.error = std::string("the token endpoint could not be reached: ") +
                       (detail[0] ? detail : curl_easy_strerror(done));
        return failed;
    }
    long status = 0;
    curl_easy_getinfo(handle.easy, CURLINFO_RESPONSE_CODE, &status);
    return read_token_answer(status, body.text, wall_clock_ms());
}

}  // namespace

// The federated token file is read for every request: the cluster rotates it.
TokenAnswer fetch_token(const CredentialSettings& credential, const ProcessSettings& transport,
                        const std::atomic<bool>& stopping) {
    std::string federated_token;
    if (credential.source == CredentialSource::WorkloadIdentity &&
        !read_whole_file(credential.federated_token_file, federated_token)) {
        TokenAnswer failed;
        failed.error = "AZURE_FEDERATED_TOKEN_FILE: cannot read '" + log_safe(credential.federated_token_file) + "'";
        failed.local_fault = true;
        return failed;
    }
    TokenRequest request = build_token_request(credential, federated_token);
    if (!request.error.empty()) {  // a certificate's assertion could not be signed (its PEM now unreadable)
        TokenAnswer failed;
        failed.error = request.error;
        failed.local_fault = true;
        return failed;
    }
    return send_token_request(request, transport, stopping);
}

void count_token_request(SharedState& state, const CredentialSettings& credential, const TokenAnswer& answer) {
    state.count("aop_entra_token_requests_total",
                {{"source", credential_source_name(credential)}, {"outcome", token_outcome(answer)}});
}

namespace {

// "Entra ID token" or "Entra ID token of endpoint 'east'" and the source, for the start's lines.
struct StartWords {
    std::string whose;   // "" or " of endpoint 'east'"
    std::string source;  // describe_credential
};

StartWords start_words(const HostCredential& credential) {
    return {credential.endpoint.empty() ? "" : " of endpoint '" + log_safe(credential.endpoint, 60) + "'",
            describe_credential(credential.settings)};
}

std::string refused_line(const StartWords& words, const std::string& error) {
    return "Entra ID refused the credential" + words.whose + " (" + words.source + "): " + error + "; not starting";
}

std::string warning_line(const StartWords& words, const std::string& error) {
    return "warning: no Entra ID token" + words.whose + " at start (" + words.source + "): " + error +
           "; starting anyway, the token is asked for again in the background";
}

// The start's own token request, its result left in the shared row (the lease given back).
bool ask_at_start(const CredentialSettings& credential, const StartWords& words, const ProcessSettings& transport,
                  SharedState* state, const std::atomic<bool>& stopping, std::string& line) {
    const std::string identity = token_identity(credential);
    TokenAnswer answer = fetch_token(credential, transport, stopping);
    if (stopping) return true;
    int64_t now_ms = wall_clock_ms();
    if (state) count_token_request(*state, credential, answer);
    if (answer.ok) {
        if (state)
            state->token_obtained(identity, "Authorization: Bearer " + answer.access_token, answer.expires_at_ms,
                                  renewal_due_ms(now_ms, answer));
        line = "Entra ID token" + words.whose + " (" + words.source + ") obtained at start, valid " +
               std::to_string((answer.expires_at_ms - now_ms + 500) / 1000) + " s";  // to the nearest second
        return true;
    }
    if (state) state->token_failed(identity, answer.error, now_ms + token_retry_delay_ms(1), definitive_refusal(answer));
    line = definitive_refusal(answer) ? refused_line(words, answer.error) : warning_line(words, answer.error);
    return !definitive_refusal(answer);
}

}  // namespace

// Another process of the host asking already (lighttpd starting several at once): its
// answer is waited for, a tenth of a second at a time, rather than a second request made.
bool check_credential_at_start(const HostCredential& credential, const ProcessSettings& transport,
                               SharedState* state, const std::atomic<bool>& stopping, std::string& line) {
    const std::string identity = token_identity(credential.settings);
    const StartWords words = start_words(credential);
    int64_t give_up_ms = wall_clock_ms() + kTokenLeaseMs;
    for (int64_t now_ms = wall_clock_ms(); state && !stopping; now_ms = wall_clock_ms()) {
        SharedToken row = state->token_turn(identity, now_ms, kTokenLeaseMs);
        if (!row.stored || row.lease) break;
        if (token_usable(row.expires_at_ms, now_ms)) {
            line = "Entra ID token" + words.whose + " (" + words.source + "): another process of the host obtained it";
            return true;
        }
        if (row.refused) {  // the other process was refused: so is this one
            line = refused_line(words, row.error);
            return false;
        }
        if (row.lease_until_ms == 0 || now_ms > give_up_ms) {  // the other process failed: it says why
            line = warning_line(words, row.error.empty() ? std::string("another process is asking") : row.error);
            return true;
        }
        usleep(100 * 1000);
    }
    return stopping || ask_at_start(credential.settings, words, transport, state, stopping, line);
}

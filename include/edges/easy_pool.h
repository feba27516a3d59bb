// A loop's spare libcurl easy handles: what goes back is reset, and every reuse is checked
// by configuring the handle again, all of its options, each result looked at.
//
// Why both. curl_easy_reset clears the options, not everything a transfer left behind:
// libcurl 7.88 keeps the receive buffer of a transfer that failed before it had a
// connection (a name that did not resolve, a URL it could not parse) and of one whose
// HTTP/2 connection other transfers still used (transfers no longer share one: upstream.cpp;
// the check stays for whatever else leaves it behind), and afterwards refuses CURLOPT_BUFFERSIZE
// ("bad argument") on that handle. Such a handle is never used again: with the option
// refused, libcurl would read a 16 KiB default into what may be a 1 KiB buffer.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <vector>

class EasyPool {
public:
    explicit EasyPool(size_t capacity) : capacity_(capacity) {}
    ~EasyPool() { clear(); }
    EasyPool(const EasyPool&) = delete;
    EasyPool& operator=(const EasyPool&) = delete;

    // A handle `configure` (CURLcode(CURL*)) accepted: a spare one, else a new one. A handle
    // that refuses an option is destroyed, and a spare one's request is tried once more on
    // a new handle. Null, with libcurl's reason in `refused`, when that fails too.
    template <typename Configure>
    CURL* take_configured(Configure&& configure, CURLcode& refused) {
        for (bool fresh = spare_.empty();; fresh = true) {
            CURL* easy = fresh ? curl_easy_init() : take_spare();
            if (!easy) {
                refused = CURLE_FAILED_INIT;
                return nullptr;
            }
            refused = configure(easy);
            if (refused == CURLE_OK) return easy;
            curl_easy_cleanup(easy);
            if (fresh) return nullptr;
        }
    }

    // Kept, reset, for the next transfer when `reusable` and there is room; else destroyed.
    void give_back(CURL* easy, bool reusable) {
        if (!reusable || spare_.size() >= capacity_) {
            curl_easy_cleanup(easy);
            return;
        }
        curl_easy_reset(easy);
        spare_.push_back(easy);
    }

    void clear() {
        for (CURL* easy : spare_) curl_easy_cleanup(easy);
        spare_.clear();
    }

    size_t spare() const { return spare_.size(); }

private:
    CURL* take_spare() {
        CURL* easy = spare_.back();
        spare_.pop_back();
        return easy;
    }

    size_t capacity_;
    std::vector<CURL*> spare_;
};

// A loop's spare libcurl easy handles: what goes back keeps its options (no
// curl_easy_reset: the options that never change are set once, on a new handle, and every
// reuse sets again the ones that vary and clears the ones a transfer may have left — see
// Upstream::configure), and every reuse is checked by configuring the handle, each result
// looked at.
//
// Why the check. libcurl 7.88 keeps the receive buffer of a transfer that failed before it
// had a connection (a name that did not resolve, a URL it could not parse) and of one whose
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

    // A handle `configure` (CURLcode(CURL*, bool fresh, unsigned left)) accepted: a spare
    // one, with what its last user said it left set (give_back), else a new one (`fresh`: it
    // has no option set yet, and `left` is 0). A handle
    // that refuses an option is destroyed, and a spare one's request is tried once more on
    // a new handle. Null, with libcurl's reason in `refused`, when that fails too.
    template <typename Configure>
    CURL* take_configured(Configure&& configure, CURLcode& refused) {
        for (bool fresh = spare_.empty();; fresh = true) {
            Spare spare = fresh ? Spare{curl_easy_init(), 0} : take_spare();
            CURL* easy = spare.easy;
            if (!easy) {
                refused = CURLE_FAILED_INIT;
                return nullptr;
            }
            refused = configure(easy, fresh, spare.left);
            if (refused == CURLE_OK) return easy;
            curl_easy_cleanup(easy);
            if (fresh) return nullptr;
        }
    }

    // Kept, with its options, for the next transfer when `reusable` and there is room; else
    // destroyed. `left`: the caller's own note of what options its transfer left set.
    void give_back(CURL* easy, bool reusable, unsigned left = 0) {
        if (!reusable || spare_.size() >= capacity_) {
            curl_easy_cleanup(easy);
            return;
        }
        spare_.push_back({easy, left});
    }

    void clear() {
        for (const Spare& spare : spare_) curl_easy_cleanup(spare.easy);
        spare_.clear();
    }

    size_t spare() const { return spare_.size(); }

private:
    struct Spare {
        CURL* easy;
        unsigned left;
    };

    Spare take_spare() {
        Spare spare = spare_.back();
        spare_.pop_back();
        return spare;
    }

    size_t capacity_;
    std::vector<Spare> spare_;
};

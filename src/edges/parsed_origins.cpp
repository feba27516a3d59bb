// ParsedOrigins: a loop's upstream origins parsed once by libcurl, each transfer handed a
// copy of its origin's with its own request target set (upstream.h says why; url_cut.h
// which URLs are left to libcurl's own parse).
// Tests: upstream_test.cpp (with upstream.cpp and upstream_transfer.cpp).
#include "upstream.h"

CurlUrl ParsedOrigins::parsed(const std::string& url, int& origin) {
    std::optional<UrlCut> cut = cut_plain_url(url);
    origin = cut ? find_or_parse(cut->origin) : -1;
    if (origin < 0) return nullptr;
    Origin& known = origins_[static_cast<size_t>(origin)];
    CurlUrl copy;
    if (!known.spares.empty()) {
        copy = std::move(known.spares.back());
        known.spares.pop_back();
    } else {
        copy.reset(curl_url_dup(known.parsed.get()));
    }
    // The query goes in the path: libcurl 7.88 writes the path as it stands into the request
    // line, where a query of its own costs it two more formattings of both (http.c: "%s?%s"
    // for authentication, "?%s" for the request line).
    // The target is the URL's end: its characters are already followed by the URL's NUL.
    const char* target = url.c_str() + (cut->target.data() - url.data());
    if (!copy || curl_url_set(copy.get(), CURLUPART_PATH, target, 0) != CURLUE_OK) {
        origin = -1;
        return nullptr;
    }
    ++known.in_flight;
    known.last_used = ++uses_;
    return copy;
}

void ParsedOrigins::give_back(int origin, CurlUrl url) {
    if (!url || origin < 0 || static_cast<size_t>(origin) >= origins_.size()) return;
    Origin& known = origins_[static_cast<size_t>(origin)];
    if (known.in_flight > 0) --known.in_flight;
    if (known.spares.size() < kSpares) known.spares.push_back(std::move(url));
}

// Parsed with the flags libcurl 7.88 parses a transfer's URL with (url.c,
// parseurlandfillconn), so that the origin's parts are what its own parse makes of them.
int ParsedOrigins::find_or_parse(std::string_view text) {
    for (size_t i = 0; i < origins_.size(); ++i)
        if (origins_[i].text == text) return static_cast<int>(i);
    Origin added{std::string(text), CurlUrl(curl_url()), {}};
    std::string root = added.text + "/";
    if (!added.parsed ||
        curl_url_set(added.parsed.get(), CURLUPART_URL, root.c_str(), CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
            CURLUE_OK)
        return -1;
    int slot = free_slot();
    if (slot >= 0) origins_[static_cast<size_t>(slot)] = std::move(added);
    return slot;
}

// A new origin's place: a new one under kKept, else the least recently used origin whose
// copies are all back (a copy out would come back to the wrong origin); -1 when none is.
int ParsedOrigins::free_slot() {
    if (origins_.size() < kKept) {
        origins_.emplace_back();
        return static_cast<int>(origins_.size() - 1);
    }
    const Origin* oldest = nullptr;
    for (const Origin& known : origins_)
        if (known.in_flight == 0 && (!oldest || known.last_used < oldest->last_used)) oldest = &known;
    return oldest ? static_cast<int>(oldest - origins_.data()) : -1;
}

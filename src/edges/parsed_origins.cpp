// ParsedOrigins: a loop's upstream origins parsed once by libcurl, each transfer handed a
// copy of its origin's with its own request target set (upstream.h says why; url_cut.h
// which URLs are left to libcurl's own parse).
// Tests: upstream_test.cpp (with upstream.cpp and upstream_transfer.cpp).
#include "upstream.h"

CurlUrl ParsedOrigins::parsed(const std::string& url, int& origin) {
    if (CurlUrl seen = take_seen(url, origin)) return seen;
    std::optional<UrlCut> cut = cut_plain_url(url);
    origin = cut ? find_or_parse(cut->origin) : -1;
    if (origin < 0) return nullptr;
    Origin& known = origins_[static_cast<size_t>(origin)];
    Spare* spare = free_spare(known);
    if (!spare && known.spares.size() < kSpares) spare = &known.spares.emplace_back();
    CurlUrl copy = spare && spare->url ? std::move(spare->url) : CurlUrl(curl_url_dup(known.parsed.get()));
    // The query goes in the path: libcurl 7.88 writes the path as it stands into the request
    // line, where a query of its own costs it two more formattings of both (http.c: "%s?%s"
    // for authentication, "?%s" for the request line).
    // The target is the URL's end: its characters are already followed by the URL's NUL.
    const char* target = url.c_str() + (cut->target.data() - url.data());
    bool set = copy && curl_url_set(copy.get(), CURLUPART_PATH, target, 0) == CURLUE_OK;
    if (spare) spare->whole.assign(set ? url : std::string_view());
    if (!set) {
        if (spare) spare->url = std::move(copy);  // its path unknown: set again before it serves
        origin = -1;
        return nullptr;
    }
    return lend(origin, spare, std::move(copy));
}

// A free copy whose path an earlier transfer set for this very URL (among the last few free
// copies of its origin): it goes as it is, the URL known plain.
CurlUrl ParsedOrigins::take_seen(const std::string& url, int& origin) {
    for (size_t i = 0; i < origins_.size(); ++i) {
        Origin& known = origins_[i];
        size_t end = known.text.size();  // an origin ends at the path's '/': one at most matches
        if (url.size() <= end || url[end] != '/' || url.compare(0, end, known.text) != 0) continue;
        size_t looked = 0;
        for (size_t at = known.spares.size(); at-- > 0 && looked < kLooked;) {
            Spare& spare = known.spares[at];
            if (spare.lent || !spare.url) continue;
            ++looked;
            if (spare.whole != url) continue;
            origin = static_cast<int>(i);
            return lend(origin, &spare, std::move(spare.url));
        }
        return nullptr;
    }
    return nullptr;
}

// The copy goes out with a transfer; its place (null: none was free) waits for it.
CurlUrl ParsedOrigins::lend(int origin, Spare* spare, CurlUrl copy) {
    Origin& known = origins_[static_cast<size_t>(origin)];
    if (spare) spare->lent = copy.get();
    ++known.in_flight;
    known.last_used = ++uses_;
    return copy;
}

// The last of an origin's copies not lent, or null.
ParsedOrigins::Spare* ParsedOrigins::free_spare(Origin& known) {
    for (size_t at = known.spares.size(); at-- > 0;)
        if (!known.spares[at].lent) return &known.spares[at];
    return nullptr;
}

// Back in its place; a copy lent while every place was taken is destroyed.
void ParsedOrigins::give_back(int origin, CurlUrl url) {
    if (!url || origin < 0 || static_cast<size_t>(origin) >= origins_.size()) return;
    Origin& known = origins_[static_cast<size_t>(origin)];
    if (known.in_flight > 0) --known.in_flight;
    for (Spare& spare : known.spares)
        if (spare.lent == url.get()) {
            spare.url = std::move(url);
            spare.lent = nullptr;
            return;
        }
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

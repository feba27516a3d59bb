// text.cpp: the core's string helpers, and how client values are quoted back.
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <cstring>

#include <string>
#include <vector>

#include "text.h"

BOOST_AUTO_TEST_SUITE(text)

BOOST_AUTO_TEST_CASE(client_values_are_quoted_short_and_ascii) {
    BOOST_TEST(quote_value("gpt-4o") == "gpt-4o");
    BOOST_TEST(quote_value(std::string(10000, 'a')).size() == 67u);
    BOOST_TEST(quote_value("a\xff\"\\\n") == "a\\xff\"\\x5c\\x0a");
}

BOOST_AUTO_TEST_CASE(split_keeps_empty_parts_and_trim_takes_only_spaces_tabs_and_line_ends) {
    BOOST_TEST((split("a,,b,", ',') == std::vector<std::string>{"a", "", "b", ""}));
    BOOST_TEST((split("", ',') == std::vector<std::string>{""}));
    BOOST_TEST(trim(" \t a b \r\n") == "a b");
    BOOST_TEST(trim(" \t\r\n").empty());
    BOOST_TEST(trim_view("\v x ") == "\v x");  // a vertical tab is no space here
    for (int byte = 0; byte < 256; ++byte) {  // each byte told space or not in one test: the same four
        std::string text(1, static_cast<char>(byte));
        bool space = byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n';
        BOOST_TEST(trim_view(text).empty() == space, byte);
    }
    BOOST_TEST(lowercase("Api-KEY") == "api-key");
}

BOOST_AUTO_TEST_CASE(take_part_reads_a_list_in_place_one_part_at_a_time) {
    std::string_view rest = "a&&b";
    bool separated = false;
    BOOST_TEST(take_part(rest, '&', &separated) == "a");
    BOOST_TEST(separated);
    BOOST_TEST(rest == "&b");
    BOOST_TEST(take_part(rest, '&') == "");
    BOOST_TEST(take_part(rest, '&', &separated) == "b");
    BOOST_TEST(!separated);
    BOOST_TEST(rest.empty());
    std::string_view trailing = "x.";
    BOOST_TEST(take_part(trailing, '.', &separated) == "x");
    BOOST_TEST(separated);  // a separator at the end: an empty part follows
    BOOST_TEST(trailing.empty());
}

BOOST_AUTO_TEST_CASE(digits_value_takes_only_plain_digits_within_its_bound) {
    BOOST_TEST(digits_value("0") == 0);
    BOOST_TEST(digits_value("120") == 120);
    BOOST_TEST(digits_value("999999999999999999") == 999999999999999999LL);
    BOOST_TEST(digits_value("9999999999999999999") == -1);  // 19 digits: past the default bound
    BOOST_TEST(digits_value("123", 2) == -1);
    for (const char* text : {"", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1.0"})
        BOOST_TEST(digits_value(text) == -1, text);
}

BOOST_AUTO_TEST_CASE(comparisons_ignore_ascii_case_only) {
    BOOST_TEST(iequals("Content-Type", "content-TYPE"));
    BOOST_TEST(!iequals("content-type", "content-typ"));
    BOOST_TEST(!iequals("\xc3\x89", "\xc3\xa9"));  // É and é differ: no locale, no UTF-8 folding
    // Eight bytes a step: letters in both cases anywhere, the bytes around A-Z and a-z
    // (@ [ ` {), and bytes past 0x7f whose bit 0x20 differs, never taken for the same.
    BOOST_TEST(iequals("x-ratelimit-REMAINING-tokens", "X-RateLimit-Remaining-Tokens"));
    BOOST_TEST(iequals("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"));
    BOOST_TEST(!iequals("name@[@[1234", "name`{`{1234"));
    BOOST_TEST(!iequals("12345678@", "12345678`"));
    BOOST_TEST(!iequals("\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1", "\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1"));
    BOOST_TEST(!iequals("content-typf-and-more", "content-type-and-more"));
    BOOST_TEST(iequals("\xff\x80" "ABCDEFz", "\xff\x80" "abcdefZ"));
    BOOST_TEST(istarts_with("Bearer sk-1", "bearer "));
    BOOST_TEST(!istarts_with("Bear", "bearer"));
    BOOST_TEST(icontains("GPT-5-Codex", "codex"));
    BOOST_TEST(icontains("my-PRO", "Pro"));
    BOOST_TEST(icontains("pro", "pro"));
    BOOST_TEST(icontains("x", ""));
    BOOST_TEST(!icontains("pr", "pro"));
    BOOST_TEST(!icontains("ppr-o", "pro"));
    BOOST_TEST(!icontains("", "p"));
    BOOST_TEST(starts_with("gpt-4o", "gpt-"));
    BOOST_TEST(ends_with("gpt-4o", "4o"));
    BOOST_TEST(!ends_with("4o", "gpt-4o"));
}

// Every pair of bytes, at the first and last byte of a word and the tail's, against a byte
// at a time: the eight-bytes-a-step comparison says what ASCII case folding alone says.
BOOST_AUTO_TEST_CASE(iequals_agrees_with_a_byte_at_a_time_for_every_pair_of_bytes) {
    auto fold = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
    size_t disagreements = 0;
    for (size_t size : {1u, 3u, 4u, 5u, 7u, 8u, 9u, 17u}) {
        for (size_t at : {size_t{0}, size - 1, size_t{2}, size_t{4}, size_t{7}, size_t{8}}) {
            if (at >= size) continue;
            std::string a(size, 'k'), b(size, 'K');
            for (int x = 0; x < 256; ++x)
                for (int y = 0; y < 256; ++y) {
                    a[at] = static_cast<char>(x);
                    b[at] = static_cast<char>(y);
                    bool expected = fold(static_cast<unsigned char>(x)) == fold(static_cast<unsigned char>(y));
                    if (iequals(a, b) != expected) ++disagreements;
                }
        }
    }
    BOOST_TEST(disagreements == 0u);
    BOOST_TEST(iequals("", ""));
    BOOST_TEST(iequals("ABCDEFGH", "abcdefgh"));
    BOOST_TEST(iequals("aB", "Ab"));
}

BOOST_AUTO_TEST_CASE(a_word_is_letters_digits_and_the_extras_never_a_nul) {
    BOOST_TEST(is_word("gpt-4.1_mini", "-._"));
    BOOST_TEST(!is_word("", "-._"));
    BOOST_TEST(!is_word("gpt 4", "-._"));
    BOOST_TEST(!is_word("gpt/4", "-._"));
    BOOST_TEST(!is_word(std::string("gpt\0x", 5), "-._"));
    BOOST_TEST(over_bound("abc", 3, "a name").empty());
    BOOST_TEST(over_bound("abcd", 3, "a name") == "a name may have at most 3 bytes; this one has 4");
}

BOOST_AUTO_TEST_CASE(percent_encoding_escapes_what_the_caller_does_not_keep) {
    auto letters = [](unsigned char c) { return c >= 'a' && c <= 'z'; };
    BOOST_TEST(percent_encode("ab c/\xff", letters) == "ab%20c%2F%FF");
    BOOST_TEST(percent_decode(percent_encode("a+b&c=d", letters)) == "a+b&c=d");
}

BOOST_AUTO_TEST_CASE(percent_escapes_are_decoded_and_broken_ones_kept) {
    BOOST_TEST(percent_decode("a%20b%2Fc%2f") == "a b/c/");
    BOOST_TEST(percent_decode("%zz%4") == "%zz%4");
    BOOST_TEST(percent_decode("%41") == "A");
    BOOST_TEST(percent_decode("%00").size() == 1u);
    BOOST_TEST(hex_digit('F') == 15);
    BOOST_TEST(hex_digit('g') == -1);
}

BOOST_AUTO_TEST_CASE(log_fields_escape_spaces_quotes_and_controls_and_are_cut) {
    BOOST_TEST(log_safe("gpt-4o") == "gpt-4o");
    BOOST_TEST(log_safe("a b\"c\\d\x7f") == "a\\x20b\\x22c\\x5cd\\x7f");
    BOOST_TEST(log_safe("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 stays readable in a log
    BOOST_TEST(log_safe(std::string(300, 'k')) == std::string(200, 'k') + "...");
    BOOST_TEST(log_safe("abcdef", 3) == "abc...");
}

// Sixteen bytes a step must find what a byte-by-byte look finds: every byte value at every
// place of every length up to 40 (the padded short cases below 4, 8 and 16 bytes, one to two
// steps and the overlapping tail), among bytes that sit just above the limit and around the
// other byte sought.
BOOST_AUTO_TEST_CASE(a_byte_below_a_limit_or_one_byte_is_found_wherever_it_is) {
    const unsigned char limits[][2] = {{'\r' + 1, '\r'}, {0x20, 0x7f}, {0x80, 0xff}, {1, 0}};
    auto slow = [](const std::string& text, unsigned char limit, unsigned char also) {
        for (unsigned char c : text)
            if (c < limit || c == also) return true;
        return false;
    };
    int differences = 0;
    for (const auto& [limit, also] : limits)
        for (unsigned char filler : {static_cast<unsigned char>(limit), static_cast<unsigned char>(also + 1),
                                     static_cast<unsigned char>(0x80), static_cast<unsigned char>(0xfe)})
            for (size_t size = 0; size <= 40; ++size)
                for (size_t at = 0; at <= size; ++at)
                    for (int byte = 0; byte < 256; ++byte) {
                        std::string text(size, static_cast<char>(filler));
                        if (at < size) text[at] = static_cast<char>(byte);
                        if (has_byte_below_or(text, limit, also) != slow(text, limit, also)) ++differences;
                    }
    BOOST_TEST(differences == 0);
    BOOST_TEST(has_byte_below_or("model: gpt-4o\r", '\r' + 1, '\r'));
    BOOST_TEST(!has_byte_below_or("application/json; charset=utf-8", 0x20, 0x7f));
    BOOST_TEST(has_byte_below_or("a\x7f", 0x20, 0x7f));
}

// Sixteen bytes a step must tell what a byte-by-byte look tells: every byte value at every
// place of every name up to 40 bytes long (the padded short cases, one to two steps and the
// overlapping tail).
BOOST_AUTO_TEST_CASE(a_name_is_a_token_only_when_every_byte_is_a_token_byte) {
    auto slow = [](const std::string& name) {
        for (unsigned char c : name)
            if (!std::isalnum(c) && (c == 0 || !std::strchr("!#$%&'*+-.^_`|~", c))) return false;  // strchr finds NUL
        return !name.empty();
    };
    int differences = 0;
    for (size_t size = 0; size <= 40; ++size)
        for (size_t at = 0; at <= size; ++at)
            for (int byte = 0; byte < 256; ++byte) {
                std::string name(size, 'x');
                if (at < size) name[at] = static_cast<char>(byte);
                if (is_http_token(name) != slow(name)) ++differences;
            }
    BOOST_TEST(differences == 0);
    BOOST_TEST(is_http_token("x-ratelimit-remaining-tokens"));
    BOOST_TEST(!is_http_token(""));
    BOOST_TEST(!is_http_token("Content-Type:"));
}

BOOST_AUTO_TEST_SUITE_END()

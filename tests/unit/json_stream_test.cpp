// json_stream.cpp: a JSON text read in pieces cut anywhere, strictly, holding only its path.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "json_model.h"
#include "json_stream.h"

namespace {

// Records what the reader reports: "path=value" lines, strings joined from their pieces.
struct Recorder : JsonVisitor {
    std::vector<std::string> seen;
    std::string string_so_far;
    size_t pieces = 0;
    static std::string path_of(const JsonStreamReader& at) {
        std::string path;
        for (size_t level = 0; level < at.depth(); ++level)
            path += at.key(level).empty() ? "[" + std::to_string(at.index(level)) + "]" : "." + std::string(at.key(level));
        return path;
    }
    void string_piece(const JsonStreamReader& at, std::string_view raw, bool end) override {
        ++pieces;
        string_so_far.append(raw);
        if (!end) return;
        seen.push_back(path_of(at) + "=\"" + string_so_far + "\"");
        string_so_far.clear();
    }
    void scalar(const JsonStreamReader& at, std::string_view text) override { seen.push_back(path_of(at) + "=" + std::string(text)); }
};

// Whether the reader takes `text`, fed in pieces of `piece` bytes; what it reported.
bool read_in_pieces(const std::string& text, size_t piece, std::vector<std::string>* seen = nullptr) {
    Recorder recorder;
    JsonStreamReader reader(recorder);
    bool fine = true;
    for (size_t at = 0; at < text.size() && fine; at += piece) fine = reader.feed(std::string_view(text).substr(at, piece));
    fine = fine && reader.finish();
    if (seen) *seen = recorder.seen;
    return fine;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_stream)

BOOST_AUTO_TEST_CASE(paths_and_values_are_reported_however_the_text_is_cut) {
    std::string text = R"( {"type":"response.completed","response":{"id":"resp_1","output":[{"type":"message"},)"
                       R"(["x",2]],"usage":{"input_tokens":12,"ok":true,"none":null,"f":-1.5e3},"e":"a\"b\u00e9"}} )";
    std::vector<std::string> expected = {
        ".type=\"response.completed\"", ".response.id=\"resp_1\"", ".response.output[0].type=\"message\"",
        ".response.output[1][0]=\"x\"", ".response.output[1][1]=2", ".response.usage.input_tokens=12",
        ".response.usage.ok=true", ".response.usage.none=null", ".response.usage.f=-1.5e3",
        ".response.e=\"a\\\"b\\u00e9\"",
    };
    for (size_t piece = 1; piece <= text.size(); ++piece) {
        std::vector<std::string> seen;
        BOOST_TEST_REQUIRE(read_in_pieces(text, piece, &seen), "piece " << piece);
        BOOST_TEST(seen == expected, "piece " << piece);
    }
}

BOOST_AUTO_TEST_CASE(it_agrees_with_the_strict_checker_on_valid_and_faulty_texts) {
    const std::vector<std::string> texts = {
        "{}", "[]", "[ ]", "0", "-0", "1.0e+5", "\"\"", "\"\\u00e9\\n\"", "-12.5E-3", "0.5e+10", "{\"a\":[1,{\"b\":[]}]}", "\"\xc3\xa9\"",
        "\"\xf0\x9f\x98\x80\"", "\"\\ud83d\\ude00\"", "true", "null",
        // faulty
        "", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "01", "1.", ".5", "-", "1e", "+1", "1.e3", "-12.5E-3x", "1e+", "-01", "tru", "nul",
        "\"\x01\"", "\"\\x\"", "\"\\u12G4\"", "\"\\udddd\"", "\"\\ud83d\"", "\"\\ud83dx\"", "\"\\ud83d\\n\"", "\"\\ud83d\\u0041\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
        "{} {}", "[}", "{]", "'a'", "\"abc", "{\"a\":1}}",
    };
    for (const std::string& text : texts)
        BOOST_TEST(read_in_pieces(text, 1) == check_json(text).valid, "text " << text);
}

BOOST_AUTO_TEST_CASE(nesting_is_bounded_and_long_keys_match_nothing) {
    BOOST_TEST(read_in_pieces(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']'), 7));
    BOOST_TEST(!read_in_pieces(std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']'), 7));
    std::string long_key(kMaxJsonKey, 'k');
    std::vector<std::string> seen;
    BOOST_TEST(read_in_pieces("{\"" + long_key + "x\":1,\"" + long_key + "\":2}", 5, &seen));
    BOOST_TEST(seen.size() == 2u);
    BOOST_TEST(seen[1] == "." + long_key + "=2");
    BOOST_TEST(seen[0] != "." + long_key + "=1");
    std::vector<std::string> numbers;
    BOOST_TEST(read_in_pieces("[" + std::string(kMaxJsonScalar + 10, '1') + ",1.5]", 3, &numbers));
    BOOST_TEST(numbers.front() == "[0]=" + std::string(kMaxJsonScalar, '1'));
}

BOOST_AUTO_TEST_CASE(a_string_cut_inside_an_escape_or_a_character_can_be_closed_validly) {
    struct Cut { std::string start; std::string completion; };
    const Cut cuts[] = {{"\"ab\\", "n"}, {"\"ab\\u", "AAAA"}, {"\"ab\\u00", "AA"}, {"\"\\uD", "7FF"},
                        {"\"\\uD83", "0\\uDC00"}, {"\"\\uD83D", "\\uDC00"}, {"\"\\uD83D\\", "uDC00"},
                        {"\"\\uD83D\\uD", "C00"}, {"\"\xe2", "\x80\x80"},
                        {"\"\xf0", "\x90\x80\x80"}, {"\"abc", ""}};
    for (const Cut& cut : cuts) {
        Recorder recorder;
        JsonStreamReader reader(recorder);
        BOOST_TEST_REQUIRE(reader.feed(cut.start));
        BOOST_TEST(reader.open_escape_completion() == cut.completion);
        BOOST_TEST(check_json(cut.start + reader.open_escape_completion() + "\"").valid, cut.start);
    }
}

BOOST_AUTO_TEST_CASE(the_plain_words_and_the_escaped_inside_of_a_string) {
    BOOST_TEST(json_string_inside("a\"b\\c\n\x01") == "a\\\"b\\\\c\\u000a\\u0001");
    BOOST_TEST(json_string_words("a\\\"b\\nc\\u00e9") == "a\"b\nc?");
}

BOOST_AUTO_TEST_SUITE_END()

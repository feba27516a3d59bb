// multipart.cpp: an upload form's model field, found as the bytes stream past.
#include <boost/test/unit_test.hpp>

#include "json_model.h"
#include "multipart.h"
#include "spool.h"

namespace {

const std::string kBoundary = "----formdata-undici-0123";

std::string form(const std::string& model, const std::string& file) {
    return "--" + kBoundary + "\r\n"
           "Content-Disposition: form-data; name=\"file\"; filename=\"model.wav\"\r\n"
           "Content-Type: audio/wav\r\n\r\n" + file + "\r\n"
           "--" + kBoundary + "\r\n"
           "Content-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n"
           "--" + kBoundary + "--\r\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(multipart)

BOOST_AUTO_TEST_CASE(boundary_comes_from_the_content_type) {
    BOOST_TEST(multipart_boundary("multipart/form-data; boundary=abc") == "abc");
    BOOST_TEST(multipart_boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"") == "a b");
    BOOST_TEST(multipart_boundary("application/json").empty());
    BOOST_TEST(multipart_boundary("multipart/form-data").empty());
    BOOST_TEST(multipart_boundary(" \tMULTIPART/FORM-DATA; boundary=x") == "x");
    BOOST_TEST(multipart_boundary("multipart/form").empty());
}

BOOST_AUTO_TEST_CASE(model_field_is_found_after_a_file_whatever_the_pieces) {
    // The file holds things that look like delimiters and a fake model field.
    std::string file = "RIFF\r\n--" + kBoundary.substr(0, 10) + "\r\nname=\"model\"\r\n\r\nnot-it";
    std::string body = form("whisper-1", file);
    for (size_t split = 0; split <= body.size(); ++split) {
        MultipartModelScanner scanner(kBoundary);
        scanner.feed(body.data(), split);
        scanner.feed(body.data() + split, body.size() - split);
        BOOST_REQUIRE_MESSAGE(scanner.found(), "split at " << split);
        BOOST_TEST(scanner.model() == "whisper-1");
        BOOST_TEST(body.substr(scanner.value_begin(), scanner.value_end() - scanner.value_begin()) == "whisper-1");
    }
    MultipartModelScanner bytewise(kBoundary);
    for (char c : body) bytewise.feed(&c, 1);
    BOOST_TEST(bytewise.model() == "whisper-1");
}

BOOST_AUTO_TEST_CASE(a_form_without_model_is_not_found) {
    std::string body = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" +
                       kBoundary + "--\r\n";
    MultipartModelScanner scanner(kBoundary);
    scanner.feed(body.data(), body.size());
    BOOST_TEST(!scanner.found());
    // filename="model" is not the field name
    std::string tricky = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model\"\r\n\r\nx\r\n--" +
                         kBoundary + "--\r\n";
    MultipartModelScanner other(kBoundary);
    other.feed(tricky.data(), tricky.size());
    BOOST_TEST(!other.found());
}

// Checked by its first "model" and used upstream by its second, a form would pass any
// model list: a second field fails the scan, wherever it lies and however the body is cut.
BOOST_AUTO_TEST_CASE(a_second_model_field_makes_the_form_ambiguous) {
    std::string second = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=model\r\n\r\ngpt-5\r\n";
    std::string body = form("whisper-1", std::string(70000, 'x') + "\r\n\r" + std::string(10, 'y'));
    body.insert(body.size() - ("--" + kBoundary + "--\r\n").size(), second);
    for (size_t split : {size_t(0), size_t(100), body.size() - 60, body.size() - 3}) {
        MultipartModelScanner scanner(kBoundary);
        scanner.feed(body.data(), split);
        scanner.feed(body.data() + split, body.size() - split);
        BOOST_TEST(scanner.ambiguous(), "split at " << split);
        BOOST_TEST(scanner.failed());
        BOOST_TEST(!scanner.found());
    }
    // One model field, after a long file full of CRs: found, and the scan reads to the end.
    std::string single = form("whisper-1", std::string(70000, '\r'));
    MultipartModelScanner scanner(kBoundary);
    scanner.feed(single.data(), single.size());
    BOOST_TEST(scanner.found());
    BOOST_TEST(!scanner.ambiguous());
    BOOST_TEST(scanner.finished());
    BOOST_TEST(scanner.model() == "whisper-1");
}

BOOST_AUTO_TEST_CASE(oversized_headers_or_model_fail) {
    std::string body = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" +
                       std::string(5000, 'm') + "\r\n--" + kBoundary + "--\r\n";
    MultipartModelScanner scanner(kBoundary);
    scanner.feed(body.data(), body.size());
    BOOST_TEST(scanner.failed());
    MultipartModelScanner no_boundary("");
    BOOST_TEST(no_boundary.failed());
}

// A request that is no upload holds a scanner for no form: it finds nothing in any body.
BOOST_AUTO_TEST_CASE(a_scanner_for_no_form_finds_nothing) {
    MultipartModelScanner none;
    std::string body = form("gpt-image-1", "data");
    none.feed(body.data(), body.size());
    BOOST_TEST(none.failed());
    BOOST_TEST(none.finished());
    BOOST_TEST(!none.found());
    BOOST_TEST(!none.saw_field("model"));
    BOOST_TEST(none.model().empty());
}

BOOST_AUTO_TEST_CASE(spool_replaces_the_model_in_memory_and_on_disk) {
    std::string body = form("gpt-image-1", std::string(3000, 'x'));
    for (size_t memory : {size_t(1) << 20, size_t(100)}) {  // kept in memory; spilled to a file
        MultipartModelScanner scanner(kBoundary);
        Spool spool(memory);
        for (size_t at = 0; at < body.size(); at += 7) {
            size_t n = std::min<size_t>(7, body.size() - at);
            BOOST_REQUIRE(spool.write(body.data() + at, n));
            scanner.feed(body.data() + at, n);
        }
        BOOST_REQUIRE(scanner.found());
        spool.rewind(scanner.value_begin(), scanner.value_end(), "my-dep");
        std::string out;
        char buffer[13];
        for (long got; (got = spool.read(buffer, sizeof buffer)) > 0;) out.append(buffer, got);
        BOOST_TEST(out == form("my-dep", std::string(3000, 'x')));
        BOOST_TEST(spool.output_size() == static_cast<long long>(out.size()));
        spool.rewind();
        out.clear();
        for (long got; (got = spool.read(buffer, sizeof buffer)) > 0;) out.append(buffer, got);
        BOOST_TEST(out == body);
    }
}

BOOST_AUTO_TEST_CASE(json_model_is_replaced_in_place) {
    std::string json = R"({"messages":[{"role":"user","content":"{\"model\":1}"}], "model" : "gpt-4o","seed":12345678901234567890})";
    BOOST_REQUIRE(set_json_model(json, "prod-4o"));
    BOOST_TEST(json == R"({"messages":[{"role":"user","content":"{\"model\":1}"}], "model" : "prod-4o","seed":12345678901234567890})");
    std::string nested = R"({"input":{"model":"x"},"model":"a"})";
    BOOST_REQUIRE(set_json_model(nested, "b"));
    BOOST_TEST(nested == R"({"input":{"model":"x"},"model":"b"})");
    std::string absent = R"( {"prompt":"hi"})";
    BOOST_REQUIRE(set_json_model(absent, "dep"));
    BOOST_TEST(absent == R"( {"model":"dep","prompt":"hi"})");
    std::string empty = "{}";
    BOOST_REQUIRE(set_json_model(empty, "d\"q"));
    BOOST_TEST(empty == R"({"model":"d\"q"})");
    std::string array = "[1]";
    BOOST_TEST(!set_json_model(array, "x"));
}

BOOST_AUTO_TEST_CASE(a_realtime_call_form_gives_its_session_and_names_its_parts) {
    std::string session = "{\"type\":\"realtime\",\"model\":\"gpt-realtime\"}";
    std::string body = "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\nv=0\r\no=- 1\r\n" +
                       "--" + kBoundary + "\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n" + session +
                       "\r\n--" + kBoundary + "--\r\n";
    MultipartModelScanner scanner(kBoundary, "session", 64 * 1024);
    for (char c : body) scanner.feed(&c, 1);  // cut anywhere
    BOOST_TEST(scanner.found());
    BOOST_TEST(scanner.model() == session);
    BOOST_TEST(body.substr(scanner.value_begin(), scanner.value_end() - scanner.value_begin()) == session);
    BOOST_TEST(scanner.saw_field("sdp"));
    BOOST_TEST(!scanner.saw_field("model"));
    // longer than allowed: the scan fails rather than keep it
    MultipartModelScanner small(kBoundary, "session", 8);
    small.feed(body.data(), body.size());
    BOOST_TEST(small.failed());
}

BOOST_AUTO_TEST_SUITE_END()


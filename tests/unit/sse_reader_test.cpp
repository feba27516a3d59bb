// sse_reader.cpp: server-sent events framed as the WHATWG says, cut anywhere.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "sse_reader.h"

namespace {

struct Events : SseListener {
    std::vector<std::string> seen;  // "event=NAME", "data=BYTES" per line, "end"
    std::string line;
    bool in_data = false;
    bool data(std::string_view bytes, bool line_start) override {
        if (line_start) flush(), in_data = true;
        line.append(bytes);
        return true;
    }
    void event_name(std::string_view name) override { flush(), seen.push_back("event=" + std::string(name)); }
    bool event_end() override { return flush(), seen.push_back("end"), true; }
    void flush() {
        if (in_data) seen.push_back("data=" + line);
        line.clear();
        in_data = false;
    }
};

std::vector<std::string> read(const std::string& text, size_t piece) {
    Events events;
    SseReader reader(events);
    for (size_t at = 0; at < text.size(); at += piece) reader.feed(std::string_view(text).substr(at, piece));
    events.flush();
    return events.seen;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sse_reader)

BOOST_AUTO_TEST_CASE(events_are_framed_alike_however_the_stream_is_cut) {
    std::string text = ": a comment\r\nevent: response.created\r\ndata: {\"a\":1}\r\n\r\n"
                       "data:{\"b\":2}\rdata:  two spaces\r\rdata\n\nid: 7\nretry: 5\n\n";
    std::vector<std::string> expected = {"event=response.created", "data={\"a\":1}", "end", "data={\"b\":2}",
                                         "data= two spaces", "end", "data=", "end", "end"};
    for (size_t piece = 1; piece <= text.size(); ++piece) BOOST_TEST(read(text, piece) == expected, "piece " << piece);
}

BOOST_AUTO_TEST_CASE(a_long_event_name_is_cut_and_a_listener_may_stop_the_reading) {
    std::vector<std::string> seen = read("event: " + std::string(1000, 'e') + "\n\n", 100);
    BOOST_TEST(seen.front() == "event=" + std::string(kMaxSseEventName, 'e'));
    struct Stopper : SseListener {
        int ends = 0;
        bool data(std::string_view, bool) override { return true; }
        void event_name(std::string_view) override {}
        bool event_end() override { return ++ends < 1; }
    } stopper;
    SseReader reader(stopper);
    BOOST_TEST(!reader.feed("data: 1\n\ndata: 2\n\n"));
    BOOST_TEST(stopper.ends == 1);
    BOOST_TEST(!reader.feed("\n"));
}

BOOST_AUTO_TEST_SUITE_END()

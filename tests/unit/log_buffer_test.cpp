// log_buffer.cpp: when the access-log buffer wants writing.
#include <boost/test/unit_test.hpp>

#include <string>

#include "log_buffer.h"

BOOST_AUTO_TEST_SUITE(log_buffer)

// Nothing is written here: the lines stay in the buffer (a write would go to stderr).
BOOST_AUTO_TEST_CASE(an_empty_buffer_waits_for_nothing_and_lines_are_due_from_the_first) {
    engine_detail::LogBuffer buffer;
    BOOST_TEST(buffer.next_due_ms() == DeadlineQueue::kNever);
    buffer.add("one\n", 1000);
    BOOST_TEST(buffer.next_due_ms() == 1000 + engine_detail::LogBuffer::kDelayMs);
    buffer.add("two\n", 1030);  // a later line does not put the write off
    BOOST_TEST(buffer.next_due_ms() == 1000 + engine_detail::LogBuffer::kDelayMs);
}

// A line written straight into the buffer counts as add()'s does: the first one starts the wait.
BOOST_AUTO_TEST_CASE(a_line_added_in_place_starts_the_wait_as_a_line_added_whole) {
    engine_detail::LogBuffer buffer;
    buffer.add_with([](std::string& lines) { lines += "one\n"; }, 2000);
    BOOST_TEST(buffer.next_due_ms() == 2000 + engine_detail::LogBuffer::kDelayMs);
    buffer.add_with([](std::string& lines) { lines += "two\n"; }, 2030);
    BOOST_TEST(buffer.next_due_ms() == 2000 + engine_detail::LogBuffer::kDelayMs);
}

BOOST_AUTO_TEST_SUITE_END()

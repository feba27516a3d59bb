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

BOOST_AUTO_TEST_SUITE_END()

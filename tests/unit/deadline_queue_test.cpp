// deadline_queue.h: deadlines of one length kept in order for free, and several queues
// read together.
#include <boost/test/unit_test.hpp>

#include "deadline_queue.h"

BOOST_AUTO_TEST_SUITE(deadline_queue)

BOOST_AUTO_TEST_CASE(links_fall_due_in_the_order_they_were_last_armed) {
    DeadlineQueue queue(100);
    DeadlineLink a, b, c;
    BOOST_TEST(queue.next_due_ms() == DeadlineQueue::kNever);
    queue.arm(a, 0);
    queue.arm(b, 10);
    queue.arm(c, 20);
    queue.arm(a, 30);  // re-armed: now last
    BOOST_TEST(queue.next_due_ms() == 110);
    BOOST_TEST(queue.take_due(109) == nullptr);
    BOOST_TEST(queue.take_due(200) == &b);
    BOOST_TEST(queue.take_due(200) == &c);
    BOOST_TEST(queue.take_due(129) == nullptr);
    BOOST_TEST(queue.take_due(130) == &a);
    BOOST_TEST(queue.empty());
}

BOOST_AUTO_TEST_CASE(a_link_armed_again_for_the_same_due_time_keeps_the_order_of_due_times) {
    DeadlineQueue queue(100);
    DeadlineLink a, b, c;
    queue.arm(a, 10);
    queue.arm(b, 10);
    queue.arm(a, 10);  // due then already: stays first
    queue.arm(c, 20);
    queue.arm(b, 20);  // due later: moves behind c
    BOOST_TEST(queue.take_due(110) == &a);
    BOOST_TEST(queue.take_due(110) == nullptr);
    BOOST_TEST(queue.take_due(120) == &c);
    BOOST_TEST(queue.take_due(120) == &b);
    BOOST_TEST(queue.empty());
}

BOOST_AUTO_TEST_CASE(a_disarmed_link_never_falls_due) {
    DeadlineQueue queue(5);
    DeadlineLink a, b;
    queue.arm(a, 0);
    queue.arm(b, 1);
    queue.disarm(a);
    queue.disarm(a);  // twice is harmless
    BOOST_TEST(!a.armed());
    BOOST_TEST(queue.take_due(100) == &b);
    BOOST_TEST(queue.take_due(100) == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(deadline_queues)

BOOST_AUTO_TEST_CASE(a_link_moves_between_queues_and_each_disarms_only_its_own) {
    DeadlineQueue first(100), second(1000);
    DeadlineLink link;
    first.arm(link, 0);
    second.disarm(link);  // not in it: nothing happens to either queue
    BOOST_TEST(first.next_due_ms() == 100);
    BOOST_TEST(second.empty());
    second.arm(link, 0);  // moves
    BOOST_TEST(first.empty());
    BOOST_TEST(second.next_due_ms() == 1000);
    first.disarm(link);
    BOOST_TEST(link.armed());
    second.disarm(link);
    BOOST_TEST(!link.armed());
    BOOST_TEST(second.empty());
}

BOOST_AUTO_TEST_SUITE_END()

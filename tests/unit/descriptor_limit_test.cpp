// descriptor_limit.cpp: the soft limit raised to the hard one, and what fits in it.
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>

#include "descriptor_limit.h"

BOOST_AUTO_TEST_SUITE(descriptor_limit)

BOOST_AUTO_TEST_CASE(the_soft_limit_is_raised_and_what_does_not_fit_is_cut_to_what_does) {
    rlimit before{};
    BOOST_REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
    if (before.rlim_max == RLIM_INFINITY) return;  // everything fits
    rlimit lowered = {before.rlim_max > 256 ? 256 : before.rlim_max, before.rlim_max};
    BOOST_REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);

    BOOST_TEST(items_within_descriptors(10, 2, "sessions", "TEST_MAX") == 10);
    rlimit raised{};
    BOOST_REQUIRE(getrlimit(RLIMIT_NOFILE, &raised) == 0);
    BOOST_TEST(raised.rlim_cur == before.rlim_max);

    long everything = static_cast<long>(before.rlim_max);  // far more than fits at 2 each
    BOOST_TEST(items_within_descriptors(everything, 2, "sessions", "TEST_MAX") ==
               static_cast<long>((before.rlim_max - 64) / 2));
    BOOST_REQUIRE(setrlimit(RLIMIT_NOFILE, &before) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

#define BOOST_TEST_MODULE azure_openai_proxy_unit
#include <boost/test/unit_test.hpp>

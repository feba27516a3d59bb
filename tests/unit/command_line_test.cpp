// command_line.cpp: options with values, switches, help and version, and what is unknown.
#include <boost/test/unit_test.hpp>

#include "command_line.h"

namespace {
CommandLine read(std::vector<const char*> argv) {
    argv.insert(argv.begin(), "program");
    return read_command_line(static_cast<int>(argv.size()), argv.data(), {"--listen", "--workers"}, {"--check-config"});
}
}  // namespace

BOOST_AUTO_TEST_SUITE(command_line)

BOOST_AUTO_TEST_CASE(values_and_switches_are_read_the_last_value_winning) {
    CommandLine line = read({"--listen", "/run/a.sock", "--check-config", "--workers", "2", "--listen", "127.0.0.1:9"});
    BOOST_TEST(line.values["--listen"] == "127.0.0.1:9");
    BOOST_TEST(line.values["--workers"] == "2");
    BOOST_TEST(line.switches.count("--check-config") == 1u);
    BOOST_TEST(!line.help);
    BOOST_TEST(line.unknown.empty());
}

BOOST_AUTO_TEST_CASE(help_version_and_the_first_unknown_stop_the_reading) {
    BOOST_TEST(read({"-h", "--bogus"}).help);
    BOOST_TEST(read({"-h", "--bogus"}).unknown.empty());
    BOOST_TEST(read({"--version"}).version);
    BOOST_TEST(read({"--check", "--help"}).unknown == "--check");
    BOOST_TEST(!read({"--check", "--help"}).help);
    BOOST_TEST(read({"--listen"}).unknown == "--listen");  // its value is missing
    BOOST_TEST(read({}).values.empty());
}

BOOST_AUTO_TEST_SUITE_END()

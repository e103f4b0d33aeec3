// What the fuzz targets (fuzz/) found, one test per finding, each as it would reach the
// monitor. A regression of the placeholder loop would hang and eat memory: each of those
// tests is cut off after a few seconds instead.
#define BOOST_TEST_MODULE fuzz_findings
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "config_tree.hpp"
#include "etcd/lock_value.hpp"

using namespace nm;
using nm::testing::config_tree;

namespace {

namespace utf = boost::unit_test;

struct fixture : config_tree {
    std::string conf = root + "/nodeos-monitor.conf";

    command_line parse(std::vector<std::string> extra) const {
        std::vector<std::string> args{"nodeos-monitor", "--nodeos", nodeos, "--active-config-dir", active,
                                      "--standby-config-dir", standby};
        args.insert(args.end(), extra.begin(), extra.end());
        return testing::parse_args(args);
    }

    // Lines 1-3 of the file are the fixture's; the test's line is line 4.
    void rejects_line(std::string const& line, std::string const& mentions) const {
        std::ofstream(conf) << "nodeos = " << nodeos << "\nactive-config-dir = " << active
                            << "\nstandby-config-dir = " << standby << "\n" << line << "\n";
        testing::expect_usage_error([&] { testing::parse_args({"nodeos-monitor", "--config", conf}); },
                                    conf + ":4: " + mentions);
    }
};

}  // namespace

// fuzz_lock_value: --node-name takes any bytes, and the lock's value is JSON. A name that is
// not UTF-8 made encode() throw, which stopped the monitor at start-up ("fatal:
// [json.exception.type_error.316] invalid UTF-8 byte").
BOOST_AUTO_TEST_CASE(a_node_name_that_is_not_utf8_is_written_with_replacement_characters) {
    std::string value;
    BOOST_REQUIRE_NO_THROW(value = lock_value::encode("bp1-\xff\xfe", "4f2a", 4242));
    auto const h = lock_value::decode({"eos", value, 7, 1});
    BOOST_TEST(h.node == "bp1-\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD twice
    BOOST_TEST(h.instance == "4f2a");
    BOOST_TEST(lock_value::decode({"eos", lock_value::encode("bp1-fra", "4f2a", 4242), 7, 1}).node == "bp1-fra",
               "a UTF-8 name is written as it is");
}

// fuzz_options: Boost's messages replace each %name% placeholder with the offending text
// until none is left, so a value holding "%value%" never ended: parse_command_line() spun,
// its message growing until memory ran out.
BOOST_FIXTURE_TEST_CASE(a_flag_value_holding_a_placeholder_is_a_usage_error, fixture, *utf::timeout(10)) {
    testing::expect_usage_error([&] { parse({"--lease-ttl", "6%value%"}); }, "the argument for option '--lease-ttl' is invalid");
    testing::expect_usage_error([&] { parse({"--block-interval-ms=%value%%value%"}); }, "'--block-interval-ms'");
}

BOOST_FIXTURE_TEST_CASE(an_unknown_flag_holding_a_placeholder_is_a_usage_error, fixture, *utf::timeout(10)) {
    testing::expect_usage_error([&] { parse({"--%canonical_option%"}); }, "unrecognised option '--%canonical_option%'");
    testing::expect_usage_error([&] { parse({"--debug=%value%"}); }, "'--debug'");
}

BOOST_FIXTURE_TEST_CASE(a_config_line_holding_a_placeholder_is_a_usage_error, fixture, *utf::timeout(10)) {
    rejects_line("lease-ttl = %value%", "the argument for option 'lease-ttl' is invalid");
    rejects_line("%invalid_line%", "invalid line");
}

BOOST_FIXTURE_TEST_CASE(a_percent_sign_elsewhere_keeps_boosts_own_message, fixture) {
    testing::expect_usage_error([&] { parse({"--lease-ttl", "ten"}); }, "the argument ('ten') for option '--lease-ttl' is invalid");
    testing::expect_usage_error([&] { parse({"--on-role-change", "date +%s%N", "--lease-ttl", "50%"}); },
                                "the argument ('50%') for option '--lease-ttl' is invalid");
    BOOST_TEST(parse({"--on-role-change", "logger -t nm %value%"}).cfg.on_role_change.size() == 1u,
               "a valid value may hold a placeholder");
}

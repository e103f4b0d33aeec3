// --config FILE: the same option names as the flags, flags win, and every error names the
// file and the line.
#define BOOST_TEST_MODULE config_file
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "config_tree.hpp"

using namespace nm;
using nm::testing::config_tree;

namespace {

struct fixture : config_tree {
    std::string conf = root + "/nodeos-monitor.conf";

    void write(std::string const& text, mode_t mode = 0640) const {
        std::ofstream(conf) << "nodeos = " << nodeos << "\nactive-config-dir = " << active
                            << "\nstandby-config-dir = " << standby << "\n" << text;
        ::chmod(conf.c_str(), mode);
    }

    config parse(std::vector<std::string> flags = {}) const {
        std::vector<std::string> args{"nodeos-monitor", "--config", conf};
        args.insert(args.end(), flags.begin(), flags.end());
        return testing::parse_args(args).cfg;
    }

    // Lines 1-3 are the fixture's; the test's text starts on line 4.
    void rejects(std::string const& text, std::string const& mentions, mode_t mode = 0640) const {
        write(text, mode);
        auto what = testing::expect_usage_error([&] { parse(); }, mentions);
        if (!what.empty()) BOOST_TEST(what.find(conf + ":") == 0, "error \"" << what << "\" should start with the file");
    }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(the_file_sets_options_by_their_flag_names, fixture) {
    write("# a comment\n\n"
          "failover-group = bp-mainnet   # trailing comment\n"
          "node-name = bp1-fra\n"
          "lease-ttl = 6\n"
          "etcd-endpoints = http://10.0.0.1:2379,http://10.0.0.2:2379\n"
          "etcd-endpoints = http://10.0.0.3:2379\n"
          "nodeos-args = --data-dir=/var/lib/nodeos\n"
          "nodeos-args = --verbose\n"
          "metrics-addr = 0.0.0.0:9100\n"
          "log-format = json\n"
          "debug = true\n");
    auto c = parse();
    BOOST_TEST(c.failover_group == "bp-mainnet");
    BOOST_TEST(c.node_name == "bp1-fra");
    BOOST_TEST(c.lease_ttl == 6);
    BOOST_TEST(c.etcd_endpoints.size() == 3u);
    BOOST_TEST((c.nodeos_args == std::vector<std::string>{"--data-dir=/var/lib/nodeos", "--verbose"}));
    BOOST_TEST(c.metrics_addr->host == "0.0.0.0");
    BOOST_TEST(c.metrics_addr->port == 9100);
    BOOST_TEST(c.json_logs);
    BOOST_TEST(c.debug);
    BOOST_TEST(c.config_file == conf);
}

BOOST_FIXTURE_TEST_CASE(flags_override_the_file, fixture) {
    write("failover-group = from-file\nlease-ttl = 6\nnodeos-args = --from-file\nmetrics-addr = 127.0.0.1:9100\n");
    auto c = parse({"--failover-group", "from-flag", "--nodeos-args=--from-flag", "--metrics-addr", ""});
    BOOST_TEST(c.failover_group == "from-flag");
    BOOST_TEST(c.lease_ttl == 6);
    BOOST_TEST((c.nodeos_args == std::vector<std::string>{"--from-flag"}));
    BOOST_TEST(!c.metrics_addr.has_value(), "an empty --metrics-addr turns the endpoint off");
}

BOOST_FIXTURE_TEST_CASE(errors_name_the_file_and_line, fixture) {
    rejects("failover-group = g\nno-such-option = 1\n", ":5: unknown option 'no-such-option'");
    rejects("lease-ttl = ten\n", ":4:");
    rejects("lease-ttl = 1\n", ":4: --lease-ttl 1: must be at least 2");
    rejects("log-format = xml\n", ":4: --log-format xml");
    rejects("metrics-addr = localhost:3000\n", ":4: --metrics-addr");
    rejects("just some words\n", ":4:");
    rejects("[section]\n", ":4: sections");
    rejects("node-name = a\nnode-name = b\n", ":5: 'node-name' is already set on line 4");
    rejects("config = /etc/other.conf\n", "unknown option 'config'");
    rejects("help = 1\n", "unknown option 'help'");
}

BOOST_FIXTURE_TEST_CASE(a_file_naming_a_key_must_not_be_world_readable, fixture) {
    auto cert = root + "/client.pem", key = root + "/client-key.pem";
    std::ofstream(cert) << "x";
    std::ofstream(key) << "x";
    rejects("etcd-cert = " + cert + "\netcd-key = " + key + "\n", ":5: names a private key file", 0644);
    write("etcd-cert = " + cert + "\netcd-key = " + key + "\n", 0640);
    BOOST_TEST(parse().etcd_key == key);
    write("failover-group = g\n", 0644);
    BOOST_TEST(parse().failover_group == "g", "a file without a key may be readable by all");
}

BOOST_FIXTURE_TEST_CASE(the_etcd_user_is_set_in_the_file_but_never_its_password, fixture) {
    auto password = root + "/etcd-password";
    std::ofstream(password) << "s3cret\n";
    ::chmod(password.c_str(), 0640);
    write("etcd-user = bp\netcd-password-file = " + password + "\n");
    auto c = parse();
    BOOST_TEST(c.etcd_user == "bp");
    BOOST_TEST(c.etcd_password == "s3cret");
    rejects("etcd-user = bp\netcd-password = s3cret\n", ":5: --etcd-password: a password is never given");
    ::chmod(password.c_str(), 0644);
    rejects("etcd-user = bp\netcd-password-file = " + password + "\n", ":5: --etcd-password-file " + password +
                                                                           ": readable by other users");
}

BOOST_FIXTURE_TEST_CASE(a_missing_file_is_an_error, fixture) {
    std::vector<char const*> argv{"nodeos-monitor", "--config", "/nonexistent/nm.conf"};
    BOOST_CHECK_THROW(parse_command_line(3, argv.data()), usage_error);
}

BOOST_AUTO_TEST_CASE(listen_addresses) {
    BOOST_TEST(parse_listen_address("127.0.0.1:3000")->port == 3000);
    BOOST_TEST(parse_listen_address("[::1]:9100")->host == "::1");
    BOOST_TEST(!parse_listen_address("127.0.0.1").has_value());
    BOOST_TEST(!parse_listen_address("localhost:3000").has_value());
    BOOST_TEST(!parse_listen_address("127.0.0.1:0").has_value());
    BOOST_TEST(!parse_listen_address("[::1]").has_value());
    BOOST_TEST(!parse_listen_address("127.0.0.1:70000").has_value());
}

// Command-line parsing and checking: every invalid input is a usage_error with a reason.
#define BOOST_TEST_MODULE options
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "config_tree.hpp"

using namespace nm;
using nm::testing::config_tree;

namespace {

struct fixture : config_tree {
    command_line parse(std::vector<std::string> extra) const {
        std::vector<std::string> args{"nodeos-monitor"};
        // The fixture's paths, unless the test gives its own.
        for (auto const& [flag, value] : {std::pair{"--nodeos", nodeos}, std::pair{"--active-config-dir", active},
                                          std::pair{"--standby-config-dir", standby}}) {
            if (std::find(extra.begin(), extra.end(), flag) == extra.end()) args.insert(args.end(), {flag, value});
        }
        args.insert(args.end(), extra.begin(), extra.end());
        return testing::parse_args(args);
    }

    void rejects(std::vector<std::string> extra, std::string const& mentions) const {
        testing::expect_usage_error([&] { parse(extra); }, mentions);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(defaults_match_the_original, fixture) {
    auto c = parse({}).cfg;
    BOOST_TEST(c.failover_group == "eos");
    BOOST_TEST(c.lease_ttl == 10);
    BOOST_TEST(c.stop_timeout == 30);
    BOOST_TEST(c.etcd_endpoints.size() == 1u);
    BOOST_TEST(c.etcd_endpoints[0].host == "127.0.0.1");
    BOOST_TEST(c.etcd_endpoints[0].port == 2379);
    BOOST_TEST(!c.node_name.empty());
    BOOST_TEST(!c.tls());
    config fresh;
    BOOST_TEST(fresh.active_config_dir == "/etc/nodeos-active-configs/");
    BOOST_TEST(fresh.standby_config_dir == "/etc/nodeos-standby-configs/");
    BOOST_TEST(fresh.nodeos == "/opt/eosio/bin/nodeos");
}

BOOST_FIXTURE_TEST_CASE(repeatable_and_comma_separated_flags, fixture) {
    auto c = parse({"--etcd-endpoints", "http://10.0.0.1:2379,https://[::1]:2380", "--etcd-endpoints=http://h:1",
                    "--nodeos-args=--data-dir=/x", "--nodeos-args", "two words", "--node-name", "n1"})
                 .cfg;
    BOOST_TEST_REQUIRE(c.etcd_endpoints.size() == 3u);
    BOOST_TEST(c.etcd_endpoints[1].tls);
    BOOST_TEST(c.etcd_endpoints[1].host == "::1");
    BOOST_TEST(c.etcd_endpoints[1].port == 2380);
    BOOST_TEST(c.etcd_endpoints[2].host == "h");
    BOOST_TEST((c.nodeos_args == std::vector<std::string>{"--data-dir=/x", "two words"}));
    BOOST_TEST(c.node_name == "n1");
}

BOOST_FIXTURE_TEST_CASE(cert_flags_mean_tls_everywhere, fixture) {
    auto ca = root + "/ca.pem";
    std::ofstream(ca) << "x";
    auto c = parse({"--etcd-ca", ca}).cfg;
    BOOST_TEST(c.etcd_endpoints[0].tls);
}

BOOST_FIXTURE_TEST_CASE(invalid_input_is_rejected_with_a_reason, fixture) {
    rejects({"--no-such-flag"}, "no-such-flag");
    rejects({"--lease-ttl", "1"}, "--lease-ttl");
    rejects({"--lease-ttl", "ten"}, "lease-ttl");
    rejects({"--stop-timeout", "0"}, "--stop-timeout");
    rejects({"--etcd-endpoints", "ftp://x:1"}, "ftp://x:1");
    rejects({"--etcd-endpoints", "127.0.0.1:2379"}, "127.0.0.1:2379");
    rejects({"--etcd-endpoints", "http://h:99999"}, "http://h:99999");
    rejects({"--etcd-endpoints", "http://:2379"}, "http://:2379");
    rejects({"--etcd-cert", nodeos}, "--etcd-key");
    rejects({"--etcd-key", nodeos}, "--etcd-cert");
    rejects({"--etcd-ca", root + "/missing.pem"}, "missing.pem");
    rejects({"--nodeos", root + "/missing"}, "--nodeos");
    rejects({"--nodeos", active + "/config.ini"}, "not executable");
    rejects({"--active-config-dir", root + "/nope"}, "--active-config-dir");
    rejects({"--standby-config-dir", root}, "config.ini");
    rejects({"--failover-group", ""}, "--failover-group");
}

// --- etcd users ------------------------------------------------------------------------

namespace {

std::string write_password(std::string const& path, std::string const& text, mode_t mode = 0600) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
    return path;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(the_password_comes_from_its_file, fixture) {
    auto file = write_password(root + "/password", "s3cret pass\n", 0640);
    auto c = parse({"--etcd-user", "bp", "--etcd-password-file", file}).cfg;
    BOOST_TEST(c.etcd_user == "bp");
    BOOST_TEST(c.etcd_password == "s3cret pass", "the newline that ends the line is not part of it");
    write_password(file, "crlf\r\n");
    BOOST_TEST(parse({"--etcd-user", "bp", "--etcd-password-file", file}).cfg.etcd_password == "crlf");
    write_password(file, "no newline");
    BOOST_TEST(parse({"--etcd-user", "bp", "--etcd-password-file", file}).cfg.etcd_password == "no newline");
    auto none = parse({}).cfg;
    BOOST_TEST(none.etcd_user.empty());
    BOOST_TEST(none.etcd_password.empty());
}

BOOST_FIXTURE_TEST_CASE(a_bad_password_file_is_refused_and_named, fixture) {
    auto file = root + "/password";
    auto user = [&](std::vector<std::string> more) {
        more.insert(more.begin(), {"--etcd-user", "bp"});
        return more;
    };
    write_password(file, "secret\n", 0644);
    rejects(user({"--etcd-password-file", file}), "--etcd-password-file " + file + ": readable by other users");
    write_password(file, "secret\n", 0604);
    rejects(user({"--etcd-password-file", file}), "readable by other users (chmod o-r " + file + ")");
    write_password(file, "");
    rejects(user({"--etcd-password-file", file}), "--etcd-password-file " + file + ": empty");
    write_password(file, "\n");
    rejects(user({"--etcd-password-file", file}), ": empty");
    write_password(file, "one\ntwo\n");
    rejects(user({"--etcd-password-file", file}), "more than one line");
    write_password(file, std::string(5000, 'x'));
    rejects(user({"--etcd-password-file", file}), "longer than 4096 bytes");
    write_password(file, "caf\xe9\n");
    rejects(user({"--etcd-password-file", file}), "not UTF-8");
    rejects(user({"--etcd-password-file", root + "/missing"}), "--etcd-password-file " + root + "/missing: No such file");
    rejects(user({"--etcd-password-file", root}), "not a regular file");
    write_password(file, "secret\n");
    rejects(user({}), "--etcd-user needs --etcd-password-file");
    rejects({"--etcd-password-file", file}, "--etcd-password-file needs --etcd-user");
}

BOOST_FIXTURE_TEST_CASE(a_password_on_the_command_line_is_refused_unechoed, fixture) {
    auto what = testing::expect_usage_error([&] { parse({"--etcd-user", "bp", "--etcd-password", "hunter2"}); },
                                            "--etcd-password: a password is never given on the command line");
    BOOST_TEST(what.find("hunter2") == std::string::npos, "the refusal must not repeat the password: " << what);
    what = testing::expect_usage_error([&] { parse({"--etcd-password=hunter2"}); }, "--etcd-password-file");
    BOOST_TEST(what.find("hunter2") == std::string::npos, "the refusal must not repeat the password: " << what);
}

BOOST_AUTO_TEST_CASE(endpoint_urls) {
    auto e = parse_endpoint_url("https://etcd.example:2379/");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->tls);
    BOOST_TEST(e->host == "etcd.example");
    BOOST_TEST(parse_endpoint_url("http://h")->port == 80);
    BOOST_TEST(!parse_endpoint_url("http://h:").has_value());
    BOOST_TEST(!parse_endpoint_url("http://[::1").has_value());
    BOOST_TEST(!parse_endpoint_url("http://u@h:1").has_value());
    BOOST_TEST(!parse_endpoint_url("h:1").has_value());
}

BOOST_AUTO_TEST_CASE(help_and_version_need_nothing_else) {
    char const* help[] = {"nodeos-monitor", "--help"};
    auto h = parse_command_line(2, help);
    BOOST_TEST((h.action == command_line::what::help));
    BOOST_TEST(h.text.find("--failover-group") != std::string::npos);
    char const* version[] = {"nodeos-monitor", "--version"};
    BOOST_TEST((parse_command_line(2, version).action == command_line::what::version));
    // Each section once, for the daemon and for a command.
    char const* command_help[] = {"nodeos-monitor", "status", "--help"};
    for (auto const& text : {h.text, parse_command_line(3, command_help).text}) {
        auto const heading = std::string("Operator commands (");
        auto const first = text.find(heading);
        BOOST_TEST(first != std::string::npos);
        BOOST_TEST(text.find(heading, first + 1) == std::string::npos);
    }
}

// --- standby modes, health, the dirty database ----------------------------------------

namespace {

void write_plugins(std::string const& dir, std::vector<std::string> const& plugins) {
    std::ofstream ini(dir + "/config.ini");
    ini << "# a producer's config\nproducer-name = bp1\n";
    for (auto const& p : plugins) ini << "plugin = " << p << "   # loaded\n";
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(paused_mode_needs_the_producer_api_plugin, fixture) {
    rejects({"--standby-mode", "paused"}, "does not load eosio::producer_api_plugin");
    write_plugins(active, {"eosio::producer_api_plugin"});
    rejects({"--standby-mode", "paused"}, "does not load eosio::chain_api_plugin");
    write_plugins(active, {"eosio::chain_api_plugin", "eosio::producer_api_plugin"});
    auto c = parse({"--standby-mode", "paused", "--standby-config-dir", "/nonexistent"}).cfg;  // not used
    BOOST_TEST((c.standby == standby_mode::paused));
    BOOST_TEST_REQUIRE(c.nodeos_api.has_value());  // nodeos's default address
    BOOST_TEST(c.nodeos_api->port == 8888);
    auto p = c.timings();
    BOOST_TEST(p.health_gated);
    BOOST_TEST((p.standby == standby_mode::paused));
    BOOST_TEST((p.block_interval == std::chrono::milliseconds(500)));
    rejects({"--standby-mode", "hot"}, "--standby-mode hot: must be restart or paused");
}

BOOST_FIXTURE_TEST_CASE(health_gating_needs_the_chain_api_in_both_config_dirs, fixture) {
    write_plugins(active, {"eosio::chain_api_plugin"});
    rejects({"--nodeos-api", "http://127.0.0.1:8888"}, "--standby-config-dir");
    write_plugins(standby, {"eosio::chain_api_plugin"});
    auto c = parse({"--nodeos-api", "http://127.0.0.1:8889", "--max-head-lag", "30"}).cfg;
    BOOST_TEST(c.nodeos_api->port == 8889);
    BOOST_TEST(c.timings().health_gated);
    BOOST_TEST((c.timings().max_head_lag == std::chrono::seconds(30)));
    BOOST_TEST(!parse({}).cfg.timings().health_gated);  // restart mode without an API: as the original
    rejects({"--nodeos-api", "https://127.0.0.1:8888"}, "not an http:// URL");
    rejects({"--nodeos-api", "127.0.0.1:8888"}, "not an http:// URL");
    rejects({"--nodeos-api", "http://127.0.0.1:8888", "--max-head-lag", "0"}, "--max-head-lag 0");
}

BOOST_FIXTURE_TEST_CASE(dirty_db_args_need_the_health_check, fixture) {
    rejects({"--dirty-db-args=--replay-blockchain"}, "--dirty-db-args needs --nodeos-api");
    write_plugins(active, {"eosio::chain_api_plugin"});
    write_plugins(standby, {"eosio::chain_api_plugin"});
    auto c = parse({"--nodeos-api", "http://127.0.0.1:8888", "--dirty-db-args=--snapshot",
                    "--dirty-db-args", "/var/lib/nodeos/snapshots/latest.bin"})
                 .cfg;
    BOOST_TEST((c.dirty_db_args == std::vector<std::string>{"--snapshot", "/var/lib/nodeos/snapshots/latest.bin"}));
    BOOST_TEST(c.timings().dirty_recovery);
}

BOOST_FIXTURE_TEST_CASE(the_pause_must_have_time_before_the_kill, fixture) {
    write_plugins(active, {"eosio::chain_api_plugin", "eosio::producer_api_plugin"});
    // TTL 2: pause 800 ms before the deadline, SIGKILL reserve 200 ms: a 500 ms block leaves 100 ms.
    BOOST_TEST(parse({"--standby-mode", "paused", "--lease-ttl", "2"}).cfg.timings().pause_budget() ==
               std::chrono::milliseconds(100));
    rejects({"--standby-mode", "paused", "--lease-ttl", "2", "--block-interval-ms", "550"},
            "leaves the API 50 ms to confirm it");
    rejects({"--block-interval-ms", "5"}, "--block-interval-ms 5: must be between 10 and 10000");
}

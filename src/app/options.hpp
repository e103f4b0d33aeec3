#pragma once
// Command line: the original monitor's flags with its defaults, plus this monitor's own.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy.hpp"

namespace nm {

// Invalid input: main prints the reason on one line and exits with code 2.
struct usage_error : std::runtime_error {
    explicit usage_error(std::string const& what) : std::runtime_error(what) {}
    usage_error(std::string option, std::string const& what) : std::runtime_error(what), option(std::move(option)) {}
    std::string option;  // the option at fault (no dashes), when one is: its line in --config is named
};

// "--NAME DETAIL" (or "--NAME: DETAIL" when the detail starts with ':'), about that option.
usage_error option_error(std::string const& name, std::string const& detail);

struct endpoint_url {
    bool tls = false;
    std::string host;  // without IPv6 brackets
    std::uint16_t port = 0;
};

// "http://host:port" or "https://[v6]:port"; a trailing "/" is allowed. nullopt if invalid.
std::optional<endpoint_url> parse_endpoint_url(std::string_view url);

// --metrics-addr "host:port" with a numeric IPv4 or "[v6]" host; nullopt if invalid.
struct listen_address {
    std::string host;
    std::uint16_t port = 0;
};
std::optional<listen_address> parse_listen_address(std::string_view text);

struct config {
    std::string active_config_dir = "/etc/nodeos-active-configs/";
    std::string standby_config_dir = "/etc/nodeos-standby-configs/";
    std::string nodeos = "/opt/eosio/bin/nodeos";
    std::vector<std::string> nodeos_args;
    std::vector<endpoint_url> etcd_endpoints;
    std::string etcd_ca, etcd_cert, etcd_key;
    std::string etcd_user;           // empty: no authentication
    std::string etcd_password_file;  // the password's file, never the password itself
    std::string etcd_password;       // read from etcd_password_file
    std::string failover_group = "eos";
    std::string node_name;  // default: the host name
    int lease_ttl = 10;
    int stop_timeout = 30;
    standby_mode standby = standby_mode::restart;
    std::optional<endpoint_url> nodeos_api;  // given, or the default in paused mode: health gating on
    int block_interval_ms = 500;
    int max_head_lag = 6;                    // seconds
    std::vector<std::string> dirty_db_args;  // added to the start after a dirty-database exit
    std::vector<std::string> on_role_change; // hooks
    int hook_timeout = 30;                   // seconds
    bool debug = false;
    std::optional<listen_address> metrics_addr = listen_address{"127.0.0.1", 3000};  // nullopt: no endpoint
    bool json_logs = false;
    std::string config_file;  // --config, when given

    bool tls() const { return !etcd_ca.empty() || !etcd_cert.empty(); }
    // The failover core's timings and choices from these flags.
    policy timings() const;
};

// The operator commands: `nodeos-monitor status|switchover|pause|resume [flags]`, with the
// daemon's config file and etcd flags.
struct command_options {
    bool json = false;      // status --json
    std::string to;         // switchover --to NODE (empty: the best candidate)
    int wait = 30;          // switchover --wait SECONDS
    std::string node;       // pause|resume --node NODE (empty: the group)
    std::string reason;     // pause|switchover --reason TEXT
};

struct command_line {
    enum class what { run, help, version, status, switchover, pause, resume } action = what::run;
    std::string text;  // help text for what::help
    config cfg;
    command_options command;
};

// Parses and checks the flags, the --config file and the files they name. Throws
// usage_error; errors in the config file name the file and the line.
command_line parse_command_line(int argc, char const* const* argv);

}  // namespace nm

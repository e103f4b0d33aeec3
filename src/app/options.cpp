#include "app/options.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "app/config_file.hpp"
#include "app/preflight.hpp"
#include "core/text.hpp"

namespace po = boost::program_options;

namespace nm {
namespace {

constexpr char const* default_nodeos_api = "http://127.0.0.1:8888";  // nodeos's own default address

std::vector<std::string> split_commas(std::vector<std::string> const& values) {
    std::vector<std::string> out;
    for (auto const& v : values) {
        std::string_view rest = v;
        while (true) {
            auto comma = rest.find(',');
            auto part = rest.substr(0, comma);
            if (!part.empty()) out.emplace_back(part);
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return out;
}

std::string host_name();

// Turns the parsed text into the config and checks it.
void finish(config& c, std::vector<std::string>& endpoints, std::string const& metrics_addr,
            std::string const& log_format_name, std::string const& standby_name, std::string const& nodeos_api,
            bool daemon) {
    if (standby_name == "paused") {
        c.standby = standby_mode::paused;
    } else if (standby_name != "restart") {
        throw option_error("standby-mode", cat(standby_name, ": must be restart or paused"));
    }
    if (!nodeos_api.empty() || c.standby == standby_mode::paused) {
        auto const url = nodeos_api.empty() ? std::string(default_nodeos_api) : nodeos_api;
        c.nodeos_api = parse_endpoint_url(url);
        if (!c.nodeos_api || c.nodeos_api->tls) {
            throw option_error("nodeos-api", cat(url, ": not an http:// URL with host and port"));
        }
    }
    if (endpoints.empty()) endpoints.push_back("http://127.0.0.1:2379");
    for (auto const& url : split_commas(endpoints)) {
        auto e = parse_endpoint_url(url);
        if (!e) throw option_error("etcd-endpoints", cat(url, ": not an http:// or https:// URL with host and port"));
        if (c.tls()) e->tls = true;
        c.etcd_endpoints.push_back(*e);
    }
    if (c.etcd_endpoints.empty()) throw option_error("etcd-endpoints", ": no endpoint given");
    if (metrics_addr.empty()) {
        c.metrics_addr.reset();
    } else {
        c.metrics_addr = parse_listen_address(metrics_addr);
        if (!c.metrics_addr) {
            throw option_error("metrics-addr", cat(metrics_addr, ": not a numeric IPv4 or [IPv6] address with a port"));
        }
    }
    if (log_format_name != "text" && log_format_name != "json") {
        throw option_error("log-format", cat(log_format_name, ": must be text or json"));
    }
    c.json_logs = log_format_name == "json";
    if (c.node_name.empty()) c.node_name = host_name();
    read_password(c);  // the commands need it as much as the daemon
    if (daemon) preflight(c);
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

}  // namespace

usage_error option_error(std::string const& name, std::string const& detail) {
    return usage_error(name, cat("--", name, detail.starts_with(':') ? "" : " ", detail));
}

policy config::timings() const {
    return policy::from(policy::settings{.ttl = seconds(lease_ttl),
                                         .stop_timeout = seconds(stop_timeout),
                                         .standby = standby,
                                         .health_gated = nodeos_api.has_value(),
                                         .dirty_recovery = !dirty_db_args.empty(),
                                         .block_interval = milliseconds(block_interval_ms),
                                         .max_head_lag = seconds(max_head_lag)});
}

std::optional<listen_address> parse_listen_address(std::string_view text) {
    listen_address a;
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        in6_addr v6{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) return std::nullopt;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        in_addr v4{};
        if (::inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1) return std::nullopt;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
        return std::nullopt;
    }
    a.host = host;
    a.port = static_cast<std::uint16_t>(value);
    return a;
}

std::optional<endpoint_url> parse_endpoint_url(std::string_view url) {
    endpoint_url e;
    if (url.starts_with("http://")) {
        url.remove_prefix(7);
    } else if (url.starts_with("https://")) {
        url.remove_prefix(8);
        e.tls = true;
    } else {
        return std::nullopt;
    }
    if (url.ends_with('/')) url.remove_suffix(1);
    std::string_view port;
    if (url.starts_with('[')) {
        auto close = url.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        e.host = url.substr(1, close - 1);
        auto rest = url.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else {
        auto colon = url.find(':');
        e.host = url.substr(0, colon);
        if (colon != std::string_view::npos) port = url.substr(colon + 1);
    }
    if (e.host.empty() || e.host.find_first_of("/?#@ ") != std::string::npos) return std::nullopt;
    if (port.empty()) {
        if (url.find(':') != std::string_view::npos && !url.starts_with('[')) return std::nullopt;
        e.port = e.tls ? 443 : 80;
        return e;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    e.port = static_cast<std::uint16_t>(value);
    return e;
}

command_line parse_command_line(int argc, char const* const* argv) {
    command_line out;
    config& c = out.cfg;
    // An operator command comes first; the rest are the daemon's flags and the command's own.
    static std::map<std::string_view, command_line::what> const commands{
        {"status", command_line::what::status},
        {"switchover", command_line::what::switchover},
        {"pause", command_line::what::pause},
        {"resume", command_line::what::resume},
    };
    if (argc > 1) {
        if (auto found = commands.find(argv[1]); found != commands.end()) {
            out.action = found->second;
            --argc;
            ++argv;
        }
    }
    bool const daemon = out.action == command_line::what::run;
    auto& o = out.command;
    std::vector<std::string> endpoints;
    std::string metrics_addr = "127.0.0.1:3000";
    std::string log_format_name = "text";
    std::string standby_name = "restart";
    std::string nodeos_api;

    po::options_description command_only("Command line only");
    command_only.add_options()
        ("help,h", "show this help and exit")
        ("version", "show the version and exit")
        ("config", po::value(&c.config_file),
         "read options from FILE (the same names, without --, as name = value lines); flags override it");

    po::options_description flags("Options (also in the --config file)");
    flags.add_options()
        ("active-config-dir", po::value(&c.active_config_dir)->default_value(c.active_config_dir),
         "nodeos --config-dir while this node holds the lock (the producer)")
        ("standby-config-dir", po::value(&c.standby_config_dir)->default_value(c.standby_config_dir),
         "nodeos --config-dir otherwise (a validator)")
        ("nodeos", po::value(&c.nodeos)->default_value(c.nodeos), "the nodeos executable")
        ("nodeos-args", po::value(&c.nodeos_args)->composing(),
         "one extra argument for nodeos, passed without a shell; repeat for more "
         "(write --nodeos-args=--flag for values that start with -)")
        ("etcd-endpoints", po::value(&endpoints)->composing(),
         "etcd URL, http:// or https://; repeat or separate with commas (default http://127.0.0.1:2379)")
        ("etcd-ca", po::value(&c.etcd_ca), "CA bundle that signs etcd's server certificates")
        ("etcd-cert", po::value(&c.etcd_cert), "client certificate for etcd (needs --etcd-key)")
        ("etcd-key", po::value(&c.etcd_key), "private key of --etcd-cert")
        ("etcd-user", po::value(&c.etcd_user),
         "etcd user, when etcd has authentication enabled (needs --etcd-password-file); its role needs readwrite "
         "on the group's keys [GROUP, GROUP0)")
        ("etcd-password-file", po::value(&c.etcd_password_file),
         "file that holds the etcd user's password on one line; other users must not be able to read it")
        ("failover-group", po::value(&c.failover_group)->default_value(c.failover_group),
         "the lock key in etcd: monitors in one group elect one producer")
        ("node-name", po::value(&c.node_name), "this node's name in the lock (default: the host name)")
        ("lease-ttl", po::value(&c.lease_ttl)->default_value(c.lease_ttl),
         "etcd lease TTL in seconds (at least 2): the longest a dead producer holds the lock")
        ("stop-timeout", po::value(&c.stop_timeout)->default_value(c.stop_timeout),
         "seconds a graceful stop of nodeos may take before SIGKILL")
        ("standby-mode", po::value(&standby_name)->default_value(standby_name),
         "restart: the standby runs --standby-config-dir and is restarted as the producer; paused: every node "
         "runs --active-config-dir paused, resumed through nodeos's producer API (hot standby)")
        ("nodeos-api", po::value(&nodeos_api),
         "nodeos's HTTP API, for health checks (and, in paused mode, pause and resume); a candidate must be "
         "healthy (default in paused mode: http://127.0.0.1:8888; in restart mode, no health gating unless given)")
        ("block-interval-ms", po::value(&c.block_interval_ms)->default_value(c.block_interval_ms),
         "the chain's block interval: a pause lets the block in progress be signed, so a paused producer "
         "counts as producing for this long after the pause")
        ("max-head-lag", po::value(&c.max_head_lag)->default_value(c.max_head_lag),
         "seconds a candidate's head may be behind the wall clock (one producer round of 12 blocks by default); "
         "a producer whose API or head is silent this long has failed")
        ("on-role-change", po::value(&c.on_role_change)->composing(),
         "a command run on every change of role, beside the loop: /bin/sh -c 'CMD \"$@\"' with the new role, "
         "the old one, the group and the node as arguments (and NM_ROLE, NM_OLD_ROLE, NM_GROUP, NM_NODE); "
         "repeat for several; runs of one command keep the order of the changes")
        ("hook-timeout", po::value(&c.hook_timeout)->default_value(c.hook_timeout),
         "seconds a role-change command may run before it is killed")
        ("dirty-db-args", po::value(&c.dirty_db_args)->composing(),
         "an argument added to nodeos's next start after it refused a dirty database (exit 2), e.g. "
         "--dirty-db-args=--replay-blockchain; repeat for more. Without it the node waits for an operator")
        ("metrics-addr", po::value(&metrics_addr)->default_value(metrics_addr),
         "address:port of the HTTP endpoint (/metrics, /healthz, /status); numeric IPv4 or [IPv6]; "
         "empty to turn it off")
        ("log-format", po::value(&log_format_name)->default_value(log_format_name), "text or json")
        ("debug", po::bool_switch(&c.debug), "log more detail");

    po::options_description commands_flags("Operator commands (nodeos-monitor status|switchover|pause|resume)");
    commands_flags.add_options()
        ("json", po::bool_switch(&o.json), "status: one JSON object instead of a table")
        ("to", po::value(&o.to), "switchover: the node to hand over to (default: the best candidate)")
        ("wait", po::value(&o.wait)->default_value(o.wait), "switchover: seconds to wait for it to complete")
        ("node", po::value(&o.node), "pause, resume: one node instead of the whole group")
        ("reason", po::value(&o.reason), "pause, switchover: a note for the other operators");

    // Known, so that it is refused with the reason (and its value never echoed), rather than
    // taken for --etcd-password-file, which its prefix would otherwise abbreviate.
    std::string password_given;
    po::options_description refused("Refused");
    refused.add_options()("etcd-password", po::value(&password_given));
    po::options_description in_file;
    in_file.add(flags).add(refused);

    po::options_description visible;
    visible.add(command_only).add(flags);
    if (!daemon) visible.add(commands_flags);
    po::options_description all;
    all.add(visible).add(refused);
    po::variables_map vm;
    file_origin origin;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
        if (vm.count("config") && !vm.count("help") && !vm.count("version")) {
            origin = read_config_file(vm["config"].as<std::string>(), in_file, vm);
        }
        po::notify(vm);
    } catch (po::error const& e) {
        throw usage_error(what_of(e, std::any_of(argv + 1, argv + argc, [](char const* a) { return has_placeholder(a); })));
    }
    if (vm.count("etcd-password")) {
        throw origin.locate(option_error("etcd-password", ": a password is never given on the command line or in the "
                                                          "config file: write it to a file only the monitor's user can "
                                                          "read, and name that file with --etcd-password-file"));
    }
    if (vm.count("help")) {
        std::ostringstream text;
        text << "Usage: nodeos-monitor [options]\n"
                "       nodeos-monitor status|switchover|pause|resume [options]\n\n"
                "Runs nodeos as the block producer while this node holds the etcd lock of its\n"
                "failover group, and as a validator otherwise. The commands show the group\n"
                "(status), hand production to another node (switchover), and pause or resume\n"
                "automatic takeover for maintenance; they use the same config file and etcd flags.\n\n"
             << visible;
        if (daemon) text << commands_flags;  // a command's own flags are in `visible` already
        out.action = command_line::what::help;
        out.text = text.str();
        return out;
    }
    if (vm.count("version")) {
        out.action = command_line::what::version;
        return out;
    }
    try {
        finish(c, endpoints, metrics_addr, log_format_name, standby_name, nodeos_api, daemon);
        if (out.action == command_line::what::switchover && (o.wait < 1 || o.wait > 3600)) {
            throw option_error("wait", cat(o.wait, ": must be between 1 and 3600 seconds"));
        }
    } catch (usage_error const& e) {
        throw origin.locate(e);
    }
    return out;
}

}  // namespace nm

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

#include "core/text.hpp"

namespace po = boost::program_options;

namespace nm {
namespace {

constexpr int min_ttl = 2;  // etcd's smallest lease TTL
constexpr char const* default_nodeos_api = "http://127.0.0.1:8888";  // nodeos's own default address
constexpr std::size_t max_password_length = 4096;

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

// Boost writes its messages by replacing each %name% placeholder with the offending text
// for as long as one is left, so text that itself holds one ("--wait %value%") never ends
// it: the message grows until memory runs out. Such text gets a message that names the
// option without quoting the text.
bool has_placeholder(std::string_view text) {
    // Every name Boost 1.81 substitutes (errors.hpp, value_semantic.cpp).
    for (std::string_view name : {"%canonical_option%", "%invalid_line%", "%option%", "%original_token%", "%prefix%", "%value%"}) {
        if (text.find(name) != std::string_view::npos) return true;
    }
    return false;
}

std::string what_of(po::error const& e, bool text_has_placeholder) {
    auto const* named = dynamic_cast<po::error_with_option_name const*>(&e);
    if (!named || !text_has_placeholder) return e.what();
    auto const option = named->get_option_name();
    if (dynamic_cast<po::unknown_option const*>(&e)) return cat("unrecognised option '", option, "'");
    if (option.empty()) return "invalid line";
    return cat("the argument for option '", option, "' is invalid");
}

bool is_directory(std::string const& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_readable_file(std::string const& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
}

void check_config_dir(std::string const& flag, std::string const& dir) {
    if (!is_directory(dir)) throw usage_error(cat("--", flag, " ", dir, ": no such directory"));
    auto ini = dir + (dir.ends_with('/') ? "" : "/") + "config.ini";
    if (!is_readable_file(ini)) throw usage_error(cat("--", flag, " ", dir, ": no readable config.ini in it"));
}

// The plugins a config.ini loads (`plugin = …` lines).
std::vector<std::string> plugins_of(std::string const& dir) {
    std::ifstream in(dir + (dir.ends_with('/') ? "" : "/") + "config.ini");
    std::vector<std::string> found;
    for (std::string line; std::getline(in, line);) {
        line = line.substr(0, line.find('#'));
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        auto trim = [](std::string s) {
            auto first = s.find_first_not_of(" \t\r");
            auto last = s.find_last_not_of(" \t\r");
            return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
        };
        if (trim(line.substr(0, eq)) == "plugin") found.push_back(trim(line.substr(eq + 1)));
    }
    return found;
}

void check_plugin(std::string const& flag, std::string const& dir, std::string const& plugin, char const* why) {
    auto plugins = plugins_of(dir);
    if (std::find(plugins.begin(), plugins.end(), plugin) == plugins.end()) {
        throw usage_error(cat("--", flag, " ", dir, ": its config.ini does not load ", plugin, " (", why, ")"));
    }
}

void check_readable(std::string const& flag, std::string const& path) {
    if (!path.empty() && !is_readable_file(path)) {
        throw usage_error(cat("--", flag, " ", path, ": not a readable file"));
    }
}

void check(config const& c) {
    struct stat st {};
    if (::stat(c.nodeos.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw usage_error(cat("--nodeos ", c.nodeos, ": no such file"));
    }
    if (::access(c.nodeos.c_str(), X_OK) != 0) throw usage_error(cat("--nodeos ", c.nodeos, ": not executable"));
    bool const paused = c.standby == standby_mode::paused;
    check_config_dir("active-config-dir", c.active_config_dir);
    if (!paused) check_config_dir("standby-config-dir", c.standby_config_dir);
    if (paused) {
        check_plugin("active-config-dir", c.active_config_dir, "eosio::producer_api_plugin",
                     "--standby-mode paused pauses and resumes nodeos through it");
    }
    if (c.nodeos_api) {
        check_plugin("active-config-dir", c.active_config_dir, "eosio::chain_api_plugin",
                     "the health check reads /v1/chain/get_info");
        if (!paused) {
            check_plugin("standby-config-dir", c.standby_config_dir, "eosio::chain_api_plugin",
                         "the health check reads /v1/chain/get_info");
        }
    }
    if (c.block_interval_ms < 10 || c.block_interval_ms > 10000) {
        throw usage_error(cat("--block-interval-ms ", c.block_interval_ms, ": must be between 10 and 10000"));
    }
    if (c.hook_timeout < 1 || c.hook_timeout > 3600) {
        throw usage_error(cat("--hook-timeout ", c.hook_timeout, ": must be between 1 and 3600 seconds"));
    }
    for (auto const& command : c.on_role_change) {
        if (command.find_first_not_of(" \t") == std::string::npos) throw usage_error("--on-role-change: an empty command");
    }
    if (c.max_head_lag < 1) throw usage_error(cat("--max-head-lag ", c.max_head_lag, ": must be at least 1 second"));
    // A replay takes minutes; only nodeos's health tells when it is over, and a node that
    // campaigned before would stop its own replay to restart as the producer.
    if (!c.dirty_db_args.empty() && !c.nodeos_api) {
        throw usage_error("--dirty-db-args needs --nodeos-api: only nodeos's health check tells when a replay is over");
    }
    if (c.lease_ttl < min_ttl) throw usage_error(cat("--lease-ttl ", c.lease_ttl, ": must be at least ", min_ttl, " seconds"));
    if (c.lease_ttl > 3600) throw usage_error(cat("--lease-ttl ", c.lease_ttl, ": must be at most 3600 seconds"));
    if (paused) {
        auto const p = c.timings();
        if (p.pause_budget() < milliseconds(100)) {
            throw usage_error(cat("--block-interval-ms ", c.block_interval_ms, ": a fence by pause at --lease-ttl ", c.lease_ttl,
                                  " leaves the API ", to_ms(p.pause_budget()),
                                  " ms to confirm it (at least 100 needed): raise --lease-ttl"));
        }
    }
    if (c.stop_timeout < 1) throw usage_error(cat("--stop-timeout ", c.stop_timeout, ": must be at least 1 second"));
    if (c.failover_group.empty()) throw usage_error("--failover-group: must not be empty");
    if (c.node_name.empty()) throw usage_error("--node-name: must not be empty");
    if (!c.etcd_cert.empty() && c.etcd_key.empty()) throw usage_error("--etcd-cert needs --etcd-key");
    if (c.etcd_cert.empty() && !c.etcd_key.empty()) throw usage_error("--etcd-key needs --etcd-cert");
    check_readable("etcd-ca", c.etcd_ca);
    check_readable("etcd-cert", c.etcd_cert);
    check_readable("etcd-key", c.etcd_key);
}

// Where each option of the config file was set, so that a later check can name the line.
struct file_origin {
    std::string path;
    std::map<std::string, int> line_of;  // option name -> line number

    std::string where(int line) const { return cat(path, ":", line, ": "); }
};

std::string strip_comment(std::string const& line) {
    auto text = line.substr(0, line.find('#'));
    auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos) return {};
    auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

bool readable_by_others(std::string const& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0;
}

// etcd's gateway reads JSON, whose decoder turns bytes that are not UTF-8 into U+FFFD: a
// password with such bytes would be refused for no visible reason.
bool is_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        auto const c = static_cast<unsigned char>(text[i]);
        std::size_t const length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (length == 0 || i + length > text.size()) return false;
        for (std::size_t k = 1; k < length; ++k) {
            if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
        }
        i += length;
    }
    return true;
}

// The user's password: the one line of --etcd-password-file, a file that other users
// cannot read (as a key file should be), ending with or without a newline.
void read_password(config& c) {
    if (c.etcd_user.empty() && c.etcd_password_file.empty()) return;
    if (c.etcd_user.empty()) throw usage_error("--etcd-password-file needs --etcd-user");
    if (c.etcd_password_file.empty()) {
        throw usage_error("--etcd-user needs --etcd-password-file (the password is read from a file, never given "
                          "on the command line)");
    }
    if (!is_utf8(c.etcd_user)) throw usage_error(cat("--etcd-user: not UTF-8"));
    auto const& path = c.etcd_password_file;
    auto const flag = cat("--etcd-password-file ", path, ": ");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw usage_error(cat(flag, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) throw usage_error(cat(flag, "not a regular file"));
    if (st.st_mode & S_IROTH) throw usage_error(cat(flag, "readable by other users (chmod o-r ", path, ")"));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw usage_error(cat(flag, "cannot read it"));
    std::string text(max_password_length + 3, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) throw usage_error(cat(flag, "cannot read it"));
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.empty()) throw usage_error(cat(flag, "empty: it must hold the password"));
    if (text.size() > max_password_length) throw usage_error(cat(flag, "longer than ", max_password_length, " bytes"));
    if (text.find_first_of("\r\n") != std::string::npos) throw usage_error(cat(flag, "more than one line"));
    if (!is_utf8(text)) throw usage_error(cat(flag, "the password is not UTF-8"));
    c.etcd_password = std::move(text);
}

// Reads the file one line at a time, so that every error names its line. Options given
// on the command line win: their lines in the file are skipped.
file_origin read_config_file(std::string const& path, po::options_description const& allowed,
                             po::variables_map& vm) {
    std::ifstream in(path);
    if (!in) throw usage_error(cat("--config ", path, ": cannot read it"));
    file_origin origin{path, {}};
    std::set<std::string> from_command_line;
    for (auto const& [name, value] : vm) {
        if (!value.defaulted()) from_command_line.insert(name);
    }
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        auto text = strip_comment(line);
        if (text.empty()) continue;
        if (text.front() == '[') throw usage_error(cat(origin.where(number), "sections are not used in this file"));
        po::parsed_options parsed(&allowed);
        try {
            std::istringstream one(text);
            parsed = po::parse_config_file(one, allowed, true);
        } catch (po::error const& e) {
            throw usage_error(cat(origin.where(number), what_of(e, has_placeholder(text))));
        }
        for (auto const& opt : parsed.options) {
            if (opt.unregistered) throw usage_error(cat(origin.where(number), "unknown option '", opt.string_key, "'"));
            auto const& semantic = *allowed.find(opt.string_key, false).semantic();
            if (origin.line_of.contains(opt.string_key) && !semantic.is_composing()) {
                throw usage_error(cat(origin.where(number), "'", opt.string_key, "' is already set on line ",
                                      origin.line_of[opt.string_key]));
            }
            origin.line_of.emplace(opt.string_key, number);
        }
        std::erase_if(parsed.options, [&](auto const& opt) { return from_command_line.contains(opt.string_key); });
        try {
            po::store(parsed, vm);
        } catch (po::error const& e) {
            throw usage_error(cat(origin.where(number), what_of(e, has_placeholder(text))));
        }
    }
    if (auto key = origin.line_of.find("etcd-key"); key != origin.line_of.end() && readable_by_others(path)) {
        throw usage_error(cat(origin.where(key->second), "names a private key file but is readable by other users "
                                                         "(chmod o-r ", path, ")"));
    }
    return origin;
}

// A check failed on "--NAME ...": when NAME came from the config file, say where.
std::string locate(std::string const& message, file_origin const& origin) {
    if (!message.starts_with("--")) return message;
    auto name = message.substr(2, message.find_first_of(" :", 2) - 2);
    auto found = origin.line_of.find(name);
    if (found == origin.line_of.end()) return message;
    return origin.where(found->second) + message;
}

std::string host_name();

// Turns the parsed text into the config and checks it.
void finish(config& c, std::vector<std::string>& endpoints, std::string const& metrics_addr,
            std::string const& log_format_name, std::string const& standby_name, std::string const& nodeos_api,
            bool daemon) {
    if (standby_name == "paused") {
        c.standby = standby_mode::paused;
    } else if (standby_name != "restart") {
        throw usage_error(cat("--standby-mode ", standby_name, ": must be restart or paused"));
    }
    if (!nodeos_api.empty() || c.standby == standby_mode::paused) {
        auto const url = nodeos_api.empty() ? std::string(default_nodeos_api) : nodeos_api;
        c.nodeos_api = parse_endpoint_url(url);
        if (!c.nodeos_api || c.nodeos_api->tls) {
            throw usage_error(cat("--nodeos-api ", url, ": not an http:// URL with host and port"));
        }
    }
    if (endpoints.empty()) endpoints.push_back("http://127.0.0.1:2379");
    for (auto const& url : split_commas(endpoints)) {
        auto e = parse_endpoint_url(url);
        if (!e) throw usage_error(cat("--etcd-endpoints ", url, ": not an http:// or https:// URL with host and port"));
        if (c.tls()) e->tls = true;
        c.etcd_endpoints.push_back(*e);
    }
    if (c.etcd_endpoints.empty()) throw usage_error("--etcd-endpoints: no endpoint given");
    if (metrics_addr.empty()) {
        c.metrics_addr.reset();
    } else {
        c.metrics_addr = parse_listen_address(metrics_addr);
        if (!c.metrics_addr) {
            throw usage_error(cat("--metrics-addr ", metrics_addr, ": not a numeric IPv4 or [IPv6] address with a port"));
        }
    }
    if (log_format_name != "text" && log_format_name != "json") {
        throw usage_error(cat("--log-format ", log_format_name, ": must be text or json"));
    }
    c.json_logs = log_format_name == "json";
    if (c.node_name.empty()) c.node_name = host_name();
    read_password(c);  // the commands need it as much as the daemon
    if (daemon) check(c);
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

}  // namespace

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
        throw usage_error(locate("--etcd-password: a password is never given on the command line or in the config "
                                 "file: write it to a file only the monitor's user can read, and name that file "
                                 "with --etcd-password-file",
                                 origin));
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
            throw usage_error(cat("--wait ", o.wait, ": must be between 1 and 3600 seconds"));
        }
    } catch (usage_error const& e) {
        throw usage_error(locate(e.what(), origin));
    }
    return out;
}

}  // namespace nm

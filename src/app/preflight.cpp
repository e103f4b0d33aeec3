#include "app/preflight.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>

#include "core/text.hpp"

namespace nm {
namespace {

constexpr int min_ttl = 2;  // etcd's smallest lease TTL
constexpr std::size_t max_password_length = 4096;

bool is_directory(std::string const& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_readable_file(std::string const& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
}

void check_config_dir(std::string const& flag, std::string const& dir) {
    if (!is_directory(dir)) throw option_error(flag, cat(dir, ": no such directory"));
    auto ini = dir + (dir.ends_with('/') ? "" : "/") + "config.ini";
    if (!is_readable_file(ini)) throw option_error(flag, cat(dir, ": no readable config.ini in it"));
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
        throw option_error(flag, cat(dir, ": its config.ini does not load ", plugin, " (", why, ")"));
    }
}

void check_readable(std::string const& flag, std::string const& path) {
    if (!path.empty() && !is_readable_file(path)) {
        throw option_error(flag, cat(path, ": not a readable file"));
    }
}

}  // namespace

void preflight(config const& c) {
    struct stat st {};
    if (::stat(c.nodeos.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw option_error("nodeos", cat(c.nodeos, ": no such file"));
    }
    if (::access(c.nodeos.c_str(), X_OK) != 0) throw option_error("nodeos", cat(c.nodeos, ": not executable"));
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
        throw option_error("block-interval-ms", cat(c.block_interval_ms, ": must be between 10 and 10000"));
    }
    if (c.hook_timeout < 1 || c.hook_timeout > 3600) {
        throw option_error("hook-timeout", cat(c.hook_timeout, ": must be between 1 and 3600 seconds"));
    }
    for (auto const& command : c.on_role_change) {
        if (command.find_first_not_of(" \t") == std::string::npos) throw option_error("on-role-change", ": an empty command");
    }
    if (c.max_head_lag < 1) throw option_error("max-head-lag", cat(c.max_head_lag, ": must be at least 1 second"));
    // A replay takes minutes; only nodeos's health tells when it is over, and a node that
    // campaigned before would stop its own replay to restart as the producer.
    if (!c.dirty_db_args.empty() && !c.nodeos_api) {
        throw option_error("dirty-db-args", "needs --nodeos-api: only nodeos's health check tells when a replay is over");
    }
    if (c.lease_ttl < min_ttl) throw option_error("lease-ttl", cat(c.lease_ttl, ": must be at least ", min_ttl, " seconds"));
    if (c.lease_ttl > 3600) throw option_error("lease-ttl", cat(c.lease_ttl, ": must be at most 3600 seconds"));
    if (paused) {
        auto const p = c.timings();
        if (p.pause_budget() < milliseconds(100)) {
            throw option_error("block-interval-ms", cat(c.block_interval_ms, ": a fence by pause at --lease-ttl ", c.lease_ttl,
                                  " leaves the API ", to_ms(p.pause_budget()),
                                  " ms to confirm it (at least 100 needed): raise --lease-ttl"));
        }
    }
    if (c.stop_timeout < 1) throw option_error("stop-timeout", cat(c.stop_timeout, ": must be at least 1 second"));
    if (c.failover_group.empty()) throw option_error("failover-group", ": must not be empty");
    if (c.node_name.empty()) throw option_error("node-name", ": must not be empty");
    if (!c.etcd_cert.empty() && c.etcd_key.empty()) throw option_error("etcd-cert", "needs --etcd-key");
    if (c.etcd_cert.empty() && !c.etcd_key.empty()) throw option_error("etcd-key", "needs --etcd-cert");
    check_readable("etcd-ca", c.etcd_ca);
    check_readable("etcd-cert", c.etcd_cert);
    check_readable("etcd-key", c.etcd_key);
}

namespace {

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

}  // namespace

// Ending with or without a newline; as a key file, readable by the monitor's user only.
void read_password(config& c) {
    if (c.etcd_user.empty() && c.etcd_password_file.empty()) return;
    if (c.etcd_user.empty()) throw option_error("etcd-password-file", "needs --etcd-user");
    if (c.etcd_password_file.empty()) {
        throw option_error("etcd-user", "needs --etcd-password-file (the password is read from a file, never given "
                          "on the command line)");
    }
    if (!is_utf8(c.etcd_user)) throw option_error("etcd-user", ": not UTF-8");
    auto const& path = c.etcd_password_file;
    auto fail = [&](auto const&... why) { return option_error("etcd-password-file", cat(path, ": ", why...)); };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw fail(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw fail("not a regular file");
    if (st.st_mode & S_IROTH) throw fail("readable by other users (chmod o-r ", path, ")");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw fail("cannot read it");
    std::string text(max_password_length + 3, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) throw fail("cannot read it");
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.empty()) throw fail("empty: it must hold the password");
    if (text.size() > max_password_length) throw fail("longer than ", max_password_length, " bytes");
    if (text.find_first_of("\r\n") != std::string::npos) throw fail("more than one line");
    if (!is_utf8(text)) throw fail("the password is not UTF-8");
    c.etcd_password = std::move(text);
}

}  // namespace nm

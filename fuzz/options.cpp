// The command line and the config file: an operator's typo, a config management template
// gone wrong, a file edited by hand. Whatever they say, parse_command_line() returns a
// config or throws usage_error (which main prints on one line); never anything else.
//
// Input: <config file>\0<arg>\0<arg>...
//   The config file is written to a temporary directory, which also holds a nodeos
//   stand-in and the two config dirs, so that a good command line gets through every check.
//   In the file and in the arguments, @DIR@ stands for that directory and @CONF@ for the
//   file: "--config\0@CONF@". argv[0] is "nodeos-monitor". The directory also holds
//   password files for --etcd-password-file: password (good), password-shared (readable by
//   others), password-empty, password-lines (two lines), password-latin1 (not UTF-8).
#include <sys/stat.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/options.hpp"
#include "check.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

std::string dir;   // the temporary tree
std::string conf;  // the config file in it

void write_file(std::string const& path, std::string_view text, mode_t mode) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), static_cast<std::streamsize>(text.size()));
    ::chmod(path.c_str(), mode);
}

void remove_tree() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

std::string substitute(std::string_view text) {
    std::string out(text);
    for (auto const& [token, path] : {std::pair{std::string_view("@DIR@"), dir}, std::pair{std::string_view("@CONF@"), conf}}) {
        for (auto at = out.find(token); at != std::string::npos; at = out.find(token, at + path.size()))
            out.replace(at, token.size(), path);
    }
    return out;
}

// Paths into what could block a read (a terminal, a FIFO, /proc's endless files), absolute
// or relative: not what this target is about, so such inputs are set aside. Everything
// else the parser may read is harmless (it never writes).
bool leaves_the_tree(std::string_view input) {
    for (std::string_view bad : {"dev/", "proc/", "sys/", "run/", "var/", "tmp/", ".."}) {
        if (input.find(bad) != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Every execution writes the config file: in memory where there is a tmpfs, since on a
    // disk mounted with discard each rewrite costs a write and a discard.
    std::string tmpl = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    tmpl += "/nm-fuzz-options-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    dir = tmpl;
    conf = dir + "/nodeos-monitor.conf";
    write_file(dir + "/nodeos", "#!/bin/sh\n", 0755);
    for (auto const* sub : {"/active", "/standby"}) {
        ::mkdir((dir + sub).c_str(), 0755);
        write_file(dir + sub + "/config.ini",
                   "plugin = eosio::chain_api_plugin\nplugin = eosio::producer_api_plugin\n", 0644);
    }
    write_file(dir + "/etcd.pem", "not checked beyond being readable\n", 0600);
    write_file(dir + "/password", "s3cret\n", 0600);
    write_file(dir + "/password-shared", "s3cret\n", 0644);
    write_file(dir + "/password-empty", "", 0600);
    write_file(dir + "/password-lines", "s3cret\nmore\n", 0600);
    write_file(dir + "/password-latin1", "s\xe9" "cret\n", 0600);
    std::atexit(remove_tree);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const input = nm::fuzz::as_text(data, size);
    if (leaves_the_tree(input)) return -1;
    auto const nul = input.find('\0');
    write_file(conf, substitute(input.substr(0, nul)), 0600);

    std::vector<std::string> args{"nodeos-monitor"};
    if (nul != std::string_view::npos) {
        auto rest = input.substr(nul + 1);
        while (true) {
            auto const end = rest.find('\0');
            args.push_back(substitute(rest.substr(0, end)));
            if (end == std::string_view::npos) break;
            rest.remove_prefix(end + 1);
        }
    }
    std::vector<char const*> argv;
    for (auto const& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);

    try {
        auto const parsed = parse_command_line(static_cast<int>(args.size()), argv.data());
        if (parsed.action == command_line::what::help) require(!parsed.text.empty(), "help has a text");
        if (parsed.action == command_line::what::run) {
            auto const& c = parsed.cfg;
            require(!c.etcd_endpoints.empty() && !c.node_name.empty() && !c.failover_group.empty(),
                    "a daemon's config has endpoints, a node and a group");
            require(c.lease_ttl >= 2 && c.lease_ttl <= 3600 && c.stop_timeout >= 1, "a daemon's timings are in range");
            for (auto const& e : c.etcd_endpoints) require(!e.host.empty() && e.port != 0, "an endpoint has a host and a port");
        }
        if (parsed.action != command_line::what::help && parsed.action != command_line::what::version) {
            auto const& c = parsed.cfg;
            require(c.etcd_user.empty() == c.etcd_password.empty(), "a user comes with its password, and only with one");
            require(c.etcd_password.find_first_of("\r\n") == std::string::npos, "a password is one line");
        }
    } catch (usage_error const& e) {
        require(*e.what() != '\0', "a usage error says why");
    } catch (std::exception const& e) {
        std::fprintf(stderr, "not a usage_error: %s\n", e.what());
        std::abort();
    }
    return 0;
}

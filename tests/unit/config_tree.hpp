#pragma once
// For the option tests: a temporary tree with a nodeos stand-in and the two config dirs,
// parsing an argument list, and checking that input is rejected with a one-line reason.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "app/options.hpp"

namespace nm::testing {

struct config_tree {
    std::string root, nodeos, active, standby;

    config_tree() {
        char tmpl[] = "/tmp/nm-options-XXXXXX";
        char* made = ::mkdtemp(tmpl);
        BOOST_REQUIRE_MESSAGE(made, "mkdtemp failed");
        root = made;
        nodeos = root + "/nodeos";
        std::ofstream(nodeos) << "#!/bin/sh\n";
        ::chmod(nodeos.c_str(), 0755);
        active = root + "/active";
        standby = root + "/standby";
        for (auto const& d : {active, standby}) {
            ::mkdir(d.c_str(), 0755);
            std::ofstream(d + "/config.ini") << "# test\n";
        }
    }
    ~config_tree() {
        std::error_code ignored;
        std::filesystem::remove_all(root, ignored);
    }
    config_tree(config_tree const&) = delete;
    config_tree& operator=(config_tree const&) = delete;
};

// args[0] is the program name.
inline command_line parse_args(std::vector<std::string> const& args) {
    std::vector<char const*> argv;
    for (auto const& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

// `parse` must throw a usage_error whose one-line message contains `mentions`; returns
// the message ("" when it did not throw).
inline std::string expect_usage_error(std::function<void()> const& parse, std::string const& mentions) {
    try {
        parse();
        BOOST_ERROR("accepted invalid input; expected an error mentioning \"" << mentions << "\"");
        return {};
    } catch (usage_error const& e) {
        std::string what = e.what();
        BOOST_TEST(what.find(mentions) != std::string::npos, "error \"" << what << "\" should mention \"" << mentions << "\"");
        BOOST_TEST(what.find('\n') == std::string::npos, "error \"" << what << "\" should be one line");
        return what;
    }
}

}  // namespace nm::testing

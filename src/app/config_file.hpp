#pragma once
// The --config file: the flags' names without the dashes, one `name = value` a line, read
// one line at a time so that every error names its file and line; and Boost's messages
// made safe to print.
#include <map>
#include <string>
#include <string_view>

#include <boost/program_options.hpp>

#include "app/options.hpp"

namespace nm {

// Where each option of the config file was set, so that a later check can name the line.
struct file_origin {
    std::string path;
    std::map<std::string, int> line_of;  // option name -> line number

    std::string where(int line) const;
    // The error with the file and line that set its option, when the file set it.
    usage_error locate(usage_error const& e) const;
};

// Stores the file's options into vm; options already given on the command line win (their
// lines are skipped). Throws usage_error naming the line.
file_origin read_config_file(std::string const& path, boost::program_options::options_description const& allowed,
                             boost::program_options::variables_map& vm);

// Boost's message for e, or, when the offending text holds one of Boost's own placeholders
// (which its formatting would expand without end), a message that does not quote it.
bool has_placeholder(std::string_view text);
std::string what_of(boost::program_options::error const& e, bool text_has_placeholder);

}  // namespace nm

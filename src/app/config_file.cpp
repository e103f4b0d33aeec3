#include "app/config_file.hpp"

#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/text.hpp"

namespace po = boost::program_options;

namespace nm {

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

std::string file_origin::where(int line) const { return cat(path, ":", line, ": "); }

usage_error file_origin::locate(usage_error const& e) const {
    auto found = line_of.find(e.option);
    if (e.option.empty() || found == line_of.end()) return e;
    return usage_error(e.option, where(found->second) + e.what());
}

namespace {

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

}  // namespace

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

}  // namespace nm

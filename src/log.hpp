#pragma once
// One line per event on stderr: "<time> <level> <message>".
#include <sstream>
#include <string>
#include <string_view>

namespace nm {

enum class level { error, warning, info, debug };

void set_debug_logging(bool on);
bool debug_logging();
void log(level lvl, std::string_view message);

// Concatenates anything that streams into one string: cat("lease ", id, " granted").
template <class... Parts>
std::string cat(Parts const&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return std::move(out).str();
}

}  // namespace nm

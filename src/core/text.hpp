#pragma once
// Sentences: every decision of the core comes with one, and every layer writes them the
// same way. Standard library only, so that the core can use it.
#include <sstream>
#include <string>

namespace nm {

// How much an operator needs to see a line; the log layer maps it to its formats.
enum class level { error, warning, info, debug };

// Concatenates anything that streams into one string: cat("lease ", id, " granted").
template <class... Parts>
std::string cat(Parts const&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return std::move(out).str();
}

}  // namespace nm

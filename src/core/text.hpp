#pragma once
// Sentences: every decision of the core comes with one, and every layer writes them the
// same way. Standard library only, so that the core can use it.
#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>

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

// The start of a text that came from outside (an answer, a body), on one line, for messages.
inline std::string excerpt(std::string_view text, std::size_t length = 160) {
    std::string out(text.substr(0, length));
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    if (text.size() > length) out += "...";
    return out;
}

}  // namespace nm

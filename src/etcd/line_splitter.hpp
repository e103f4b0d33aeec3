#pragma once
// The body of a watch: a stream of JSON objects, one per line, whose lines the HTTP chunks
// cut anywhere.
#include <cstddef>
#include <string>
#include <string_view>

namespace nm::gateway {

// Splits a byte stream into lines whatever the chunking. Bounded: a line longer than
// max_line makes feed() report overflow, and the stream must be abandoned.
class line_splitter {
public:
    explicit line_splitter(std::size_t max_line = 4 * 1024 * 1024) : max_line_(max_line) {}

    // Appends bytes; returns false if the pending line grew beyond max_line.
    bool feed(std::string_view bytes);
    // Takes the next complete line (without '\n'); false when none is complete yet.
    bool next(std::string& line);

private:
    std::string buffer_;
    std::size_t start_ = 0;    // first byte not yet returned by next()
    std::size_t pending_ = 0;  // start of the unterminated last line: no '\n' from here on
    std::size_t max_line_;
};

}  // namespace nm::gateway

#include "etcd/line_splitter.hpp"

namespace nm::gateway {

bool line_splitter::feed(std::string_view bytes) {
    // Drop what next() has already returned, so the buffer holds only unread bytes.
    if (start_ > 0) {
        buffer_.erase(0, start_);
        pending_ -= start_;
        start_ = 0;
    }
    auto const old_size = buffer_.size();
    buffer_.append(bytes);
    // Only the new bytes can end lines; check the length of every line they complete.
    bool fits = true;
    for (auto nl = buffer_.find('\n', old_size); nl != std::string::npos; nl = buffer_.find('\n', nl + 1)) {
        if (nl - pending_ > max_line_) fits = false;
        pending_ = nl + 1;
    }
    return fits && buffer_.size() - pending_ <= max_line_;
}

bool line_splitter::next(std::string& line) {
    while (start_ < pending_) {
        auto const nl = buffer_.find('\n', start_);  // exists: pending_ follows a '\n'
        auto end = nl;
        if (end > start_ && buffer_[end - 1] == '\r') --end;
        bool const empty = end == start_;
        if (!empty) line.assign(buffer_, start_, end - start_);
        start_ = nl + 1;
        if (!empty) return true;
    }
    return false;
}

}  // namespace nm::gateway

#include "ops/log_buffer.hpp"

#include <algorithm>

namespace nm {

log_buffer::log_buffer(std::size_t bound, notice_text notice) : bound_(bound), notice_(std::move(notice)) {}

bool log_buffer::push(std::string_view line) {
    if (untold_ > 0 || line.size() > bound_ - std::min(bound_, size())) {
        ++dropped_;
        ++untold_;
        // A line longer than the whole bound, dropped while little is queued: say so at once.
        notice_if_drained();
        return false;
    }
    append(line);
    return true;
}

std::string_view log_buffer::front(std::size_t max) const {
    auto rest = std::string_view(data_.data(), data_.size()).substr(head_);
    if (rest.size() <= max && (rest.empty() || rest.back() == '\n')) return rest;
    if (auto last = rest.substr(0, max).rfind('\n'); last != std::string_view::npos) return rest.substr(0, last + 1);
    auto end = rest.find('\n');
    return end == std::string_view::npos ? rest : rest.substr(0, end + 1);
}

void log_buffer::append(std::string_view bytes) {
    // The written bytes in front are dropped once they are as many as the queued ones: each
    // queued byte is moved at most once on average, and the storage never holds more than
    // twice the bound (at most the bound queued, and no more written ones than that).
    if (head_ > 0 && head_ >= size()) {
        data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
    auto const needed = data_.size() + bytes.size();
    if (needed > data_.capacity()) data_.reserve(std::max(needed, std::min(2 * bound_, 2 * data_.capacity())));
    data_.insert(data_.end(), bytes.begin(), bytes.end());
}

void log_buffer::advance(std::size_t n) {
    head_ += std::min(n, size());
    if (head_ < data_.size()) return;
    head_ = 0;
    if (data_.capacity() > 64 * 1024) {
        std::vector<char>().swap(data_);  // a stall is over: its memory goes back
    } else {
        data_.clear();
    }
}

void log_buffer::consume(std::size_t n) {
    advance(n);
    notice_if_drained();
}

std::size_t log_buffer::discard(std::size_t n) {
    auto const given_up = std::string_view(data_.data(), data_.size()).substr(head_, n);
    auto const lines = static_cast<std::size_t>(std::count(given_up.begin(), given_up.end(), '\n'));
    consume(n);
    return lines;
}

void log_buffer::notice_if_drained() {
    if (untold_ == 0 || size() > bound_ / 2) return;
    auto const told = untold_;
    untold_ = 0;
    // Half the bound is free: the notice fits, unless a notice text were absurdly long.
    auto const line = notice_(told);
    if (line.size() <= bound_ - size()) append(line);
}

}  // namespace nm

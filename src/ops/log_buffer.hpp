#pragma once
// The lines that stderr has not taken yet: a bounded queue of whole lines. No I/O here; the
// writer (ops/log_writer.hpp) feeds it and empties it as stderr takes bytes.
//
// A line that does not fit is dropped whole, never cut, and counted. Once a line has been
// dropped, every later one is dropped too until the queue has drained to half its bound:
// then one notice ("dropped N log lines ...") goes in first, where the gap is, and lines are
// taken again. The hysteresis keeps a reader that is just slow enough from getting
// alternating kept and dropped lines, each gap with its own notice.
//
// The bound is on memory too: the storage never grows past twice the bound (what is queued,
// and the written bytes in front of it not yet moved out), and is given back once everything
// queued has been written.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace nm {

class log_buffer {
public:
    // The notice line (with its newline), given how many lines were dropped since the last one.
    using notice_text = std::function<std::string(std::uint64_t dropped)>;

    log_buffer(std::size_t bound, notice_text notice);

    // Queues one line (its newline included), or drops it; true when it was queued.
    bool push(std::string_view line);

    // The next bytes to write: the longest run of whole lines from the front that is at most
    // `max` bytes; when the first (or the rest of a partly written) line alone is longer,
    // all of it. Empty when nothing is queued.
    std::string_view front(std::size_t max) const;
    // The descriptor took the first n bytes of front().
    void consume(std::size_t n);
    // The descriptor refused the first n bytes of front() (a write error): they are given up;
    // returns how many lines ended in them.
    std::size_t discard(std::size_t n);

    bool empty() const { return size() == 0; }
    std::size_t size() const { return data_.size() - head_; }
    std::size_t bound() const { return bound_; }
    // Lines dropped since the start.
    std::uint64_t dropped() const { return dropped_; }
    // Of those, the ones that no notice has told yet.
    std::uint64_t untold() const { return untold_; }
    // The bytes allocated for it.
    std::size_t storage() const { return data_.capacity(); }

private:
    void append(std::string_view bytes);
    void advance(std::size_t n);
    void notice_if_drained();

    std::size_t bound_;
    notice_text notice_;
    std::vector<char> data_;
    std::size_t head_ = 0;  // data_[head_..] is queued; the bytes before it were written
    std::uint64_t dropped_ = 0;
    std::uint64_t untold_ = 0;  // nonzero: dropping until drained
};

}  // namespace nm

// A watch stream as the network delivers it: bytes cut into chunks anywhere, split into
// lines by line_splitter, each line decoded. Whatever the chunking, the lines must be those
// of the whole stream (CRLF or LF, blank lines skipped), and an overlong line must be
// reported before the splitter hands out anything past it. Each line is also decoded as the
// client decodes it for a watch of the group's keys and of the lock's key alone.
//
// Input: [max_line][chunking][stream...]
//   max_line: '~' the client's 4 MiB; any other byte b: 8 * b (0 to 2040)
//   chunking: seeds the chunk sizes, 1 to chunking + 1 bytes each
#include <algorithm>
#include <string>
#include <vector>

#include "check.hpp"
#include "etcd/base64.hpp"
#include "etcd/gateway_errors.hpp"
#include "etcd/gateway_json.hpp"
#include "etcd/line_splitter.hpp"

using namespace nm;
using nm::fuzz::require;

namespace {

// The lines of the whole stream, the slow and obvious way: complete lines only.
std::vector<std::string> lines_of(std::string_view stream) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (auto nl = stream.find('\n'); nl != std::string_view::npos; nl = stream.find('\n', start)) {
        auto line = stream.substr(start, nl - start);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (!line.empty()) out.emplace_back(line);
        start = nl + 1;
    }
    return out;
}

// The longest line (without its '\n', with any '\r') of the bytes seen so far, the
// unterminated tail included; kept as the bytes arrive.
class longest_line {
public:
    void see(std::string_view bytes) {
        for (char c : bytes) {
            if (c == '\n') {
                complete_ = std::max(complete_, tail_);
                tail_ = 0;
            } else {
                ++tail_;
            }
        }
    }
    std::size_t length() const { return std::max(complete_, tail_); }

private:
    std::size_t complete_ = 0, tail_ = 0;
};

void check_message(watch_message const& m) {
    if (m.error) {
        require(!describe(*m.error).empty(), "a stream error describes itself");
        // Read as the client reads it with etcd's users (a refused token ends a watch too).
        (void)gateway::token_refused(*m.error);
        (void)gateway::permission_refused(*m.error);
    }
    if (m.error || m.canceled || m.compact_revision != 0) require(m.ends_stream(), "an error, a cancel or a compaction ends the stream");
}

// A watch of key (range_end empty) or of [key, range_end) accepts a line exactly when the
// line decodes and every event is for a watched key.
void check_watched(std::string_view line, etcd_result<watch_message> const& unrestricted, std::string_view key,
                   std::string_view range_end) {
    auto const decoded = gateway::decode_watch_line(line, key, range_end);
    auto const* all = std::get_if<watch_message>(&unrestricted);
    bool in_range = all != nullptr;
    if (all) {
        for (auto const& e : all->events) {
            auto const& k = e.kv.key;
            if (range_end.empty() ? k != key : k < key || k >= range_end) in_range = false;
        }
    }
    require(std::holds_alternative<watch_message>(decoded) == in_range,
            "a watch accepts a line when its events are all for watched keys, and only then");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 2) return 0;
    std::size_t const max_line = data[0] == '~' ? 4 * 1024 * 1024 : 8 * std::size_t{data[0]};
    std::uint32_t rng = 0x9e3779b9u ^ data[1];
    std::size_t const largest_chunk = std::size_t{data[1]} + 1;
    auto const stream = nm::fuzz::as_text(data + 2, size - 2);

    auto const expected = lines_of(stream);
    gateway::line_splitter splitter(max_line);
    std::vector<std::string> got;
    longest_line seen;
    std::size_t fed = 0;
    while (fed < stream.size()) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        auto const n = std::min<std::size_t>(1 + rng % largest_chunk, stream.size() - fed);
        auto const chunk = stream.substr(fed, n);
        bool const fits = splitter.feed(chunk);
        seen.see(chunk);
        fed += n;
        // The splitter must say so exactly when a line, complete or not, is over the limit
        // (lines before the last complete one were checked by earlier feeds).
        bool const over = seen.length() > max_line;
        require(fits != over, "feed() reports an overlong line, and only then");
        if (!fits) return 0;  // the client abandons the stream here
        for (std::string line; splitter.next(line);) {
            require(line.size() <= max_line, "no line longer than max_line comes out");
            require(got.size() < expected.size() && line == expected[got.size()], "lines come out as the stream has them");
            got.push_back(line);
            auto const decoded = gateway::decode_watch_line(line);
            if (auto const* m = std::get_if<watch_message>(&decoded)) check_message(*m);
            else require(!describe(std::get<etcd_error>(decoded)).empty(), "a bad line describes itself");
            // As the client decodes it, for the group's keys [eos, eos0) and for the lock's key.
            check_watched(line, decoded, "eos", "eos0");
            check_watched(line, decoded, "eos", "");
        }
    }
    require(got.size() == expected.size(), "every complete line comes out");
    return 0;
}

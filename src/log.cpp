#include "log.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <ctime>

namespace nm {
namespace {

bool debug_on = false;

std::string_view name_of(level lvl) {
    switch (lvl) {
    case level::error: return "error";
    case level::warning: return "warn ";
    case level::info: return "info ";
    case level::debug: return "debug";
    }
    return "?    ";
}

}  // namespace

void set_debug_logging(bool on) { debug_on = on; }
bool debug_logging() { return debug_on; }

void log(level lvl, std::string_view message) {
    if (lvl == level::debug && !debug_on) return;
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm utc{};
    ::gmtime_r(&ts.tv_sec, &utc);
    std::array<char, 40> stamp{};
    auto n = std::strftime(stamp.data(), stamp.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(stamp.data() + n, stamp.size() - n, ".%03ldZ", ts.tv_nsec / 1'000'000);

    std::string line;
    line.reserve(message.size() + 40);
    line.append(stamp.data()).append(" ").append(name_of(lvl)).append(" ").append(message).append("\n");
    // One write per line so that lines from concurrent writers never interleave.
    auto rest = std::string_view(line);
    while (!rest.empty()) {
        auto w = ::write(STDERR_FILENO, rest.data(), rest.size());
        if (w <= 0) break;  // nowhere to log; never block the loop retrying
        rest.remove_prefix(static_cast<size_t>(w));
    }
}

}  // namespace nm

#include "ops/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace nm {
namespace {

bool debug_on = false;
log_format format = log_format::text;
bool journal = false;

std::string_view name_of(level lvl) {
    switch (lvl) {
    case level::error: return "error";
    case level::warning: return "warn ";
    case level::info: return "info ";
    case level::debug: return "debug";
    }
    return "?    ";
}

// syslog priorities: err, warning, info, debug.
std::string_view journal_prefix(level lvl) {
    switch (lvl) {
    case level::error: return "<3>";
    case level::warning: return "<4>";
    case level::info: return "<6>";
    case level::debug: return "<7>";
    }
    return "<6>";
}

std::string timestamp(timespec ts) {
    tm utc{};
    ::gmtime_r(&ts.tv_sec, &utc);
    std::array<char, 40> stamp{};
    auto n = std::strftime(stamp.data(), stamp.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(stamp.data() + n, stamp.size() - n, ".%03ldZ", ts.tv_nsec / 1'000'000);
    return stamp.data();
}

std::string json_line(level lvl, std::string_view message, log_context context, timespec ts) {
    auto level_name = std::string(name_of(lvl));
    while (level_name.ends_with(' ')) level_name.pop_back();
    nlohmann::json j{{"time", timestamp(ts)}, {"level", level_name}, {"message", message}};
    if (!context.cause.empty()) j["cause"] = context.cause;
    if (!context.change.empty()) j["change"] = context.change;
    // Invalid UTF-8 from nodeos's output is replaced rather than thrown on.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void set_debug_logging(bool on) { debug_on = on; }
void set_log_format(log_format f) { format = f; }
void set_journal_priorities(bool on) { journal = on; }

bool stderr_is_journal() {
    char const* env = std::getenv("JOURNAL_STREAM");
    if (!env) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

std::string format_log_line(level lvl, std::string_view message, log_context context, timespec when, log_format f,
                            bool journal_on) {
    if (f == log_format::json) return json_line(lvl, message, context, when);
    std::string line;
    line.reserve(message.size() + 40);
    if (journal_on) {
        line.append(journal_prefix(lvl));
    } else {
        line.append(timestamp(when)).append(" ");
    }
    line.append(name_of(lvl)).append(" ").append(message);
    if (!context.cause.empty() || !context.change.empty()) {
        line.append(" [").append(context.cause);
        if (!context.cause.empty() && !context.change.empty()) line.append(", ");
        line.append(context.change).append("]");
    }
    line.append("\n");
    return line;
}

void log(level lvl, std::string_view message, log_context context) {
    if (lvl == level::debug && !debug_on) return;
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    auto line = format_log_line(lvl, message, context, ts, format, journal);
    // One write per line so that lines from concurrent writers never interleave.
    auto rest = std::string_view(line);
    while (!rest.empty()) {
        auto w = ::write(STDERR_FILENO, rest.data(), rest.size());
        if (w <= 0) break;  // nowhere to log; never block the loop retrying
        rest.remove_prefix(static_cast<size_t>(w));
    }
}

}  // namespace nm

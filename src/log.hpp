#pragma once
// One line per event on stderr.
//
// text: "<time> <level> <message>"; under systemd (stderr is the journal, JOURNAL_STREAM
// names it) the line starts with the journald priority "<3>".."<7>" instead of the time,
// which the journal records itself, so that `journalctl -p warning` works.
// json: {"time":…,"level":…,"message":…} for log shippers.
#include <ctime>
#include <sstream>
#include <string>
#include <string_view>

namespace nm {

enum class level { error, warning, info, debug };
enum class log_format { text, json };

void set_debug_logging(bool on);
bool debug_logging();
void set_log_format(log_format f);
// True when JOURNAL_STREAM names the device and inode of this process's stderr.
bool stderr_is_journal();
void set_journal_priorities(bool on);
void log(level lvl, std::string_view message);

// The line log() writes (with its newline); pure, for tests.
std::string format_log_line(level lvl, std::string_view message, timespec when, log_format f, bool journal);

// Concatenates anything that streams into one string: cat("lease ", id, " granted").
template <class... Parts>
std::string cat(Parts const&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return std::move(out).str();
}

}  // namespace nm

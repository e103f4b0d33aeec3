#pragma once
// One line per event on stderr.
//
// text: "<time> <level> <message> [<cause>, <change>]"; under systemd (stderr is the
// journal, JOURNAL_STREAM names it) the line starts with the journald priority "<3>".."<7>"
// instead of the time, which the journal records itself, so that `journalctl -p warning`
// works. json: {"time","level","message","cause","change"} for log shippers.
#include <ctime>
#include <string>
#include <string_view>

#include "core/text.hpp"

namespace nm {

enum class log_format { text, json };

// What a line is about, when it reports a decision of the core: the decision's cause
// ("lock_acquired") and the change of phase it made ("lock unknown -> mine").
struct log_context {
    log_context(std::string_view cause_name = {}, std::string_view change_text = {})
        : cause(cause_name), change(change_text) {}
    std::string_view cause;
    std::string_view change;
};

void set_debug_logging(bool on);
void set_log_format(log_format f);
// True when JOURNAL_STREAM names the device and inode of this process's stderr.
bool stderr_is_journal();
void set_journal_priorities(bool on);
void log(level lvl, std::string_view message, log_context context = {});

// The line log() writes (with its newline); pure, for tests.
std::string format_log_line(level lvl, std::string_view message, log_context context, timespec when, log_format f,
                            bool journal);

}  // namespace nm

#pragma once
// One line per event on stderr.
//
// text: "<time> <level> <message> [<cause>, <change>]"; under systemd (stderr is the
// journal, JOURNAL_STREAM names it) the line starts with the journald priority "<3>".."<7>"
// instead of the time, which the journal records itself, so that `journalctl -p warning`
// works. json: {"time","level","message","cause","change"} for log shippers.
//
// Writing a line never waits for stderr's reader: a stalled journald, or a terminal paused
// with Ctrl-S, must not stop the loop, whose timers fence nodeos before the lease deadline
// (the dead-man timer would kill a monitor whose loop stopped, and its producer with it).
// Lines that stderr does not take at once wait in a bounded buffer (log_buffer.hpp) and
// are written from the loop when stderr is writable again; past the bound they are dropped,
// counted (nodeos_monitor_log_lines_dropped_total), and told in one line once it drains.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/text.hpp"
#include "ops/log_buffer.hpp"

namespace boost::asio {
class io_context;
}

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

// While one lives, the lines stderr did not take at once are written from io's loop as soon
// as stderr is writable, rather than at the next line. Without one (before the loop, after
// it, in the one-shot commands), they wait for the next line or for flush_log(). It must end
// before io does.
class log_on_loop {
public:
    explicit log_on_loop(boost::asio::io_context& io);
    ~log_on_loop();
    log_on_loop(log_on_loop const&) = delete;
    log_on_loop& operator=(log_on_loop const&) = delete;
};

// At exit: writes what is still queued, waiting for stderr at most `within`, so that the
// last lines reach a healthy stderr, and a stalled one delays the exit by a bounded time.
void flush_log(std::chrono::milliseconds within);

// Lines never written to stderr: dropped from a full buffer, or refused by stderr.
std::uint64_t log_lines_dropped();

// Writes lines to one descriptor without ever waiting for it (log() uses one on stderr).
//
// O_NONBLOCK belongs to the open file description, which stderr shares with whoever else
// holds it: the parent's terminal (the shell's stdin is often the same description, and a
// shell whose reads fail with EAGAIN exits), the other commands of a pipeline. Setting it on
// stderr, or on a dup() of it, changes their descriptor too, so the writer never does.
// Instead, by what the descriptor is:
//  - a socket (journald's stream): send() with MSG_DONTWAIT, non-blocking for that call only;
//  - a pipe, FIFO or terminal: opened again through /proc/self/fd, which makes a new open
//    file description of the same pipe or terminal, this writer's own, set non-blocking;
//    were that refused (no /proc, a terminal of another user), the shared descriptor is
//    written only after poll() says it is writable, and at most PIPE_BUF bytes at a time:
//    a pipe that polls writable has a free page and takes them whole at once (only another
//    writer filling it in between could make the write wait); a terminal polls writable
//    only while it is not paused and has room;
//  - a regular file (or anything else): write() as it is, since a file never waits for a
//    reader.
// Readiness: Asio sets O_NONBLOCK on every descriptor it waits on, so the loop does not wait
// on stderr itself but on a private epoll set that holds it (EPOLLONESHOT, armed only while
// lines are queued): that descriptor is this writer's own.
//
// Bytes go out in runs of whole lines of at most PIPE_BUF bytes (a longer line alone), so
// that a pipe's writes stay atomic and lines of other writers never land inside one of ours.
class log_writer {
public:
    // 1 MiB, about 5 000 lines of 200 bytes: minutes of the most the monitor logs (--debug, a
    // nodeos relayed at its 200 lines a second), so a journald restart or a stall of some
    // seconds costs no line; and small beside the process (a few MB resident), since it is
    // only filled while stderr is stuck.
    static constexpr std::size_t default_bound = 1 << 20;
    enum class method { direct, socket, reopened, polled };

    // fd stays open and unchanged; the writer chooses its method from what fd is, unless told.
    explicit log_writer(int fd, std::size_t bound = default_bound, log_buffer::notice_text notice = {},
                        std::optional<method> forced = std::nullopt);
    ~log_writer();
    log_writer(log_writer const&) = delete;
    log_writer& operator=(log_writer const&) = delete;

    // Queues one line (with its newline) and writes what the descriptor takes now.
    void write(std::string_view line);
    // Lines the descriptor does not take at once are then written from io's loop; detach()
    // (or the writer's end) must come before io's.
    void attach(boost::asio::io_context& io);
    void detach();
    // Writes what is queued, waiting for the descriptor at most `within` in all.
    void flush(std::chrono::milliseconds within);

    method how() const { return how_; }
    std::size_t queued() const { return buffer_.size(); }
    // Lines dropped from the full buffer, and lines the descriptor refused (a write error).
    std::uint64_t dropped() const { return buffer_.dropped() + refused_; }

private:
    struct waiter;
    // Writes queued bytes until the descriptor would block; true when it would.
    bool pump();
    // >0: bytes taken; 0: it would block; <0: refused (errno says why).
    long write_some(std::string_view bytes);
    int write_fd() const { return own_fd_ >= 0 ? own_fd_ : fd_; }
    void wait_writable();

    int fd_;
    int own_fd_ = -1;  // the reopened description (method::reopened), non-blocking
    method how_ = method::direct;
    log_buffer buffer_;
    std::uint64_t refused_ = 0;
    std::shared_ptr<waiter> waiter_;  // while attached
};

}  // namespace nm

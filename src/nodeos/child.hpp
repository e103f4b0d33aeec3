#pragma once
// The nodeos child process: how it is started so that it never outlives the monitor, and
// how its output is relayed without ever stalling the loop.
#include <sys/types.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nm {

// Starts argv[0] with argv in its own process group, with PR_SET_PDEATHSIG(SIGKILL), an
// empty signal mask, default signal dispositions, stdin from /dev/null, stdout and stderr
// to output_fd, and no other inherited descriptor. Returns the pid, or throws
// std::system_error when fork or exec fails (exec errors are reported by the child
// through a close-on-exec pipe, so a missing binary is an error here, not an exit later).
pid_t spawn_process(std::vector<std::string> const& argv, int output_fd);

// Starts a process as spawn_process does, with env ("NAME=value" each) as its whole
// environment, but returns without waiting for its exec, which may wait on the disk.
// report_fd (close-on-exec; the caller closes it) reaches end of file once the exec has
// succeeded; were it to fail, an int errno comes first and the child exits 127. Throws
// std::system_error only when the pipe or the fork fails.
struct started_process {
    pid_t pid;
    int report_fd;
};
started_process start_process(std::vector<std::string> const& argv, int output_fd, std::vector<std::string> const& env);

// Reads a child's stdout and stderr (one pipe) and hands out complete lines. A line longer
// than max_line is cut; past the rate limit, lines are counted rather than handed out, so
// a child that floods its output costs a bounded amount of memory and time.
//
// With a hold, the pipe is taken out of the loop's epoll set for that long after each read,
// so that the lines of a steady writer (nodeos logs every block: two lines a second) are
// read several at a time, at one wake-up of the loop, rather than one wake-up each (a pipe
// left in the set wakes the loop at every write, read or not); hurry() ends a hold at once.
// Only a quiet writer is held (a read of under 4 KiB): one with more to say is read on at
// once, so that a hold never fills the pipe and blocks the child.
class output_relay : public std::enable_shared_from_this<output_relay> {
public:
    using line_handler = std::function<void(std::string_view line)>;
    using end_handler = std::function<void()>;
    static constexpr std::size_t max_line = 4096;

    // Creates the pipe; write_end() goes to the child. Call start() after the fork. on_end,
    // if any, is called once reading ends (every writer has gone), after the last line.
    output_relay(boost::asio::io_context& io, line_handler on_line, end_handler on_end = {},
                 std::chrono::milliseconds hold = std::chrono::milliseconds(0));
    ~output_relay();
    int write_end() const { return write_fd_; }
    // Closes the parent's copy of the write end and reads until the child side closes.
    void start();
    // Reads what the pipe holds now rather than at the end of a hold, and holds no more
    // (the child has exited: its last lines, and the end of its output, are wanted at once).
    void hurry();

private:
    void read_more();
    void hold_then_read();
    void consume(std::size_t n);
    void deliver(std::string_view line);
    void report_suppressed();

    boost::asio::posix::stream_descriptor pipe_;
    boost::asio::steady_timer hold_timer_;
    std::chrono::milliseconds hold_;
    int held_fd_ = -1;  // the pipe's read end while held: out of the epoll set, still open
    bool hurried_ = false;
    int write_fd_ = -1;
    line_handler on_line_;
    end_handler on_end_;
    std::array<char, 16384> buffer_{};
    std::string partial_;
    bool cut_ = false;  // the current line is past max_line: drop the rest of it
    // Token bucket: at most burst lines at once, refilled at rate per second.
    double tokens_;
    std::chrono::steady_clock::time_point refilled_;
    std::size_t suppressed_ = 0;
};

}  // namespace nm

#include "nodeos/child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <cerrno>
#include <system_error>
#include <utility>

#include "core/text.hpp"

namespace nm {
namespace {

constexpr double relay_burst = 1000;  // lines
constexpr double relay_rate = 200;    // lines per second
// A hold follows only a read smaller than this: a quiet writer (nodeos at rest logs about
// 200 bytes a block). The pipe is enlarged to pipe_bytes where the kernel allows, so that a
// burst that begins during a hold has room before the next read.
constexpr std::size_t hold_below_bytes = 4096;
constexpr int pipe_bytes = 1 << 20;

[[noreturn]] void fail_in_child(int report_fd) {
    int e = errno;
    [[maybe_unused]] auto w = ::write(report_fd, &e, sizeof e);
    ::_exit(127);
}

// Everything after vfork() runs here, in the parent's memory while the parent waits: only
// system calls on this frame's own variables, no allocation, no return; execve or _exit.
[[noreturn]] void become_child(char* const* argv, char* const* envp, int output_fd, int report_fd, pid_t parent) {
    if (::setpgid(0, 0) != 0) fail_in_child(report_fd);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_in_child(report_fd);
    // The parent may have died before prctl: then nothing would ever kill this child.
    if (::getppid() != parent) ::_exit(127);

    // Handlers first (ignored signals survive exec otherwise), then the mask: no handler of
    // the parent's may run in this child, which shares the parent's memory.
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || ::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
        ::dup2(output_fd, STDERR_FILENO) < 0) {
        fail_in_child(report_fd);
    }
    // Every other descriptor closes at exec (the report pipe stays usable until then).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::execve(argv[0], argv, envp);
    fail_in_child(report_fd);
}

// Built before vfork(): the child may not allocate.
std::vector<char*> c_strings(std::vector<std::string> const& strings) {
    std::vector<char*> out;
    for (auto const& a : strings) out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

started_process start(std::vector<std::string> const& argv, char* const* envp, int output_fd) {
    auto c_argv = c_strings(argv);

    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
    pid_t parent = ::getpid();
    // vfork: the parent waits until the child has exec'd, as it would for the report anyway,
    // and copies none of its page tables. fork() cost this monitor about 7 ms of CPU a start
    // on a virtual machine (its ~8 MB mapped, then every page it wrote faulted once more),
    // in the middle of a handover; vfork about 0.15 ms.
    pid_t pid = ::vfork();
    if (pid < 0) {
        int e = errno;
        ::close(report[0]);
        ::close(report[1]);
        throw std::system_error(e, std::system_category(), "vfork");
    }
    if (pid == 0) become_child(c_argv.data(), envp, output_fd, report[1], parent);

    ::close(report[1]);
    // The child has set its process group before this returns: signalling the group races
    // nothing.
    return {pid, report[0]};
}

}  // namespace

pid_t spawn_process(std::vector<std::string> const& argv, int output_fd) {
    auto [pid, report_fd] = start(argv, environ, output_fd);
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(report_fd, &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    ::close(report_fd);
    if (n > 0) {
        // exec failed: the child has exited; the SIGCHLD reaper collects it.
        throw std::system_error(child_errno, std::system_category(), "exec " + argv[0]);
    }
    return pid;
}

started_process start_process(std::vector<std::string> const& argv, int output_fd, std::vector<std::string> const& env) {
    auto c_env = c_strings(env);
    return start(argv, c_env.data(), output_fd);
}

output_relay::output_relay(boost::asio::io_context& io, line_handler on_line, end_handler on_end,
                           std::chrono::milliseconds hold)
    : pipe_(io),
      hold_timer_(io),
      hold_(hold),
      on_line_(std::move(on_line)),
      on_end_(std::move(on_end)),
      tokens_(relay_burst),
      refilled_(std::chrono::steady_clock::now()) {
    // Both ends non-blocking (O_NONBLOCK belongs to the pipe's one open file description):
    // nodeos's writes never wait on the monitor. Were its stdout blocking, a burst of output
    // during a hold (a syncing nodeos logs every block it receives) could fill the pipe and
    // stall nodeos itself, a producer among them; a line lost to EAGAIN costs less.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
    if (hold_.count() > 0) {
        (void)::fcntl(fds[0], F_SETPIPE_SZ, pipe_bytes);  // best effort: else the default 64 KiB
    }
    pipe_.assign(fds[0]);
    write_fd_ = fds[1];
}

output_relay::~output_relay() {
    if (write_fd_ >= 0) ::close(write_fd_);
    if (held_fd_ >= 0) ::close(held_fd_);
}

void output_relay::start() {
    ::close(write_fd_);
    write_fd_ = -1;
    read_more();
}

void output_relay::read_more() {
    pipe_.async_read_some(boost::asio::buffer(buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                              if (ec) {  // EOF: every writer has gone; or cancelled
                                  if (!self->partial_.empty()) self->deliver(self->partial_);
                                  self->report_suppressed();
                                  if (self->on_end_) self->on_end_();
                                  return;
                              }
                              self->consume(n);
                              // A writer with more to say is read on at once: a hold must
                              // never fill the pipe and block it (nodeos would stall).
                              if (n < hold_below_bytes) {
                                  self->hold_then_read();
                              } else {
                                  self->read_more();
                              }
                          });
}

void output_relay::hold_then_read() {
    if (hold_.count() <= 0 || hurried_) return read_more();
    held_fd_ = pipe_.release();  // out of the epoll set: the writer's lines wake nobody
    hold_timer_.expires_after(hold_);
    hold_timer_.async_wait([self = shared_from_this()](boost::system::error_code) {
        // Expired, or cut short by hurry(): read now either way. Back in the set, the first
        // read is attempted at once (what came meanwhile, or the end of the output).
        self->pipe_.assign(std::exchange(self->held_fd_, -1));
        self->read_more();
    });
}

void output_relay::hurry() {
    hurried_ = true;  // no hold from now on: the rest, and the end, are read as they come
    if (held_fd_ >= 0) hold_timer_.cancel();
}

void output_relay::consume(std::size_t n) {
    std::string_view data(buffer_.data(), n);
    while (!data.empty()) {
        auto nl = data.find('\n');
        auto piece = data.substr(0, nl);
        if (!cut_) {
            auto room = max_line - partial_.size();
            partial_.append(piece.substr(0, room));
            if (piece.size() > room) cut_ = true;
        }
        if (nl == std::string_view::npos) break;
        if (cut_) partial_.append(" [line cut]");
        deliver(partial_);
        partial_.clear();
        cut_ = false;
        data.remove_prefix(nl + 1);
    }
}

void output_relay::deliver(std::string_view line) {
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(relay_burst, tokens_ + relay_rate * std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
    if (tokens_ < 1) {
        ++suppressed_;
        return;
    }
    report_suppressed();
    tokens_ -= 1;
    if (!line.empty()) on_line_(line);
}

void output_relay::report_suppressed() {
    if (suppressed_ == 0) return;
    on_line_(cat("[", suppressed_, " lines of output not logged: over ", relay_rate, " lines per second]"));
    suppressed_ = 0;
}

}  // namespace nm

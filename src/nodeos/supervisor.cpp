#include "nodeos/supervisor.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <system_error>
#include <thread>

#include "core/text.hpp"
#include "nodeos/child.hpp"

namespace nm {
namespace {

// What nodeos prints before it exits 2 on a dirty database (programs/nodeos/main.cpp).
constexpr std::string_view dirty_database_message = "database dirty flag set";
// nodeos logs a line or two a block: its output is read at most once a second, a few lines
// at one wake-up rather than one wake-up a line (the larger part of an idle monitor's CPU).
// Its exit ends the wait at once (output_relay::hurry), so its last lines are still judged.
constexpr auto output_hold = std::chrono::milliseconds(1000);
// After the reap, how long its last lines may take to arrive.
constexpr auto last_lines_wait = std::chrono::milliseconds(500);

[[noreturn]] void failed(char const* call) { throw std::system_error(errno, std::system_category(), call); }

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return cat("exit code ", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return cat("killed by signal ", WTERMSIG(status), " (", sigabbrev_np(WTERMSIG(status)), ")");
    return cat("wait status ", status);
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

}  // namespace

nodeos_supervisor::nodeos_supervisor(boost::asio::io_context& io, handlers h)
    : io_(io), handlers_(std::move(h)), exit_wait_(io) {}

nodeos_supervisor::~nodeos_supervisor() { close(); }

pid_t nodeos_supervisor::start(std::vector<std::string> const& argv, std::string tag) {
    // The relay keeps itself alive until the child's side of the pipe closes, so the last
    // lines of an exited nodeos are still handed on after a new one has started.
    auto const generation = ++generation_;
    said_dirty_ = false;
    output_ended_ = false;
    auto relay = std::make_shared<output_relay>(
        io_,
        [this, tag = std::move(tag), generation](std::string_view line) {
            if (closed_) return;
            if (generation == generation_ && line.find(dirty_database_message) != std::string_view::npos) {
                said_dirty_ = true;
            }
            handlers_.on_line(tag, line);
        },
        [this, generation] {
            if (closed_ || generation != generation_) return;
            output_ended_ = true;
            if (exit_waiting_) report_exit();
        },
        output_hold);
    output_ = relay;
    pid_ = spawn_process(argv, relay->write_end());
    since_ = boot_clock::now();
    relay->start();
    return pid_;
}

bool nodeos_supervisor::signal(int sig) {
    if (pid_ <= 0) return false;
    if (::kill(-pid_, sig) != 0 && errno != ESRCH) failed("kill");
    return true;
}

void nodeos_supervisor::reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != pid_) {
            handlers_.on_other_exit(pid, status);
            continue;
        }
        pid_ = 0;
        if (auto relay = output_.lock()) relay->hurry();
        handlers_.on_reaped(pid, describe_wait_status(status));
        if (closed_) return;
        // Its last lines may still be in the pipe (nodeos says why it refuses a dirty
        // database just before it exits 2): its end is told once they are read.
        exit_waiting_ = fact::nodeos_exited{describe_wait_status(status), exit_code_of(status), false};
        if (output_ended_) {
            report_exit();
        } else {
            exit_wait_.expires_after(last_lines_wait);
            exit_wait_.async_wait([this](boost::system::error_code ec) {
                if (!ec) report_exit();
            });
        }
        if (closed_) return;
    }
    if (pid < 0 && errno != ECHILD) failed("waitpid");
}

void nodeos_supervisor::report_exit() {
    if (!exit_waiting_ || closed_) return;
    auto exited = std::move(*exit_waiting_);
    exit_waiting_.reset();
    exit_wait_.cancel();
    exited.said_dirty = said_dirty_;
    handlers_.on_exit(exited);
}

std::optional<nodeos_supervisor::running> nodeos_supervisor::current() const {
    if (pid_ <= 0) return std::nullopt;
    return running{pid_, since_};
}

void nodeos_supervisor::kill_now() {
    if (pid_ <= 0 || ::kill(-pid_, SIGKILL) != 0) return;
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void nodeos_supervisor::close() {
    closed_ = true;
    exit_wait_.cancel();
}

}  // namespace nm

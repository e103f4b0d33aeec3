#include "ops/log.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>

namespace nm {
namespace asio = boost::asio;
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

namespace {

std::string now_line(level lvl, std::string_view message) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return format_log_line(lvl, message, {}, ts, format, journal);
}

std::string dropped_notice(std::uint64_t dropped) {
    return now_line(level::warning, cat("dropped ", dropped, " log lines while stderr was not taking them"));
}

// Made at the first line, in the format set by then (the notice reads it when it is due).
log_writer& stderr_writer() {
    static log_writer writer(STDERR_FILENO, log_writer::default_bound, dropped_notice);
    return writer;
}

}  // namespace

void log(level lvl, std::string_view message, log_context context) {
    if (lvl == level::debug && !debug_on) return;
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    stderr_writer().write(format_log_line(lvl, message, context, ts, format, journal));
}

log_on_loop::log_on_loop(asio::io_context& io) { stderr_writer().attach(io); }
log_on_loop::~log_on_loop() { stderr_writer().detach(); }

void flush_log(std::chrono::milliseconds within) { stderr_writer().flush(within); }

std::uint64_t log_lines_dropped() { return stderr_writer().dropped(); }

// ---- the writer ------------------------------------------------------------------------

namespace {

// A new open file description of the pipe, FIFO or terminal behind fd, or -1: the same
// object (checked), but its O_NONBLOCK is nobody else's.
int reopen_nonblocking(int fd, struct stat const& st) {
    auto const path = cat("/proc/self/fd/", fd);
    int const own = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (own < 0) return -1;
    struct stat again {};
    if (::fstat(own, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino ||
        again.st_rdev != st.st_rdev) {
        ::close(own);
        return -1;
    }
    return own;
}

std::string plain_notice(std::uint64_t dropped) { return cat("dropped ", dropped, " log lines\n"); }

}  // namespace

// The loop's view of the descriptor: a private epoll set holding it, which the loop waits on
// (Asio may set O_NONBLOCK on the set; it is this writer's own).
struct log_writer::waiter {
    waiter(asio::io_context& io, int epoll_fd) : set(io, epoll_fd) {}
    asio::posix::stream_descriptor set;
    bool added = false;     // the descriptor is in the set
    bool pollable = true;   // epoll takes it (a regular file or /dev/null it refuses: never waits anyway)
    bool waiting = false;   // armed, and the loop waits on it
};

log_writer::log_writer(int fd, std::size_t bound, log_buffer::notice_text notice, std::optional<method> forced)
    : fd_(fd), buffer_(bound, notice ? std::move(notice) : plain_notice) {
    struct stat st {};
    bool const known = ::fstat(fd, &st) == 0;
    if (forced) {
        how_ = *forced;
    } else if (!known) {
        how_ = method::direct;  // closed: its writes fail, and the lines count as dropped
    } else if (S_ISSOCK(st.st_mode)) {
        how_ = method::socket;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        how_ = method::reopened;
    }
    if (how_ == method::reopened) {
        own_fd_ = known ? reopen_nonblocking(fd, st) : -1;
        if (own_fd_ < 0) how_ = method::polled;
    }
}

log_writer::~log_writer() {
    detach();
    if (own_fd_ >= 0) ::close(own_fd_);
}

void log_writer::write(std::string_view line) {
    buffer_.push(line);
    if (waiter_ && waiter_->waiting) return;  // stderr is known not to take more: the loop will write
    if (pump()) wait_writable();
}

void log_writer::attach(asio::io_context& io) {
    if (waiter_) return;
    int const set = ::epoll_create1(EPOLL_CLOEXEC);
    if (set < 0) return;  // no waiting: queued lines go out with the next line, or at the flush
    try {
        waiter_ = std::make_shared<waiter>(io, set);
    } catch (std::exception const&) {
        ::close(set);
        return;
    }
    if (pump()) wait_writable();
}

void log_writer::detach() { waiter_.reset(); }  // closing the set cancels the wait

bool log_writer::pump() {
    while (!buffer_.empty()) {
        auto bytes = buffer_.front(PIPE_BUF);
        // A line longer than PIPE_BUF goes whole to a non-blocking descriptor (a partial
        // write is fine there); the polled, blocking one gets no more than poll() vouched for.
        if (how_ == method::polled) bytes = bytes.substr(0, PIPE_BUF);
        auto const n = write_some(bytes);
        if (n == 0) return true;
        if (n < 0) {
            refused_ += buffer_.discard(bytes.size());  // EPIPE, EBADF, EIO, ENOSPC: given up, as before
        } else {
            buffer_.consume(static_cast<std::size_t>(n));
        }
    }
    return false;
}

long log_writer::write_some(std::string_view bytes) {
    for (;;) {
        ssize_t n = 0;
        if (how_ == method::socket) {
            n = ::send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            if (how_ == method::polled) {
                pollfd p{fd_, POLLOUT, 0};
                int const ready = ::poll(&p, 1, 0);
                if (ready < 0 && errno == EINTR) continue;
                if (ready < 0) return -1;
                if (ready == 0) return 0;  // not writable; an error or hang-up shows in the write
            }
            n = ::write(write_fd(), bytes.data(), bytes.size());
        }
        if (n > 0) return static_cast<long>(n);
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
}

void log_writer::wait_writable() {
    if (!waiter_ || !waiter_->pollable || waiter_->waiting) return;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLONESHOT;  // one report per arming: no wake-ups while nothing is queued
    int const op = waiter_->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (::epoll_ctl(waiter_->set.native_handle(), op, write_fd(), &ev) != 0) {
        // EPERM: a descriptor epoll cannot watch (a file), which never makes a write wait.
        // Otherwise queued lines go out with the next line, or at the flush.
        if (errno == EPERM) waiter_->pollable = false;
        return;
    }
    waiter_->added = true;
    waiter_->waiting = true;
    // The set's own weak reference: a report already queued when the writer detaches finds
    // it gone, rather than a waiter that no longer exists.
    auto on_report = [this, weak = std::weak_ptr<waiter>(waiter_)](boost::system::error_code ec) {
        auto w = weak.lock();
        if (ec || !w) return;  // detached
        w->waiting = false;
        // Takes the report off the set, so that arming it again reports the next one.
        epoll_event got{};
        ::epoll_wait(w->set.native_handle(), &got, 1, 0);
        if (pump()) wait_writable();
    };
    waiter_->set.async_wait(asio::posix::descriptor_base::wait_read, std::move(on_report));
}

void log_writer::flush(std::chrono::milliseconds within) {
    auto const until = std::chrono::steady_clock::now() + within;
    while (pump()) {
        auto const left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        pollfd p{write_fd(), POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return;
    }
}

}  // namespace nm

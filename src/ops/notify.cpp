#include "ops/notify.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "ops/log.hpp"

namespace nm {

std::optional<notify_address> parse_notify_socket(std::string_view value) {
    notify_address a;
    a.addr.sun_family = AF_UNIX;
    bool abstract = value.starts_with('@');
    if (value.size() < 2 || value.size() > sizeof a.addr.sun_path || (!abstract && !value.starts_with('/'))) {
        return std::nullopt;
    }
    std::memcpy(a.addr.sun_path, value.data(), value.size());
    if (abstract) a.addr.sun_path[0] = '\0';
    // An abstract name is exactly its bytes, with no terminating NUL; a path ends at its NUL.
    a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + (abstract ? 0 : 1));
    if (!abstract && value.size() == sizeof a.addr.sun_path) return std::nullopt;
    return a;
}

std::optional<std::chrono::microseconds> watchdog_interval(char const* usec, char const* pid, long own_pid) {
    if (!usec) return std::nullopt;
    if (pid) {
        long for_pid = 0;
        std::string_view p(pid);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), for_pid);
        if (ec != std::errc{} || end != p.data() + p.size() || for_pid != own_pid) return std::nullopt;
    }
    std::string_view u(usec);
    unsigned long long value = 0;
    auto [end, ec] = std::from_chars(u.data(), u.data() + u.size(), value);
    if (ec != std::errc{} || end != u.data() + u.size() || value == 0) return std::nullopt;
    return std::chrono::microseconds(value / 2);
}

std::string status_message(std::string_view text) {
    std::string out = "STATUS=";
    for (char ch : text) out += ch == '\n' ? ' ' : ch;
    return out;
}

notifier::notifier() {
    char const* env = std::getenv("NOTIFY_SOCKET");
    if (!env) return;
    auto to = parse_notify_socket(env);
    if (!to) {
        log(level::warning, cat("NOTIFY_SOCKET ", env, ": not a socket path or @name; systemd is not notified"));
        return;
    }
    to_ = *to;
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) log(level::warning, cat("notify socket: ", std::strerror(errno)));
}

notifier::~notifier() {
    if (fd_ >= 0) ::close(fd_);
}

void notifier::send(std::string_view message) {
    if (fd_ < 0) return;
    auto sent = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                         reinterpret_cast<sockaddr const*>(&to_.addr), to_.length);
    if (sent < 0) log(level::warning, cat("notify ", message.substr(0, message.find('=')), ": ", std::strerror(errno)));
}

}  // namespace nm

#pragma once
// The systemd notify protocol, without libsystemd: one datagram per message to the
// AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@' means the abstract namespace).
//
// READY=1 once nodeos runs in its first state, STATUS=… on every state change,
// STOPPING=1 on shutdown, WATCHDOG=1 every half of $WATCHDOG_USEC while the loop runs.
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace nm {

// The address for a $NOTIFY_SOCKET value, and its length for sendto(); nullopt when the
// value is not a usable path or abstract name.
struct notify_address {
    sockaddr_un addr{};
    socklen_t length = 0;
};
std::optional<notify_address> parse_notify_socket(std::string_view value);

// How often to ping, from $WATCHDOG_USEC and $WATCHDOG_PID: half the watchdog interval;
// nullopt when no watchdog is set, or it is meant for another process.
std::optional<std::chrono::microseconds> watchdog_interval(char const* usec, char const* pid, long own_pid);

// "STATUS=…" with newlines flattened: a newline would start another assignment.
std::string status_message(std::string_view text);

class notifier {
public:
    // Reads $NOTIFY_SOCKET; without it (not under systemd) every send is a no-op.
    notifier();
    ~notifier();
    notifier(notifier const&) = delete;
    notifier& operator=(notifier const&) = delete;

    bool enabled() const { return fd_ >= 0; }
    // Never blocks: a full socket buffer loses the message, the loop goes on.
    void send(std::string_view message);

private:
    int fd_ = -1;
    notify_address to_{};
};

}  // namespace nm

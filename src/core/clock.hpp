#pragma once
// The clock of every lease deadline and every decision of the failover core.
//
// CLOCK_BOOTTIME keeps counting while the machine is suspended, as etcd's clock does on
// the server side; CLOCK_MONOTONIC would not, and a lease deadline measured on it would
// fall after the server's real expiry once the machine had slept. The core reads no clock
// itself: the driver passes boot_clock::now() with every fact, and wakes the core on a
// timerfd on this clock.
//
// Other clocks, and why they are enough where they are used: the etcd and nodeos clients
// time out each request on Asio's steady clock (a request that outlives a suspend only
// ends later, and the core's own deadline, on this clock, fences regardless); the output
// relay's rate limit and the systemd watchdog pings also run on the steady clock; logs
// and /status show wall-clock times.
#include <chrono>
#include <ctime>

namespace nm {

struct boot_clock {
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<boot_clock>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_BOOTTIME, &ts);
        return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
    }
};

using time_point = boot_clock::time_point;
using duration = boot_clock::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Milliseconds as a plain number, for log lines.
inline long long to_ms(duration d) {
    return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace nm

#pragma once
// The one clock every deadline in nodeos-monitor is measured on.
//
// CLOCK_BOOTTIME keeps counting while the machine is suspended, as etcd's clock does on
// the server side; CLOCK_MONOTONIC would not, and a lease deadline measured on it would
// fall after the server's real expiry once the machine had slept.
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

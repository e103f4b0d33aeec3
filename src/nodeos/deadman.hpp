#pragma once
// A kernel-side dead-man switch: a POSIX timer on CLOCK_BOOTTIME that sends SIGKILL to
// this process when it expires. Armed while nodeos produces, pushed forward on every
// renewal, disarmed otherwise. A monitor that is stopped, starved or paused cannot fence
// its producer by itself; the kernel then kills it, and PR_SET_PDEATHSIG takes nodeos with it.
#include <ctime>

#include "core/clock.hpp"

namespace nm {

class deadman_switch {
public:
    deadman_switch();  // throws std::system_error if the timer cannot be created
    ~deadman_switch();
    deadman_switch(deadman_switch const&) = delete;
    deadman_switch& operator=(deadman_switch const&) = delete;

    // Both throw std::system_error when the kernel refuses: the driver's fail-safe then
    // stops nodeos itself (src/app/monitor.cpp).
    void arm(time_point at);  // a no-op when already armed for `at`
    void disarm();
    bool armed() const { return armed_at_ != time_point{}; }

private:
    timer_t timer_{};
    time_point armed_at_{};
};

}  // namespace nm

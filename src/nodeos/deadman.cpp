#include "nodeos/deadman.hpp"

#include <csignal>
#include <system_error>

namespace nm {

deadman_switch::deadman_switch() {
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGKILL;
    if (::timer_create(CLOCK_BOOTTIME, &ev, &timer_) != 0) {
        throw std::system_error(errno, std::system_category(), "timer_create");
    }
}

deadman_switch::~deadman_switch() { ::timer_delete(timer_); }

void deadman_switch::arm(time_point at) {
    if (at == armed_at_) return;
    auto ns = at.time_since_epoch().count();
    itimerspec spec{};
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    if (::timer_settime(timer_, TIMER_ABSTIME, &spec, nullptr) != 0) {
        throw std::system_error(errno, std::system_category(), "timer_settime");
    }
    armed_at_ = at;
}

void deadman_switch::disarm() {
    if (!armed()) return;
    itimerspec spec{};
    if (::timer_settime(timer_, 0, &spec, nullptr) != 0) {
        throw std::system_error(errno, std::system_category(), "timer_settime");
    }
    armed_at_ = {};
}

}  // namespace nm

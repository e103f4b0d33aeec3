// Loaded into a monitor with LD_PRELOAD by the fail-safe test (tests/e2e/test_core.py):
// makes one system call that fencing depends on fail, on demand, as a kernel out of
// resources would.
//
//   NM_FAIL_SYSCALL=timer_settime|timerfd_settime   the call to fail (with EINVAL)
//   NM_FAIL_SYSCALL_WHEN=PATH                        ... while this file exists
#include <dlfcn.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

bool should_fail(char const* name) {
    char const* which = std::getenv("NM_FAIL_SYSCALL");
    char const* when = std::getenv("NM_FAIL_SYSCALL_WHEN");
    return which && when && std::strcmp(which, name) == 0 && ::access(when, F_OK) == 0;
}

template <class F>
F next(char const* name) {
    return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int timer_settime(timer_t timer, int flags, itimerspec const* value, itimerspec* old) {
    static auto const real = next<int (*)(timer_t, int, itimerspec const*, itimerspec*)>("timer_settime");
    if (should_fail("timer_settime")) {
        errno = EINVAL;
        return -1;
    }
    return real(timer, flags, value, old);
}

extern "C" int timerfd_settime(int fd, int flags, itimerspec const* value, itimerspec* old) {
    static auto const real = next<int (*)(int, int, itimerspec const*, itimerspec*)>("timerfd_settime");
    if (should_fail("timerfd_settime")) {
        errno = EINVAL;
        return -1;
    }
    return real(fd, flags, value, old);
}

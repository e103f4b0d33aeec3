#pragma once
// Every timing of the failover core. Two come from flags, the rest are derived from the
// TTL in policy::from() (the one place their formulas are written) or are constants
// chosen here; README "How fencing works" shows the resulting timetable.
#include "core/clock.hpp"

namespace nm {

struct policy {
    // From the flags --lease-ttl and --stop-timeout.
    duration ttl{};
    duration stop_timeout{};  // a graceful stop of nodeos, before SIGKILL

    // Derived from the TTL, in from().
    duration renew_interval{};   // one keepalive each
    duration request_timeout{};  // grant and campaign
    duration fence_graceful{};   // this much before the lease deadline, SIGTERM a producer still running
    duration fence_kill{};       // this much before it, SIGKILL it: a reserve for the kernel
    duration stable_period{};    // a nodeos that runs this long has its crash history cleared
    duration watch_retry_max{};  // a watch that keeps dying is re-opened at most this often

    // Constants.
    duration release_timeout = seconds(2);       // revoke on the way out: bounded even with etcd down
    duration retry_min = milliseconds(100);      // first retry of a failed request
    duration retry_max = seconds(2);             // longest wait between retries of a grant or campaign
    duration restart_min = milliseconds(500);    // first restart of a nodeos that exited on its own
    duration restart_max = seconds(30);
    int crash_loop = 3;                          // this many quick exits in a row: no longer a candidate
    duration reap_overdue = seconds(1);          // a SIGKILLed nodeos not reaped by then is reported
    duration decide_within = seconds(2);         // a fresh start waits this long for the lock's verdict

    static policy from(seconds ttl, seconds stop_timeout);
};

}  // namespace nm

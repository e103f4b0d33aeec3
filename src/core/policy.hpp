#pragma once
// Every timing and choice of the failover core. Some come from flags, the rest are
// derived from the TTL in policy::from() (the one place their formulas are written) or are
// constants chosen here; docs/design.md, "How fencing works", shows the resulting timetables.
#include "core/clock.hpp"

namespace nm {

// How a standby waits: a validator restarted as the producer on promotion (the original's
// design), or the producer config paused, resumed on promotion through nodeos's API.
enum class standby_mode { restart, paused };
char const* name_of(standby_mode m);

struct policy {
    // From the flags.
    duration ttl{};                                // --lease-ttl
    duration stop_timeout{};                       // --stop-timeout: a graceful stop of nodeos, before SIGKILL
    standby_mode standby = standby_mode::restart;  // --standby-mode
    bool health_gated = false;                     // --nodeos-api given (always in paused mode)
    bool dirty_recovery = false;                   // --dirty-db-args given
    duration block_interval = milliseconds(500);   // --block-interval-ms: a block in progress when pause arrives
    duration max_head_lag = seconds(6);            // --max-head-lag: a candidate's head is at most this old

    // Derived from the TTL, in from().
    duration renew_interval{};   // one keepalive each
    duration request_timeout{};  // a campaign, a read, a grant's first attempt
    duration grant_timeout_max{};  // a grant after grants timed out waits up to this (L3)
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
    duration health_interval = milliseconds(500);  // get_info this often: a node joins within a second of catching up
    duration api_timeout = seconds(1);           // a health check, or a resume
    duration dirty_check = seconds(2);           // a nodeos that runs this long has passed its dirty-database check
    duration publish_min = seconds(1);           // the member record is written at most this often
    duration publish_refresh = seconds(10);      // ... and its head lag refreshed this often

    // The time a fence by pause leaves the API to confirm it: from the pause (fence_graceful
    // before the deadline) until the block in progress, then the SIGKILL reserve, remain.
    duration pause_budget() const { return fence_graceful - fence_kill - block_interval; }

    struct settings {
        seconds ttl{10};
        seconds stop_timeout{30};
        standby_mode standby = standby_mode::restart;
        bool health_gated = false;
        bool dirty_recovery = false;
        milliseconds block_interval{500};
        seconds max_head_lag{6};
    };
    static policy from(settings const& s);
    static policy from(seconds ttl, seconds stop_timeout) { return from(settings{ttl, stop_timeout}); }
};

}  // namespace nm

#include "core/policy.hpp"

#include <algorithm>

namespace nm {

char const* name_of(standby_mode m) { return m == standby_mode::paused ? "paused" : "restart"; }

policy policy::from(settings const& s) {
    duration const ttl = s.ttl;  // in nanoseconds: a third of 10 s is not 3 s
    policy p;
    p.ttl = ttl;
    p.stop_timeout = s.stop_timeout;
    p.standby = s.standby;
    p.health_gated = s.health_gated || s.standby == standby_mode::paused;
    p.dirty_recovery = s.dirty_recovery;
    p.block_interval = s.block_interval;
    p.max_head_lag = s.max_head_lag;
    p.renew_interval = ttl / 3;
    p.request_timeout = ttl / 3;
    p.grant_timeout_max = ttl;
    p.fence_graceful = ttl * 2 / 5;
    p.fence_kill = std::max<duration>(ttl / 10, milliseconds(200));
    p.stable_period = ttl * 3;
    // A broken watch costs one read of the key per keepalive at most, and a standby whose
    // watch keeps dying still sees a released lock within one renew interval.
    p.watch_retry_max = p.renew_interval;
    return p;
}

}  // namespace nm

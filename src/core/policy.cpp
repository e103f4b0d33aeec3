#include "core/policy.hpp"

#include <algorithm>

namespace nm {

policy policy::from(seconds ttl_seconds, seconds stop_timeout) {
    duration const ttl = ttl_seconds;  // in nanoseconds: a third of 10 s is not 3 s
    policy p;
    p.ttl = ttl;
    p.stop_timeout = stop_timeout;
    p.renew_interval = ttl / 3;
    p.request_timeout = ttl / 3;
    p.fence_graceful = ttl * 2 / 5;
    p.fence_kill = std::max<duration>(ttl / 10, milliseconds(200));
    p.stable_period = ttl * 3;
    // A broken watch costs one read of the key per keepalive at most, and a standby whose
    // watch keeps dying still sees a released lock within one renew interval.
    p.watch_retry_max = p.renew_interval;
    return p;
}

}  // namespace nm

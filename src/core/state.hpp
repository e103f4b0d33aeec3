#pragma once
// The failover core's whole state, as plain data: one struct per sub-machine. The core
// owns it and changes a phase only through its enter() functions; tests build a core *in*
// a given state from these structs (tests/unit/core_builder.hpp).
#include <cstdint>
#include <optional>
#include <string>

#include "core/actions.hpp"
#include "core/clock.hpp"

namespace nm {

struct lease_state {
    lease_phase phase = lease_phase::none;
    std::int64_t id = 0;
    duration ttl{};
    time_point deadline{};      // live: send time of the last acknowledged keepalive + TTL
    time_point next_renew{};    // live: when the next keepalive is due
    time_point retry_at{};      // none: earliest next grant
    std::uint64_t request = 0;  // the grant, keepalive or revoke in flight
    int failures = 0;           // grants or keepalives failed in a row, for the backoff
};

struct lock_state {
    lock_view view = lock_view::unknown;
    std::string holder;         // theirs: who holds it, for logs and status
    std::uint64_t request = 0;  // the campaign in flight
    time_point retry_at{};      // unknown: earliest next campaign
    int failures = 0;           // campaigns failed in a row, for the backoff
};

// The watch of the lock key. It is (re)opened by every read of the key, so "re-open the
// watch" means "read the key again".
struct watch_state {
    watch_phase phase = watch_phase::idle;
    time_point opened_at{};  // open: when
    time_point reread_at{};  // broken: when to read the key again (which re-opens the watch)
    int failures = 0;        // watches in a row that ended before lasting watch_retry_max
};

struct nodeos_state {
    nodeos_phase phase = nodeos_phase::down;
    mode as = mode::standby;
    time_point since{};          // running: when it was started
    time_point stop_by{};        // stopping: the stop timeout ends (SIGKILL then at the latest)
    time_point killed_at{};      // killed: when SIGKILL was sent
    bool overdue_reported = false;
    time_point start_at{};       // down: earliest (re)start
    time_point waiting_since{};  // down: since when it waits for the lock's verdict
    int crashes = 0;             // quick exits in a row
    bool started_before = false;
    bool last_exit_crashed = false;
};

struct core_state {
    lease_state lease;
    lock_state lock;
    watch_state watch;
    nodeos_state nodeos;
    role current_role = role::starting;
    time_point hold_off_until{};  // no campaign before this: an active crash handed the lock over
    bool etcd_failing = false;    // the latest request to etcd failed
    int stop_signals = 0;         // SIGTERM or SIGINT received
    bool exited = false;
    std::uint64_t last_request = 0;
    std::optional<time_point> deadman_at;
};

}  // namespace nm

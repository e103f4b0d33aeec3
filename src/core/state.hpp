#pragma once
// The failover core's whole state, as plain data: one struct per sub-machine. The core
// owns it and changes a phase only through its enter() functions; tests build a core *in*
// a given state from these structs (tests/unit/core_rig.hpp, in_state).
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
    // The lease ID this monitor asks etcd for, kept while an attempt may have been carried
    // out unanswered (L3), so that the next attempt is the same request again (L13).
    std::int64_t asking = 0;
    bool unanswered = false;    // an attempt with `asking` failed without an answer
    int timed_out = 0;          // grants timed out in a row: each waits twice as long (L3)
};

struct lock_state {
    lock_view view = lock_view::unknown;
    std::string holder;         // theirs: who holds it, for logs and status
    std::uint64_t request = 0;  // the campaign in flight
    time_point retry_at{};      // unknown: earliest next campaign
    int failures = 0;           // campaigns failed in a row, for the backoff
};

// The watch of the group's keys (the lock and the control keys). It is (re)opened by every
// read of the group, so "re-open the watch" means "read the group again".
struct watch_state {
    watch_phase phase = watch_phase::idle;
    time_point opened_at{};  // open: when
    time_point reread_at{};  // broken: when to read the key again (which re-opens the watch)
    int failures = 0;        // watches in a row that ended before lasting watch_retry_max
};

struct nodeos_state {
    nodeos_phase phase = nodeos_phase::down;
    bool dirty = false;          // its last start found the database dirty (and it has not passed the check since)
    bool replay_next = false;    // the next start recovers it with the operator's --dirty-db-args
    bool failing = false;        // stopped as an unhealthy producer: its exit counts as a crash
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

// nodeos's health, from its get_info (with --nodeos-api).
struct health_state {
    health_phase phase = health_phase::unchecked;
    std::uint64_t request = 0;      // the check in flight
    time_point sent_at{};           // ... sent then: an answer tells of nodeos at about that time
    time_point next_check{};
    int failures = 0;               // checks failed in a row
    bool answered = false;          // since this nodeos started
    time_point answered_at{};       // when the latest answered check was sent
    std::int64_t head_num = 0;
    duration head_lag{};
    time_point head_moved_at{};     // when head_num was seen changing (or this node started producing)
    std::int64_t fresh_head_num = 0;  // the head at the latest answer within max_head_lag
};

// Paused mode: nodeos runs the producer config, and this says whether it may be signing.
struct production_state {
    production_phase phase = production_phase::paused;
    std::uint64_t request = 0;   // the pause or resume in flight
    time_point drained_at{};     // draining: the block a pause let through is over by then
    time_point retry_at{};       // earliest next pause or resume after one failed
    int failures = 0;
};

// This node's member record in etcd: what was last written, and when it may be written again.
struct registry_state {
    std::uint64_t request = 0;       // the write in flight
    std::int64_t lease = 0;          // the lease the record was written under (0: none yet)
    std::string written;             // the fields that trigger a write, as last written
    role written_role = role::starting;  // a change of role is written at once
    time_point next_write{};         // rate limit
    time_point refresh_at{};         // head lag is refreshed this often, never on every block
    int failures = 0;
};

struct core_state {
    lease_state lease;
    lock_state lock;
    watch_state watch;
    nodeos_state nodeos;
    health_state health;
    production_state production;
    group_control control;
    registry_state registry;
    bool stepping_down = false;   // a switchover: stop producing, then release the lock
    role current_role = role::starting;
    time_point role_since{};      // when current_role began
    time_point hold_off_until{};  // no campaign before this: an active crash handed the lock over
    bool etcd_failing = false;    // the latest request to etcd failed
    bool etcd_refused = false;    // etcd refused the latest campaign or read (credentials, permission)
    int stop_signals = 0;         // SIGTERM or SIGINT received
    bool exited = false;
    std::uint64_t last_request = 0;
    std::uint64_t lease_ids = 0;  // lease IDs chosen so far (new_lease_id())
    std::optional<time_point> deadman_at;
};

}  // namespace nm

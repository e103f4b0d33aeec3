#pragma once
// Actions: what the failover core asks for, and what it reports. Every action carries a
// structured `cause` (what tests assert and metrics count) and a sentence for the log.
//
// Commands are carried out by the driver; observations (a note, a change of phase) are
// only logged and counted. Operator-facing code learns everything from observations: it
// keeps no state of its own about the lock or nodeos.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/clock.hpp"
#include "core/text.hpp"

namespace nm {

enum class mode { standby, active };  // which config dir nodeos runs with
char const* name_of(mode m);

// The node as operators see it.
enum class role { starting, standby, active, stopping };
char const* name_of(role r);

// Whether this node may take the lock, and if not why.
enum class candidacy {
    candidate,
    stopping,            // the monitor is stopping
    held_off,            // it has just handed the lock over after its producer failed
    crash_loop,          // nodeos exited too often in a row
    producer_unhealthy,  // its producer is being restarted as failed
    dirty_database,      // nodeos refuses to start until its database is replayed
    nodeos_down,         // nodeos is not running (health is checked only while it runs)
    nodeos_unchecked,    // no answer from nodeos's API yet
    nodeos_lagging,      // its head is older than --max-head-lag
    nodeos_unreachable,  // its API does not answer
    group_paused,        // an operator paused the group: no automatic takeover
    node_paused,         // an operator paused this node
    switchover_to_other, // a planned switchover names another node
    etcd_refused,        // etcd refuses this node's user or its permission on the group's keys
};
char const* name_of(candidacy c);

// Why the core did something: one value per row of the transition table (failover.hpp).
enum class cause : std::uint8_t {
    // lease
    no_lease,             // L1: ask for one
    lease_granted,        // L2
    grant_failed,         // L3, L14
    grant_carried_out,    // L13: an earlier attempt created the lease
    keepalive_due,        // L4
    keepalive_failed,     // L6
    lease_gone,           // L7: etcd says the lease no longer exists
    deadline_passed,      // L8: no keepalive acknowledged for a whole TTL
    lease_adopted,        // L9
    released,             // L11
    release_failed,       // L12
    // lock
    lock_may_be_free,     // K1
    lock_acquired,        // K2
    lock_held_by_other,   // K3
    lock_taken,           // K4, K10: another holder while this node thought it held the lock
    own_lease_survives,   // K5
    key_vanished,         // K6
    campaign_failed,      // K7
    key_deleted,          // K8, K9
    reread_key,           // K12
    lease_lost,           // K13: the lock went with the lease
    group_read,           // K14
    // watch
    watch_key,            // W1
    watch_ended,          // W2
    etcd_answers_again,   // W3
    // nodeos
    paused_standby,       // N0: paused mode starts nodeos paused, whatever the lock
    holds_lock,           // N1
    lock_held_elsewhere,  // N2
    not_a_candidate,      // N3
    etcd_unreachable,     // N4
    no_verdict_yet,       // N5
    promote,              // N6
    exited_as_asked,      // N7
    crashed,              // N8
    start_failed,         // N8
    crash_handover,       // N9, L10
    crash_history_cleared,// N10
    stop_timeout,         // N11
    stuck_after_kill,     // N12
    // health
    health_check_due,     // H1
    nodeos_healthy,       // H2
    nodeos_lagging,       // H3
    chain_stalled,        // H4
    nodeos_unreachable,   // H5
    producer_unhealthy,   // H6
    // production (paused mode)
    resumed,              // P2
    resume_failed,        // P3
    paused_confirmed,     // P5
    drained,              // P6
    pause_failed,         // P7
    // the dirty database
    dirty_database,       // D1, D2
    database_clean,       // D3
    // fence
    fence_lost_lock,      // F1
    fence_frozen,         // F1, after a loop that ran too late
    fence_deadline,       // F2, F3, F4, F5
    // operating the group
    switchover,           // O1, O2: a planned handover to another node
    maintenance,          // O3: an operator paused or resumed the group or this node
    member_changed,       // R1
    member_refresh,       // R2
    // shutdown
    stop_requested,       // S1
    shutdown,             // S1, S2, L10
    second_stop,          // S3
    stopped,              // S4
};
char const* name_of(cause c);

// Which fence a signal is (for the metrics): none for a stop that is not a fence.
enum class fence_kind { none, deadline, lost_lock, frozen };
fence_kind fence_of(cause c);
char const* name_of(fence_kind f);

// Why nodeos starts, for the metrics: the first start, or after a crash, a promotion
// (standby to active), a demotion (active to standby), or any other stop.
enum class start_kind { first, crash, promote, demote, restart };
char const* name_of(start_kind k);

enum class lease_phase { none, granting, adopting, live, releasing };
enum class lock_view { unknown, mine, theirs };
enum class watch_phase { idle, open, broken };
enum class nodeos_phase { down, running, stopping, killed };
enum class health_phase { unchecked, healthy, lagging, unreachable };
// Paused mode: whether the running nodeos may be signing blocks. Only `paused` is safe;
// `draining` waits out the block a pause lets through.
enum class production_phase { paused, resuming, producing, pausing, draining };
char const* name_of(lease_phase p);
char const* name_of(health_phase p);
char const* name_of(production_phase p);
char const* name_of(lock_view v);
char const* name_of(watch_phase p);
char const* name_of(nodeos_phase p);

// What this node's member record says of it, as the core decides to write it (the
// driver adds who it is, its version and its standby mode, and when it writes).
struct member_view {
    role state = role::starting;
    candidacy candidate = candidacy::candidate;
    std::optional<health_phase> health;          // with a nodeos API
    std::optional<std::int64_t> head_block_num;  // ... once nodeos has answered
    std::optional<duration> head_lag;
    bool database_dirty = false;
    time_point since{};  // the latest change of role
};

namespace act {
// Commands.
struct grant { std::uint64_t request; std::int64_t lease; duration timeout; };  // the lease ID asked for
struct renew { std::uint64_t request; std::int64_t lease; duration timeout; };
struct campaign { std::uint64_t request; std::int64_t lease; duration timeout; };
struct read_group { std::uint64_t request; duration timeout; };  // the lock key and the group's control keys
struct release { std::uint64_t request; std::int64_t lease; duration timeout; };
struct watch { std::int64_t from_revision; };  // replaces the current watch
// With `paused`, nodeos starts with --pause-on-startup; with `replay`, the operator's
// --dirty-db-args are added to this one start.
struct start_nodeos { mode as; start_kind kind; bool paused = false; bool replay = false; };
struct check_health { std::uint64_t request; duration timeout; };
struct set_production { std::uint64_t request; bool paused; duration timeout; };  // pause or resume, then confirm
// Write this node's member record, bound to the lease.
struct publish {
    std::uint64_t request;
    std::int64_t lease;
    duration timeout;
    member_view member;
};
struct signal_nodeos { int signal; };  // to nodeos's process group
struct exit { int code; };
// Observations.
struct note {};
template <class Phase>
struct changed { Phase from; Phase to; };
}  // namespace act

// One thing the core asks for or reports: `lvl` is how much an operator needs to see it.
struct action {
    std::variant<act::grant, act::renew, act::campaign, act::read_group, act::release, act::watch, act::start_nodeos,
                 act::signal_nodeos, act::exit, act::check_health, act::set_production, act::publish, act::note,
                 act::changed<lease_phase>, act::changed<lock_view>, act::changed<watch_phase>,
                 act::changed<nodeos_phase>, act::changed<health_phase>, act::changed<production_phase>,
                 act::changed<role>>
        what;
    cause why;
    level lvl;
    std::string text;

    // True for the commands the driver carries out; false for observations.
    bool is_command() const;
};

}  // namespace nm

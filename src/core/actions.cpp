#include "core/actions.hpp"

#include "core/facts.hpp"

namespace nm {
namespace {

template <class T>
constexpr bool is_command_type = false;
template <> constexpr bool is_command_type<act::grant> = true;
template <> constexpr bool is_command_type<act::renew> = true;
template <> constexpr bool is_command_type<act::campaign> = true;
template <> constexpr bool is_command_type<act::read_group> = true;
template <> constexpr bool is_command_type<act::release> = true;
template <> constexpr bool is_command_type<act::watch> = true;
template <> constexpr bool is_command_type<act::start_nodeos> = true;
template <> constexpr bool is_command_type<act::signal_nodeos> = true;
template <> constexpr bool is_command_type<act::exit> = true;
template <> constexpr bool is_command_type<act::check_health> = true;
template <> constexpr bool is_command_type<act::set_production> = true;
template <> constexpr bool is_command_type<act::publish> = true;

}  // namespace

bool action::is_command() const {
    return std::visit([](auto const& w) { return is_command_type<std::decay_t<decltype(w)>>; }, what);
}

char const* name_of(mode m) { return m == mode::active ? "active" : "standby"; }

char const* name_of(role r) {
    switch (r) {
    case role::starting: return "starting";
    case role::standby: return "standby";
    case role::active: return "active";
    case role::stopping: return "stopping";
    }
    return "?";
}

char const* name_of(candidacy c) {
    switch (c) {
    case candidacy::candidate: return "candidate";
    case candidacy::stopping: return "stopping";
    case candidacy::held_off: return "held_off";
    case candidacy::crash_loop: return "crash_loop";
    case candidacy::producer_unhealthy: return "producer_unhealthy";
    case candidacy::dirty_database: return "dirty_database";
    case candidacy::nodeos_down: return "nodeos_down";
    case candidacy::nodeos_unchecked: return "nodeos_unchecked";
    case candidacy::nodeos_lagging: return "nodeos_lagging";
    case candidacy::nodeos_unreachable: return "nodeos_unreachable";
    case candidacy::group_paused: return "group_paused";
    case candidacy::node_paused: return "node_paused";
    case candidacy::switchover_to_other: return "switchover_to_other";
    case candidacy::etcd_refused: return "etcd_refused";
    }
    return "?";
}

char const* name_of(failure f) {
    switch (f) {
    case failure::timed_out: return "timed out";
    case failure::unavailable: return "unavailable";
    case failure::not_found: return "not found";
    case failure::exists: return "exists";
    case failure::unauthenticated: return "unauthenticated";
    case failure::rejected: return "rejected";
    case failure::malformed: return "malformed answer";
    }
    return "?";
}

char const* name_of(cause c) {
    switch (c) {
#define NM_CAUSE(name) \
    case cause::name: return #name;
        NM_CAUSE(no_lease) NM_CAUSE(lease_granted) NM_CAUSE(grant_failed) NM_CAUSE(keepalive_due)
        NM_CAUSE(keepalive_failed) NM_CAUSE(lease_gone) NM_CAUSE(deadline_passed) NM_CAUSE(lease_adopted) NM_CAUSE(grant_carried_out)
        NM_CAUSE(released) NM_CAUSE(release_failed) NM_CAUSE(lock_may_be_free) NM_CAUSE(lock_acquired)
        NM_CAUSE(lock_held_by_other) NM_CAUSE(lock_taken) NM_CAUSE(own_lease_survives) NM_CAUSE(key_vanished)
        NM_CAUSE(campaign_failed) NM_CAUSE(key_deleted) NM_CAUSE(reread_key) NM_CAUSE(lease_lost) NM_CAUSE(group_read)
        NM_CAUSE(watch_key) NM_CAUSE(watch_ended) NM_CAUSE(etcd_answers_again) NM_CAUSE(paused_standby) NM_CAUSE(holds_lock)
        NM_CAUSE(lock_held_elsewhere) NM_CAUSE(not_a_candidate) NM_CAUSE(etcd_unreachable)
        NM_CAUSE(no_verdict_yet) NM_CAUSE(promote) NM_CAUSE(exited_as_asked) NM_CAUSE(crashed)
        NM_CAUSE(start_failed) NM_CAUSE(crash_handover) NM_CAUSE(crash_history_cleared) NM_CAUSE(stop_timeout)
        NM_CAUSE(stuck_after_kill) NM_CAUSE(health_check_due) NM_CAUSE(nodeos_healthy) NM_CAUSE(nodeos_lagging)
        NM_CAUSE(chain_stalled) NM_CAUSE(nodeos_unreachable) NM_CAUSE(producer_unhealthy) NM_CAUSE(resumed)
        NM_CAUSE(resume_failed) NM_CAUSE(paused_confirmed) NM_CAUSE(drained) NM_CAUSE(pause_failed)
        NM_CAUSE(dirty_database) NM_CAUSE(database_clean) NM_CAUSE(switchover) NM_CAUSE(maintenance) NM_CAUSE(member_changed)
        NM_CAUSE(member_refresh) NM_CAUSE(fence_lost_lock) NM_CAUSE(fence_frozen) NM_CAUSE(fence_deadline)
        NM_CAUSE(stop_requested) NM_CAUSE(shutdown) NM_CAUSE(second_stop) NM_CAUSE(stopped)
#undef NM_CAUSE
    }
    return "?";
}

fence_kind fence_of(cause c) {
    switch (c) {
    case cause::fence_deadline: return fence_kind::deadline;
    case cause::fence_lost_lock: return fence_kind::lost_lock;
    case cause::fence_frozen: return fence_kind::frozen;
    default: return fence_kind::none;
    }
}

char const* name_of(fence_kind f) {
    switch (f) {
    case fence_kind::none: return "none";
    case fence_kind::deadline: return "deadline";
    case fence_kind::lost_lock: return "lost_lock";
    case fence_kind::frozen: return "frozen";
    }
    return "?";
}

char const* name_of(start_kind k) {
    switch (k) {
    case start_kind::first: return "first";
    case start_kind::crash: return "crash";
    case start_kind::promote: return "promote";
    case start_kind::demote: return "demote";
    case start_kind::restart: return "restart";
    }
    return "?";
}

char const* name_of(lease_phase p) {
    switch (p) {
    case lease_phase::none: return "none";
    case lease_phase::granting: return "granting";
    case lease_phase::adopting: return "adopting";
    case lease_phase::live: return "live";
    case lease_phase::releasing: return "releasing";
    }
    return "?";
}

char const* name_of(lock_view v) {
    switch (v) {
    case lock_view::unknown: return "unknown";
    case lock_view::mine: return "mine";
    case lock_view::theirs: return "theirs";
    }
    return "?";
}

char const* name_of(watch_phase p) {
    switch (p) {
    case watch_phase::idle: return "idle";
    case watch_phase::open: return "open";
    case watch_phase::broken: return "broken";
    }
    return "?";
}

char const* name_of(health_phase p) {
    switch (p) {
    case health_phase::unchecked: return "unchecked";
    case health_phase::healthy: return "healthy";
    case health_phase::lagging: return "lagging";
    case health_phase::unreachable: return "unreachable";
    }
    return "?";
}

char const* name_of(production_phase p) {
    switch (p) {
    case production_phase::paused: return "paused";
    case production_phase::resuming: return "resuming";
    case production_phase::producing: return "producing";
    case production_phase::pausing: return "pausing";
    case production_phase::draining: return "draining";
    }
    return "?";
}

char const* name_of(nodeos_phase p) {
    switch (p) {
    case nodeos_phase::down: return "down";
    case nodeos_phase::running: return "running";
    case nodeos_phase::stopping: return "stopping";
    case nodeos_phase::killed: return "killed";
    }
    return "?";
}

}  // namespace nm

// What operators ask and see (rows O1 to O3, R1 to R4, S1 to S4): pauses and a planned
// switchover, this node's member record, and the ordered stop.
#include "core/failover.hpp"

#include <csignal>

namespace nm {

// R4
void failover::registry_failed(fact::request_failed const& f) {
    auto& registry = s_.registry;
    registry.request = 0;
    if (f.kind == failure::not_found) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
    registry.next_write = now_ + backoff(p_.retry_min, p_.retry_max, registry.failures++);
    note(cause::member_changed, level::warning, cat("writing the member record failed: ", name_of(f.kind), ": ", f.detail));
}

// O3: only candidacy follows; the fences never do.
void failover::on(fact::control_changed const& f) { apply_control(f.control); }

void failover::apply_control(group_control const& c) {
    auto const before = s_.control;
    s_.control = c;
    auto const& now = s_.control;
    if (now.group_paused != before.group_paused) {
        note(cause::maintenance, level::warning,
             now.group_paused ? "an operator paused the group: no automatic takeover until it is resumed"
                              : "an operator resumed the group");
    }
    if (now.node_paused != before.node_paused) {
        note(cause::maintenance, level::warning,
             now.node_paused ? "an operator paused this node: it is not a candidate until it is resumed"
                             : "an operator resumed this node");
    }
    if (now.switchover_to != before.switchover_to) {
        note(cause::switchover, level::info,
             now.switchover_to.empty() ? std::string("the switchover is over")
                                       : cat("an operator asked for a switchover to ", now.switchover_to));
    }
}

// R3
void failover::on(fact::published const& f) {
    auto& registry = s_.registry;
    if (!ours(f.request, registry.request)) return;
    registry.request = 0;
    registry.failures = 0;
}

// S1, S3
void failover::on(fact::stop_requested const& f) {
    if (++s_.stop_signals == 1) {
        enter_role(role::stopping, cause::stop_requested,
                   cat(f.signal, " received: stopping nodeos, then releasing the lock"));
        return;
    }
    if (s_.nodeos.phase != nodeos_phase::down) {
        emit(act::signal_nodeos{SIGKILL}, cause::second_stop, level::warning, cat("second ", f.signal, ": kill nodeos at once"));
    }
    emit(act::exit{1}, cause::second_stop, level::warning, cat("second ", f.signal, ": exit without releasing the lock"));
    s_.exited = true;
}

// S1, S2, S4. Paused mode: the lock goes as soon as production is paused (P4), so that a
// peer resumes while this nodeos takes its time to stop.
void failover::shut_down() {
    if (!shutting_down()) return;
    auto& nodeos = s_.nodeos;
    if (paused_mode() && nodeos.phase == nodeos_phase::running) {
        if (producer_alive()) return;  // P4 pauses it first
        release_lease(cause::shutdown, "production is paused: release the lock so that a peer takes over at once");
        return stop_nodeos(cause::shutdown, "the monitor is stopping");
    }
    switch (nodeos.phase) {
    case nodeos_phase::running: return stop_nodeos(cause::shutdown, "the monitor is stopping");
    case nodeos_phase::stopping:
    case nodeos_phase::killed:
        nodeos.stop_by = std::min(nodeos.stop_by, now_ + p_.stop_timeout);
        wake_at(kill_time());
        return;
    case nodeos_phase::down: break;
    }
    release_lease(cause::shutdown, "nodeos is stopped: release the lock so that a peer takes over at once");
    if (s_.lease.phase == lease_phase::releasing) return;
    s_.exited = true;
    emit(act::exit{0}, cause::stopped, level::info, "nodeos is stopped and the lock released");
}

// O1, O2: a planned switchover hands the lock to a ready node once this one has stopped
// producing (the gap is one release and one campaign, plus the target's resume or start).
void failover::step_down() {
    if (shutting_down()) return;
    auto const& c = s_.control;
    bool const asked = !c.switchover_to.empty() && c.switchover_to != me_.node && c.switchover_target_ready;
    if (s_.stepping_down || !asked || !holds_lock()) return;
    s_.stepping_down = true;
    note(cause::switchover, level::info,
         cat("switchover to ", c.switchover_to, ", which is ready: stop producing, then hand the lock over"));
    if (!paused_mode() && producer_alive() && s_.nodeos.phase == nodeos_phase::running) {
        stop_nodeos(cause::switchover, cat("planned switchover to ", c.switchover_to));
    }  // paused mode: P4 pauses it
}

// O2
void failover::hand_over() {
    if (shutting_down() || !s_.stepping_down || producer_alive()) return;
    s_.stepping_down = false;
    release_lease(cause::switchover, cat("production has stopped: hand the lock to ", s_.control.switchover_to));
}

// R1, R2: written on change and rate-limited; the head alone never triggers a write.
void failover::keep_registry() {
    auto& registry = s_.registry;
    auto const& lease = s_.lease;
    if (lease.phase != lease_phase::live || registry.request != 0 || shutting_down()) return;
    bool const new_lease = registry.lease != lease.id;
    auto const fields = registry_fields();
    cause why;
    bool const role_changed = registry.written_role != s_.current_role;  // switchover waits on it
    if (new_lease || role_changed || (fields != registry.written && reached_or_wake(registry.next_write))) {
        why = cause::member_changed;
    } else if (p_.health_gated && reached_or_wake(registry.refresh_at)) {
        why = cause::member_refresh;
    } else {
        if (fields != registry.written) wake_at(registry.next_write);
        return;
    }
    registry.request = next_request();
    registry.lease = lease.id;
    registry.written = fields;
    registry.written_role = s_.current_role;
    registry.next_write = now_ + p_.publish_min;
    registry.refresh_at = now_ + p_.publish_refresh;
    emit(act::publish{registry.request, lease.id, p_.request_timeout, member()}, why, level::debug,
         cat("write this node's member record (", fields, ")"));
}

member_view failover::member() const {
    member_view m{.state = s_.current_role, .candidate = why_not(), .database_dirty = s_.nodeos.dirty,
                  .since = s_.role_since};
    if (p_.health_gated) {
        m.health = s_.health.phase;
        if (s_.health.answered) {
            m.head_block_num = s_.health.head_num;
            m.head_lag = s_.health.head_lag;
        }
    }
    return m;
}

std::string failover::registry_fields() const {
    return cat(name_of(s_.current_role), " ", name_of(why_not()), " ", name_of(s_.health.phase),
               s_.nodeos.dirty ? " dirty" : "", s_.control.node_paused ? " paused" : "");
}

}  // namespace nm

// nodeos (rows N0 to N13, D1 to D3) and the fence (F1 to F5): which config it runs, when it
// starts, stops and is killed, its crashes and its dirty database; the dead-man timer.
#include "core/failover.hpp"

#include <algorithm>
#include <csignal>

namespace nm {

// N7, N8, N9
// N7, N8, N9, D1, D2: nodeos refuses a dirty database with exit code 2 and says so.
void failover::on(fact::nodeos_exited const& f) {
    auto const& nodeos = s_.nodeos;
    if (nodeos.phase == nodeos_phase::down) return;
    bool const asked = nodeos.phase == nodeos_phase::stopping || nodeos.phase == nodeos_phase::killed;
    if (f.exit_code == 2 && f.said_dirty) return nodeos_ended(cause::dirty_database, f.how);
    if (asked && nodeos.failing) return nodeos_ended(cause::producer_unhealthy, f.how);
    nodeos_ended(asked ? cause::exited_as_asked : cause::crashed, f.how);
}

// N8, N9
void failover::on(fact::nodeos_start_failed const& f) {
    if (s_.nodeos.phase == nodeos_phase::down) return;
    nodeos_ended(cause::start_failed, f.detail);
}

// N10, D3
void failover::check_history() {
    auto& nodeos = s_.nodeos;
    if (nodeos.phase != nodeos_phase::running) return;
    if (nodeos.crashes > 0 && reached_or_wake(nodeos.since + p_.stable_period)) {
        nodeos.crashes = 0;
        note(cause::crash_history_cleared, level::info, "nodeos has run stably: its crash history is cleared");
    }
    if (nodeos.dirty && reached_or_wake(nodeos.since + p_.dirty_check)) {
        nodeos.dirty = false;
        nodeos.replay_next = false;
        note(cause::database_clean, level::info, "nodeos has passed its database check: the database is no longer dirty");
    }
}

// While it may produce, with a live lease, the kernel kills a frozen monitor half the
// SIGKILL reserve before the deadline.
void failover::arm_deadman() {
    if (!producer_alive()) {
        s_.deadman_at.reset();
    } else if (s_.lease.phase == lease_phase::live) {
        s_.deadman_at = s_.lease.deadline - p_.fence_kill / 2;
    }
}

// N0 to N6, D1, D2
void failover::keep_nodeos() {
    if (shutting_down()) return;
    auto& nodeos = s_.nodeos;
    bool const mine = active_allowed() && !nodeos.replay_next && !s_.stepping_down;
    bool const theirs = !mine && s_.lock.view == lock_view::theirs;
    switch (nodeos.phase) {
    case nodeos_phase::down: {
        if (!reached_or_wake(nodeos.start_at)) return;
        if (paused_mode()) {
            return start_nodeos(mode::active, cause::paused_standby,
                                nodeos.replay_next ? "replay its dirty database with --dirty-db-args, paused"
                                                   : "standby mode paused: start the producer config, paused");
        }
        if (nodeos.replay_next) {
            return start_nodeos(mode::standby, cause::dirty_database,
                                "replay its dirty database with --dirty-db-args, as a validator");
        }
        // N13: stopped by F2 with the lease maybe still ours, only late (a slow etcd): start
        // nothing until a keepalive renews it (N1, one restart in all) or its deadline
        // passes (L8). A validator started now would be stopped again as soon as the
        // renewal came, and each restart of a real nodeos costs from seconds to minutes.
        if (holds_lock() && !active_allowed() && !s_.stepping_down) return;
        if (mine) return start_nodeos(mode::active, cause::holds_lock, "this node holds the lock");
        if (theirs) return start_nodeos(mode::standby, cause::lock_held_elsewhere, cat("the lock is held by ", s_.lock.holder));
        auto const why = why_not();
        // A node that must run nodeos to be checked first learns who holds the lock (K14):
        // moments, unless etcd cannot be reached.
        bool const verdict_soon = s_.watch.phase != watch_phase::open && !s_.etcd_failing &&
                                  !reached_or_wake(nodeos.waiting_since + p_.decide_within);
        if (why != candidacy::candidate && !(why == candidacy::nodeos_down && verdict_soon)) {
            auto text = why == candidacy::crash_loop
                            ? cat("nodeos exited ", nodeos.crashes, " times in a row: not a candidate until it runs stably")
                        : why == candidacy::nodeos_down
                            ? std::string("a candidate's nodeos must be healthy: start it as a validator to check it")
                            : cat("not a candidate (", name_of(why), "): run as a validator");
            return start_nodeos(mode::standby, cause::not_a_candidate, text);
        }
        if (s_.etcd_failing) {
            return start_nodeos(mode::standby, cause::etcd_unreachable,
                                "etcd cannot be reached: run as a validator and keep trying");
        }
        if (reached_or_wake(nodeos.waiting_since + p_.decide_within)) {
            return start_nodeos(mode::standby, cause::no_verdict_yet, "no answer from etcd yet: run as a validator meanwhile");
        }
        return;  // the lock's verdict is moments away
    }
    case nodeos_phase::running:
        if (!paused_mode() && nodeos.as == mode::standby && mine && !nodeos.dirty) {
            stop_nodeos(cause::promote, "this node took the lock: restart nodeos as the producer");
        }
        return;
    case nodeos_phase::stopping:
    case nodeos_phase::killed: return;
    }
}

// F1 to F5, N11, N12. Safety first: a producer runs only while the lock is ours and the
// deadline is ahead. A known lost lock is a SIGKILL in both modes: another node may be
// producing now, and a pause would still let one block through.
void failover::fence() {
    auto& nodeos = s_.nodeos;
    if (nodeos.phase == nodeos_phase::down) return;
    bool const producer = producer_alive();
    auto const& deadline = s_.lease.deadline;
    if (producer && nodeos.phase != nodeos_phase::killed && !holds_lock()) {
        kill_nodeos(deadline_missed_ ? cause::fence_frozen : cause::fence_lost_lock,
                    "the lock is lost: another node may be producing");
    } else if (paused_mode()) {
        // F4 is a pause (keep_production); F5: not confirmed in time, or the block it let
        // through not over with the SIGKILL reserve left.
        auto const phase = s_.production.phase;
        bool const late = phase == production_phase::draining ? reached_or_wake(deadline - p_.fence_kill)
                                                              : reached_or_wake(deadline - p_.fence_kill - p_.block_interval);
        if (producer && nodeos.phase == nodeos_phase::running && late) {
            kill_nodeos(cause::fence_deadline,
                        cat("the pause is not confirmed ", to_ms(deadline - now_), " ms before the lease deadline"));
        }
    } else if (producer && nodeos.phase == nodeos_phase::running && reached_or_wake(deadline - p_.fence_graceful)) {
        stop_nodeos(cause::fence_deadline,
                    cat("lease not renewed; ", to_ms(deadline - now_), " ms left before the lease deadline"));
    }
    if (nodeos.phase == nodeos_phase::stopping && reached_or_wake(kill_time())) {
        bool const for_deadline = producer && kill_time() < nodeos.stop_by;
        kill_nodeos(for_deadline ? cause::fence_deadline : cause::stop_timeout,
                    for_deadline ? "graceful stop took too long: the lease deadline is near"
                                 : "graceful stop took longer than the stop timeout");
    }
    if (nodeos.phase == nodeos_phase::killed && !nodeos.overdue_reported && reached_or_wake(nodeos.killed_at + p_.reap_overdue)) {
        nodeos.overdue_reported = true;
        auto text = cat(name_of(nodeos.as), " nodeos survives SIGKILL after ", to_ms(now_ - nodeos.killed_at),
                        " ms: stuck in uninterruptible sleep (a hung disk?)");
        if (producer) text += "; a peer may start producing once this node's lease expires";
        note(cause::stuck_after_kill, level::error, std::move(text));
    }
}

// The role follows nodeos and its production: it is entered with the cause of their change.
void failover::enter(nodeos_phase to, cause why, level lvl, std::string text) {
    record(s_.nodeos.phase, to, why, lvl, text);
    if (to == nodeos_phase::down) {
        // What the data dir held is still true of the next nodeos on it: the head it saw fresh.
        enter(health_state{.phase = health_phase::unchecked, .fresh_head_num = s_.health.fresh_head_num}, why,
              level::debug, "nodeos is not running");
        enter(production_state{.phase = production_phase::paused}, why, level::debug, "nodeos is not running");
    }
    enter_role(role_now(), why, text);
}

void failover::start_nodeos(mode as, cause why, std::string text) {
    auto& nodeos = s_.nodeos;
    first_check_after(p_.health_interval);  // H1: once the new nodeos had a moment
    auto kind = !nodeos.started_before                                  ? start_kind::first
                : nodeos.last_exit_crashed                              ? start_kind::crash
                : nodeos.as == mode::standby && as == mode::active     ? start_kind::promote
                : nodeos.as == mode::active && as == mode::standby     ? start_kind::demote
                                                                         : start_kind::restart;
    bool const replay = nodeos.replay_next;
    nodeos.as = as;
    nodeos.since = now_;
    nodeos.started_before = true;
    nodeos.last_exit_crashed = false;
    nodeos.replay_next = false;
    nodeos.failing = false;
    emit(act::start_nodeos{as, kind, paused_mode(), replay}, why, level::info, text);
    enter(nodeos_phase::running, why, level::debug, std::move(text));
}

void failover::stop_nodeos(cause why, std::string const& text) {
    auto& nodeos = s_.nodeos;
    nodeos.stop_by = now_ + p_.stop_timeout;
    auto sentence = cat("stop ", name_of(nodeos.as), " nodeos gracefully (SIGKILL in ", to_ms(kill_time() - now_),
                        " ms at the latest): ", text);
    emit(act::signal_nodeos{SIGTERM}, why, fence_of(why) == fence_kind::none ? level::info : level::warning, sentence);
    enter(nodeos_phase::stopping, why, level::debug, std::move(sentence));
    wake_at(kill_time());
}

// A stopping producer is killed at the stop timeout, or with the SIGKILL reserve left
// before its lease deadline, whichever comes first; renewals meanwhile push the latter.
time_point failover::kill_time() const {
    if (s_.nodeos.as == mode::active && s_.lease.phase == lease_phase::live) {
        return std::min(s_.nodeos.stop_by, s_.lease.deadline - p_.fence_kill);
    }
    return s_.nodeos.stop_by;
}

void failover::kill_nodeos(cause why, std::string const& text) {
    s_.nodeos.killed_at = now_;
    auto sentence = cat("kill ", name_of(s_.nodeos.as), " nodeos: ", text);
    emit(act::signal_nodeos{SIGKILL}, why, level::warning, sentence);
    enter(nodeos_phase::killed, why, level::debug, std::move(sentence));
}

// N7, N8, N9, D1, D2, H6
void failover::nodeos_ended(cause why, std::string const& how) {
    auto& nodeos = s_.nodeos;
    mode const was = nodeos.as;
    bool const was_producer = producer_alive();
    nodeos.overdue_reported = false;
    nodeos.failing = false;
    if (why == cause::exited_as_asked) {
        nodeos.start_at = now_;
        nodeos.waiting_since = now_;
        return enter(nodeos_phase::down, why, level::info, cat(name_of(was), " nodeos stopped (", how, ")"));
    }
    if (why == cause::dirty_database) {
        nodeos.dirty = true;
        nodeos.replay_next = p_.dirty_recovery;
        auto delay = p_.dirty_recovery ? duration::zero() : p_.restart_max;
        nodeos.start_at = now_ + delay;
        nodeos.waiting_since = nodeos.start_at;
        enter(nodeos_phase::down, why, level::error,
              p_.dirty_recovery
                  ? cat("nodeos refuses to start (", how, "): its database is dirty after an unclean stop; "
                        "replaying it with --dirty-db-args, as a validator; not a candidate until it has caught up")
                  : cat("nodeos refuses to start (", how, "): its database is dirty after an unclean stop and must be "
                        "replayed: set dirty-db-args (for example --replay-blockchain, or --snapshot with an empty "
                        "state directory), or replay it by hand; this node is not a candidate meanwhile, and tries "
                        "again in ", to_ms(delay) / 1000, " s"));
        if (s_.lock.view == lock_view::mine && !shutting_down()) {
            release_lease(cause::dirty_database, "nodeos cannot start: release the lock so that a peer takes over");
        }
        return;
    }
    bool const stable = now_ - nodeos.since >= p_.stable_period;
    nodeos.crashes = stable ? 1 : nodeos.crashes + 1;
    auto delay = backoff(p_.restart_min, p_.restart_max, nodeos.crashes - 1);
    nodeos.start_at = now_ + delay;
    nodeos.waiting_since = nodeos.start_at;
    nodeos.last_exit_crashed = true;
    auto what = why == cause::start_failed ? cat("could not start nodeos (", how, ")")
                                           : cat(name_of(was), " nodeos exited on its own (", how, ")");
    enter(nodeos_phase::down, why, level::warning,
          cat(what, ", exit ", nodeos.crashes, " in a row; restart in ", to_ms(delay), " ms"));
    if ((was_producer || s_.lock.view == lock_view::mine) && !shutting_down()) {
        // Hand the lock to a healthy peer now rather than after a TTL; campaign again later.
        s_.hold_off_until = nodeos.start_at;
        release_lease(cause::crash_handover, "active nodeos exited: release the lock so that a healthy peer can take over");
    }
}

}  // namespace nm

#include "core/failover.hpp"

#include <algorithm>
#include <csignal>

namespace nm {

failover::failover(policy p, identity me, core_state initial)
    : p_(p), me_(std::move(me)), s_(std::move(initial)) {}

std::vector<action> failover::handle(fact_t const& f, time_point now) {
    out_.clear();
    if (s_.exited) return {};
    now_ = now;
    std::visit([&](auto const& fact) { on(fact); }, f);
    decide();
    return std::move(out_);
}

std::optional<time_point> failover::lease_deadline() const {
    if (s_.lease.phase != lease_phase::live) return std::nullopt;
    return s_.lease.deadline;
}

// ---- facts ---------------------------------------------------------------------------

void failover::on(fact::start const&) {
    s_.nodeos.start_at = now_;
    s_.nodeos.waiting_since = now_;
}

// L2
void failover::on(fact::lease_granted const& f) {
    auto& lease = s_.lease;
    if (lease.phase != lease_phase::granting || !ours(f.request, lease.request)) return;
    lease = lease_state{.phase = lease.phase, .id = f.lease, .ttl = f.ttl, .deadline = f.sent + f.ttl,
                        .next_renew = f.sent + f.ttl / 3};
    s_.etcd_failing = false;
    s_.lock.retry_at = now_;  // K1: a new lease holds nothing yet
    enter(lease_phase::live, cause::lease_granted, level::info,
          cat("lease ", f.lease, " granted, TTL ", to_ms(f.ttl) / 1000, " s"));
}

// L5, L7, L9, W3
void failover::on(fact::keepalive_answered const& f) {
    auto& lease = s_.lease;
    if (!ours(f.request, lease.request)) return;
    if (!f.ttl) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
    lease.request = 0;
    lease.failures = 0;
    lease.ttl = *f.ttl;
    // Measured from the send time: etcd cannot have handled the keepalive earlier.
    lease.deadline = std::max(lease.deadline, f.sent + *f.ttl);
    lease.next_renew = f.sent + *f.ttl / 3;
    if (lease.phase == lease_phase::adopting) {
        lease.deadline = f.sent + *f.ttl;
        s_.etcd_failing = false;
        s_.lock.retry_at = now_;  // K1 confirms that its key is still the lock
        enter(lease_phase::live, cause::lease_adopted, level::info,
              cat("lease ", lease.id, " of this monitor is alive: it is ours again"));
        return;
    }
    if (s_.etcd_failing) {
        s_.etcd_failing = false;
        read_key_at(now_, cause::etcd_answers_again, level::info,
                    "etcd answers again: lease renewed; read the lock key again, as the watch may have died");
    }
}

// K2, K3, K4, K5, K6, W1
void failover::on(fact::campaign_answered const& f) {
    auto& lock = s_.lock;
    if (!ours(f.request, lock.request)) return;
    lock.request = 0;
    lock.failures = 0;
    s_.etcd_failing = false;
    if (!f.won && f.holder && !me_.instance.empty() && f.holder->instance == me_.instance &&
        f.holder->lease != s_.lease.id) {
        return adopt_lease(f.holder->lease);
    }
    bool const mine = f.won || (f.holder && f.holder->lease == s_.lease.id);
    if (mine) {
        lock.holder.clear();
        enter(lock_view::mine, cause::lock_acquired, level::info, "lock acquired");
    } else if (f.holder) {
        auto name = who(*f.holder);
        if (lock.view == lock_view::mine) {
            enter(lock_view::theirs, cause::lock_taken, level::warning, cat("lock lost: the lock is held by ", name));
        } else if (lock.view == lock_view::theirs && lock.holder != name) {
            note(cause::lock_held_by_other, level::info, cat("lock is held by ", name));
        } else {
            enter(lock_view::theirs, cause::lock_held_by_other, level::info, cat("lock is held by ", name));
        }
        lock.holder = name;
    } else {
        lock.retry_at = now_;
        enter(lock_view::unknown, cause::key_vanished, level::info,
              "the lock key vanished between compare and read: campaign again");
        return;
    }
    s_.watch.opened_at = now_;
    emit(act::watch{f.revision + 1}, cause::watch_key, level::debug, "watch the lock key for changes after this read");
    enter(watch_phase::open, cause::watch_key, level::debug, cat("watching the lock key from revision ", f.revision + 1));
}

// L11
void failover::on(fact::revoke_answered const& f) {
    if (s_.lease.phase != lease_phase::releasing || !ours(f.request, s_.lease.request)) return;
    s_.lease = lease_state{.phase = s_.lease.phase};
    enter(lease_phase::none, cause::released, level::info, "lease released");
}

// L3, L6, L7, L11, L12, K7
void failover::on(fact::request_failed const& f) {
    auto& lease = s_.lease;
    auto& lock = s_.lock;
    bool const answered = f.kind == failure::not_found;  // etcd answered: it does not know the lease
    if (ours(f.request, lease.request)) {
        lease.request = 0;
        if (!answered) s_.etcd_failing = true;
        switch (lease.phase) {
        case lease_phase::adopting:
            if (answered) return lease_lost(cause::lease_gone, "the earlier lease no longer exists");
            [[fallthrough]];
        case lease_phase::granting: {
            auto failures = lease.failures + 1;
            lease = lease_state{.phase = lease.phase,
                                .retry_at = now_ + backoff(p_.retry_min, p_.retry_max, failures - 1),
                                .failures = failures};
            enter(lease_phase::none, cause::grant_failed, level::warning,
                  cat("lease grant failed: ", name_of(f.kind), ": ", f.detail));
            return;
        }
        case lease_phase::live:
            if (answered) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
            lease.next_renew = now_ + backoff(p_.retry_min, p_.renew_interval, lease.failures++);
            note(cause::keepalive_failed, level::warning,
                 cat("keepalive failed: ", name_of(f.kind), ": ", f.detail, "; ", to_ms(lease.deadline - now_),
                     " ms left before the lease deadline"));
            return;
        case lease_phase::releasing:
            lease = lease_state{.phase = lease.phase};
            if (answered) return enter(lease_phase::none, cause::released, level::info, "lease released (it was already gone)");
            enter(lease_phase::none, cause::release_failed, level::warning,
                  cat("lease release failed: ", name_of(f.kind), ": ", f.detail, "; it expires within its TTL"));
            return;
        case lease_phase::none: return;
        }
    } else if (ours(f.request, lock.request)) {
        lock.request = 0;
        if (answered) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
        s_.etcd_failing = true;
        lock.retry_at = now_ + backoff(p_.retry_min, p_.retry_max, lock.failures++);
        if (s_.watch.phase == watch_phase::broken) s_.watch.reread_at = std::max(s_.watch.reread_at, lock.retry_at);
        note(cause::campaign_failed, level::warning, cat("campaign failed: ", name_of(f.kind), ": ", f.detail));
    }
}

// K8, K9
void failover::on(fact::key_deleted const&) {
    auto& lock = s_.lock;
    lock.holder.clear();
    lock.retry_at = now_;
    if (lock.view == lock_view::mine) {
        enter(lock_view::unknown, cause::key_deleted, level::warning, "lock lost: the lock key was deleted");
    } else if (lock.view == lock_view::theirs) {
        enter(lock_view::unknown, cause::key_deleted, level::info, "lock key deleted: the lock is free");
    } else {
        note(cause::key_deleted, level::info, "lock key deleted: the lock is free");
    }
}

// K10, K11
void failover::on(fact::key_written const& f) {
    if (s_.lease.phase == lease_phase::live && f.holder.lease == s_.lease.id) return;  // this node's own write
    auto name = who(f.holder);
    if (s_.lock.view == lock_view::mine) {
        enter(lock_view::theirs, cause::lock_taken, level::warning, cat("lock lost: the lock key was taken by ", name));
    } else {
        enter(lock_view::theirs, cause::lock_held_by_other, level::info, cat("lock is held by ", name));
    }
    s_.lock.holder = name;
}

// W2: each dying watch doubles the wait before the next read of the key, up to
// watch_retry_max; only a watch that lasted that long starts the doubling again. A proxy
// that cuts every watch stream therefore costs one read and one watch per renew interval.
void failover::on(fact::watch_ended const& f) {
    auto& watch = s_.watch;
    if (now_ - watch.opened_at >= p_.watch_retry_max) watch.failures = 0;
    auto delay = backoff(p_.retry_min, p_.watch_retry_max, watch.failures++);
    auto at = now_ + delay;
    if (watch.phase == watch_phase::broken) at = std::min(at, watch.reread_at);
    read_key_at(at, cause::watch_ended, level::warning,
                cat("watch ended: ", f.detail, "; read the lock key again in ", to_ms(at - now_), " ms"));
}

// N7, N8, N9
void failover::on(fact::nodeos_exited const& f) {
    if (s_.nodeos.phase == nodeos_phase::down) return;
    bool const asked = s_.nodeos.phase == nodeos_phase::stopping || s_.nodeos.phase == nodeos_phase::killed;
    nodeos_ended(asked ? cause::exited_as_asked : cause::crashed, f.how);
}

// N8, N9
void failover::on(fact::nodeos_start_failed const& f) {
    if (s_.nodeos.phase == nodeos_phase::down) return;
    nodeos_ended(cause::start_failed, f.detail);
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

// ---- decisions -------------------------------------------------------------------------

void failover::decide() {
    wakeup_ = time_point::max();
    if (s_.exited) return;
    deadline_missed_ = false;
    if (s_.lease.phase == lease_phase::live && due(s_.lease.deadline)) {  // L8
        // A producer still alive here means the loop did not run in time to fence it.
        deadline_missed_ = producer_alive();
        lease_lost(cause::deadline_passed, "no keepalive acknowledged for a whole TTL: the lease may have expired");
    }
    auto& nodeos = s_.nodeos;
    if (nodeos.phase == nodeos_phase::running && nodeos.crashes > 0 && due(nodeos.since + p_.stable_period)) {  // N10
        nodeos.crashes = 0;
        note(cause::crash_history_cleared, level::info, "nodeos has run stably: its crash history is cleared");
    }
    keep_lease();
    if (shutting_down()) {
        shut_down();
    } else {
        keep_lock();
        keep_nodeos();
    }
    fence();  // last, so that it also sees a producer started just now
    // The dead-man switch follows the producer and its lease.
    if (!producer_alive()) {
        s_.deadman_at.reset();
    } else if (s_.lease.phase == lease_phase::live) {
        s_.deadman_at = s_.lease.deadline - p_.fence_kill / 2;
    }
}

// L1, L4. While stopping, the lease is still renewed so that a producer can stop gracefully.
void failover::keep_lease() {
    auto& lease = s_.lease;
    switch (lease.phase) {
    case lease_phase::none:
        if (!shutting_down() && due(s_.hold_off_until) && due(lease.retry_at)) {
            lease.request = next_request();
            emit(act::grant{lease.request, p_.request_timeout}, cause::no_lease, level::debug, "no lease: ask for one");
            enter(lease_phase::granting, cause::no_lease, level::debug, "asking etcd for a lease");
        }
        break;
    case lease_phase::live:
        if (lease.request == 0 && due(lease.next_renew)) {
            lease.request = next_request();
            auto left = std::clamp<duration>(lease.deadline - now_, milliseconds(50), p_.renew_interval);
            emit(act::renew{lease.request, lease.id, left}, cause::keepalive_due, level::debug, "keepalive due");
        }
        break;
    case lease_phase::granting:
    case lease_phase::adopting:
    case lease_phase::releasing: break;
    }
}

// K1, K12
void failover::keep_lock() {
    auto& lock = s_.lock;
    if (s_.lease.phase != lease_phase::live || lock.request != 0) return;
    cause why;
    char const* text;
    if (lock.view == lock_view::unknown) {
        if (!may_campaign() || !due(lock.retry_at)) return;
        why = cause::lock_may_be_free;
        text = "the lock may be free: try to take it";
    } else if (s_.watch.phase == watch_phase::broken && (lock.view == lock_view::mine || may_campaign())) {
        if (!due(s_.watch.reread_at)) return;
        why = cause::reread_key;
        text = "read the lock key again and re-open the watch";
    } else {
        return;
    }
    lock.request = next_request();
    emit(act::campaign{lock.request, s_.lease.id, p_.request_timeout}, why, level::debug, text);
}

// N1 to N6
void failover::keep_nodeos() {
    auto& nodeos = s_.nodeos;
    bool const mine = active_allowed();
    bool const theirs = !mine && s_.lock.view == lock_view::theirs;
    switch (nodeos.phase) {
    case nodeos_phase::down:
        if (!due(nodeos.start_at)) return;
        if (mine) return start_nodeos(mode::active, cause::holds_lock, "this node holds the lock");
        if (theirs) return start_nodeos(mode::standby, cause::lock_held_elsewhere, cat("the lock is held by ", s_.lock.holder));
        if (!may_campaign()) {
            return start_nodeos(mode::standby, cause::not_a_candidate,
                                cat("nodeos exited ", nodeos.crashes, " times in a row: not a candidate until it runs stably"));
        }
        if (s_.etcd_failing) {
            return start_nodeos(mode::standby, cause::etcd_unreachable,
                                "etcd cannot be reached: run as a validator and keep trying");
        }
        if (due(nodeos.waiting_since + p_.decide_within)) {
            return start_nodeos(mode::standby, cause::no_verdict_yet, "no answer from etcd yet: run as a validator meanwhile");
        }
        return;  // the lock's verdict is moments away
    case nodeos_phase::running:
        if (nodeos.as == mode::standby && mine) {
            stop_nodeos(cause::promote, "this node took the lock: restart nodeos as the producer");
        }
        return;
    case nodeos_phase::stopping:
    case nodeos_phase::killed: return;
    }
}

// F1, F2, F3, N11, N12. Safety first: a producer runs only while the lock is ours and the
// deadline is ahead.
void failover::fence() {
    auto& nodeos = s_.nodeos;
    if (nodeos.phase == nodeos_phase::down) return;
    bool const producer = nodeos.as == mode::active;
    if (producer && nodeos.phase != nodeos_phase::killed && !holds_lock()) {
        kill_nodeos(deadline_missed_ ? cause::fence_frozen : cause::fence_lost_lock,
                    "the lock is lost: another node may be producing");
    } else if (producer && nodeos.phase == nodeos_phase::running && due(s_.lease.deadline - p_.fence_graceful)) {
        stop_nodeos(cause::fence_deadline,
                    cat("lease not renewed; ", to_ms(s_.lease.deadline - now_), " ms left before the lease deadline"));
    }
    if (nodeos.phase == nodeos_phase::stopping && due(kill_time())) {
        bool const for_deadline = producer && kill_time() < nodeos.stop_by;
        kill_nodeos(for_deadline ? cause::fence_deadline : cause::stop_timeout,
                    for_deadline ? "graceful stop took too long: the lease deadline is near"
                                 : "graceful stop took longer than the stop timeout");
    }
    if (nodeos.phase == nodeos_phase::killed && !nodeos.overdue_reported && due(nodeos.killed_at + p_.reap_overdue)) {
        nodeos.overdue_reported = true;
        auto text = cat(name_of(nodeos.as), " nodeos survives SIGKILL after ", to_ms(now_ - nodeos.killed_at),
                        " ms: stuck in uninterruptible sleep (a hung disk?)");
        if (producer) text += "; a peer may start producing once this node's lease expires";
        note(cause::stuck_after_kill, level::error, std::move(text));
    }
}

// S1, S2, S4
void failover::shut_down() {
    auto& nodeos = s_.nodeos;
    switch (nodeos.phase) {
    case nodeos_phase::running: return stop_nodeos(cause::shutdown, "the monitor is stopping");
    case nodeos_phase::stopping:
    case nodeos_phase::killed:
        nodeos.stop_by = std::min(nodeos.stop_by, now_ + p_.stop_timeout);
        due(kill_time());
        return;
    case nodeos_phase::down: break;
    }
    release_lease(cause::shutdown, "nodeos is stopped: release the lock so that a peer takes over at once");
    if (s_.lease.phase == lease_phase::releasing) return;
    s_.exited = true;
    emit(act::exit{0}, cause::stopped, level::info, "nodeos is stopped and the lock released");
}

// ---- the sub-machines' changes -----------------------------------------------------------

template <class Phase>
void failover::record(Phase& current, Phase to, cause why, level lvl, std::string text) {
    if (current == to) return;
    emit(act::changed<Phase>{current, to}, why, lvl, std::move(text));
    current = to;
}

void failover::enter(lease_phase to, cause why, level lvl, std::string text) {
    record(s_.lease.phase, to, why, lvl, std::move(text));
}

void failover::enter(lock_view to, cause why, level lvl, std::string text) {
    record(s_.lock.view, to, why, lvl, std::move(text));
}

void failover::enter(watch_phase to, cause why, level lvl, std::string text) {
    record(s_.watch.phase, to, why, lvl, std::move(text));
}

// The role follows nodeos: it is entered with the cause of nodeos's change.
void failover::enter(nodeos_phase to, cause why, level lvl, std::string text) {
    record(s_.nodeos.phase, to, why, lvl, text);
    bool const producing = to == nodeos_phase::running && s_.nodeos.as == mode::active;
    if (producing) {
        enter_role(role::active, why, text);
    } else if (to == nodeos_phase::running || s_.current_role == role::active) {
        enter_role(role::standby, why, text);
    }
}

void failover::enter_role(role to, cause why, std::string const& text) {
    if (s_.current_role == role::stopping) return;  // for good
    record(s_.current_role, to, why, level::info, text);
}

// L7, L8, K13
void failover::lease_lost(cause why, std::string const& text) {
    bool const had_lock = s_.lock.view == lock_view::mine;
    s_.lease = lease_state{.phase = s_.lease.phase, .retry_at = now_};
    enter(lease_phase::none, why, level::warning, text);
    s_.lock.request = 0;
    enter(lock_view::unknown, cause::lease_lost, had_lock ? level::warning : level::debug,
          had_lock ? cat("lock lost: ", text) : "the lock's verdict went with the lease");
}

// L10: revoking the lease deletes the key, so a peer watching it takes over at once.
void failover::release_lease(cause why, std::string text) {
    s_.lock.request = 0;
    enter(lock_view::unknown, why, level::info, cat("lock given up: ", text));
    auto& lease = s_.lease;
    if (lease.phase != lease_phase::live) return;
    lease.request = next_request();
    emit(act::release{lease.request, lease.id, p_.release_timeout}, why, level::info, text);
    enter(lease_phase::releasing, why, level::debug, cat("revoking lease ", lease.id));
}

// K5: the key still names this monitor, under a lease it had presumed expired (etcd was
// out of reach past the deadline, and kept the lease, as it does across a restart or a
// change of leader). Renew that lease rather than let it expire and hand the lock to a
// peer for nothing; only a successful renewal makes it ours again (L9), with a deadline
// from its send time.
void failover::adopt_lease(std::int64_t lease_id) {
    auto& lease = s_.lease;
    if (lease.phase == lease_phase::live) {
        emit(act::release{next_request(), lease.id, p_.release_timeout}, cause::own_lease_survives, level::info,
             "give back the new lease: an older one of this monitor still holds the lock");
    }
    lease = lease_state{.phase = lease.phase, .id = lease_id, .request = next_request()};
    auto text = cat("the lock is still held by this monitor's earlier lease ", lease_id, ": renew it");
    emit(act::renew{lease.request, lease_id, p_.request_timeout}, cause::own_lease_survives, level::info, text);
    enter(lease_phase::adopting, cause::own_lease_survives, level::debug, text);
    enter(lock_view::unknown, cause::own_lease_survives, level::debug, "the lock is ours once the earlier lease renews");
}

// W2, W3
void failover::read_key_at(time_point t, cause why, level lvl, std::string text) {
    s_.watch.reread_at = t;
    if (s_.watch.phase == watch_phase::broken) return note(why, lvl, std::move(text));
    enter(watch_phase::broken, why, lvl, std::move(text));
}

void failover::start_nodeos(mode as, cause why, std::string text) {
    auto& nodeos = s_.nodeos;
    auto kind = !nodeos.started_before                                  ? start_kind::first
                : nodeos.last_exit_crashed                              ? start_kind::crash
                : nodeos.as == mode::standby && as == mode::active     ? start_kind::promote
                : nodeos.as == mode::active && as == mode::standby     ? start_kind::demote
                                                                         : start_kind::restart;
    nodeos.as = as;
    nodeos.since = now_;
    nodeos.started_before = true;
    nodeos.last_exit_crashed = false;
    emit(act::start_nodeos{as, kind}, why, level::info, text);
    enter(nodeos_phase::running, why, level::debug, std::move(text));
}

void failover::stop_nodeos(cause why, std::string const& text) {
    auto& nodeos = s_.nodeos;
    nodeos.stop_by = now_ + p_.stop_timeout;
    auto sentence = cat("stop ", name_of(nodeos.as), " nodeos gracefully (SIGKILL in ", to_ms(kill_time() - now_),
                        " ms at the latest): ", text);
    emit(act::signal_nodeos{SIGTERM}, why, fence_of(why) == fence_kind::none ? level::info : level::warning, sentence);
    enter(nodeos_phase::stopping, why, level::debug, std::move(sentence));
    due(kill_time());
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

// N7, N8, N9
void failover::nodeos_ended(cause why, std::string const& how) {
    auto& nodeos = s_.nodeos;
    mode const was = nodeos.as;
    nodeos.overdue_reported = false;
    if (why == cause::exited_as_asked) {
        nodeos.start_at = now_;
        nodeos.waiting_since = now_;
        return enter(nodeos_phase::down, why, level::info, cat(name_of(was), " nodeos stopped (", how, ")"));
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
    if ((was == mode::active || s_.lock.view == lock_view::mine) && !shutting_down()) {
        // Hand the lock to a healthy peer now rather than after a TTL; campaign again later.
        s_.hold_off_until = nodeos.start_at;
        release_lease(cause::crash_handover, "active nodeos exited: release the lock so that a healthy peer can take over");
    }
}

// ---- helpers ------------------------------------------------------------------------------

// A nodeos with the active config that has not been reaped: it may be producing.
bool failover::producer_alive() const {
    return s_.nodeos.phase != nodeos_phase::down && s_.nodeos.as == mode::active;
}

bool failover::may_campaign() const {
    return now_ >= s_.hold_off_until && s_.nodeos.crashes < p_.crash_loop;
}

// Starting or keeping a producer needs the lock and enough time before the fence.
bool failover::active_allowed() const {
    return holds_lock() && now_ < s_.lease.deadline - p_.fence_graceful;
}

std::string failover::who(lock_holder const& h) const {
    if (h.node.empty()) return h.raw;
    return h.instance.empty() ? h.node : cat(h.node, " (", h.instance, ")");
}

duration failover::backoff(duration first, duration cap, int failures) const {
    auto d = first;
    for (int i = 0; i < failures && d < cap; ++i) d *= 2;
    return std::min(d, cap);
}

// True when `t` has come; otherwise remembers it as the next time to wake up.
bool failover::due(time_point t) {
    if (now_ >= t) return true;
    wakeup_ = std::min(wakeup_, t);
    return false;
}

void failover::emit(decltype(action::what) what, cause why, level lvl, std::string text) {
    out_.push_back(action{std::move(what), why, lvl, std::move(text)});
}

void failover::note(cause why, level lvl, std::string text) { emit(act::note{}, why, lvl, std::move(text)); }

}  // namespace nm

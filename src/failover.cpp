#include "failover.hpp"

#include <algorithm>
#include <csignal>

namespace nm {

char const* name_of(mode m) { return m == mode::active ? "active" : "standby"; }

char const* act::name_of(fence_cause c) {
    switch (c) {
    case fence_cause::none: return "none";
    case fence_cause::deadline: return "deadline";
    case fence_cause::lost_lock: return "lost_lock";
    case fence_cause::frozen: return "frozen";
    }
    return "?";
}

policy policy::from(seconds ttl, seconds stop_timeout) {
    policy p;
    p.ttl = ttl;
    p.stop_timeout = stop_timeout;
    p.renew_interval = p.ttl / 3;
    p.fence_graceful = p.ttl * 2 / 5;
    p.fence_kill = std::max<duration>(p.ttl / 10, milliseconds(200));
    p.request_timeout = p.ttl / 3;
    p.stable_period = p.ttl * 3;
    return p;
}

failover::failover(policy p) : policy_(p) {}

std::vector<action> failover::handle(fact_t const& f, time_point now) {
    out_.clear();
    if (exited_) return {};
    std::visit([&](auto const& fact) { apply(fact, now); }, f);
    reconcile(now);
    update_deadman();
    return std::move(out_);
}

std::optional<time_point> failover::lease_deadline() const {
    if (lease_.phase != lease_phase::live) return std::nullopt;
    return lease_.deadline;
}

// ---- facts -------------------------------------------------------------------------

void failover::apply(fact::start const&, time_point now) {
    child_.start_at = now;
    child_.waiting_since = now;
}

void failover::apply(fact::lease_granted const& f, time_point now) {
    if (lease_.phase != lease_phase::granting || f.request != lease_.request) return;
    lease_ = lease_state{};
    lease_.phase = lease_phase::live;
    lease_.id = f.lease;
    lease_.ttl = f.ttl;
    lease_.deadline = f.sent + f.ttl;
    lease_.next_renew = f.sent + f.ttl / 3;
    etcd_failing_ = false;
    lock_.view = lock_view::unknown;  // a new lease holds nothing yet
    lock_.retry_at = now;
    note(level::info, cat("lease ", f.lease, " granted, TTL ", to_ms(f.ttl) / 1000, " s"));
}

void failover::apply(fact::lease_renewed const& f, time_point now) {
    if (f.request != lease_.request || f.request == 0) return;
    if (lease_.phase == lease_phase::granting) {  // an adopted lease answered: it is ours again
        apply(fact::lease_granted{f.request, lease_.id, f.ttl, f.sent}, now);
        return;
    }
    if (lease_.phase != lease_phase::live) return;
    lease_.request = 0;
    lease_.failures = 0;
    // Measured from the send time: etcd cannot have handled the keepalive earlier.
    lease_.deadline = std::max(lease_.deadline, f.sent + f.ttl);
    lease_.next_renew = f.sent + f.ttl / 3;
    if (etcd_failing_) {
        etcd_failing_ = false;
        // The watch may have died with the connection: read the key again.
        lock_.recheck_at = now;
        note(level::info, "etcd answers again: lease renewed");
    }
}

void failover::apply(fact::lease_gone const& f, time_point now) {
    bool ours = (f.request == lease_.request && f.request != 0 &&
                 (lease_.phase == lease_phase::live || lease_.phase == lease_phase::granting)) ||
                (f.request == lock_.request && lock_.request != 0);
    if (!ours) return;
    drop_lease(now, "etcd reports the lease no longer exists");
}

void failover::apply(fact::request_failed const& f, time_point now) {
    if (f.request == lease_.request && f.request != 0) {
        lease_.request = 0;
        switch (lease_.phase) {
        case lease_phase::granting:
            lease_.phase = lease_phase::none;
            lease_.retry_at = now + backoff(policy_.retry_min, policy_.retry_max, lease_.failures++);
            note(level::warning, cat("lease grant failed: ", f.why));
            break;
        case lease_phase::live:
            lease_.next_renew = now + backoff(policy_.retry_min, policy_.renew_interval, lease_.failures++);
            note(level::warning, cat("keepalive failed: ", f.why, "; ",
                                     to_ms(lease_.deadline - now), " ms left before the lease deadline"));
            break;
        case lease_phase::releasing:
            lease_.phase = lease_phase::none;
            note(level::warning, cat("lease release failed: ", f.why, "; it expires within its TTL"));
            break;
        case lease_phase::none: break;
        }
        etcd_failing_ = true;
    } else if (f.request == lock_.request && f.request != 0) {
        lock_.request = 0;
        lock_.retry_at = now + backoff(policy_.retry_min, policy_.retry_max, lock_.failures++);
        if (lock_.recheck_at) lock_.recheck_at = lock_.retry_at;
        etcd_failing_ = true;
        note(level::warning, cat("campaign failed: ", f.why));
    }
}

void failover::apply(fact::campaign_done const& f, time_point) {
    if (f.request != lock_.request || lock_.request == 0) return;
    lock_.request = 0;
    lock_.failures = 0;
    lock_.recheck_at.reset();
    etcd_failing_ = false;
    if (!f.won && f.holder && f.holder->this_monitor && f.holder->lease != lease_.id) {
        adopt_lease(f.holder->lease);
        return;
    }
    bool mine = f.won || (f.holder && f.holder->lease == lease_.id);
    if (mine) {
        if (lock_.view != lock_view::mine) note(level::info, "lock acquired");
        lock_.view = lock_view::mine;
        lock_.holder.clear();
    } else if (f.holder) {
        if (lock_.view == lock_view::mine) {
            lose_lock(cat("the lock is held by ", f.holder->who));
        } else if (lock_.view != lock_view::theirs || lock_.holder != f.holder->who) {
            note(level::info, cat("lock is held by ", f.holder->who));
        }
        lock_.view = lock_view::theirs;
        lock_.holder = f.holder->who;
    } else {
        // The key vanished between compare and read: campaign again at once.
        lock_.view = lock_view::unknown;
        return;
    }
    emit(act::watch{f.revision + 1}, "watch the lock key for changes after this read");
}

void failover::apply(fact::released const& f, time_point) {
    if (lease_.phase != lease_phase::releasing || f.request != lease_.request) return;
    lease_ = lease_state{};
    note(level::info, "lease released");
}

void failover::apply(fact::key_deleted const&, time_point now) {
    if (lock_.view == lock_view::mine) {
        lose_lock("the lock key was deleted");
    } else {
        note(level::info, "lock key deleted: the lock is free");
    }
    lock_.view = lock_view::unknown;
    lock_.holder.clear();
    lock_.retry_at = now;
}

void failover::apply(fact::key_written const& f, time_point) {
    if (lease_.phase == lease_phase::live && f.holder.lease == lease_.id) return;  // our own write
    if (lock_.view == lock_view::mine) lose_lock(cat("the lock key was taken by ", f.holder.who));
    lock_.view = lock_view::theirs;
    lock_.holder = f.holder.who;
}

void failover::apply(fact::watch_ended const& f, time_point now) {
    note(level::warning, cat("watch ended: ", f.why));
    lock_.recheck_at = now + backoff(policy_.retry_min, policy_.retry_max, lock_.failures);
}

void failover::apply(fact::nodeos_exited const& f, time_point now) {
    if (child_.phase == nodeos_phase::none) return;
    bool expected = child_.phase == nodeos_phase::stopping;
    mode was = child_.as;
    bool stable = now - child_.since >= policy_.stable_period;
    child_.phase = nodeos_phase::none;
    child_.killed = false;
    child_.overdue_reported = false;
    if (expected) {
        note(level::info, cat(name_of(was), " nodeos stopped (", f.how, ")"));
        child_.start_at = now;
        child_.waiting_since = now;
        return;
    }
    crashes_ = stable ? 1 : crashes_ + 1;
    auto delay = backoff(policy_.restart_min, policy_.restart_max, crashes_ - 1);
    child_.start_at = now + delay;
    child_.waiting_since = child_.start_at;
    note(level::warning, cat(name_of(was), " nodeos exited on its own (", f.how, "), exit ", crashes_,
                             " in a row; restart in ", to_ms(delay), " ms"));
    if ((was == mode::active || lock_.view == lock_view::mine) && !shutting_down()) {
        // Hand the lock to a healthy peer now rather than after a TTL; campaign again later.
        hold_off_until_ = child_.start_at;
        release_lease("active nodeos exited: release the lock so that a healthy peer can take over");
    }
}

void failover::apply(fact::stop_requested const& f, time_point) {
    ++stops_;
    if (stops_ == 1) {
        note(level::info, cat(f.signal, " received: stopping nodeos, then releasing the lock"));
        return;
    }
    if (child_.phase != nodeos_phase::none) {
        emit(act::signal_nodeos{SIGKILL}, cat("second ", f.signal, ": kill nodeos at once"));
    }
    emit(act::exit{1}, cat("second ", f.signal, ": exit without releasing the lock"));
    exited_ = true;
}

// ---- decisions ---------------------------------------------------------------------

void failover::reconcile(time_point now) {
    wakeup_ = time_point::max();
    if (exited_) return;
    deadline_missed_ = false;
    if (lease_.phase == lease_phase::live && due(lease_.deadline, now)) {
        // A producer still running here means the loop did not run in time to fence it.
        deadline_missed_ = child_.phase == nodeos_phase::running && child_.as == mode::active;
        drop_lease(now, "no keepalive acknowledged for a whole TTL: the lease may have expired");
    }
    if (child_.phase == nodeos_phase::running && crashes_ > 0 &&
        due(child_.since + policy_.stable_period, now)) {
        crashes_ = 0;
        note(level::info, "nodeos has run stably: its crash history is cleared");
    }
    keep_lease(now);
    if (shutting_down()) {
        shut_down(now);
    } else {
        keep_lock(now);
        keep_nodeos(now);
    }
    fence(now);  // last, so that it also sees a producer started just now
}

// Called last by handle(): the dead-man switch follows the producer and its lease.
void failover::update_deadman() {
    if (child_.phase == nodeos_phase::none || child_.as != mode::active) {
        deadman_at_.reset();
    } else if (lease_.phase == lease_phase::live) {
        deadman_at_ = lease_.deadline - policy_.fence_kill / 2;
    }
}

// Safety first: a producer runs only while the lock is ours and the deadline is ahead.
void failover::fence(time_point now) {
    if (child_.phase == nodeos_phase::none) return;
    bool active = child_.as == mode::active;
    if (active && !child_.killed && !(lock_.view == lock_view::mine && lease_.phase == lease_phase::live)) {
        kill_nodeos(now, "the lock is lost: another node may be producing",
                    deadline_missed_ ? act::fence_cause::frozen : act::fence_cause::lost_lock);
    } else if (active && child_.phase == nodeos_phase::running &&
               due(lease_.deadline - policy_.fence_graceful, now)) {
        stop_nodeos(now, cat("lease not renewed; ", to_ms(lease_.deadline - now),
                             " ms left before the lease deadline"), act::fence_cause::deadline);
    }
    if (child_.phase == nodeos_phase::stopping && !child_.killed && due(kill_time(), now)) {
        kill_nodeos(now, active ? "graceful stop took too long: the lease deadline is near"
                           : "graceful stop took longer than the stop timeout",
                    active && kill_time() < child_.stop_by ? act::fence_cause::deadline : act::fence_cause::none);
    }
    if (child_.killed && !child_.overdue_reported && due(child_.killed_at + policy_.reap_overdue, now)) {
        child_.overdue_reported = true;
        auto what = cat(name_of(child_.as), " nodeos survives SIGKILL after ", to_ms(now - child_.killed_at),
                        " ms: stuck in uninterruptible sleep (a hung disk?)");
        if (active) what += "; a peer may start producing once this node's lease expires";
        note(level::error, what);
    }
}

void failover::shut_down(time_point now) {
    if (child_.phase == nodeos_phase::running) {
        stop_nodeos(now, "the monitor is stopping");
        return;
    }
    if (child_.phase == nodeos_phase::stopping) {
        child_.stop_by = std::min(child_.stop_by, now + policy_.stop_timeout);
        due(kill_time(), now);
        return;
    }
    release_lease("nodeos is stopped: release the lock so that a peer takes over at once");
    if (lease_.phase == lease_phase::releasing) return;
    exited_ = true;
    emit(act::exit{0}, "nodeos is stopped and the lock released");
}

// While stopping, the lease is still renewed so that an active nodeos can stop gracefully.
void failover::keep_lease(time_point now) {
    switch (lease_.phase) {
    case lease_phase::none:
        if (!shutting_down() && due(hold_off_until_, now) && due(lease_.retry_at, now)) {
            lease_.phase = lease_phase::granting;
            lease_.request = next_request();
            emit(act::grant{lease_.request, policy_.request_timeout}, "no lease: ask for one");
        }
        break;
    case lease_phase::live:
        if (lease_.request == 0 && due(lease_.next_renew, now)) {
            lease_.request = next_request();
            auto left = std::clamp<duration>(lease_.deadline - now, milliseconds(50), policy_.renew_interval);
            emit(act::renew{lease_.request, lease_.id, left}, "keepalive due");
        }
        break;
    case lease_phase::granting:
    case lease_phase::releasing: break;
    }
}

void failover::keep_lock(time_point now) {
    if (lease_.phase != lease_phase::live || lock_.request != 0) return;
    bool wanted = false;
    std::string why;
    if (lock_.view == lock_view::unknown) {
        if (!may_campaign(now)) return;
        wanted = due(lock_.retry_at, now);
        why = "the lock may be free: try to take it";
    } else if (lock_.recheck_at && (lock_.view == lock_view::mine || may_campaign(now))) {
        wanted = due(*lock_.recheck_at, now);
        why = "read the lock key again and re-open the watch";
    }
    if (!wanted) return;
    lock_.request = next_request();
    emit(act::campaign{lock_.request, lease_.id, policy_.request_timeout}, std::move(why));
}

void failover::keep_nodeos(time_point now) {
    auto wanted = verdict(now);
    switch (child_.phase) {
    case nodeos_phase::none: {
        if (!due(child_.start_at, now)) return;
        std::string why;
        if (wanted == mode::active) {
            why = "this node holds the lock";
        } else if (wanted == mode::standby) {
            why = cat("the lock is held by ", lock_.holder);
        } else if (!may_campaign(now)) {
            wanted = mode::standby;
            why = cat("nodeos exited ", crashes_, " times in a row: not a candidate until it runs stably");
        } else if (etcd_failing_) {
            wanted = mode::standby;
            why = "etcd cannot be reached: run as a validator and keep trying";
        } else if (due(child_.waiting_since + policy_.decide_within, now)) {
            wanted = mode::standby;
            why = "no answer from etcd yet: run as a validator meanwhile";
        } else {
            return;  // the lock's verdict is moments away
        }
        child_.phase = nodeos_phase::running;
        child_.as = *wanted;
        child_.since = now;
        emit(act::start_nodeos{*wanted}, std::move(why));
        break;
    }
    case nodeos_phase::running:
        if (child_.as == mode::standby && wanted == mode::active) {
            stop_nodeos(now, "this node took the lock: restart nodeos as the producer");
        }
        break;
    case nodeos_phase::stopping: break;
    }
}

// ---- helpers -----------------------------------------------------------------------

std::optional<mode> failover::verdict(time_point now) const {
    if (active_allowed(now)) return mode::active;
    if (lock_.view == lock_view::theirs) return mode::standby;
    return std::nullopt;
}

// Starting or keeping a producer needs the lock and enough time before the fence.
bool failover::active_allowed(time_point now) const {
    return lock_.view == lock_view::mine && lease_.phase == lease_phase::live &&
           now < lease_.deadline - policy_.fence_graceful;
}

bool failover::may_campaign(time_point now) const {
    return now >= hold_off_until_ && crashes_ < policy_.crash_loop;
}

void failover::drop_lease(time_point now, std::string const& why) {
    note(level::warning, why);
    if (lock_.view == lock_view::mine) lose_lock(why);
    lease_ = lease_state{};
    lease_.retry_at = now;
    lock_.view = lock_view::unknown;
    lock_.request = 0;
    lock_.recheck_at.reset();
}

// Revoking the lease deletes the key: a peer watching it takes over at once.
void failover::release_lease(std::string why) {
    lock_.view = lock_view::unknown;
    lock_.request = 0;
    lock_.recheck_at.reset();
    if (lease_.phase != lease_phase::live) return;
    lease_.phase = lease_phase::releasing;
    lease_.request = next_request();
    emit(act::release{lease_.request, lease_.id, policy_.release_timeout}, std::move(why));
}

// The key still names this monitor, under a lease it had presumed expired (etcd was out
// of reach past the deadline, and kept the lease, as it does across a restart or a change
// of leader). Renew that lease rather than let it expire and hand the lock to a peer for
// nothing; only a successful renewal makes it ours again, with a deadline from its send time.
void failover::adopt_lease(std::int64_t lease) {
    if (lease_.phase == lease_phase::live) {
        emit(act::release{next_request(), lease_.id, policy_.release_timeout},
             "give back the new lease: an older one of this monitor still holds the lock");
    }
    lease_ = lease_state{};
    lease_.phase = lease_phase::granting;
    lease_.id = lease;
    lease_.request = next_request();
    lock_.view = lock_view::unknown;
    emit(act::renew{lease_.request, lease, policy_.request_timeout},
         cat("the lock is still held by this monitor's earlier lease ", lease, ": renew it"));
}

void failover::lose_lock(std::string const& why) {
    note(level::warning, cat("lock lost: ", why));
    lock_.view = lock_view::unknown;
}

void failover::stop_nodeos(time_point now, std::string const& why, act::fence_cause cause) {
    child_.phase = nodeos_phase::stopping;
    child_.killed = false;
    child_.stop_by = now + policy_.stop_timeout;
    emit(act::signal_nodeos{SIGTERM, cause},
         cat("stop ", name_of(child_.as), " nodeos gracefully (SIGKILL in ", to_ms(kill_time() - now),
             " ms at the latest): ", why));
    due(kill_time(), now);
}

// A stopping producer is killed at the stop timeout, or with the SIGKILL reserve left
// before its lease deadline, whichever comes first; renewals meanwhile push the latter.
time_point failover::kill_time() const {
    if (child_.as == mode::active && lease_.phase == lease_phase::live) {
        return std::min(child_.stop_by, lease_.deadline - policy_.fence_kill);
    }
    return child_.stop_by;
}

void failover::kill_nodeos(time_point now, std::string const& why, act::fence_cause cause) {
    child_.phase = nodeos_phase::stopping;
    child_.killed = true;
    child_.killed_at = now;
    emit(act::signal_nodeos{SIGKILL, cause}, cat("kill ", name_of(child_.as), " nodeos: ", why));
}

duration failover::backoff(duration first, duration cap, int failures) const {
    auto d = first;
    for (int i = 0; i < failures && d < cap; ++i) d *= 2;
    return std::min(d, cap);
}

// True when `t` has come; otherwise remembers it as the next time to wake up.
bool failover::due(time_point t, time_point now) {
    if (now >= t) return true;
    wakeup_ = std::min(wakeup_, t);
    return false;
}

void failover::emit(decltype(action::what) what, std::string reason) {
    out_.push_back(action{std::move(what), std::move(reason)});
}

void failover::note(level lvl, std::string text) { emit(act::note{lvl}, std::move(text)); }

}  // namespace nm

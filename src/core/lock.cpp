// The lock and the watch of the group's keys (rows K1 to K15, W1 to W3): campaigns, the
// holder as etcd tells it, and the watch that a read of the group re-opens.
#include "core/failover.hpp"

#include <algorithm>

namespace nm {

// K2, K3, K4, K5, K6, W1
void failover::on(fact::campaign_answered const& f) {
    auto& lock = s_.lock;
    if (!lock_answered(f.request)) return;
    if (f.won) {
        lock.holder.clear();
        enter(lock_view::mine, cause::lock_acquired, level::info, "lock acquired");
    } else if (!f.holder) {
        lock.retry_at = now_;
        return enter(lock_view::unknown, cause::key_vanished, level::info,
                     "the lock key vanished between compare and read: campaign again");
    } else if (!learn_holder(*f.holder, cause::lock_acquired, cause::lock_held_by_other)) {
        return;
    }
    open_watch(f.revision);
}

// K14, and K5, O3, W1
void failover::on(fact::group_read const& f) {
    auto& lock = s_.lock;
    if (!lock_answered(f.request)) return;
    apply_control(f.control);
    open_watch(f.revision);
    if (f.holder) {
        learn_holder(*f.holder, cause::group_read, cause::group_read);
        return;
    }
    lock.holder.clear();
    lock.retry_at = now_;
    if (lock.view == lock_view::mine) {
        return enter(lock_view::unknown, cause::key_deleted, level::warning, "lock lost: the lock key is gone");
    }
    enter(lock_view::unknown, cause::group_read, level::debug, "nobody holds the lock");
}

// K2 to K5, K14: what the lock key says of its holder, read by a campaign or a read of the
// group. False when the holder is this monitor under an earlier lease, which it adopts.
bool failover::learn_holder(lock_holder const& h, cause mine, cause theirs) {
    auto& lock = s_.lock;
    if (!me_.instance.empty() && h.instance == me_.instance && h.lease != s_.lease.id) {
        adopt_lease(h.lease);
        return false;
    }
    if (h.lease == s_.lease.id) {
        lock.holder.clear();
        enter(lock_view::mine, mine, level::info, mine == cause::lock_acquired ? "lock acquired" : "lock held by this node");
        return true;
    }
    auto name = who(h);
    if (lock.view == lock_view::mine) {
        enter(lock_view::theirs, cause::lock_taken, level::warning, cat("lock lost: the lock is held by ", name));
    } else if (lock.view == lock_view::theirs && lock.holder != name) {
        note(theirs, level::info, cat("lock is held by ", name));
    } else {
        enter(lock_view::theirs, theirs, level::info, cat("lock is held by ", name));
    }
    lock.holder = name;
    return true;
}

// W1: one watch covers the lock key and the group's control keys; it is opened after a
// read, when none is open.
void failover::open_watch(std::int64_t revision) {
    if (s_.watch.phase == watch_phase::open) return;
    s_.watch.opened_at = now_;
    emit(act::watch{revision + 1}, cause::watch_key, level::debug, "watch the group's keys for changes after this read");
    enter(watch_phase::open, cause::watch_key, level::debug, cat("watching the group's keys from revision ", revision + 1));
}

// K7, K15 (and L7: a campaign or read whose lease etcd does not know)
void failover::lock_failed(fact::request_failed const& f) {
    auto& lock = s_.lock;
    lock.request = 0;
    if (f.kind == failure::not_found) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
    etcd_failed(f.kind);
    lock.retry_at = now_ + backoff(p_.retry_min, p_.retry_max, lock.failures++);
    // A broken watch is re-read with the campaign's backoff (K7) at the earliest.
    if (s_.watch.phase == watch_phase::broken) s_.watch.reread_at = std::max(s_.watch.reread_at, lock.retry_at);
    note(cause::campaign_failed, level::warning, cat("campaign failed: ", name_of(f.kind), ": ", f.detail));
}

// An answer to the campaign or the read under way: etcd answers this node, and accepts it.
bool failover::lock_answered(std::uint64_t request) {
    auto& lock = s_.lock;
    if (!ours(request, lock.request)) return false;
    lock.request = 0;
    lock.failures = 0;
    etcd_answered(true);
    return true;
}

// K1 at once: a new or adopted lease must learn whether its key is the lock.
void failover::campaign_now() { s_.lock.retry_at = now_; }

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
    // This monitor's own write: under its live lease, or by its instance under another (a
    // campaign that etcd carried out late, under a lease it is adopting (L8) or gave up).
    // Never another's lock: the next campaign or read tells whether it is this monitor's
    // (K2, K5). Taken for another's, the key would keep this node a standby behind itself,
    // and its group without a producer.
    bool const own_lease = s_.lease.phase == lease_phase::live && f.holder.lease == s_.lease.id;
    if (own_lease || (!me_.instance.empty() && f.holder.instance == me_.instance)) return;
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

// K1, K12
void failover::keep_lock() {
    auto& lock = s_.lock;
    if (shutting_down() || s_.lease.phase != lease_phase::live || lock.request != 0) return;
    auto const& watch = s_.watch;
    if (watch.phase != watch_phase::open) {  // K12: know the lock and the control keys first
        // A broken watch's re-read time already counts K7's backoff (and W3 may bring it
        // forward); before a first watch, a failed read waits K7's backoff.
        if (!reached_or_wake(watch.phase == watch_phase::broken ? watch.reread_at : lock.retry_at)) return;
        lock.request = next_request();
        return emit(act::read_group{lock.request, p_.request_timeout}, cause::reread_key, level::debug,
                    "read the group's keys and watch them");
    }
    if (lock.view != lock_view::unknown || !may_campaign() || !reached_or_wake(lock.retry_at)) return;
    lock.request = next_request();
    emit(act::campaign{lock.request, s_.lease.id, p_.request_timeout}, cause::lock_may_be_free, level::debug,
         "the lock may be free: try to take it");
}

void failover::enter(lock_view to, cause why, level lvl, std::string text) {
    record(s_.lock.view, to, why, lvl, std::move(text));
}

void failover::enter(watch_phase to, cause why, level lvl, std::string text) {
    record(s_.watch.phase, to, why, lvl, std::move(text));
}

// W2, W3
void failover::read_key_at(time_point t, cause why, level lvl, std::string text) {
    s_.watch.reread_at = t;
    if (s_.watch.phase == watch_phase::broken) return note(why, lvl, std::move(text));
    enter(watch_phase::broken, why, lvl, std::move(text));
}

}  // namespace nm

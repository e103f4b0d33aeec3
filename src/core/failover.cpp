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

// The TTL a deadline counts: the answer's, but never more than this monitor asks for. etcd
// grants at least that (more only below its minimum TTL), so the lease lives at least that
// long after each keepalive; a longer TTL in an answer could only postpone the fence, and
// an answer that lies could postpone it for good.
duration failover::trusted_ttl(duration answered) const { return std::min(answered, p_.ttl); }

// L2
void failover::on(fact::lease_granted const& f) {
    auto& lease = s_.lease;
    if (lease.phase != lease_phase::granting || !ours(f.request, lease.request)) return;
    auto const ttl = trusted_ttl(f.ttl);
    lease = lease_state{.phase = lease.phase, .id = f.lease, .ttl = ttl, .deadline = f.sent + ttl,
                        .next_renew = f.sent + ttl / 3};
    s_.etcd_failing = false;
    s_.etcd_refused = false;
    s_.lock.retry_at = now_;  // K1: a new lease holds nothing yet
    enter(lease_phase::live, cause::lease_granted, level::info,
          cat("lease ", f.lease, " granted, TTL ", to_ms(f.ttl) / 1000, " s",
              ttl < f.ttl ? cat(" (its deadline counts the ", to_ms(ttl) / 1000, " s asked for)") : std::string()));
}

// L5, L7, L9, W3
void failover::on(fact::keepalive_answered const& f) {
    auto& lease = s_.lease;
    if (!ours(f.request, lease.request)) return;
    if (!f.ttl) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
    auto const ttl = trusted_ttl(*f.ttl);
    lease.request = 0;
    lease.failures = 0;
    lease.ttl = ttl;
    // Measured from the send time: etcd cannot have handled the keepalive earlier.
    lease.deadline = std::max(lease.deadline, f.sent + ttl);
    lease.next_renew = f.sent + ttl / 3;
    if (lease.phase == lease_phase::adopting) {
        lease.deadline = f.sent + ttl;
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

// L11
void failover::on(fact::revoke_answered const& f) {
    if (s_.lease.phase != lease_phase::releasing || !ours(f.request, s_.lease.request)) return;
    s_.lease = lease_state{.phase = s_.lease.phase};
    enter(lease_phase::none, cause::released, level::info, "lease released");
}

// L3, L6, L7, L11, L12, K7, K15, H5, P3, P7
void failover::on(fact::request_failed const& f) {
    if (ours(f.request, s_.health.request)) return health_failed(cat(name_of(f.kind), ": ", f.detail));
    if (ours(f.request, s_.production.request)) return production_failed(cat(name_of(f.kind), ": ", f.detail));
    if (ours(f.request, s_.registry.request)) {  // R4
        auto& registry = s_.registry;
        registry.request = 0;
        if (f.kind == failure::not_found) return lease_lost(cause::lease_gone, "etcd reports the lease no longer exists");
        registry.next_write = now_ + backoff(p_.retry_min, p_.retry_max, registry.failures++);
        return note(cause::member_changed, level::warning, cat("writing the member record failed: ", name_of(f.kind), ": ", f.detail));
    }
    auto& lease = s_.lease;
    auto& lock = s_.lock;
    bool const answered = f.kind == failure::not_found;  // etcd answered: it does not know the lease
    if (ours(f.request, lease.request)) {
        lease.request = 0;
        if (!answered && f.kind != failure::exists) etcd_failed(f.kind);
        switch (lease.phase) {
        case lease_phase::adopting:
            if (answered) return lease_lost(cause::lease_gone, "the earlier lease no longer exists");
            [[fallthrough]];
        case lease_phase::granting: {
            if (lease.phase == lease_phase::granting && f.kind == failure::exists) return grant_exists();
            // L3. Without an answer, or with an unreadable one, etcd may have carried the
            // grant out: the next attempt asks for the same ID, so that a lease is never
            // left behind to expire (under overload, thousands would: each a write).
            bool const uncertain = f.kind == failure::timed_out || f.kind == failure::unavailable ||
                                   f.kind == failure::malformed;
            bool const keep = lease.phase == lease_phase::granting && (uncertain || lease.unanswered);
            auto failures = lease.failures + 1;
            lease = lease_state{.phase = lease.phase,
                                .retry_at = now_ + backoff(p_.retry_min, p_.retry_max, failures - 1),
                                .failures = failures,
                                .asking = keep ? lease.asking : 0,
                                .unanswered = keep,
                                .timed_out = f.kind == failure::timed_out ? lease.timed_out + 1 : 0};
            enter(lease_phase::none, cause::grant_failed, level::warning,
                  cat(lease.phase == lease_phase::adopting ? "renewing the earlier lease failed (ask for a new one): "
                                                           : "lease grant failed: ",
                      name_of(f.kind), ": ", f.detail));
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
        etcd_failed(f.kind);
        lock.retry_at = now_ + backoff(p_.retry_min, p_.retry_max, lock.failures++);
        if (s_.watch.phase == watch_phase::broken) s_.watch.reread_at = std::max(s_.watch.reread_at, lock.retry_at);
        note(cause::campaign_failed, level::warning, cat("campaign failed: ", name_of(f.kind), ": ", f.detail));
    }
}

// An answer to the campaign or the read under way: etcd answers this node, and accepts it.
bool failover::lock_answered(std::uint64_t request) {
    auto& lock = s_.lock;
    if (!ours(request, lock.request)) return false;
    lock.request = 0;
    lock.failures = 0;
    s_.etcd_failing = false;
    s_.etcd_refused = false;
    return true;
}

// K7, K15: a refusal (the user or its role) is an answer, not an outage: the node is out of
// the race, and etcd is not read again each time a keepalive gets through (W3).
void failover::etcd_failed(failure kind) {
    bool const refused = kind == failure::unauthenticated || kind == failure::rejected;
    (refused ? s_.etcd_refused : s_.etcd_failing) = true;
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

// H2, H3, H4
void failover::on(fact::health_answered const& f) {
    auto& health = s_.health;
    if (!ours(f.request, health.request)) return;
    // Times are those of the check's send: what nodeos said is true of about then, even
    // when this monitor reads the answer late (it was frozen, or the loop was busy).
    health.request = 0;
    health.failures = 0;
    health.answered = true;
    health.answered_at = health.sent_at;
    if (f.head_block_num != health.head_num) health.head_moved_at = health.sent_at;
    health.head_num = f.head_block_num;
    health.head_lag = f.head_lag;
    if (producer_failed(health.sent_at - health.head_moved_at >= p_.max_head_lag,
                        cat("its head #", health.head_num, " has not moved for ", to_ms(health.sent_at - health.head_moved_at),
                            " ms"))) {
        return;
    }
    auto const lag = cat(to_ms(f.head_lag), " ms");
    if (f.head_lag <= p_.max_head_lag) {
        health.fresh_head_num = f.head_block_num;
        return enter(health_phase::healthy, cause::nodeos_healthy, level::info,
                     cat("nodeos is healthy: head #", f.head_block_num, " is ", lag, " old"));
    }
    // On a chain whose only producer is this group's, every head stops with it (or has not
    // started: a whole group starting on a stopped chain). With nobody holding the lock, a
    // head that has not moved since it was fresh, or for --max-head-lag, is not a lag: the
    // chain stopped, not this node. A fresh node still goes first: it campaigns at once.
    bool const stopped_when_fresh = health.fresh_head_num != 0 && f.head_block_num == health.fresh_head_num;
    bool const long_unmoved = health.sent_at - health.head_moved_at >= p_.max_head_lag;
    if ((stopped_when_fresh || long_unmoved) && s_.lock.view == lock_view::unknown) {
        return enter(health_phase::healthy, cause::chain_stalled, level::info,
                     cat("nodeos's head #", f.head_block_num, " (", lag, " old) has not moved ",
                         stopped_when_fresh ? "since it was fresh" : cat("for ", to_ms(health.sent_at - health.head_moved_at), " ms"),
                         " and nobody holds the lock: the chain has stopped, not this node"));
    }
    enter(health_phase::lagging, cause::nodeos_lagging, level::warning,
          cat("nodeos lags: head #", f.head_block_num, " is ", lag, " old (at most ", to_ms(p_.max_head_lag),
              " ms): not a candidate until it catches up"));
}

// H5
void failover::health_failed(std::string const& detail) {
    auto& health = s_.health;
    health.request = 0;
    ++health.failures;
    enter(health_phase::unreachable, cause::nodeos_unreachable, level::warning,
          cat("nodeos's API does not answer (", detail, "): not a candidate"));
    // Two checks in a row, the second sent after the first failed: one check that was in
    // flight while this monitor was frozen is not enough.
    producer_failed(health.failures >= 2 && health.sent_at - health.answered_at >= p_.max_head_lag,
                    cat("its API has not answered for ", to_ms(health.sent_at - health.answered_at), " ms"));
}

// H6: a producer that answered once, then went silent or stopped its head, has failed.
bool failover::producer_failed(bool failed, std::string const& why) {
    auto& nodeos = s_.nodeos;
    if (!failed || !p_.health_gated || !producer_alive() || nodeos.phase != nodeos_phase::running ||
        !s_.health.answered || nodeos.failing) {
        return false;
    }
    nodeos.failing = true;
    note(cause::producer_unhealthy, level::error, cat("the producer has failed: ", why, "; hand over and restart it"));
    if (!paused_mode()) stop_nodeos(cause::producer_unhealthy, "it has failed");
    return true;
}

// P2, P3, P5, P7
void failover::on(fact::production_answered const& f) {
    auto& production = s_.production;
    if (!ours(f.request, production.request)) return;
    production.request = 0;
    if (production.phase == production_phase::resuming) {
        if (f.paused) {
            production.retry_at = now_ + backoff(p_.retry_min, p_.retry_max, production.failures++);
            return enter(production_phase::paused, cause::resume_failed, level::warning,
                         "resume did not take: nodeos still says it is paused; resume again later");
        }
        production.failures = 0;
        s_.health.head_moved_at = std::max(s_.health.head_moved_at, now_);  // judged from when it produces
        return enter(production_phase::producing, cause::resumed, level::info, "nodeos resumed: it produces");
    }
    if (production.phase != production_phase::pausing) return;
    if (!f.paused) return production_failed("nodeos still says it is not paused");
    production.drained_at = now_ + p_.block_interval;
    enter(production_phase::draining, cause::paused_confirmed, level::info,
          cat("nodeos paused; the block in progress, if any, is signed within ", to_ms(p_.block_interval), " ms"));
}

// P3, P7
void failover::production_failed(std::string const& detail) {
    auto& production = s_.production;
    production.request = 0;
    if (production.phase == production_phase::resuming) {
        ++production.failures;   // the next resume waits (P6)
        production.retry_at = now_;  // but the pause does not
        return enter(production_phase::pausing, cause::resume_failed, level::warning,
                     cat("resume failed (", detail, "): it may have taken, so pause to be sure"));
    }
    production.retry_at = now_ + backoff(p_.retry_min, p_.retry_max, production.failures++);
    note(cause::pause_failed, level::warning, cat("pause failed: ", detail));
    if (shutting_down()) {
        stop_nodeos(cause::shutdown, "it cannot be paused: stop it instead");
    } else if (s_.nodeos.failing) {
        kill_nodeos(cause::producer_unhealthy, "the failed producer cannot be paused");
    }
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

// ---- decisions -------------------------------------------------------------------------

void failover::decide() {
    wakeup_ = time_point::max();
    if (s_.exited) return;
    deadline_missed_ = false;
    if (s_.lease.phase == lease_phase::live && due(s_.lease.deadline)) {  // L8
        // A producer still alive here means the loop did not run in time to fence it.
        deadline_missed_ = producer_alive();
        auto const id = s_.lease.id;
        lease_lost(cause::deadline_passed, "no keepalive acknowledged for a whole TTL: the lease may have expired");
        // etcd counts the TTL from the last keepalive it handled, later than its send: a
        // late answer, a change of leader or an overloaded etcd leaves the lease alive past
        // this deadline, the lock with it. Renewing it costs etcd no write; a new grant, the
        // revoke of the lease it would replace (K5) and a new campaign cost three.
        if (!shutting_down() && due(s_.hold_off_until)) {
            renew_to_adopt(id, cause::deadline_passed,
                           cat("renew lease ", id, ": etcd may hold it still, past this monitor's deadline"));
        }
    }
    auto& nodeos = s_.nodeos;
    if (nodeos.phase == nodeos_phase::running && nodeos.crashes > 0 && due(nodeos.since + p_.stable_period)) {  // N10
        nodeos.crashes = 0;
        note(cause::crash_history_cleared, level::info, "nodeos has run stably: its crash history is cleared");
    }
    if (nodeos.phase == nodeos_phase::running && nodeos.dirty && due(nodeos.since + p_.dirty_check)) {  // D3
        nodeos.dirty = false;
        nodeos.replay_next = false;
        note(cause::database_clean, level::info, "nodeos has passed its database check: the database is no longer dirty");
    }
    keep_lease();
    keep_health();
    if (!shutting_down()) step_down();
    keep_production();
    if (!shutting_down()) hand_over();
    if (shutting_down()) {
        shut_down();
    } else {
        keep_lock();
        keep_nodeos();
    }
    keep_registry();
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
            if (lease.asking == 0) lease.asking = new_lease_id();
            // An overloaded etcd answers a grant late: waiting longer for it costs etcd one
            // grant, where a resend every TTL/3 costs it one more each time (L3).
            auto const timeout = backoff(p_.request_timeout, p_.grant_timeout_max, lease.timed_out);
            emit(act::grant{lease.request, lease.asking, timeout}, cause::no_lease, level::debug,
                 lease.unanswered ? "no lease: ask again for the one asked for" : "no lease: ask for one");
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
    auto const& watch = s_.watch;
    if (watch.phase != watch_phase::open) {  // K12: know the lock and the control keys first
        // A broken watch's re-read time already counts K7's backoff (and W3 may bring it
        // forward); before a first watch, a failed read waits K7's backoff.
        if (!due(watch.phase == watch_phase::broken ? watch.reread_at : lock.retry_at)) return;
        lock.request = next_request();
        return emit(act::read_group{lock.request, p_.request_timeout}, cause::reread_key, level::debug,
                    "read the group's keys and watch them");
    }
    if (lock.view != lock_view::unknown || !may_campaign() || !due(lock.retry_at)) return;
    lock.request = next_request();
    emit(act::campaign{lock.request, s_.lease.id, p_.request_timeout}, cause::lock_may_be_free, level::debug,
         "the lock may be free: try to take it");
}

// N0 to N6, D1, D2
void failover::keep_nodeos() {
    auto& nodeos = s_.nodeos;
    bool const mine = active_allowed() && !nodeos.replay_next && !s_.stepping_down;
    bool const theirs = !mine && s_.lock.view == lock_view::theirs;
    switch (nodeos.phase) {
    case nodeos_phase::down: {
        if (!due(nodeos.start_at)) return;
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
                                  !due(nodeos.waiting_since + p_.decide_within);
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
        if (due(nodeos.waiting_since + p_.decide_within)) {
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
        bool const late = phase == production_phase::draining ? due(deadline - p_.fence_kill)
                                                              : due(deadline - p_.fence_kill - p_.block_interval);
        if (producer && nodeos.phase == nodeos_phase::running && late) {
            kill_nodeos(cause::fence_deadline,
                        cat("the pause is not confirmed ", to_ms(deadline - now_), " ms before the lease deadline"));
        }
    } else if (producer && nodeos.phase == nodeos_phase::running && due(deadline - p_.fence_graceful)) {
        stop_nodeos(cause::fence_deadline,
                    cat("lease not renewed; ", to_ms(deadline - now_), " ms left before the lease deadline"));
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

// S1, S2, S4. Paused mode: the lock goes as soon as production is paused (P4), so that a
// peer resumes while this nodeos takes its time to stop.
void failover::shut_down() {
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
        due(kill_time());
        return;
    case nodeos_phase::down: break;
    }
    release_lease(cause::shutdown, "nodeos is stopped: release the lock so that a peer takes over at once");
    if (s_.lease.phase == lease_phase::releasing) return;
    s_.exited = true;
    emit(act::exit{0}, cause::stopped, level::info, "nodeos is stopped and the lock released");
}

// H1: only while nodeos runs; each nodeos starts unchecked.
void failover::keep_health() {
    auto& health = s_.health;
    if (!p_.health_gated || s_.nodeos.phase != nodeos_phase::running || health.request != 0) return;
    if (!due(health.next_check)) return;
    health.request = next_request();
    health.sent_at = now_;
    health.next_check = now_ + p_.health_interval;
    emit(act::check_health{health.request, p_.api_timeout}, cause::health_check_due, level::debug, "health check due");
}

// P1 to P7, F4, and the hand-over of a failed producer once it is paused (H6).
void failover::keep_production() {
    auto& production = s_.production;
    auto& nodeos = s_.nodeos;
    if (!paused_mode() || nodeos.phase != nodeos_phase::running || production.request != 0) return;
    bool const wanted = production_wanted();
    switch (production.phase) {
    case production_phase::paused:
        if (nodeos.failing) {
            s_.hold_off_until = now_ + p_.restart_min;
            release_lease(cause::producer_unhealthy, "the failed producer is paused: release the lock");
            return stop_nodeos(cause::producer_unhealthy, "it has failed: restart it");
        }
        if (!wanted) return;
        if (!may_campaign() && why_not() != candidacy::group_paused) {  // it fell behind since it won: let a healthy peer have it
            return release_lease(cause::not_a_candidate,
                                 cat("not a candidate (", name_of(why_not()), "): release the lock"));
        }
        if (due(production.retry_at)) set_production(false, cause::promote, "this node holds the lock: resume production");
        return;
    case production_phase::producing:
        if (wanted) return;
        if (shutting_down()) return set_production(true, cause::shutdown, "the monitor is stopping: pause production");
        if (nodeos.failing) return set_production(true, cause::producer_unhealthy, "the producer has failed: pause it");
        if (s_.stepping_down) {
            return set_production(true, cause::switchover, cat("switchover to ", s_.control.switchover_to, ": pause production"));
        }
        return set_production(true, cause::fence_deadline,
                              cat("lease not renewed; ", to_ms(s_.lease.deadline - now_),
                                  " ms left before the lease deadline: pause production"));
    case production_phase::pausing:
        if (due(production.retry_at)) set_production(true, cause::pause_failed, "pause again");
        return;
    case production_phase::draining:
        if (due(production.drained_at)) {
            // After a failed resume, the next one waits; otherwise it may follow at once.
            production.retry_at = production.failures == 0
                                      ? now_
                                      : now_ + backoff(p_.retry_min, p_.retry_max, production.failures - 1);
            enter(production_phase::paused, cause::drained, level::info, "the block in progress is done: nodeos no longer produces");
            return keep_production();  // what waited for it goes on now
        }
        return;
    case production_phase::resuming: return;
    }
}

// O1, O2: a planned switchover hands the lock to a ready node once this one has stopped
// producing (the gap is one release and one campaign, plus the target's resume or start).
void failover::step_down() {
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
    if (!s_.stepping_down || producer_alive()) return;
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
    if (new_lease || role_changed || (fields != registry.written && due(registry.next_write))) {
        why = cause::member_changed;
    } else if (p_.health_gated && due(registry.refresh_at)) {
        why = cause::member_refresh;
    } else {
        if (fields != registry.written) due(registry.next_write);
        return;
    }
    registry.request = next_request();
    registry.lease = lease.id;
    registry.written = fields;
    registry.written_role = s_.current_role;
    registry.next_write = now_ + p_.publish_min;
    registry.refresh_at = now_ + p_.publish_refresh;
    emit(act::publish{registry.request, lease.id, p_.request_timeout}, why, level::debug,
         cat("write this node's member record (", fields, ")"));
}

std::string failover::registry_fields() const {
    return cat(name_of(s_.current_role), " ", name_of(why_not()), " ", name_of(s_.health.phase),
               s_.nodeos.dirty ? " dirty" : "", s_.control.node_paused ? " paused" : "");
}

// A pause for a fence may take until the SIGKILL (F5); any other call gets api_timeout.
void failover::set_production(bool paused, cause why, std::string text) {
    auto& production = s_.production;
    production.request = next_request();
    auto timeout = p_.api_timeout;
    if (paused && s_.lease.phase == lease_phase::live) {
        auto left = s_.lease.deadline - p_.fence_kill - p_.block_interval - now_;
        timeout = std::clamp<duration>(left, milliseconds(50), p_.api_timeout);
    }
    emit(act::set_production{production.request, paused, timeout}, why,
         fence_of(why) == fence_kind::none ? level::info : level::warning, text);
    if (production.phase != production_phase::pausing || !paused) {
        enter(paused ? production_phase::pausing : production_phase::resuming, why, level::debug, std::move(text));
    }
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

// The role follows nodeos and its production: it is entered with the cause of their change.
void failover::enter(nodeos_phase to, cause why, level lvl, std::string text) {
    record(s_.nodeos.phase, to, why, lvl, text);
    if (to == nodeos_phase::down) {
        // What the data dir held is still true of the next nodeos on it: the head it saw fresh.
        s_.health = health_state{.phase = s_.health.phase, .fresh_head_num = s_.health.fresh_head_num};
        enter(health_phase::unchecked, why, level::debug, "nodeos is not running");
        s_.production = production_state{.phase = s_.production.phase};
        enter(production_phase::paused, why, level::debug, "nodeos is not running");
    }
    enter_role(role_now(), why, text);
}

void failover::enter(health_phase to, cause why, level lvl, std::string text) {
    record(s_.health.phase, to, why, lvl, std::move(text));
}

void failover::enter(production_phase to, cause why, level lvl, std::string text) {
    record(s_.production.phase, to, why, lvl, text);
    enter_role(role_now(), why, text);
}

void failover::enter_role(role to, cause why, std::string const& text) {
    if (s_.current_role == role::stopping) return;  // for good
    record(s_.current_role, to, why, level::info, text);
}

// Active while nodeos runs the producer and is not being stopped or paused; standby from
// the first start and whenever it is not active.
role failover::role_now() const {
    auto const& nodeos = s_.nodeos;
    bool const running = nodeos.phase == nodeos_phase::running;
    bool const producing = running && (paused_mode() ? s_.production.phase == production_phase::producing
                                                     : nodeos.as == mode::active);
    if (producing) return role::active;
    if (running || s_.current_role == role::active) return role::standby;
    return s_.current_role;
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

// L13, L14: etcd has a lease with the ID asked for. After an attempt that went unanswered,
// that attempt created it: renew it to make it ours (L9), its deadline from that renewal's
// send. Asked for the first time, the ID is another's: ask for a new one at once.
void failover::grant_exists() {
    auto& lease = s_.lease;
    if (lease.unanswered) {
        auto const id = lease.asking;
        return renew_to_adopt(id, cause::grant_carried_out,
                              cat("lease ", id, " exists: an earlier attempt of this grant created it; renew it"));
    }
    auto const taken = lease.asking;
    lease = lease_state{.phase = lease.phase, .retry_at = now_, .failures = lease.failures};
    enter(lease_phase::none, cause::grant_failed, level::warning,
          cat("lease grant failed: lease ", taken, " is another's; ask for another ID"));
}

// A lease ID for a grant: positive, from this monitor's instance and a count, so that no
// two instances and no two grants of one ask for the same (etcd refuses an ID it has).
std::int64_t failover::new_lease_id() {
    std::uint64_t x = 1469598103934665603ull;  // FNV-1a of the instance
    for (unsigned char c : me_.instance) x = (x ^ c) * 1099511628211ull;
    x += ++s_.lease_ids * 0x9e3779b97f4a7c15ull;  // splitmix64 of (that + count)
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    auto const id = static_cast<std::int64_t>(x >> 1);
    return id == 0 ? 1 : id;
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
    renew_to_adopt(lease_id, cause::own_lease_survives,
                   cat("the lock is still held by this monitor's earlier lease ", lease_id, ": renew it"));
    enter(lock_view::unknown, cause::own_lease_survives, level::debug, "the lock is ours once the earlier lease renews");
}

// L8, L13, K5: a lease of this monitor's that etcd may still hold is renewed, not granted
// anew; only an answer with a TTL makes it ours (L9), an answer without one sends the
// monitor to a new grant (L7).
void failover::renew_to_adopt(std::int64_t lease_id, cause why, std::string text) {
    auto& lease = s_.lease;
    lease = lease_state{.phase = lease.phase, .id = lease_id, .request = next_request()};
    emit(act::renew{lease.request, lease_id, p_.request_timeout}, why, level::info, text);
    enter(lease_phase::adopting, why, level::debug, std::move(text));
}

// W2, W3
void failover::read_key_at(time_point t, cause why, level lvl, std::string text) {
    s_.watch.reread_at = t;
    if (s_.watch.phase == watch_phase::broken) return note(why, lvl, std::move(text));
    enter(watch_phase::broken, why, lvl, std::move(text));
}

void failover::start_nodeos(mode as, cause why, std::string text) {
    auto& nodeos = s_.nodeos;
    s_.health.next_check = now_ + p_.health_interval;  // the first check once it had a moment
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

// ---- helpers ------------------------------------------------------------------------------

// A nodeos that has not been reaped and may be signing blocks: in restart mode one with
// the active config, in paused mode one not confirmed paused.
bool failover::producer_alive() const {
    if (s_.nodeos.phase == nodeos_phase::down) return false;
    if (paused_mode()) return s_.production.phase != production_phase::paused;
    return s_.nodeos.as == mode::active;
}

// Paused mode: production goes on only while the lock is ours with time before the fence.
bool failover::production_wanted() const {
    return active_allowed() && !shutting_down() && !s_.nodeos.failing && !s_.nodeos.dirty && !s_.stepping_down;
}

candidacy failover::why_not() const {
    auto const why = why_not_here();
    return why == candidacy::candidate && s_.etcd_refused ? candidacy::etcd_refused : why;
}

// What keeps this node out of the race, etcd's refusal aside.
candidacy failover::why_not_here() const {
    auto const& nodeos = s_.nodeos;
    if (shutting_down()) return candidacy::stopping;
    if (s_.control.node_paused) return candidacy::node_paused;
    if (s_.control.group_paused) return candidacy::group_paused;
    if (!s_.control.switchover_to.empty() && s_.control.switchover_to != me_.node) return candidacy::switchover_to_other;
    if (now_ < s_.hold_off_until) return candidacy::held_off;
    if (nodeos.crashes >= p_.crash_loop) return candidacy::crash_loop;
    if (nodeos.failing) return candidacy::producer_unhealthy;
    if (nodeos.dirty) return candidacy::dirty_database;
    if (!p_.health_gated) return candidacy::candidate;
    if (nodeos.phase != nodeos_phase::running) return candidacy::nodeos_down;
    switch (s_.health.phase) {
    case health_phase::healthy: return candidacy::candidate;
    case health_phase::unchecked: return candidacy::nodeos_unchecked;
    case health_phase::lagging: return candidacy::nodeos_lagging;
    case health_phase::unreachable: return candidacy::nodeos_unreachable;
    }
    return candidacy::nodeos_unchecked;
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

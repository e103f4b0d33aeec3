// The lease (rows L1 to L14): granted, renewed every TTL/3, its deadline counted from the
// send time of the keepalive etcd acknowledged, lost, released, adopted when etcd kept it.
#include "core/failover.hpp"

#include <algorithm>

namespace nm {

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
    etcd_answered(true);
    enter(lease_state{.phase = lease_phase::live, .id = f.lease, .ttl = ttl, .deadline = f.sent + ttl,
                      .next_renew = f.sent + ttl / 3},
          cause::lease_granted, level::info,
          cat("lease ", f.lease, " granted, TTL ", to_ms(f.ttl) / 1000, " s",
              ttl < f.ttl ? cat(" (its deadline counts the ", to_ms(ttl) / 1000, " s asked for)") : std::string()));
    campaign_now();  // K1: a new lease holds nothing yet
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
        etcd_answered(false);
        enter(lease_phase::live, cause::lease_adopted, level::info,
              cat("lease ", lease.id, " of this monitor is alive: it is ours again"));
        campaign_now();  // K1 confirms that its key is still the lock
        return;
    }
    if (s_.etcd_failing) {
        etcd_answered(false);
        read_key_at(now_, cause::etcd_answers_again, level::info,
                    "etcd answers again: lease renewed; read the lock key again, as the watch may have died");
    }
}

// L11
void failover::on(fact::revoke_answered const& f) {
    if (s_.lease.phase != lease_phase::releasing || !ours(f.request, s_.lease.request)) return;
    enter(lease_state{.phase = lease_phase::none}, cause::released, level::info, "lease released");
}

// L3, L6, L7, L11, L12, L13, L14
void failover::lease_failed(fact::request_failed const& f) {
    auto& lease = s_.lease;
    bool const answered = f.kind == failure::not_found;  // etcd answered: it does not know the lease
    lease.request = 0;
    if (!answered && f.kind != failure::exists) etcd_failed(f.kind);
    switch (lease.phase) {
    case lease_phase::adopting:
        if (answered) return lease_lost(cause::lease_gone, "the earlier lease no longer exists");
        [[fallthrough]];
    case lease_phase::granting: {
        if (lease.phase == lease_phase::granting && f.kind == failure::exists) return grant_exists();
        // L3. Without an answer, or with an unreadable one, etcd may have carried the grant
        // out: the next attempt asks for the same ID, so that a lease is never left behind
        // to expire (under overload, thousands would: each a write).
        bool const uncertain = f.kind == failure::timed_out || f.kind == failure::unavailable ||
                               f.kind == failure::malformed;
        bool const keep = lease.phase == lease_phase::granting && (uncertain || lease.unanswered);
        auto const failures = lease.failures + 1;
        auto text = cat(lease.phase == lease_phase::adopting ? "renewing the earlier lease failed (ask for a new one): "
                                                             : "lease grant failed: ",
                        name_of(f.kind), ": ", f.detail);
        enter(lease_state{.phase = lease_phase::none,
                          .retry_at = now_ + backoff(p_.retry_min, p_.retry_max, failures - 1),
                          .failures = failures,
                          .asking = keep ? lease.asking : 0,
                          .unanswered = keep,
                          .timed_out = f.kind == failure::timed_out ? lease.timed_out + 1 : 0},
              cause::grant_failed, level::warning, std::move(text));
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
        if (answered) {
            return enter(lease_state{.phase = lease_phase::none}, cause::released, level::info,
                         "lease released (it was already gone)");
        }
        enter(lease_state{.phase = lease_phase::none}, cause::release_failed, level::warning,
              cat("lease release failed: ", name_of(f.kind), ": ", f.detail, "; it expires within its TTL"));
        return;
    case lease_phase::none: return;
    }
}

// K7, K15: a refusal (the user or its role) is an answer, not an outage: the node is out of
// the race, and etcd is not read again each time a keepalive gets through (W3).
void failover::etcd_failed(failure kind) {
    bool const refused = kind == failure::unauthenticated || kind == failure::rejected;
    (refused ? s_.etcd_refused : s_.etcd_failing) = true;
}

// etcd answered: it serves this node again; a grant, campaign or read answered also says
// that it accepts this node again (K15).
void failover::etcd_answered(bool accepts) {
    s_.etcd_failing = false;
    if (accepts) s_.etcd_refused = false;
}

// L8
void failover::check_deadline() {
    if (s_.lease.phase != lease_phase::live || !reached_or_wake(s_.lease.deadline)) return;
    // A producer still alive here means the loop did not run in time to fence it.
    deadline_missed_ = producer_alive();
    auto const id = s_.lease.id;
    lease_lost(cause::deadline_passed, "no keepalive acknowledged for a whole TTL: the lease may have expired");
    // etcd counts the TTL from the last keepalive it handled, later than its send: a late
    // answer, a change of leader or an overloaded etcd leaves the lease alive past this
    // deadline, the lock with it. Renewing it costs etcd no write; a new grant, the revoke
    // of the lease it would replace (K5) and a new campaign cost three.
    if (!shutting_down() && reached_or_wake(s_.hold_off_until)) {
        renew_to_adopt(id, cause::deadline_passed,
                       cat("renew lease ", id, ": etcd may hold it still, past this monitor's deadline"));
    }
}

// L1, L4. While stopping, the lease is still renewed so that a producer can stop gracefully.
void failover::keep_lease() {
    auto& lease = s_.lease;
    switch (lease.phase) {
    case lease_phase::none:
        if (!shutting_down() && reached_or_wake(s_.hold_off_until) && reached_or_wake(lease.retry_at)) {
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
        if (lease.request == 0 && reached_or_wake(lease.next_renew)) {
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

void failover::enter(lease_phase to, cause why, level lvl, std::string text) {
    record(s_.lease.phase, to, why, lvl, std::move(text));
}

// A new lease state altogether: a grant, a loss, a release; only its phase is compared.
void failover::enter(lease_state next, cause why, level lvl, std::string text) {
    enter_afresh(s_.lease, std::move(next), why, lvl, std::move(text));
}

// L7, L8, K13
void failover::lease_lost(cause why, std::string const& text) {
    bool const had_lock = s_.lock.view == lock_view::mine;
    enter(lease_state{.phase = lease_phase::none, .retry_at = now_}, why, level::warning, text);
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
    enter(lease_state{.phase = lease_phase::none, .retry_at = now_, .failures = lease.failures}, cause::grant_failed,
          level::warning, cat("lease grant failed: lease ", lease.asking, " is another's; ask for another ID"));
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
    auto const request = next_request();
    emit(act::renew{request, lease_id, p_.request_timeout}, why, level::info, text);
    enter(lease_state{.phase = lease_phase::adopting, .id = lease_id, .request = request}, why, level::debug,
          std::move(text));
}

}  // namespace nm

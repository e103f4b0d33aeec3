#pragma once
// The failover core: every decision nodeos-monitor makes, and none of its I/O.
//
// Facts go in (facts.hpp: an answer from etcd, a watch event, nodeos exited, a signal,
// time passed); actions come out (actions.hpp: commands for the driver, and observations
// of what changed), each with a structured cause and a sentence. Time is passed in with
// every fact; the core asks to be woken at next_wakeup(). Unit tests drive it on a fake
// clock, and build it directly in any state (state.hpp).
//
// Safety rule, from the lease timing argument (docs/design.md, "How fencing works"): nodeos runs
// the active configuration only while this node's lease is live and its key is the lock;
// it is stopped and reaped before the lease deadline (the send time of the last
// acknowledged keepalive plus the granted TTL), and killed at once when the lock is known
// lost.
//
// Seven sub-machines (the lease, the lock, the watch, nodeos, its health, paused mode's
// production, the member record), each changing phase only through its enter(), which
// records the change with its cause and does what entering the phase entails; the role
// operators see and the candidacy are derived from them at the same moment. After every
// fact they decide in a fixed order (decision_steps in failover.cpp, with why). Their
// rows are implemented in one file each: lease.cpp, lock.cpp (with the watch), nodeos.cpp
// (with the fence), health.cpp, production.cpp, operate.cpp (switchover, the member
// record, the stop).
//
// ┌─ the transition table ─────────────────────────────────────────────────────────────
// │ row  state                        fact or time                  actions, next state           cause
// │ LEASE: none, granting, adopting, live, releasing
// │ L1   none                         retry time, no hold-off,      grant (a new ID, or the one    no_lease
// │                                   not stopping                  L3 kept) → granting
// │ L2   granting                     granted                       → live, deadline = send + TTL  lease_granted
// │                                                                 (the answer's, at most the
// │                                                                 TTL asked for)
// │ L3   granting, adopting           request failed                → none, grant again after      grant_failed
// │                                                                 100 ms doubling to 2 s; the
// │                                                                 same ID after no answer
// │                                                                 (timed out, unavailable,
// │                                                                 malformed: it may exist);
// │                                                                 after timeouts in a row,
// │                                                                 waiting TTL/3 doubled per
// │                                                                 timeout, at most the TTL
// │ L4   live                         keepalive due (TTL/3 after    renew, timing out by the       keepalive_due
// │                                   the last send)                deadline (≤ TTL/3)
// │ L5   live                         keepalive answered with TTL   deadline = max(deadline,       -
// │                                                                 send + TTL), TTL at most the
// │                                                                 one asked for; the send is the
// │                                                                 one etcd answered (the etcd
// │                                                                 client sends a keepalive
// │                                                                 refused for its token again)
// │ L6   live                         keepalive failed, not         renew again after 100 ms       keepalive_failed
// │                                   not_found                     doubling, at most TTL/3
// │ L7   live, adopting               keepalive answered without    → none; K13                    lease_gone
// │                                   TTL; keepalive or campaign
// │                                   failed not_found
// │ L8   live                         deadline passed               → none; K13; then, as L1 would deadline_passed
// │                                                                 (not stopping, no hold-off),
// │                                                                 renew the same lease →
// │                                                                 adopting (L9 or L7): etcd may
// │                                                                 hold it still, with the lock
// │ L9   adopting                     keepalive answered with TTL   → live, deadline from its send lease_adopted
// │ L10  live                         N9, or S2                     revoke → releasing             crash_handover, shutdown
// │ L11  releasing                    revoked, or failed not_found  → none                         released
// │ L12  releasing                    failed otherwise              → none (expires within TTL)    release_failed
// │ L13  granting                     failed exists, after an       renew that lease → adopting    grant_carried_out
// │                                   unanswered attempt            (L9)
// │ L14  granting                     failed exists, first attempt  → none; a new ID at once       grant_failed
// │                                   (the ID is another's)
// │ LOCK: unknown, mine, theirs (and whether a campaign is in flight)
// │ K1   unknown, lease live, watch   retry time                    campaign                       lock_may_be_free
// │      open (K12), a candidate
// │ K2   any                          answered: won, or held under  → mine; W1                     lock_acquired
// │                                   this node's lease
// │ K3   unknown, theirs              answered: held by another     → theirs; W1                   lock_held_by_other
// │ K4   mine                         answered: held by another     → theirs; W1; F1               lock_taken
// │ K5   any                          answered: held by this        adopt it: revoke the new       own_lease_survives
// │                                   monitor under an older lease  lease, renew the old (L9)
// │ K6   any                          answered: no holder (kept     → unknown; K1 at once          key_vanished
// │                                   for safety: the campaign txn
// │                                   reads the key in the txn, so
// │                                   the etcd layer calls such an
// │                                   answer malformed, K7)
// │ K7   any                          campaign or read failed, not  K1 or K12 again after 100 ms   campaign_failed
// │                                   not_found (L7)                doubling to 2 s
// │ K8   mine                         key deleted                   → unknown; F1; K1 at once      key_deleted
// │ K9   unknown, theirs              key deleted                   → unknown; K1 at once          key_deleted
// │ K10  mine                         key written under another     → theirs; F1                   lock_taken
// │                                   lease
// │ K11  unknown, theirs              key written by another        → theirs                       lock_held_by_other
// │                                   (by this monitor: a campaign  (by this monitor: nothing; the
// │                                   etcd applied late, under a    next campaign decides, K2 or
// │                                   lease it adopts or lost)      K5)
// │ K12  lease live                   no open watch (at start, or   read the group's keys: the     reread_key
// │                                   W2, W3 and the re-read due)   lock and the control keys
// │ K13  mine                         lease lost or released        → unknown; F1                  lease_lost
// │ K14  any                          group read: a holder, or      mine, theirs (K4 if it was     group_read
// │                                   none; control keys            mine), or unknown (K8 if it
// │                                                                 was mine); K5; O3; W1
// │ K15  any                          grant, campaign or read       as L3 or K7, and not a         grant_failed,
// │                                   refused (unauthenticated,     candidate (etcd_refused) until campaign_failed
// │                                   rejected)                     one is answered; not an
// │                                                                 outage (no W3)
// │ WATCH: idle, open, broken (a read of the key re-opens it)
// │ W1   not open                     K14 (or K2, K3, K4)           watch the group's keys from    watch_key
// │                                                                 revision + 1 → open
// │ W2   open                         watch ended                   → broken; re-read (K12) after  watch_ended
// │                                                                 100 ms doubling, at most
// │                                                                 TTL/3; the doubling restarts
// │                                                                 only after a watch that
// │                                                                 lasted TTL/3
// │ W3   any                          keepalive answered after      → broken, re-read at once      etcd_answers_again
// │                                   failures
// │ NODEOS: down, running, stopping (SIGTERM sent), killed (SIGKILL sent)
// │ N0   down, paused mode            start time                    start the producer config      paused_standby
// │                                                                 paused → running
// │ N1   down                         start time; lock mine with    start active → running         holds_lock
// │                                   time before the fence
// │ N2   down                         start time; lock theirs       start standby → running        lock_held_elsewhere
// │ N3   down                         start time; no verdict, not   start standby → running        not_a_candidate
// │                                   a candidate (a crash loop, a
// │                                   pause, ...; with an API, once
// │                                   K14 answered: its nodeos must
// │                                   run to be checked)
// │ N4   down                         start time; no verdict, etcd  start standby → running        etcd_unreachable
// │                                   failing
// │ N5   down                         start time + 2 s; no verdict  start standby → running        no_verdict_yet
// │ N6   running standby              lock mine                     SIGTERM → stopping             promote
// │ N7   stopping, killed             exited                        → down; start at once          exited_as_asked
// │ N8   running                      exited; or start failed       → down; start after 500 ms     crashed, start_failed
// │                                                                 doubling to 30 s; 3 in a row:
// │                                                                 not a candidate
// │ N9   N8 while active or holding   (same)                        L10; no campaign before the    crash_handover
// │      the lock                                                   restart
// │ N10  running, crashes > 0         ran 3 TTL                     crash history cleared          crash_history_cleared
// │ N11  stopping                     stop timeout passed           SIGKILL → killed               stop_timeout
// │ N12  killed                       1 s, not reaped               error: stuck (a hung disk?)    stuck_after_kill
// │ N13  down, restart mode           lock mine, lease live, past   start nothing until a renewal  -
// │                                   the F2 point (F2 stopped it)  (N1) or the deadline (L8)
// │ HEALTH (with --nodeos-api; paused mode always): unchecked, healthy, lagging, unreachable
// │ H1   nodeos running               check due (every 500 ms)      get_info                       health_check_due
// │ H2   any                          answered, head within         → healthy                      nodeos_healthy
// │                                   --max-head-lag
// │ H3   any                          answered, head older (not     → lagging: not a candidate     nodeos_lagging
// │                                   H4)
// │ H4   any                          answered, head unchanged      → healthy: the chain stopped   chain_stalled
// │                                   since it was fresh or for     with its producer, not this
// │                                   --max-head-lag, and nobody    node (a one-producer chain)
// │                                   holds the lock
// │ H5   any                          check failed                  → unreachable                  nodeos_unreachable
// │ H6   producing, answered before   no answer, or the head        hand over and restart it:      producer_unhealthy
// │                                   unmoved, for --max-head-lag   restart: SIGTERM; paused: P4,
// │                                                                 then L10 and SIGTERM; its
// │                                                                 exit counts as a crash (N8)
// │ PRODUCTION (paused mode): paused, resuming, producing, pausing, draining
// │ P1   paused, nodeos running       lock mine, a candidate,       resume, confirm → resuming     promote
// │                                   before the fence; (not a      (L10: let a healthy peer       (not_a_candidate)
// │                                   candidate any more)           have it)
// │ P2   resuming                     answered: not paused          → producing (role active)      resumed
// │ P3   resuming                     failed, or still paused       → pausing (it may have         resume_failed
// │                                                                 resumed); resume again later
// │ P4   producing                    no longer wanted (F4, S1,     pause, confirm → pausing       fence_deadline,
// │                                   H6)                                                          shutdown, ...
// │ P5   pausing                      answered: paused              → draining for one block       paused_confirmed
// │                                                                 interval
// │ P6   draining                     block interval passed         → paused                       drained
// │ P7   pausing                      failed, or not paused         pause again after 100 ms       pause_failed
// │                                                                 doubling (at shutdown:
// │                                                                 SIGTERM; H6: SIGKILL)
// │ DIRTY DATABASE
// │ D1   running                      exited 2, having said its     → down, dirty: not a           dirty_database
// │                                   database is dirty; with       candidate; start at once with
// │                                   --dirty-db-args               them, as a validator (paused)
// │ D2   running                      the same, without             → down, dirty; start again     dirty_database
// │                                   --dirty-db-args               after 30 s (an operator may
// │                                                                 have replayed it)
// │ D3   running, dirty               ran 2 s: passed the check     dirty cleared                  database_clean
// │ FENCE: a nodeos that may be producing (restart mode: the active config; paused mode: not
// │ confirmed paused)
// │ F1   lock not mine, or lease      (any)                         SIGKILL → killed               fence_lost_lock,
// │      not live                                                                                  fence_frozen
// │ F2   restart mode, running        deadline − 40 % TTL           SIGTERM → stopping             fence_deadline
// │ F3   restart mode, stopping       deadline − 10 % TTL (≥ 200    SIGKILL → killed               fence_deadline
// │                                   ms), if before the stop
// │                                   timeout (else N11)
// │ F4   paused mode, producing       deadline − 40 % TTL           P4: pause                      fence_deadline
// │ F5   paused mode, not yet         deadline − 10 % TTL − one     SIGKILL → killed               fence_deadline
// │      confirmed paused             block interval
// │  -   while it may produce, with a live lease, the dead-man timer (deadman_at()) is armed at
// │      deadline − 5 % TTL: the kernel kills a monitor that is frozen, and nodeos with it
// │ OPERATING THE GROUP (keys under <group>/: operator pauses, a planned switchover)
// │ O1   lock mine                    a switchover names another    stop producing: restart mode   switchover
// │                                   node, which is ready          SIGTERM, paused mode P4
// │ O2   stepping down                production stopped            L10; then a standby that does  switchover
// │                                                                 not compete while the
// │                                                                 switchover names another node
// │ O3   any                          control keys changed          candidacy follows: the group   maintenance
// │                                                                 or this node paused, or a
// │                                                                 switchover to another node:
// │                                                                 not a candidate; a producer
// │                                                                 produces on (safety never
// │                                                                 pauses)
// │ REGISTRY: this node's record <group>/members/<node>, bound to its lease
// │ R1   lease live                   role, candidacy, health,      publish (at most once a        member_changed
// │                                   dirty or pause changed, or    second; at once for a new
// │                                   a new lease                   lease or a new role)
// │ R2   lease live, with an API      10 s since the last write     publish (head and lag)         member_refresh
// │ R3   publishing                   written                       remembered as written          -
// │ R4   publishing                   failed (not_found: L7)        publish again after 100 ms     member_changed
// │                                                                 doubling to 2 s
// │ SHUTDOWN
// │ S1   any                          first SIGTERM or SIGINT       → role stopping; a running     stop_requested,
// │                                                                 nodeos gets SIGTERM (N11       shutdown
// │                                                                 applies; the lease is renewed);
// │                                                                 paused mode: P4 first
// │ S2   stopping, nodeos down        -                             L10; paused mode: once         shutdown
// │      (paused mode: paused)                                      paused, before the SIGTERM
// │ S3   any                          second SIGTERM or SIGINT      SIGKILL nodeos; exit 1         second_stop
// │ S4   stopping, nodeos down,       -                             exit 0                         stopped
// │      lease none
// │ ROLE (what operators see): starting until nodeos first runs; active while nodeos runs the
// │ active config and is not being stopped (paused mode: while production is confirmed);
// │ standby otherwise; stopping from S1. CANDIDACY: a node campaigns only when not stopping,
// │ not paused (O3), not held off, not crash-looping, not failing, its database not dirty,
// │ and (with an API) nodeos running and healthy; it is reported a candidate only if etcd
// │ also accepted its latest grant, campaign or read (K15) (why_not()).
// └────────────────────────────────────────────────────────────────────────────────────
// tests/unit/test_failover_table.cpp has one test per row, named after it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/actions.hpp"
#include "core/facts.hpp"
#include "core/policy.hpp"
#include "core/state.hpp"

namespace nm {

// Who this monitor is: its node name, and the instance id that tells its own lock value
// apart from one an earlier process of the same node wrote.
struct identity {
    std::string node;
    std::string instance;
};

class failover {
public:
    failover(policy p, identity me, core_state initial = {});

    std::vector<action> handle(fact_t const& f, time_point now);

    // When the core wants a fact::tick; time_point::max() when it waits only for facts.
    time_point next_wakeup() const { return wakeup_; }

    core_state const& state() const { return s_; }
    // The steps decide() takes after every fact, in their order, by name.
    static std::vector<std::string_view> decision_order();
    policy const& timings() const { return p_; }

    // Observers, for the driver, status and tests.
    role current_role() const { return s_.current_role; }
    bool holds_lock() const { return s_.lock.view == lock_view::mine && s_.lease.phase == lease_phase::live; }
    bool has_lease() const { return s_.lease.phase == lease_phase::live; }
    std::optional<time_point> lease_deadline() const;
    std::string const& holder() const { return s_.lock.holder; }
    bool shutting_down() const { return s_.stop_signals > 0; }
    // While nodeos may be producing: when the kernel must kill this monitor if it has not
    // renewed by then (the dead-man switch), half the SIGKILL reserve before the deadline.
    std::optional<time_point> deadman_at() const { return s_.deadman_at; }
    // The fields of this node's member record that trigger a write when they change.
    std::string registry_fields() const;
    // What its member record says now (act::publish carries it as of the write).
    member_view member() const;
    // Whether this node may take the lock now, and if not why.
    candidacy why_not() const;

private:
    // One handler per fact; each names the table rows it implements.
    void on(fact::start const&);
    void on(fact::tick const&) {}
    void on(fact::lease_granted const& f);
    void on(fact::keepalive_answered const& f);
    void on(fact::campaign_answered const& f);
    void on(fact::revoke_answered const& f);
    void on(fact::group_read const& f);
    void on(fact::request_failed const& f);
    void on(fact::key_deleted const& f);
    void on(fact::key_written const& f);
    void on(fact::watch_ended const& f);
    void on(fact::nodeos_exited const& f);
    void on(fact::nodeos_start_failed const& f);
    void on(fact::health_answered const& f);
    void on(fact::production_answered const& f);
    void on(fact::control_changed const& f);
    void on(fact::published const& f);
    void on(fact::stop_requested const& f);

    // The rows driven by time and by the other machines, run after every fact in the
    // order of decision_steps (failover.cpp says why each comes where it does).
    void decide();
    void check_deadline();
    void check_history();
    void arm_deadman();
    void keep_lease();
    void keep_lock();
    void keep_nodeos();
    void keep_health();
    void keep_production();
    void keep_registry();
    void step_down();
    void hand_over();
    void fence();
    void shut_down();

    // The one way each sub-machine changes phase.
    void enter(lease_phase to, cause why, level lvl, std::string text);
    void enter(lease_state next, cause why, level lvl, std::string text);
    void enter(lock_view to, cause why, level lvl, std::string text);
    void enter(watch_phase to, cause why, level lvl, std::string text);
    void enter(nodeos_phase to, cause why, level lvl, std::string text);
    void enter(health_phase to, cause why, level lvl, std::string text);
    void enter(health_state next, cause why, level lvl, std::string text);
    void enter(production_phase to, cause why, level lvl, std::string text);
    void enter(production_state next, cause why, level lvl, std::string text);
    // What one machine asks of another, named by the machine it changes.
    void etcd_answered(bool accepts);
    void campaign_now();
    void first_check_after(duration d);
    void judge_head_from(time_point t);
    void enter_role(role to, cause why, std::string const& text);
    // A sub-machine's state afresh (a new lease, a nodeos gone): replaced whole, its phase
    // changed as enter() changes it.
    template <class State>
    void enter_afresh(State& current, State next, cause why, level lvl, std::string text) {
        auto const to = next.phase;
        next.phase = current.phase;
        current = std::move(next);
        enter(to, why, lvl, std::move(text));
    }
    // A change of phase, recorded as an observation with its cause.
    template <class Phase>
    void record(Phase& current, Phase to, cause why, level lvl, std::string text) {
        if (current == to) return;
        emit(act::changed<Phase>{current, to}, why, lvl, std::move(text));
        current = to;
    }

    void lease_failed(fact::request_failed const& f);
    void lock_failed(fact::request_failed const& f);
    void registry_failed(fact::request_failed const& f);
    void lease_lost(cause why, std::string const& text);
    void etcd_failed(failure kind);
    bool lock_answered(std::uint64_t request);
    void release_lease(cause why, std::string text);
    void adopt_lease(std::int64_t lease);
    void grant_exists();
    void renew_to_adopt(std::int64_t lease, cause why, std::string text);
    std::int64_t new_lease_id();
    void keepalive_failed(failure kind, std::string const& detail);
    void read_key_at(time_point t, cause why, level lvl, std::string text);
    void apply_control(group_control const& c);
    bool learn_holder(lock_holder const& h, cause mine, cause theirs);
    void open_watch(std::int64_t revision);
    void start_nodeos(mode as, cause why, std::string text);
    void stop_nodeos(cause why, std::string const& text);
    void kill_nodeos(cause why, std::string const& text);
    void nodeos_ended(cause why, std::string const& how);
    void set_production(bool paused, cause why, std::string text);
    void health_failed(std::string const& detail);
    bool producer_failed(bool failed, std::string const& why);
    void production_failed(std::string const& detail);
    time_point kill_time() const;
    bool paused_mode() const { return p_.standby == standby_mode::paused; }
    bool producer_alive() const;
    bool production_wanted() const;
    role role_now() const;
    // etcd's refusal does not stop a campaign: a refused campaign is how a node learns, at
    // K7's pace, that etcd accepts it again.
    bool may_campaign() const { return why_not_here() == candidacy::candidate; }
    candidacy why_not_here() const;
    bool active_allowed() const;
    std::string who(lock_holder const& h) const;
    bool ours(std::uint64_t request, std::uint64_t expected) const { return request != 0 && request == expected; }
    duration backoff(duration first, duration cap, int failures) const;
    // Whether t has come.
    bool reached(time_point t) const { return now_ >= t; }
    // Asks to be woken at t (next_wakeup()), unless it has come.
    void wake_at(time_point t);
    // reached(t); if not, wake_at(t): a check that must be made again when t comes.
    bool reached_or_wake(time_point t);
    duration trusted_ttl(duration answered) const;
    std::uint64_t next_request() { return ++s_.last_request; }
    void emit(decltype(action::what) what, cause why, level lvl, std::string text);
    void note(cause why, level lvl, std::string text);

    struct decision_step;
    static decision_step const decision_steps[];

    policy p_;
    identity me_;
    core_state s_;
    time_point now_{};
    time_point wakeup_ = time_point::max();
    bool deadline_missed_ = false;  // this step found the deadline passed with a producer alive
    std::vector<action> out_;
};

}  // namespace nm

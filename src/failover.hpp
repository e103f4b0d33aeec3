#pragma once
// The failover core: every decision nodeos-monitor makes, and none of its I/O.
//
// Facts go in (a lease was granted, a keepalive failed, the key was deleted, nodeos
// exited, a timer fired, a stop was asked for); actions come out (grant, renew, campaign,
// release, watch, start nodeos in a mode, signal nodeos, exit), each with the sentence
// that explains it. The driver (monitor.cpp) turns actions into I/O and results back into
// facts, and wakes the core at next_wakeup(). Time is always passed in, so unit tests
// drive the core step by step on a fake clock.
//
// Safety rule, from the lease timing argument (README, "How fencing works"): nodeos may run
// with the active configuration only while this node's lease is live and its key is the
// lock; it is stopped and reaped before the lease deadline, the send time of the last
// acknowledged keepalive plus the granted TTL, and killed at once when the lock is known lost.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "clock.hpp"
#include "log.hpp"

namespace nm {

enum class mode { standby, active };
char const* name_of(mode m);

// Timings, all derived from two flags so that the defaults stay consistent.
struct policy {
    duration ttl = seconds(10);
    duration stop_timeout = seconds(30);    // graceful stop of nodeos before SIGKILL
    duration renew_interval = ttl / 3;      // one keepalive each
    duration fence_graceful = ttl * 2 / 5;  // with this much left before the deadline, SIGTERM the producer
    duration fence_kill = ttl / 10;         // with this much left, SIGKILL it (a reserve for the kernel)
    duration request_timeout = ttl / 3;     // grant and campaign
    duration release_timeout = seconds(2);  // revoke on the way out: bounded even with etcd down
    duration retry_min = milliseconds(100); // first retry after a failed request
    duration retry_max = seconds(2);
    duration restart_min = milliseconds(500);  // first restart after nodeos exits on its own
    duration restart_max = seconds(30);
    duration stable_period = ttl * 3;       // a run this long clears the crash history
    int crash_loop = 3;                     // this many quick exits in a row: stop campaigning
    duration reap_overdue = seconds(1);     // a SIGKILLed nodeos not reaped by then is reported
    duration decide_within = seconds(2);    // a fresh start waits this long for the lock's verdict

    static policy from(seconds ttl, seconds stop_timeout);
};

// Who holds the lock, as read from the key.
struct holder_info {
    std::string who;  // node name and instance, for logs
    std::int64_t lease = 0;
    bool this_monitor = false;  // written by this very process (its instance id), maybe under an older lease
};

// Facts: what happened. `request` ties an answer to the action that asked for it; the core
// ignores answers to requests it no longer waits for.
namespace fact {
struct start {};
struct tick {};
struct lease_granted { std::uint64_t request; std::int64_t lease; duration ttl; time_point sent; };
struct lease_renewed { std::uint64_t request; duration ttl; time_point sent; };
struct lease_gone { std::uint64_t request; };  // etcd says the lease no longer exists
struct request_failed { std::uint64_t request; std::string why; };
struct campaign_done { std::uint64_t request; bool won; std::int64_t revision; std::optional<holder_info> holder; };
struct released { std::uint64_t request; };
struct key_deleted { std::int64_t revision; };
struct key_written { std::int64_t revision; holder_info holder; };
struct watch_ended { std::string why; };
struct nodeos_exited { std::string how; };
struct stop_requested { std::string signal; };
}  // namespace fact

using fact_t = std::variant<fact::start, fact::tick, fact::lease_granted, fact::lease_renewed,
                            fact::lease_gone, fact::request_failed, fact::campaign_done,
                            fact::released, fact::key_deleted, fact::key_written,
                            fact::watch_ended, fact::nodeos_exited, fact::stop_requested>;

// Actions: what the driver must do now.
namespace act {
struct grant { std::uint64_t request; duration timeout; };
struct renew { std::uint64_t request; std::int64_t lease; duration timeout; };
struct campaign { std::uint64_t request; std::int64_t lease; duration timeout; };
struct release { std::uint64_t request; std::int64_t lease; duration timeout; };
struct watch { std::int64_t from_revision; };  // replaces the current watch
struct start_nodeos { mode as; };
// Why a producer is fenced, for the metrics; none for stops that are not fences.
enum class fence_cause { none, deadline, lost_lock, frozen };
char const* name_of(fence_cause c);

struct signal_nodeos { int signal; fence_cause cause = fence_cause::none; };  // to nodeos's process group
struct exit { int code; };
struct note { level lvl; };                     // only a log line
}  // namespace act

struct action {
    std::variant<act::grant, act::renew, act::campaign, act::release, act::watch,
                 act::start_nodeos, act::signal_nodeos, act::exit, act::note>
        what;
    std::string reason;
};

class failover {
public:
    explicit failover(policy p);

    std::vector<action> handle(fact_t const& f, time_point now);

    // When the core wants a fact::tick; time_point::max() when it waits only for facts.
    time_point next_wakeup() const { return wakeup_; }

    // Observers, for tests and status.
    enum class nodeos_phase { none, running, stopping };
    nodeos_phase nodeos() const { return child_.phase; }
    mode nodeos_mode() const { return child_.as; }
    bool holds_lock() const { return lock_.view == lock_view::mine && lease_.phase == lease_phase::live; }
    bool has_lease() const { return lease_.phase == lease_phase::live; }
    std::optional<time_point> lease_deadline() const;
    std::string const& holder() const { return lock_.holder; }
    bool shutting_down() const { return stops_ > 0; }
    // While nodeos may be producing: when the kernel must kill this monitor if it has not
    // renewed by then (the dead-man switch), half the SIGKILL reserve before the deadline.
    std::optional<time_point> deadman_at() const { return deadman_at_; }
    int crash_count() const { return crashes_; }

private:
    enum class lease_phase { none, granting, live, releasing };
    enum class lock_view { unknown, mine, theirs };

    struct lease_state {
        lease_phase phase = lease_phase::none;
        std::int64_t id = 0;
        duration ttl{};
        time_point deadline{};     // live: send time of the last acknowledged renewal + ttl
        time_point next_renew{};   // live: when the next keepalive is due
        time_point retry_at{};     // none: earliest next grant
        std::uint64_t request = 0; // grant, renew or release in flight
        int failures = 0;          // consecutive failed requests, for backoff
    };
    struct lock_state {
        lock_view view = lock_view::unknown;
        std::string holder;              // who holds it, when known
        std::uint64_t request = 0;       // campaign in flight
        time_point retry_at{};           // unknown: earliest next campaign
        std::optional<time_point> recheck_at;  // re-read the key and re-open the watch
        int failures = 0;
    };
    struct child_state {
        nodeos_phase phase = nodeos_phase::none;
        mode as = mode::standby;
        time_point since{};         // running: when it was started
        time_point stop_by{};       // stopping: the stop timeout ends; SIGKILL then at the latest
        bool killed = false;        // stopping: SIGKILL sent
        time_point killed_at{};     // stopping: when SIGKILL was sent
        bool overdue_reported = false;
        time_point start_at{};      // none: earliest (re)start
        time_point waiting_since{}; // none: since when it waits for the lock's verdict
    };

    void apply(fact::start const&, time_point now);
    void apply(fact::tick const&, time_point) {}
    void apply(fact::lease_granted const& f, time_point now);
    void apply(fact::lease_renewed const& f, time_point now);
    void apply(fact::lease_gone const& f, time_point now);
    void apply(fact::request_failed const& f, time_point now);
    void apply(fact::campaign_done const& f, time_point now);
    void apply(fact::released const& f, time_point now);
    void apply(fact::key_deleted const& f, time_point now);
    void apply(fact::key_written const& f, time_point now);
    void apply(fact::watch_ended const& f, time_point now);
    void apply(fact::nodeos_exited const& f, time_point now);
    void apply(fact::stop_requested const& f, time_point now);

    void reconcile(time_point now);
    void fence(time_point now);
    void shut_down(time_point now);
    void keep_lease(time_point now);
    void keep_lock(time_point now);
    void keep_nodeos(time_point now);
    void update_deadman();

    void drop_lease(time_point now, std::string const& why);
    void lose_lock(std::string const& why);
    void release_lease(std::string why);
    void adopt_lease(std::int64_t lease);
    void stop_nodeos(time_point now, std::string const& why, act::fence_cause cause = act::fence_cause::none);
    void kill_nodeos(time_point now, std::string const& why, act::fence_cause cause = act::fence_cause::none);
    time_point kill_time() const;
    bool may_campaign(time_point now) const;
    bool active_allowed(time_point now) const;
    std::optional<mode> verdict(time_point now) const;
    duration backoff(duration first, duration cap, int failures) const;
    bool due(time_point t, time_point now);
    std::uint64_t next_request() { return ++last_request_; }
    void emit(decltype(action::what) what, std::string reason);
    void note(level lvl, std::string text);

    policy policy_;
    lease_state lease_;
    lock_state lock_;
    child_state child_;
    int crashes_ = 0;                // quick exits of nodeos in a row
    time_point hold_off_until_{};    // no lease and no campaign before this
    bool etcd_failing_ = false;      // the last request to etcd failed
    int stops_ = 0;                  // SIGTERM/SIGINT received
    bool exited_ = false;
    std::uint64_t last_request_ = 0;
    time_point wakeup_ = time_point::max();
    std::optional<time_point> deadman_at_;
    bool deadline_missed_ = false;   // the lease deadline passed before this monitor ran again
    std::vector<action> out_;
};

}  // namespace nm

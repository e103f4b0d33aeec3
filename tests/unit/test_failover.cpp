// The failover core, driven step by step on a fake clock: every fact, every fault, every
// deadline. No sockets, no processes.
#define BOOST_TEST_MODULE failover
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <functional>
#include <random>
#include <sstream>

#include "failover.hpp"

using namespace nm;
using namespace std::chrono_literals;

namespace {

std::string describe(action const& a) {
    std::ostringstream out;
    std::visit(
        [&](auto const& w) {
            using T = std::decay_t<decltype(w)>;
            if constexpr (std::is_same_v<T, act::grant>) out << "grant";
            else if constexpr (std::is_same_v<T, act::renew>) out << "renew";
            else if constexpr (std::is_same_v<T, act::campaign>) out << "campaign";
            else if constexpr (std::is_same_v<T, act::release>) out << "release";
            else if constexpr (std::is_same_v<T, act::watch>) out << "watch " << w.from_revision;
            else if constexpr (std::is_same_v<T, act::start_nodeos>) out << "start " << name_of(w.as);
            else if constexpr (std::is_same_v<T, act::signal_nodeos>) out << "signal " << w.signal;
            else if constexpr (std::is_same_v<T, act::exit>) out << "exit " << w.code;
            else out << "note";
        },
        a.what);
    return out.str() + ": " + a.reason;
}

// A fake clock and a log of everything the core did, with helpers to answer its requests.
struct rig {
    policy p;
    failover core;
    time_point now = time_point{} + 1000s;
    std::vector<action> last;  // the actions of the latest step
    std::int64_t lease_id = 7;
    std::int64_t revision = 100;

    explicit rig(policy pol = policy::from(10s, 30s)) : p(pol), core(pol) {}

    std::vector<action> const& feed(fact_t const& f) {
        last = core.handle(f, now);
        return last;
    }

    // Moves the clock forward by d, delivering a tick at every wakeup on the way. With
    // healthy_etcd, keepalives and grants are answered at once as they are asked for.
    void advance(duration d, bool healthy_etcd = false) {
        auto target = now + d;
        std::vector<action> seen;
        while (core.next_wakeup() <= target) {
            now = std::max(now, core.next_wakeup());
            feed(fact::tick{});
            seen.insert(seen.end(), last.begin(), last.end());
            if (healthy_etcd) answer_lease_requests(seen);
        }
        now = target;
        last = seen;
    }

    // One wakeup of the core.
    void step(bool healthy_etcd = false) { advance(core.next_wakeup() - now, healthy_etcd); }

    // Steps from wakeup to wakeup, calling `each` after every one, until `done`; fails
    // with what was expected, rather than hanging, when that takes too many wakeups.
    void step_until(char const* what, std::function<bool()> const& done,
                    std::function<void()> const& each = {}, bool healthy_etcd = false) {
        for (int i = 0; !done(); ++i) {
            if (i == 1000) BOOST_FAIL(std::string("expected ") + what + " within 1000 wakeups; last step: " + listing());
            step(healthy_etcd);
            if (each) each();
        }
    }

    // Answers a keepalive of the latest step, if any, with a failure.
    void fail_renewals(char const* why) {
        if (auto k = find<act::renew>()) feed(fact::request_failed{k->request, why});
    }

    void answer_lease_requests(std::vector<action>& seen) {
        for (auto const& a : std::vector<action>(last)) {
            if (auto k = std::get_if<act::renew>(&a.what)) feed(fact::lease_renewed{k->request, p.ttl, now});
            if (auto g = std::get_if<act::grant>(&a.what)) feed(fact::lease_granted{g->request, ++lease_id, p.ttl, now});
            seen.insert(seen.end(), last.begin(), last.end());
        }
    }

    template <class A>
    A const* find() const {
        for (auto const& a : last)
            if (auto p = std::get_if<A>(&a.what)) return p;
        return nullptr;
    }

    template <class A>
    A const& expect(char const* what) const {
        auto p = find<A>();
        if (!p) BOOST_FAIL(std::string("expected ") + what + " in: " + listing());
        return *p;
    }

    template <class A>
    std::string reason_of() const {
        for (auto const& a : last)
            if (std::get_if<A>(&a.what)) return a.reason;
        return {};
    }

    std::string listing() const {
        std::string s = "[";
        for (auto const& a : last) s += "\n  " + describe(a);
        return s + "\n]";
    }

    bool started(mode m) const {
        auto s = find<act::start_nodeos>();
        return s && s->as == m;
    }

    act::signal_nodeos const* signal_sent(int sig) const {
        for (auto const& a : last)
            if (auto s = std::get_if<act::signal_nodeos>(&a.what); s && s->signal == sig) return s;
        return nullptr;
    }
    bool signalled(int sig) const { return signal_sent(sig) != nullptr; }

    // Happy path helpers.
    void grant_ok() {
        auto g = expect<act::grant>("a lease grant");
        feed(fact::lease_granted{g.request, lease_id, p.ttl, now});
    }
    void campaign_result(bool won, std::string who = "peer (x)", std::int64_t their_lease = 99) {
        auto c = expect<act::campaign>("a campaign");
        std::optional<holder_info> h;
        if (!won) h = holder_info{who, their_lease};
        feed(fact::campaign_done{c.request, won, ++revision, h});
    }

    void become_active() {
        feed(fact::start{});
        grant_ok();
        campaign_result(true);
        BOOST_REQUIRE_MESSAGE(started(mode::active), "expected an active start in: " + listing());
    }
    void become_standby() {
        feed(fact::start{});
        grant_ok();
        campaign_result(false);
        BOOST_REQUIRE_MESSAGE(started(mode::standby), "expected a standby start in: " + listing());
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(start_up)

BOOST_AUTO_TEST_CASE(waits_for_the_lock_verdict_then_starts_active) {
    rig r;
    r.feed(fact::start{});
    r.expect<act::grant>("a lease grant");
    BOOST_TEST(!r.find<act::start_nodeos>());  // no needless standby start
    r.grant_ok();
    r.expect<act::campaign>("a campaign right after the grant");
    r.campaign_result(true);
    BOOST_TEST(r.started(mode::active));
    BOOST_TEST(r.reason_of<act::start_nodeos>().find("holds the lock") != std::string::npos);
    BOOST_TEST(r.expect<act::watch>("a watch").from_revision == r.revision + 1);
    BOOST_TEST(r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(lost_campaign_starts_standby_and_names_the_holder) {
    rig r;
    r.become_standby();
    BOOST_TEST(r.reason_of<act::start_nodeos>().find("peer (x)") != std::string::npos);
    BOOST_TEST(r.expect<act::watch>("a watch").from_revision == r.revision + 1);
    BOOST_TEST(!r.core.holds_lock());
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(unreachable_etcd_starts_standby_at_once_and_keeps_trying) {
    rig r;
    r.feed(fact::start{});
    auto g = r.expect<act::grant>("a grant");
    r.feed(fact::request_failed{g.request, "connection refused"});
    BOOST_TEST(r.started(mode::standby));
    BOOST_TEST(r.reason_of<act::start_nodeos>().find("etcd cannot be reached") != std::string::npos);
    // Retries with growing delays, never giving up.
    duration previous{};
    for (int i = 0; i < 6; ++i) {
        auto before = r.now;
        r.step();
        auto& again = r.expect<act::grant>("a retried grant");
        BOOST_TEST((r.now - before >= previous));
        previous = r.now - before;
        r.feed(fact::request_failed{again.request, "connection refused"});
    }
    BOOST_TEST(previous <= r.p.retry_max);
    // etcd comes back: the standby takes the free lock and switches to active.
    r.step();
    r.grant_ok();
    r.campaign_result(true);
    r.expect<act::signal_nodeos>("a graceful stop of the standby");
    BOOST_TEST(r.signalled(SIGTERM));
    r.feed(fact::nodeos_exited{"exit code 0"});
    BOOST_TEST(r.started(mode::active));
}

BOOST_AUTO_TEST_CASE(silent_etcd_starts_standby_after_the_decision_window) {
    rig r;
    r.feed(fact::start{});
    r.expect<act::grant>("a grant");
    r.advance(r.p.decide_within - 1ms);
    BOOST_TEST(!r.find<act::start_nodeos>());
    r.advance(1ms);
    BOOST_TEST(r.started(mode::standby));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lease)

BOOST_AUTO_TEST_CASE(renews_every_third_of_the_ttl_with_deadline_from_send_time) {
    rig r;
    r.become_active();
    auto granted_at = r.now;
    BOOST_TEST((*r.core.lease_deadline() == granted_at + r.p.ttl));
    r.advance(r.p.ttl / 3 - 1ms);
    BOOST_TEST(!r.find<act::renew>());
    r.advance(1ms);
    auto sent = r.now;
    auto renew = r.expect<act::renew>("a keepalive at TTL/3");
    BOOST_TEST((renew.timeout <= r.p.renew_interval));
    // The answer arrives late: the deadline still counts from the send time.
    r.now += 2s;
    r.feed(fact::lease_renewed{renew.request, r.p.ttl, sent});
    BOOST_TEST((*r.core.lease_deadline() == sent + r.p.ttl));
    BOOST_TEST((*r.core.deadman_at() == sent + r.p.ttl - r.p.fence_kill / 2));
    BOOST_TEST((r.core.nodeos() == failover::nodeos_phase::running));
}

BOOST_AUTO_TEST_CASE(failed_keepalives_fence_the_producer_before_the_deadline) {
    rig r;
    r.become_active();
    auto deadline = *r.core.lease_deadline();
    bool termed = false, killed = false;
    time_point term_at{}, kill_at{};
    // Every keepalive fails from now on.
    while (r.now < deadline) {
        r.step();
        for (auto const& a : r.last) {
            if (auto k = std::get_if<act::renew>(&a.what)) {
                BOOST_TEST((r.now + k->timeout <= deadline + 50ms));
                r.feed(fact::request_failed{k->request, "timeout"});
            }
        }
        if (!termed && r.signalled(SIGTERM)) termed = true, term_at = r.now;
        if (!killed && r.signalled(SIGKILL)) killed = true, kill_at = r.now;
        if (killed) break;
    }
    BOOST_TEST_REQUIRE(termed);
    BOOST_TEST_REQUIRE(killed);
    BOOST_TEST((term_at == deadline - r.p.fence_graceful));
    BOOST_TEST((kill_at == deadline - r.p.fence_kill));
    BOOST_TEST((kill_at < deadline));
    // The reaped producer is not restarted as active while renewals still fail.
    r.feed(fact::nodeos_exited{"killed by signal 9"});
    BOOST_TEST(r.started(mode::standby));
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(graceful_fence_when_nodeos_stops_in_time) {
    rig r;
    r.become_active();
    auto deadline = *r.core.lease_deadline();
    r.step();
    r.feed(fact::request_failed{r.expect<act::renew>("a keepalive").request, "HTTP 503"});
    r.step_until("a SIGTERM", [&] { return r.signalled(SIGTERM); }, [&] { r.fail_renewals("HTTP 503"); });
    BOOST_TEST((r.now < deadline - r.p.fence_kill));
    r.feed(fact::nodeos_exited{"exit code 0"});
    BOOST_TEST(r.started(mode::standby));
}

BOOST_AUTO_TEST_CASE(lease_reported_gone_kills_at_once_and_regrants) {
    rig r;
    r.become_active();
    r.advance(r.p.renew_interval);
    r.feed(fact::lease_gone{r.expect<act::renew>("a keepalive").request});
    BOOST_TEST(r.signalled(SIGKILL));
    r.expect<act::grant>("a new lease");
    BOOST_TEST(!r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(answers_to_forgotten_requests_are_ignored) {
    rig r;
    r.become_active();
    auto before = *r.core.lease_deadline();
    r.feed(fact::lease_renewed{12345, r.p.ttl, r.now});
    r.feed(fact::lease_gone{12345});
    r.feed(fact::campaign_done{12345, false, 5, holder_info{"other", 1}});
    BOOST_TEST((*r.core.lease_deadline() == before));
    BOOST_TEST(r.core.holds_lock());
    BOOST_TEST(!r.signalled(SIGKILL));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lock)

BOOST_AUTO_TEST_CASE(key_deleted_under_the_producer_kills_it_at_once) {
    rig r;
    r.become_active();
    r.feed(fact::key_deleted{200});
    BOOST_TEST(r.signalled(SIGKILL));
    // The lease is still live: campaign again at once, but start nothing until the old
    // producer is reaped.
    r.campaign_result(false);
    BOOST_TEST(!r.find<act::start_nodeos>());
    r.feed(fact::nodeos_exited{"killed by signal 9"});
    BOOST_TEST(r.started(mode::standby));
}

BOOST_AUTO_TEST_CASE(key_taken_by_another_kills_at_once) {
    rig r;
    r.become_active();
    r.feed(fact::key_written{201, holder_info{"intruder", 55}});
    BOOST_TEST(r.signalled(SIGKILL));
    BOOST_TEST(r.core.holder() == "intruder");
}

BOOST_AUTO_TEST_CASE(standby_campaigns_the_moment_the_key_is_deleted) {
    rig r;
    r.become_standby();
    r.feed(fact::key_deleted{300});
    r.expect<act::campaign>("an immediate campaign");
    r.campaign_result(true);
    r.expect<act::signal_nodeos>("a graceful stop of the validator");
    BOOST_TEST(r.signalled(SIGTERM));
    BOOST_TEST(!r.find<act::start_nodeos>());
    r.feed(fact::nodeos_exited{"exit code 0"});
    BOOST_TEST(r.started(mode::active));
}

BOOST_AUTO_TEST_CASE(watch_end_rereads_the_key_and_keeps_the_producer) {
    rig r;
    r.become_active();
    r.feed(fact::watch_ended{"connection reset"});
    BOOST_TEST(!r.signalled(SIGKILL));
    r.advance(r.p.retry_min);
    auto c = r.expect<act::campaign>("a re-read of the key");
    r.feed(fact::campaign_done{c.request, false, 400, holder_info{"me", r.lease_id}});
    BOOST_TEST(r.core.holds_lock());
    BOOST_TEST(r.expect<act::watch>("a new watch").from_revision == 401);
    BOOST_TEST(!r.signalled(SIGKILL));
}

BOOST_AUTO_TEST_CASE(surviving_lease_of_this_monitor_is_adopted_not_handed_over) {
    rig r;
    r.become_active();
    auto old_lease = r.lease_id;
    // etcd is out of reach past the deadline: fenced, then the lease is presumed expired.
    r.step_until("the lease presumed expired", [&] { return !r.core.has_lease(); }, [&] {
        r.fail_renewals("connection refused");
        if (r.signalled(SIGKILL)) r.feed(fact::nodeos_exited{"killed by signal 9"});
    });
    // etcd is back with the old lease intact: a new lease, whose campaign finds the old one.
    r.step_until("a new grant", [&] { return r.find<act::grant>() != nullptr; });
    auto g = r.expect<act::grant>("a new grant");
    r.feed(fact::lease_granted{g.request, 70, r.p.ttl, r.now});
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::campaign_done{c.request, false, 900, holder_info{"me", old_lease, true}});
    auto k = r.expect<act::renew>("a renewal of the surviving lease");
    BOOST_TEST(k.lease == old_lease);
    BOOST_TEST(r.expect<act::release>("the new lease given back").lease == 70);
    BOOST_TEST(!r.core.holds_lock());  // not before the renewal proves it alive
    auto sent = r.now;
    r.now += 5ms;
    r.feed(fact::lease_renewed{k.request, r.p.ttl, sent});
    BOOST_TEST((*r.core.lease_deadline() == sent + r.p.ttl));
    r.feed(fact::campaign_done{r.expect<act::campaign>("a campaign").request, false, 901,
                               holder_info{"me", old_lease, true}});
    BOOST_TEST(r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(adopted_lease_found_dead_is_replaced) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::campaign_done{c.request, false, 5, holder_info{"me", 3, true}});
    r.feed(fact::lease_gone{r.expect<act::renew>("a renewal of the old lease").request});
    r.expect<act::grant>("a fresh grant");
}

BOOST_AUTO_TEST_CASE(failed_campaign_is_retried) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::request_failed{c.request, "timeout"});
    BOOST_TEST(r.started(mode::standby));
    r.advance(r.p.retry_min);
    r.expect<act::campaign>("a retried campaign");
}

BOOST_AUTO_TEST_CASE(campaign_with_a_dead_lease_regrants) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    r.feed(fact::lease_gone{r.expect<act::campaign>("a campaign").request});
    r.expect<act::grant>("a new grant");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(supervision)

BOOST_AUTO_TEST_CASE(active_crash_releases_then_produces_again_within_a_second) {
    rig r;
    r.become_active();
    auto crashed_at = r.now;
    r.feed(fact::nodeos_exited{"killed by signal 11"});
    auto rel = r.expect<act::release>("a release of the lock");
    BOOST_TEST(!r.find<act::start_nodeos>());
    r.feed(fact::released{rel.request});
    r.advance(r.p.restart_min);
    r.grant_ok();
    r.campaign_result(true);
    BOOST_TEST(r.started(mode::active));  // no standby start in between
    BOOST_TEST((r.now - crashed_at < 1s));
}

BOOST_AUTO_TEST_CASE(active_crash_with_a_faster_peer_restarts_as_standby) {
    rig r;
    r.become_active();
    r.feed(fact::nodeos_exited{"exit code 1"});
    r.feed(fact::released{r.expect<act::release>("a release").request});
    r.advance(r.p.restart_min);
    r.grant_ok();
    r.campaign_result(false, "peer");
    BOOST_TEST(r.started(mode::standby));
}

BOOST_AUTO_TEST_CASE(crash_loop_stops_campaigning_until_stable) {
    rig r;
    r.become_active();
    // Crash, release, come back active, crash again...
    for (int i = 0; i < r.p.crash_loop; ++i) {
        r.feed(fact::nodeos_exited{"exit code 1"});
        if (auto rel = r.find<act::release>()) r.feed(fact::released{rel->request});
        r.step();
        if (r.find<act::grant>()) {
            r.grant_ok();
            if (r.find<act::campaign>()) r.campaign_result(true);
        }
        r.advance(r.p.decide_within);
        BOOST_TEST_REQUIRE((r.core.nodeos() == failover::nodeos_phase::running));
    }
    BOOST_TEST(r.core.crash_count() == r.p.crash_loop);
    BOOST_TEST((r.core.nodeos_mode() == mode::standby));
    // A standby in a crash loop never campaigns, even when the key is deleted.
    r.feed(fact::key_deleted{500});
    BOOST_TEST(!r.find<act::campaign>());
    r.advance(r.p.stable_period - r.p.decide_within - 1s, true);  // it started decide_within ago
    BOOST_TEST(!r.find<act::campaign>());
    // Stable for a whole period: a candidate again.
    r.advance(1s, true);
    r.expect<act::campaign>("a campaign once nodeos has run stably");
    BOOST_TEST(r.core.crash_count() == 0);
}

BOOST_AUTO_TEST_CASE(standby_exit_restarts_with_growing_backoff) {
    rig r;
    r.become_standby();
    duration last{};
    for (int i = 0; i < 4; ++i) {
        auto exited = r.now;
        r.feed(fact::nodeos_exited{"exit code 1"});
        BOOST_TEST(!r.find<act::release>());
        r.step_until("a restart", [&] { return r.find<act::start_nodeos>() != nullptr; }, {}, true);
        BOOST_TEST(r.started(mode::standby));
        BOOST_TEST((r.now - exited > last));
        last = r.now - exited;
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shutdown)

BOOST_AUTO_TEST_CASE(stops_nodeos_then_releases_then_exits_zero) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    BOOST_TEST(r.signalled(SIGTERM));
    BOOST_TEST(!r.find<act::release>());  // not before nodeos is gone
    r.advance(1s);
    r.feed(fact::nodeos_exited{"exit code 0"});
    BOOST_TEST(!r.find<act::start_nodeos>());
    auto rel = r.expect<act::release>("a release");
    BOOST_TEST((rel.timeout == r.p.release_timeout));
    r.feed(fact::released{rel.request});
    BOOST_TEST(r.expect<act::exit>("an exit").code == 0);
}

BOOST_AUTO_TEST_CASE(stuck_nodeos_is_killed_after_the_stop_timeout) {
    rig r(policy::from(10s, 3s));
    r.become_standby();
    r.feed(fact::stop_requested{"SIGINT"});
    BOOST_TEST(r.signalled(SIGTERM));
    r.advance(3s - 1ms);
    BOOST_TEST(!r.signalled(SIGKILL));
    r.advance(1ms);
    BOOST_TEST(r.signalled(SIGKILL));
}

BOOST_AUTO_TEST_CASE(stopping_producer_keeps_its_lease_renewed) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    r.advance(r.p.stop_timeout - 1ms, true);
    BOOST_TEST(!r.signalled(SIGKILL));  // a slow graceful stop is fine while the lock is ours
    r.advance(1ms, true);
    BOOST_TEST(r.signalled(SIGKILL));
}

BOOST_AUTO_TEST_CASE(release_failure_still_exits) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    r.feed(fact::nodeos_exited{"exit code 0"});
    r.feed(fact::request_failed{r.expect<act::release>("a release").request, "timeout"});
    BOOST_TEST(r.expect<act::exit>("an exit").code == 0);
}

BOOST_AUTO_TEST_CASE(own_release_is_not_reported_as_a_lost_lock) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    r.feed(fact::nodeos_exited{"exit code 0"});
    auto release = r.expect<act::release>("a release");
    r.feed(fact::key_deleted{600});  // the watch sees our own revoke
    auto after_delete = r.last;
    r.feed(fact::released{release.request});
    BOOST_TEST(r.expect<act::exit>("an exit after the release").code == 0);
    after_delete.insert(after_delete.end(), r.last.begin(), r.last.end());
    for (auto const& a : after_delete) BOOST_TEST(a.reason.find("lost") == std::string::npos, a.reason);
}

BOOST_AUTO_TEST_CASE(nodeos_surviving_sigkill_is_reported) {
    rig r;
    r.become_active();
    r.feed(fact::key_deleted{700});
    BOOST_TEST(r.signalled(SIGKILL));
    r.advance(r.p.reap_overdue);
    bool reported = false;
    for (auto const& a : r.last) {
        auto n = std::get_if<act::note>(&a.what);
        if (n && n->lvl == level::error && a.reason.find("uninterruptible") != std::string::npos) reported = true;
    }
    BOOST_TEST(reported, "expected an error about a nodeos that survives SIGKILL in: " << r.listing());
}

BOOST_AUTO_TEST_CASE(second_signal_kills_and_exits_at_once) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    r.feed(fact::stop_requested{"SIGTERM"});
    BOOST_TEST(r.signalled(SIGKILL));
    BOOST_TEST(r.expect<act::exit>("an exit").code != 0);
    BOOST_TEST(r.feed(fact::tick{}).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// Random faults at random moments against a model of etcd and nodeos: whatever happens,
// a producer is never alive once the server could have expired its lease.
BOOST_AUTO_TEST_CASE(random_faults_never_leave_a_producer_past_the_lease_deadline) {
    long producer_checks = 0;  // how often a live producer was checked, over every seed
    for (unsigned seed = 1; seed <= 300; ++seed) {
        std::mt19937 rng(seed);
        auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
        policy p = policy::from(seconds(2 + seed % 9), seconds(1 + seed % 5));
        failover core(p);
        time_point now = time_point{} + 1000s;

        struct pending { std::variant<act::grant, act::renew, act::campaign, act::release> what; time_point sent; };
        std::vector<pending> requests;
        bool alive = false, active = false, termed = false;
        time_point server_expiry{};  // the earliest moment etcd could expire our current lease
        std::int64_t lease = 0, next_lease = 1;
        std::vector<action> out;
        bool exited = false;

        auto run = [&](fact_t const& f) {
            out = core.handle(f, now);
            for (auto const& a : out) {
                if (auto s = std::get_if<act::start_nodeos>(&a.what)) {
                    BOOST_REQUIRE_MESSAGE(!alive, "seed " << seed << ": start while nodeos runs");
                    alive = true, active = s->as == mode::active, termed = false;
                    if (active) BOOST_REQUIRE_MESSAGE(core.holds_lock(), "seed " << seed << ": active without the lock");
                } else if (auto g = std::get_if<act::signal_nodeos>(&a.what)) {
                    if (g->signal == SIGKILL) alive = false;  // the model reaps it below
                    if (g->signal == SIGTERM) termed = true;
                } else if (auto r = std::get_if<act::grant>(&a.what)) {
                    requests.push_back({*r, now});
                } else if (auto k = std::get_if<act::renew>(&a.what)) {
                    requests.push_back({*k, now});
                } else if (auto c = std::get_if<act::campaign>(&a.what)) {
                    requests.push_back({*c, now});
                } else if (auto l = std::get_if<act::release>(&a.what)) {
                    requests.push_back({*l, now});
                } else if (std::get_if<act::exit>(&a.what)) {
                    exited = true;
                }
            }
        };
        // Safety: a live producer's lease has not expired on the server.
        auto check = [&](int step) {
            if (alive && active) {
                ++producer_checks;
                BOOST_REQUIRE_MESSAGE(now < server_expiry, "seed " << seed << " step " << step
                                                                   << ": producer alive past the lease expiry");
            }
        };
        run(fact::start{});
        for (int step = 0; step < 400 && !exited; ++step) {
            check(step);
            int pick = static_cast<int>(rng() % 100);
            if (pick < 40 && !requests.empty()) {
                auto i = rng() % requests.size();
                auto req = requests[i];
                requests.erase(requests.begin() + static_cast<long>(i));
                bool ok = chance(70);
                std::visit(
                    [&](auto const& r) {
                        using T = std::decay_t<decltype(r)>;
                        if (!ok) return run(fact::request_failed{r.request, "fault"});
                        if constexpr (std::is_same_v<T, act::grant>) {
                            lease = next_lease++;
                            server_expiry = req.sent + p.ttl;
                            run(fact::lease_granted{r.request, lease, p.ttl, req.sent});
                        } else if constexpr (std::is_same_v<T, act::renew>) {
                            if (r.lease != lease || now >= server_expiry) return run(fact::lease_gone{r.request});
                            // etcd handled it at some instant after it was sent.
                            server_expiry = std::max(server_expiry, req.sent + p.ttl);
                            run(fact::lease_renewed{r.request, p.ttl, req.sent});
                        } else if constexpr (std::is_same_v<T, act::campaign>) {
                            if (r.lease != lease || now >= server_expiry) return run(fact::lease_gone{r.request});
                            bool won = chance(50);
                            run(fact::campaign_done{r.request, won, step, won ? std::nullopt
                                                                              : std::optional<holder_info>{{"peer", 999}}});
                        } else {
                            if (r.lease == lease) lease = 0, server_expiry = now;
                            run(fact::released{r.request});
                        }
                    },
                    req.what);
            } else if (pick < 75) {
                auto target = now + milliseconds(rng() % 1500);
                while (core.next_wakeup() <= target && !exited) {
                    now = std::max(now, core.next_wakeup());
                    check(step);
                    run(fact::tick{});
                }
                now = target;
            } else if (pick < 82 && !alive && core.nodeos() != failover::nodeos_phase::none) {
                run(fact::nodeos_exited{"killed by signal 9"});
            } else if (pick < 86 && alive && (termed || chance(10))) {
                alive = false;
                run(fact::nodeos_exited{"exit code 0"});
            } else if (pick < 90) {
                run(fact::key_deleted{step});
            } else if (pick < 93) {
                run(fact::key_written{step, holder_info{"peer", 999}});
            } else if (pick < 96) {
                run(fact::watch_ended{"reset"});
            } else if (pick < 97) {
                run(fact::stop_requested{"SIGTERM"});
            }
        }
    }
    BOOST_TEST(producer_checks > 1000, "the model must reach an active producer often; it did "
                                           << producer_checks << " times");
}

// Why each signal to nodeos was sent, for the fences_total metric.
BOOST_AUTO_TEST_SUITE(fence_causes)

namespace {
std::optional<act::fence_cause> cause_of(rig const& r, int sig) {
    auto const* s = r.signal_sent(sig);
    return s ? std::optional(s->cause) : std::nullopt;
}
}  // namespace

BOOST_AUTO_TEST_CASE(failed_renewals_fence_for_the_deadline) {
    rig r;
    r.become_active();
    std::optional<act::fence_cause> term, kill;
    r.step_until("a SIGKILL", [&] { return kill.has_value(); }, [&] {
        r.fail_renewals("timeout");
        if (!term) term = cause_of(r, SIGTERM);
        kill = cause_of(r, SIGKILL);
    });
    BOOST_TEST((term == act::fence_cause::deadline));
    BOOST_TEST((kill == act::fence_cause::deadline));
}

BOOST_AUTO_TEST_CASE(a_lost_lock_fences_for_the_lock) {
    rig r;
    r.become_active();
    r.feed(fact::key_deleted{200});
    BOOST_TEST((cause_of(r, SIGKILL) == act::fence_cause::lost_lock));
}

BOOST_AUTO_TEST_CASE(waking_past_the_deadline_fences_as_frozen) {
    rig r;
    r.become_active();
    r.now = *r.core.lease_deadline() + 100ms;  // the loop did not run for a whole TTL
    r.feed(fact::tick{});
    BOOST_TEST((cause_of(r, SIGKILL) == act::fence_cause::frozen));
}

BOOST_AUTO_TEST_CASE(ordinary_stops_are_not_fences) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    BOOST_TEST((cause_of(r, SIGTERM) == act::fence_cause::none));
    rig s;
    s.become_standby();
    s.feed(fact::key_deleted{300});
    s.campaign_result(true);
    BOOST_TEST((cause_of(s, SIGTERM) == act::fence_cause::none), "a standby switching to active");
}

BOOST_AUTO_TEST_SUITE_END()

// The failover core through whole stories, step by step on a fake clock: start-up,
// failover, crash loops, shutdown, and random faults against a model of etcd and nodeos.
// (test_failover_table.cpp checks each row of the transition table on its own.)
#define BOOST_TEST_MODULE failover
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include "core/switchover.hpp"
#include "core_rig.hpp"

using namespace nm;
using namespace nm::test;

BOOST_AUTO_TEST_SUITE(start_up)

BOOST_AUTO_TEST_CASE(waits_for_the_lock_verdict_then_starts_active) {
    rig r;
    r.feed(fact::start{});
    r.expect<act::grant>("a lease grant");
    BOOST_TEST(!r.find<act::start_nodeos>());  // no needless standby start
    auto g = r.expect<act::grant>("a lease grant");
    r.feed(fact::lease_granted{g.request, r.lease_id, r.p.ttl, r.now});
    r.read_result();  // the group's keys first: the lock is free
    BOOST_TEST(r.expect<act::watch>("a watch after the read").from_revision == r.revision + 1);
    r.expect<act::campaign>("a campaign right after the read");
    r.campaign_result(true);
    BOOST_TEST(r.started(mode::active));
    BOOST_TEST((r.cause_of<act::start_nodeos>() == cause::holds_lock));
    BOOST_TEST(r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(lost_campaign_starts_standby_and_names_the_holder) {
    rig r;
    r.become_standby();
    BOOST_TEST((r.cause_of<act::start_nodeos>() == cause::lock_held_elsewhere));
    BOOST_TEST(r.core.holder() == "peer (x)");
    BOOST_TEST(r.expect<act::watch>("a watch").from_revision == r.revision + 1);
    BOOST_TEST(!r.core.holds_lock());
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(unreachable_etcd_starts_standby_at_once_and_keeps_trying) {
    rig r;
    r.feed(fact::start{});
    auto g = r.expect<act::grant>("a grant");
    r.feed(fact::request_failed{g.request, failure::unavailable, "connection refused"});
    BOOST_TEST(r.started(mode::standby));
    BOOST_TEST((r.cause_of<act::start_nodeos>() == cause::etcd_unreachable));
    // Retries with delays that double until the cap, and never give up.
    duration previous{};
    for (int i = 0; i < 8; ++i) {
        auto before = r.now;
        r.step();
        auto& again = r.expect<act::grant>("a retried grant");
        auto delay = r.now - before;
        BOOST_TEST((delay == std::min<duration>(previous * 2, r.p.retry_max) || (i == 0 && delay == r.p.retry_min)),
                   "retry " << i << " after " << in_ms({delay}) << "ms; the one before after " << in_ms({previous}));
        previous = delay;
        r.feed(fact::request_failed{again.request, failure::unavailable, "connection refused"});
    }
    BOOST_TEST((previous == r.p.retry_max));
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
    r.feed(fact::keepalive_answered{renew.request, r.p.ttl, sent});
    BOOST_TEST((*r.core.lease_deadline() == sent + r.p.ttl));
    BOOST_TEST((*r.core.deadman_at() == sent + r.p.ttl - r.p.fence_kill / 2));
    BOOST_TEST((r.state().nodeos.phase == nodeos_phase::running));
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
                r.feed(fact::request_failed{k->request, failure::timed_out, "timeout"});
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
    // The reaped producer is not restarted while the lease may yet be renewed (N13), nor
    // as active while renewals still fail: a validator once the deadline has passed.
    r.feed(fact::nodeos_exited{"killed by signal 9"});
    BOOST_TEST(!r.find<act::start_nodeos>());
    BOOST_TEST(!r.core.deadman_at().has_value());
    r.step_until("a validator", [&] { return r.started(mode::standby); }, [&] { r.fail_renewals("timeout"); });
    BOOST_TEST((r.now == deadline));
}

BOOST_AUTO_TEST_CASE(lease_reported_gone_kills_at_once_and_regrants) {
    rig r;
    r.become_active();
    r.advance(r.p.renew_interval);
    r.feed(fact::keepalive_answered{r.expect<act::renew>("a keepalive").request, std::nullopt, r.now});
    BOOST_TEST(r.signalled(SIGKILL));
    r.expect<act::grant>("a new lease");
    BOOST_TEST(!r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(answers_to_forgotten_requests_are_ignored) {
    rig r;
    r.become_active();
    auto before = *r.core.lease_deadline();
    r.feed(fact::keepalive_answered{12345, r.p.ttl, r.now});
    r.feed(fact::keepalive_answered{12345, std::nullopt, r.now});
    r.feed(fact::request_failed{12345, failure::not_found, "requested lease not found"});
    r.feed(fact::campaign_answered{12345, false, 5, lock_holder{"other", "y", 1, {}}});
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
    r.feed(fact::key_written{201, lock_holder{"intruder", {}, 55, {}}});
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
    auto c = r.expect<act::read_group>("a re-read of the key");
    r.feed(fact::group_read{c.request, 400, lock_holder{"me", "inst-me", r.lease_id, {}}, {}});
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
    // Its renewal after the deadline (L8) goes unanswered too; etcd is then back with the old
    // lease intact: a new lease, whose campaign finds the old one.
    BOOST_TEST(r.expect<act::renew>("a renewal after the deadline").lease == old_lease);
    r.fail_renewals("connection refused");
    r.step_until("a new grant", [&] { return r.find<act::grant>() != nullptr; });
    auto g = r.expect<act::grant>("a new grant");
    r.feed(fact::lease_granted{g.request, 70, r.p.ttl, r.now});
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::campaign_answered{c.request, false, 900, lock_holder{"me", "inst-me", old_lease, {}}});
    auto k = r.expect<act::renew>("a renewal of the surviving lease");
    BOOST_TEST(k.lease == old_lease);
    BOOST_TEST(r.expect<act::release>("the new lease given back").lease == 70);
    BOOST_TEST(!r.core.holds_lock());  // not before the renewal proves it alive
    auto sent = r.now;
    r.now += 5ms;
    r.feed(fact::keepalive_answered{k.request, r.p.ttl, sent});
    BOOST_TEST((*r.core.lease_deadline() == sent + r.p.ttl));
    r.feed(fact::campaign_answered{r.expect<act::campaign>("a campaign").request, false, 901,
                               lock_holder{"me", "inst-me", old_lease, {}}});
    BOOST_TEST(r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(lease_alive_past_the_deadline_is_renewed_not_replaced) {
    rig r;
    r.become_active();
    auto const old_lease = r.lease_id;
    r.step_until("the lease presumed expired", [&] { return !r.core.has_lease(); }, [&] {
        r.fail_renewals("timeout");
        if (r.signalled(SIGKILL)) r.feed(fact::nodeos_exited{"killed by signal 9"});
    });
    // etcd answers again, the lease still alive (it counts from the last keepalive it
    // handled): renewed, the lock still ours, and not a write to etcd on the way.
    auto const k = r.expect<act::renew>("a renewal after the deadline");
    BOOST_TEST(k.lease == old_lease);
    BOOST_TEST(!r.find<act::grant>());
    auto const sent = r.now;
    r.now += 5ms;
    r.feed(fact::keepalive_answered{k.request, r.p.ttl, sent});
    BOOST_TEST((*r.core.lease_deadline() == sent + r.p.ttl));
    BOOST_TEST(!r.find<act::release>());
    // The campaign finds the key under this lease (K2).
    r.feed(fact::campaign_answered{r.expect<act::campaign>("a campaign").request, false, 902,
                                   lock_holder{"me", "inst-me", old_lease, {}}});
    BOOST_TEST(r.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(adopted_lease_found_dead_is_replaced) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::campaign_answered{c.request, false, 5, lock_holder{"me", "inst-me", 3, {}}});
    r.feed(fact::keepalive_answered{r.expect<act::renew>("a renewal of the old lease").request, std::nullopt, r.now});
    r.expect<act::grant>("a fresh grant");
}

BOOST_AUTO_TEST_CASE(failed_campaign_is_retried) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    auto c = r.expect<act::campaign>("a campaign");
    r.feed(fact::request_failed{c.request, failure::timed_out, "timeout"});
    BOOST_TEST(r.started(mode::standby));
    r.advance(r.p.retry_min);
    r.expect<act::campaign>("a retried campaign");
}

BOOST_AUTO_TEST_CASE(campaign_with_a_dead_lease_regrants) {
    rig r;
    r.feed(fact::start{});
    r.grant_ok();
    r.feed(fact::request_failed{r.expect<act::campaign>("a campaign").request, failure::not_found, "requested lease not found"});
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
    r.feed(fact::revoke_answered{rel.request});
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
    r.feed(fact::revoke_answered{r.expect<act::release>("a release").request});
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
        if (auto rel = r.find<act::release>()) r.feed(fact::revoke_answered{rel->request});
        r.step();
        if (r.find<act::grant>()) {
            r.grant_ok();
            if (r.find<act::campaign>()) r.campaign_result(true);
        }
        r.advance(r.p.decide_within);
        BOOST_TEST_REQUIRE((r.state().nodeos.phase == nodeos_phase::running));
    }
    BOOST_TEST(r.state().nodeos.crashes == r.p.crash_loop);
    BOOST_TEST((r.state().nodeos.as == mode::standby));
    // A standby in a crash loop never campaigns, even when the key is deleted.
    r.feed(fact::key_deleted{500});
    BOOST_TEST(!r.find<act::campaign>());
    r.advance(r.p.stable_period - r.p.decide_within - 1s, true);  // it started decide_within ago
    BOOST_TEST(!r.find<act::campaign>());
    // Stable for a whole period: a candidate again.
    r.advance(1s, true);
    r.expect<act::campaign>("a campaign once nodeos has run stably");
    BOOST_TEST(r.state().nodeos.crashes == 0);
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
    r.feed(fact::revoke_answered{rel.request});
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
    r.feed(fact::request_failed{r.expect<act::release>("a release").request, failure::timed_out, "timeout"});
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
    r.feed(fact::revoke_answered{release.request});
    BOOST_TEST(r.expect<act::exit>("an exit after the release").code == 0);
    after_delete.insert(after_delete.end(), r.last.begin(), r.last.end());
    for (auto const& a : after_delete) {
        BOOST_TEST((a.why != cause::lease_lost && a.why != cause::fence_lost_lock), describe(a));
        BOOST_TEST(a.text.find("lost") == std::string::npos, describe(a));
    }
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

// Random faults at random moments against a model of etcd (leases that expire on the
// server, the lock key, a peer, leader changes that extend every lease, answers lost after
// the request took effect) and of nodeos (crashes, slow stops, a dirty database, its API:
// health answers fresh or lagging, pauses that let one more block through, answers lost
// after the call took effect), in both standby modes: whatever happens, nodeos signs
// blocks only while the server's lock key is held by a live lease of this very monitor.
BOOST_AUTO_TEST_CASE(random_faults_never_leave_a_producer_without_the_lock_on_the_server) {
    long producer_checks = 0;  // how often a signing nodeos was checked, over every seed
    long adoptions = 0;        // how often the core adopted its own earlier lease (K5)
    long paused_checks = 0;    // ... of them in paused mode
    for (unsigned seed = 1; seed <= 600; ++seed) {
        std::mt19937 rng(seed);
        auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
        bool const paused_mode = seed % 2 == 0;
        policy p = policy::from(policy::settings{.ttl = seconds(2 + seed % 9),
                                                 .stop_timeout = seconds(1 + seed % 5),
                                                 .standby = paused_mode ? standby_mode::paused : standby_mode::restart,
                                                 .health_gated = seed % 4 == 1,
                                                 .dirty_recovery = seed % 3 == 0,
                                                 .block_interval = milliseconds(paused_mode ? 200 : 500)});
        failover core(p, me);
        time_point now = time_point{} + 1000s;

        // The server: live leases and when they expire; the key and its holder.
        std::map<std::int64_t, time_point> leases;
        std::optional<lock_holder> key;
        std::int64_t next_lease = 1;
        lock_holder const peer{"peer", "x", 0, {}};
        group_control control;  // the control keys, as an operator set them
        auto expire = [&] {
            std::erase_if(leases, [&](auto const& l) { return l.second <= now; });
            if (key && !leases.contains(key->lease)) key.reset();
        };

        // nodeos: alive, with which config; in paused mode whether it produces, and until
        // when the block in progress at a pause may still be signed.
        bool alive = false, active = false, termed = false, producing = false, exited = false;
        time_point drain_until{};
        std::int64_t head = 100;
        int incarnation = 0;  // an API call reaches only the nodeos process it was sent to
        auto signing = [&] {
            if (!alive) return false;
            return paused_mode ? producing || now < drain_until : active;
        };

        struct pending {
            std::variant<act::grant, act::renew, act::campaign, act::read_group, act::release, act::check_health,
                         act::set_production, act::publish>
                what;
            time_point sent;
            int incarnation = 0;
        };
        std::vector<pending> requests;
        std::vector<action> out;

        auto run = [&](fact_t const& f) {
            out = core.handle(f, now);
            for (auto const& a : out) {
                if (a.why == cause::own_lease_survives && std::holds_alternative<act::renew>(a.what)) ++adoptions;
                if (auto s = std::get_if<act::start_nodeos>(&a.what)) {
                    BOOST_REQUIRE_MESSAGE(!alive, "seed " << seed << ": start while nodeos runs");
                    BOOST_REQUIRE_MESSAGE(s->paused == paused_mode, "seed " << seed << ": a start ignores the mode");
                    alive = true, active = s->as == mode::active, termed = false, producing = false, ++incarnation;
                    drain_until = {};  // a new process: the old one's last block is its own
                } else if (auto g = std::get_if<act::signal_nodeos>(&a.what)) {
                    if (g->signal == SIGKILL) alive = false, producing = false, drain_until = {};  // reaped below
                    if (g->signal == SIGTERM) termed = true;
                } else if (auto r = std::get_if<act::grant>(&a.what)) {
                    requests.push_back({*r, now});
                } else if (auto k = std::get_if<act::renew>(&a.what)) {
                    requests.push_back({*k, now});
                } else if (auto c = std::get_if<act::campaign>(&a.what)) {
                    requests.push_back({*c, now});
                } else if (auto rg = std::get_if<act::read_group>(&a.what)) {
                    requests.push_back({*rg, now});
                } else if (auto l = std::get_if<act::release>(&a.what)) {
                    requests.push_back({*l, now});
                } else if (auto h = std::get_if<act::check_health>(&a.what)) {
                    requests.push_back({*h, now, incarnation});
                } else if (auto sp = std::get_if<act::set_production>(&a.what)) {
                    requests.push_back({*sp, now, incarnation});
                } else if (auto pb = std::get_if<act::publish>(&a.what)) {
                    requests.push_back({*pb, now});
                } else if (std::get_if<act::exit>(&a.what)) {
                    exited = true;
                }
            }
        };
        // Safety: while nodeos may sign, the server's lock is this monitor's.
        auto check = [&](int step) {
            expire();
            if (signing()) {
                ++producer_checks;
                if (paused_mode) ++paused_checks;
                BOOST_REQUIRE_MESSAGE(key && key->instance == me.instance,
                                      "seed " << seed << " step " << step << ": nodeos signs while the server's lock is "
                                              << (key ? "held by " + key->node : std::string("free")));
            }
        };
        // The server, or nodeos, carries out a request; the answer may then be lost.
        auto serve = [&](pending const& req, bool answer) {
            std::visit(
                [&](auto const& r) {
                    using T = std::decay_t<decltype(r)>;
                    // Handled somewhere between the send and now.
                    auto handled = req.sent + (now - req.sent) * static_cast<int>(rng() % 101) / 100;
                    if constexpr (std::is_same_v<T, act::grant>) {
                        auto id = next_lease++;
                        leases[id] = handled + p.ttl;
                        if (answer) run(fact::lease_granted{r.request, id, p.ttl, req.sent});
                    } else if constexpr (std::is_same_v<T, act::renew>) {
                        if (!leases.contains(r.lease)) {
                            if (!answer) return;
                            return chance(50) ? run(fact::keepalive_answered{r.request, std::nullopt, now})
                                              : run(fact::request_failed{r.request, failure::not_found, "lease not found"});
                        }
                        leases[r.lease] = std::max(leases[r.lease], handled + p.ttl);
                        if (answer) run(fact::keepalive_answered{r.request, p.ttl, req.sent});
                    } else if constexpr (std::is_same_v<T, act::campaign>) {
                        if (!leases.contains(r.lease)) {
                            if (answer) run(fact::request_failed{r.request, failure::not_found, "lease not found"});
                            return;
                        }
                        bool won = !key;
                        if (won) key = lock_holder{me.node, me.instance, r.lease, {}};
                        if (answer) run(fact::campaign_answered{r.request, won, now.time_since_epoch().count(),
                                                                won ? std::nullopt : key});
                    } else if constexpr (std::is_same_v<T, act::release>) {
                        leases.erase(r.lease);
                        if (key && key->lease == r.lease) key.reset();
                        if (answer) run(fact::revoke_answered{r.request});
                    } else if constexpr (std::is_same_v<T, act::read_group>) {
                        if (answer) run(fact::group_read{r.request, now.time_since_epoch().count(), key, control});
                    } else if constexpr (std::is_same_v<T, act::publish>) {
                        if (!leases.contains(r.lease)) {
                            if (answer) run(fact::request_failed{r.request, failure::not_found, "lease not found"});
                            return;
                        }
                        if (answer) run(fact::published{r.request});
                    } else if constexpr (std::is_same_v<T, act::check_health>) {
                        if (!alive || req.incarnation != incarnation) {
                            if (answer) run(fact::request_failed{r.request, failure::unavailable, "connection refused"});
                            return;
                        }
                        if (chance(70)) ++head;
                        if (answer) run(fact::health_answered{r.request, head, chance(80) ? 300ms : 20s});
                    } else {
                        if (!alive || req.incarnation != incarnation) {
                            if (answer) run(fact::request_failed{r.request, failure::unavailable, "connection refused"});
                            return;
                        }
                        if (r.paused && producing) producing = false, drain_until = handled + p.block_interval;
                        if (!r.paused) producing = true;
                        if (answer) run(fact::production_answered{r.request, !producing});
                    }
                },
                req.what);
        };

        run(fact::start{});
        for (int step = 0; step < 400 && !exited; ++step) {
            check(step);
            int pick = static_cast<int>(rng() % 100);
            if (pick < 40 && !requests.empty()) {
                auto i = rng() % requests.size();
                auto req = requests[i];
                requests.erase(requests.begin() + static_cast<long>(i));
                if (chance(70)) {
                    serve(req, true);
                } else {
                    if (chance(50)) serve(req, false);  // done, the answer lost
                    std::visit([&](auto const& r) { run(fact::request_failed{r.request, failure::timed_out, "fault"}); },
                               req.what);
                }
            } else if (pick < 72) {
                auto target = now + milliseconds(rng() % 1500);
                while (core.next_wakeup() <= target && !exited) {
                    now = std::max(now, core.next_wakeup());
                    check(step);
                    run(fact::tick{});
                }
                now = target;
                auto had = key;
                expire();
                if (had && !key && chance(50)) run(fact::key_deleted{step});  // the watch saw the expiry
            } else if (pick < 79 && !alive && core.state().nodeos.phase != nodeos_phase::down) {
                run(fact::nodeos_exited{"killed by signal 9"});
            } else if (pick < 83 && alive && (termed || chance(10))) {
                alive = false, producing = false, drain_until = {};
                if (!termed && chance(30)) {
                    run(fact::nodeos_exited{"exit code 2", 2, true});  // a dirty database, at its start
                } else {
                    run(fact::nodeos_exited{"exit code 0", 0});
                }
            } else if (pick < 86) {
                key.reset();  // an operator deletes the key
                run(fact::key_deleted{step});
            } else if (pick < 89 && !key) {
                auto id = next_lease++;  // a peer takes the free lock
                leases[id] = now + p.ttl;
                key = peer;
                key->lease = id;
                run(fact::key_written{step, *key});
            } else if (pick < 92) {
                for (auto& l : leases) l.second = std::max(l.second, now + p.ttl);  // a new etcd leader
            } else if (pick < 95) {
                run(fact::watch_ended{"reset"});
            } else if (pick < 96) {
                // An operator: clears everything, or pauses, or asks for a switchover to the
                // peer (ready or not) or to this node.
                control = {};
                if (chance(50)) {
                    control.group_paused = chance(30);
                    control.node_paused = chance(10);
                    if (chance(50)) control.switchover_to = chance(70) ? "peer" : me.node;
                    control.switchover_target_ready = chance(70);
                }
                run(fact::control_changed{control});
            } else if (pick < 97) {
                run(fact::stop_requested{"SIGTERM"});
            }
        }
    }
    BOOST_TEST_MESSAGE("signing checks: " << producer_checks << " (" << paused_checks << " in paused mode), adoptions: "
                                          << adoptions);
    BOOST_TEST(producer_checks > 1000, "the model must reach a signing nodeos often; it did " << producer_checks
                                                                                             << " times");
    BOOST_TEST(paused_checks > 500, "... in paused mode too; it did " << paused_checks << " times");
    BOOST_TEST(adoptions > 10, "the model must make the core adopt its own surviving lease; it did " << adoptions
                                                                                                     << " times");
}

// Why each signal to nodeos was sent, for the fences_total metric, through whole stories
// (the fences' own causes are asserted by rows F1 to F5).
BOOST_AUTO_TEST_SUITE(fence_causes)

BOOST_AUTO_TEST_CASE(ordinary_stops_are_not_fences) {
    rig r;
    r.become_active();
    r.feed(fact::stop_requested{"SIGTERM"});
    BOOST_TEST((fence_of(*r.cause_of<act::signal_nodeos>()) == fence_kind::none));
    rig s;
    s.become_standby();
    s.feed(fact::key_deleted{300});
    s.campaign_result(true);
    BOOST_TEST((s.cause_of<act::signal_nodeos>() == cause::promote), "a standby switching to active");
    BOOST_TEST((fence_of(cause::promote) == fence_kind::none));
}

BOOST_AUTO_TEST_SUITE_END()

// One rule for the switchover's target, for the monitor that hands over and the command.
BOOST_AUTO_TEST_CASE(a_switchover_target_is_a_standby_candidate_nobody_paused) {
    BOOST_TEST((switchover_readiness({"standby", "candidate"}) == switchover_verdict::ready));
    BOOST_TEST((switchover_readiness({"standby", "nodeos_lagging"}) == switchover_verdict::not_candidate));
    BOOST_TEST((switchover_readiness({"active", "candidate"}) == switchover_verdict::not_standby));
    BOOST_TEST((switchover_readiness({"starting", "candidate"}) == switchover_verdict::not_standby));
    BOOST_TEST((switchover_readiness({"standby", "candidate", true}) == switchover_verdict::paused),
               "paused by its key, before its record says so");
    BOOST_TEST((switchover_readiness({"standby", "node_paused"}) == switchover_verdict::paused));
}

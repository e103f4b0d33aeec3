// The transition table of src/core/failover.hpp, one test per row, named after it: each
// builds the core in the row's state, gives it the row's fact, and asserts the exact
// commands with their causes, the changes of phase, and the state that results.
// tests/unit/table_mirror.py checks that every row has its test and every test its row.
#define BOOST_TEST_MODULE failover_table
#include "core_rig.hpp"

using namespace nm;
using namespace nm::test;

namespace {

lock_holder peer(std::int64_t lease = 99) { return lock_holder{"peer", "x", lease, {}}; }

}  // namespace

// ---- lease ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(L1_no_lease_asks_for_one_unless_held_off_or_stopping) {
    rig r(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::tick{});
    r.expect_commands({{"grant", cause::no_lease}});
    r.expect_change(lease_phase::none, lease_phase::granting, cause::no_lease);

    auto held = in_state{}.nodeos(nodeos_phase::running, mode::standby);
    held.s.hold_off_until = held.now + 1s;
    rig h(held);
    h.feed(fact::tick{});
    h.expect_commands({});
    BOOST_TEST((h.core.next_wakeup() == held.now + 1s));

    rig s(in_state{}.nodeos(nodeos_phase::stopping, mode::standby).stopping());
    s.feed(fact::tick{});
    BOOST_TEST(!s.find<act::grant>());
}

BOOST_AUTO_TEST_CASE(L2_granted_lease_is_live_from_its_send_time) {
    rig r(in_state{}.lease_in_flight(lease_phase::granting, 11, 0).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::lease_granted{12, 8, 10s, r.now});  // an answer to another request
    BOOST_TEST((r.state().lease.phase == lease_phase::granting));
    auto sent = r.now - 300ms;
    r.feed(fact::lease_granted{11, 8, 10s, sent});
    r.expect_change(lease_phase::granting, lease_phase::live, cause::lease_granted);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
    BOOST_TEST((r.state().lease.next_renew == sent + r.p.renew_interval));
    BOOST_TEST(r.state().lease.id == 8);
}

BOOST_AUTO_TEST_CASE(L3_failed_grant_retries_with_doubling_delays) {
    rig r(in_state{}.lease_in_flight(lease_phase::granting, 11, 0).nodeos(nodeos_phase::running, mode::standby));
    std::vector<duration> delays;
    for (int i = 0; i < 7; ++i) {
        auto g = i == 0 ? std::uint64_t{11} : r.expect<act::grant>("a retried grant").request;
        r.feed(fact::request_failed{g, failure::unavailable, "connection refused"});
        r.expect_change(lease_phase::granting, lease_phase::none, cause::grant_failed);
        r.expect_commands({});
        auto failed_at = r.now;
        r.tick_at(r.core.next_wakeup());
        delays.push_back(r.now - failed_at);
    }
    std::vector<duration> const want{100ms, 200ms, 400ms, 800ms, 1600ms, 2s, 2s};
    BOOST_TEST((delays == want), "got " + in_ms(delays));

    // Adopting an earlier lease that cannot be reached: the same.
    rig a(in_state{}.lease_in_flight(lease_phase::adopting, 11, 5).nodeos(nodeos_phase::running, mode::standby));
    a.feed(fact::request_failed{11, failure::timed_out, "timeout"});
    a.expect_change(lease_phase::adopting, lease_phase::none, cause::grant_failed);
}

BOOST_AUTO_TEST_CASE(L4_keepalive_every_third_of_the_ttl_timing_out_by_the_deadline) {
    auto st = in_state{}.producer();
    rig r(st);
    BOOST_TEST((r.core.next_wakeup() == time_point::max()));  // not woken yet: a built core
    r.tick_at(st.s.lease.next_renew - 1ms);
    r.expect_commands({});
    r.tick_at(st.s.lease.next_renew);
    r.expect_commands({{"renew 7", cause::keepalive_due}});
    BOOST_TEST((r.expect<act::renew>("a keepalive").timeout == r.p.renew_interval));

    // Late in the lease, the keepalive may wait only until the deadline.
    rig late(in_state{}.lease_live(2s).lock(lock_view::theirs, "peer").nodeos(nodeos_phase::running, mode::standby));
    late.feed(fact::tick{});
    BOOST_TEST((late.expect<act::renew>("a keepalive").timeout == 2s));
}

BOOST_AUTO_TEST_CASE(L5_renewal_moves_the_deadline_from_the_send_time) {
    auto st = in_state{}.producer().renewing(12);
    st.s.lease.deadline = st.now + 5s;
    rig r(st);
    auto sent = r.now - 1s;
    r.now += 2s;  // the answer arrives late
    r.feed(fact::keepalive_answered{12, 10s, sent});
    r.expect_commands({});
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
    BOOST_TEST((r.state().lease.next_renew == sent + r.p.renew_interval));
    BOOST_TEST((*r.core.deadman_at() == sent + 10s - r.p.fence_kill / 2));
    // An older answer never pulls the deadline back.
    r.feed(fact::keepalive_answered{12, 10s, sent - 5s});
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
}

BOOST_AUTO_TEST_CASE(L6_failed_keepalive_retries_within_the_renew_interval) {
    rig r(in_state{}.producer().renewing(12));
    std::vector<duration> delays;
    for (int i = 0; i < 7; ++i) {
        auto k = i == 0 ? std::uint64_t{12} : r.expect<act::renew>("a retried keepalive").request;
        auto failed_at = r.now;
        r.feed(fact::request_failed{k, failure::timed_out, "timeout"});
        r.expect_commands({});
        BOOST_TEST((r.cause_of<act::note>() == cause::keepalive_failed));
        delays.push_back(r.state().lease.next_renew - failed_at);
        r.tick_at(r.state().lease.next_renew);
    }
    std::vector<duration> const want{100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, r.p.renew_interval};
    BOOST_TEST((delays == want), "got " + in_ms(delays));
}

BOOST_AUTO_TEST_CASE(L7_lease_gone_kills_the_producer_and_asks_for_a_new_lease) {
    rig r(in_state{}.producer().renewing(12));
    r.feed(fact::keepalive_answered{12, std::nullopt, r.now});
    r.expect_change(lease_phase::live, lease_phase::none, cause::lease_gone);
    r.expect_commands({{"grant", cause::no_lease}, {"SIGKILL", cause::fence_lost_lock}});

    rig nf(in_state{}.producer().renewing(12));
    nf.feed(fact::request_failed{12, failure::not_found, "requested lease not found"});
    nf.expect_change(lease_phase::live, lease_phase::none, cause::lease_gone);
    nf.expect_commands({{"grant", cause::no_lease}, {"SIGKILL", cause::fence_lost_lock}});
    BOOST_TEST(!nf.state().etcd_failing);  // etcd answered

    rig c(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    c.feed(fact::request_failed{21, failure::not_found, "requested lease not found"});
    c.expect_change(lease_phase::live, lease_phase::none, cause::lease_gone);
    c.expect_commands({{"grant", cause::no_lease}});

    rig a(in_state{}.lease_in_flight(lease_phase::adopting, 11, 5).nodeos(nodeos_phase::running, mode::standby));
    a.feed(fact::keepalive_answered{11, std::nullopt, a.now});
    a.expect_change(lease_phase::adopting, lease_phase::none, cause::lease_gone);
    a.expect_commands({{"grant", cause::no_lease}});
}

BOOST_AUTO_TEST_CASE(L8_deadline_passed_drops_the_lease) {
    auto st = in_state{}.validator().renewing(12);
    rig r(st);
    r.tick_at(st.s.lease.deadline - 1ns);
    BOOST_TEST((r.state().lease.phase == lease_phase::live));
    r.tick_at(st.s.lease.deadline);
    r.expect_change(lease_phase::live, lease_phase::none, cause::deadline_passed);
    r.expect_commands({{"grant", cause::no_lease}});
    r.feed(fact::keepalive_answered{12, 10s, st.now});  // too late: forgotten
    BOOST_TEST((r.state().lease.phase == lease_phase::granting));
}

BOOST_AUTO_TEST_CASE(L9_adopted_lease_is_live_once_renewed) {
    rig r(in_state{}.lease_in_flight(lease_phase::adopting, 11, 5).nodeos(nodeos_phase::running, mode::standby));
    auto sent = r.now - 20ms;
    r.feed(fact::keepalive_answered{11, 10s, sent});
    r.expect_change(lease_phase::adopting, lease_phase::live, cause::lease_adopted);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
    BOOST_TEST(r.state().lease.id == 5);
}

BOOST_AUTO_TEST_CASE(L10_lease_released_on_a_crash_or_at_shutdown) {
    rig crash(in_state{}.producer());
    crash.feed(fact::nodeos_exited{"killed by signal 11"});
    crash.expect_commands({{"release 7", cause::crash_handover}});
    crash.expect_change(lease_phase::live, lease_phase::releasing, cause::crash_handover);

    rig stop(in_state{}.lease_live().lock(lock_view::mine).nodeos_down().stopping());
    stop.feed(fact::tick{});
    stop.expect_commands({{"release 7", cause::shutdown}});
    BOOST_TEST((stop.expect<act::release>("a release").timeout == stop.p.release_timeout));
}

BOOST_AUTO_TEST_CASE(L11_released_or_already_gone) {
    auto st = in_state{}.lease_in_flight(lease_phase::releasing, 13).nodeos_down(in_state{}.now + 1s);
    st.s.hold_off_until = st.now + 1s;
    rig r(st);
    r.feed(fact::revoke_answered{13});
    r.expect_change(lease_phase::releasing, lease_phase::none, cause::released);
    r.expect_commands({});
    rig gone(st);
    gone.feed(fact::request_failed{13, failure::not_found, "requested lease not found"});
    gone.expect_change(lease_phase::releasing, lease_phase::none, cause::released);
    BOOST_TEST(!gone.state().etcd_failing);
}

BOOST_AUTO_TEST_CASE(L12_failed_release_lets_the_lease_expire) {
    auto st = in_state{}.lease_in_flight(lease_phase::releasing, 13).nodeos_down(in_state{}.now + 1s);
    st.s.hold_off_until = st.now + 1s;
    rig r(st);
    r.feed(fact::request_failed{13, failure::timed_out, "timeout"});
    r.expect_change(lease_phase::releasing, lease_phase::none, cause::release_failed);
    r.expect_commands({});
}

// ---- lock ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(K1_campaign_when_the_lock_may_be_free_and_this_node_is_a_candidate) {
    rig r(in_state{}.lease_live().nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::tick{});
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    BOOST_TEST(r.state().lock.request != 0u);
    r.feed(fact::tick{});
    r.expect_commands({});  // one campaign at a time

    rig sick(in_state{}.lease_live().nodeos(nodeos_phase::running, mode::standby).crashes(3));
    sick.feed(fact::tick{});
    sick.expect_commands({});
}

BOOST_AUTO_TEST_CASE(K2_won_campaign_takes_the_lock) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::campaign_answered{21, true, 500, std::nullopt});
    r.expect_change(lock_view::unknown, lock_view::mine, cause::lock_acquired);
    r.expect_commands({{"watch 501", cause::watch_key}, {"SIGTERM", cause::promote}});
    BOOST_TEST(r.core.holds_lock());

    // Held under this node's own lease (a re-read): the same.
    rig again(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    again.feed(fact::campaign_answered{21, false, 500, lock_holder{"me", "inst-me", 7, {}}});
    again.expect_change(lock_view::unknown, lock_view::mine, cause::lock_acquired);
}

BOOST_AUTO_TEST_CASE(K3_lost_campaign_names_the_holder) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::campaign_answered{21, false, 500, peer()});
    r.expect_change(lock_view::unknown, lock_view::theirs, cause::lock_held_by_other);
    r.expect_commands({{"watch 501", cause::watch_key}});
    BOOST_TEST(r.core.holder() == "peer (x)");
    // A foreign value names its holder by itself.
    rig go(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    go.feed(fact::campaign_answered{21, false, 500, lock_holder{{}, {}, 99, "nodeos-bp2"}});
    BOOST_TEST(go.core.holder() == "nodeos-bp2");
}

BOOST_AUTO_TEST_CASE(K4_reread_finding_another_holder_kills_the_producer) {
    rig r(in_state{}.producer().campaigning(21));
    r.feed(fact::campaign_answered{21, false, 500, peer()});
    r.expect_change(lock_view::mine, lock_view::theirs, cause::lock_taken);
    r.expect_commands({{"watch 501", cause::watch_key}, {"SIGKILL", cause::fence_lost_lock}});
}

BOOST_AUTO_TEST_CASE(K5_own_earlier_lease_is_adopted) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::campaign_answered{21, false, 500, lock_holder{"me", "inst-me", 5, {}}});
    r.expect_commands({{"release 7", cause::own_lease_survives}, {"renew 5", cause::own_lease_survives}});
    r.expect_change(lease_phase::live, lease_phase::adopting, cause::own_lease_survives);
    BOOST_TEST(!r.core.holds_lock());  // not before the renewal proves it alive (L9)
    // Another process of the same node (another instance) is just another holder.
    rig other(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    other.feed(fact::campaign_answered{21, false, 500, lock_holder{"me", "inst-old", 5, {}}});
    other.expect_change(lock_view::unknown, lock_view::theirs, cause::lock_held_by_other);
}

BOOST_AUTO_TEST_CASE(K6_key_vanished_between_compare_and_read) {
    rig r(in_state{}.validator().campaigning(21));
    r.feed(fact::campaign_answered{21, false, 500, std::nullopt});
    r.expect_change(lock_view::theirs, lock_view::unknown, cause::key_vanished);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
}

BOOST_AUTO_TEST_CASE(K7_failed_campaign_is_retried_after_a_backoff) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::request_failed{21, failure::unavailable, "HTTP 503"});
    r.expect_commands({});
    BOOST_TEST((r.cause_of<act::note>() == cause::campaign_failed));
    BOOST_TEST(r.state().etcd_failing);
    r.tick_at(r.now + 100ms - 1ns);
    r.expect_commands({});
    r.tick_at(r.now + 1ns);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    r.feed(fact::request_failed{r.state().lock.request, failure::timed_out, "timeout"});
    BOOST_TEST((r.state().lock.retry_at == r.now + 200ms));
}

BOOST_AUTO_TEST_CASE(K8_key_deleted_under_the_producer_kills_it_and_campaigns) {
    rig r(in_state{}.producer());
    r.feed(fact::key_deleted{600});
    r.expect_change(lock_view::mine, lock_view::unknown, cause::key_deleted);
    r.expect_commands({{"campaign", cause::lock_may_be_free}, {"SIGKILL", cause::fence_lost_lock}});
}

BOOST_AUTO_TEST_CASE(K9_key_deleted_frees_the_lock_for_a_standby) {
    rig r(in_state{}.validator());
    r.feed(fact::key_deleted{600});
    r.expect_change(lock_view::theirs, lock_view::unknown, cause::key_deleted);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
}

BOOST_AUTO_TEST_CASE(K10_key_taken_under_the_producer_kills_it) {
    rig r(in_state{}.producer());
    r.feed(fact::key_written{601, lock_holder{"me", "inst-me", 7, {}}});  // its own write
    r.expect_commands({});
    r.feed(fact::key_written{602, peer(55)});
    r.expect_change(lock_view::mine, lock_view::theirs, cause::lock_taken);
    r.expect_commands({{"SIGKILL", cause::fence_lost_lock}});
    BOOST_TEST(r.core.holder() == "peer (x)");
}

BOOST_AUTO_TEST_CASE(K11_key_written_by_another_names_the_holder) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::key_written{601, peer()});
    r.expect_change(lock_view::unknown, lock_view::theirs, cause::lock_held_by_other);
    r.expect_commands({});
}

BOOST_AUTO_TEST_CASE(K12_reread_when_due_for_the_holder_or_a_candidate) {
    auto st = in_state{}.producer().watch(watch_phase::broken, in_state{}.now);
    rig r(st);
    r.feed(fact::tick{});
    r.expect_commands({{"campaign", cause::reread_key}});

    rig v(in_state{}.validator().watch(watch_phase::broken, in_state{}.now));
    v.feed(fact::tick{});
    v.expect_commands({{"campaign", cause::reread_key}});

    rig sick(in_state{}.validator().watch(watch_phase::broken, in_state{}.now).crashes(3));
    sick.feed(fact::tick{});
    sick.expect_commands({});
}

BOOST_AUTO_TEST_CASE(K13_lost_lease_takes_the_lock_with_it) {
    rig r(in_state{}.producer().renewing(12));
    r.feed(fact::request_failed{12, failure::not_found, "requested lease not found"});
    r.expect_change(lock_view::mine, lock_view::unknown, cause::lease_lost);
    BOOST_TEST(!r.core.holds_lock());
    BOOST_TEST(r.signalled(SIGKILL));
}

// ---- watch ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(W1_every_read_of_the_key_opens_a_watch_after_it) {
    rig r(in_state{}.lease_live().campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::campaign_answered{21, false, 700, peer()});
    BOOST_TEST(r.expect<act::watch>("a watch").from_revision == 701);
    r.expect_change(watch_phase::idle, watch_phase::open, cause::watch_key);
    BOOST_TEST((r.state().watch.opened_at == r.now));
}

BOOST_AUTO_TEST_CASE(W2_dying_watches_back_off_to_one_read_per_renew_interval) {
    rig r(in_state{}.producer());
    auto const cap = r.p.watch_retry_max;
    std::vector<duration> waits;
    for (int i = 0; i < 8; ++i) {
        r.advance(50ms, /*healthy_etcd=*/true);  // each watch dies 50 ms after it opened
        r.feed(fact::watch_ended{"read watch: end of stream"});
        if (i == 0) r.expect_change(watch_phase::open, watch_phase::broken, cause::watch_ended);
        r.expect_commands({});
        auto ended = r.now;
        // Keepalives go on meanwhile (answered at once); the next read waits for its time.
        r.advance(r.state().watch.reread_at - r.now, /*healthy_etcd=*/true);
        BOOST_TEST_REQUIRE((r.cause_of<act::campaign>() == cause::reread_key), r.listing());
        BOOST_TEST(!r.signalled(SIGKILL));
        waits.push_back(r.now - ended);
        r.feed(fact::campaign_answered{r.state().lock.request, false, 800 + i, lock_holder{"me", "inst-me", r.state().lease.id, {}}});
        r.expect_commands({{"watch " + std::to_string(801 + i), cause::watch_key}});
    }
    std::vector<duration> const want{100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, cap, cap};
    BOOST_TEST((waits == want), "got " + in_ms(waits));
    // A watch that lasted the whole interval starts the doubling again.
    r.advance(cap, /*healthy_etcd=*/true);
    r.feed(fact::watch_ended{"read watch: connection reset"});
    BOOST_TEST((r.state().watch.reread_at == r.now + 100ms));
    BOOST_TEST(!r.signalled(SIGKILL));  // the producer keeps producing throughout
}

BOOST_AUTO_TEST_CASE(W3_etcd_answering_again_rereads_the_key_at_once) {
    rig r(in_state{}.producer().renewing(12).etcd_failing());
    r.feed(fact::keepalive_answered{12, 10s, r.now});
    r.expect_change(watch_phase::open, watch_phase::broken, cause::etcd_answers_again);
    r.expect_commands({{"campaign", cause::reread_key}});
    BOOST_TEST(!r.state().etcd_failing);
}

// ---- nodeos --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(N1_holding_the_lock_starts_the_producer) {
    rig r(in_state{}.lease_live().lock(lock_view::mine).nodeos_down());
    r.feed(fact::tick{});
    r.expect_commands({{"start active", cause::holds_lock}});
    r.expect_change(role::starting, role::active, cause::holds_lock);
    BOOST_TEST((r.expect<act::start_nodeos>("a start").kind == start_kind::first));
    BOOST_TEST(r.core.deadman_at().has_value());
    // Not with the fence moments away.
    rig late(in_state{}.lease_live(3s).lock(lock_view::mine).nodeos_down());
    late.feed(fact::tick{});
    BOOST_TEST(!late.started(mode::active));
}

BOOST_AUTO_TEST_CASE(N2_lock_held_elsewhere_starts_a_validator) {
    rig r(in_state{}.lease_live().lock(lock_view::theirs, "peer (x)").nodeos_down());
    r.feed(fact::tick{});
    r.expect_commands({{"start standby", cause::lock_held_elsewhere}});
    r.expect_change(role::starting, role::standby, cause::lock_held_elsewhere);
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(N3_not_a_candidate_runs_a_validator) {
    rig r(in_state{}.lease_live().nodeos_down().crashes(3));
    r.feed(fact::tick{});
    r.expect_commands({{"start standby", cause::not_a_candidate}});
}

BOOST_AUTO_TEST_CASE(N4_unreachable_etcd_runs_a_validator_at_once) {
    rig r(in_state{}.nodeos_down().etcd_failing());
    r.feed(fact::tick{});
    r.expect_commands({{"grant", cause::no_lease}, {"start standby", cause::etcd_unreachable}});
}

BOOST_AUTO_TEST_CASE(N5_no_verdict_within_the_decision_window_runs_a_validator) {
    auto st = in_state{}.lease_in_flight(lease_phase::granting, 11, 0).nodeos_down();
    rig r(st);
    r.tick_at(st.now + r.p.decide_within - 1ns);
    r.expect_commands({});
    r.tick_at(st.now + r.p.decide_within);
    r.expect_commands({{"start standby", cause::no_verdict_yet}});
}

BOOST_AUTO_TEST_CASE(N6_validator_on_a_node_that_took_the_lock_is_stopped_to_promote) {
    rig r(in_state{}.lease_live().lock(lock_view::mine).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::tick{});
    r.expect_commands({{"SIGTERM", cause::promote}});
    r.expect_change(nodeos_phase::running, nodeos_phase::stopping, cause::promote);
    BOOST_TEST((r.state().nodeos.stop_by == r.now + r.p.stop_timeout));
}

BOOST_AUTO_TEST_CASE(N7_nodeos_stopped_as_asked_starts_again_at_once) {
    rig r(in_state{}.lease_live().lock(lock_view::mine).nodeos(nodeos_phase::stopping, mode::standby));
    r.feed(fact::nodeos_exited{"exit code 0"});
    r.expect_change(nodeos_phase::stopping, nodeos_phase::down, cause::exited_as_asked);
    r.expect_commands({{"start active", cause::holds_lock}});
    BOOST_TEST((r.expect<act::start_nodeos>("a start").kind == start_kind::promote));
    BOOST_TEST(r.state().nodeos.crashes == 0);
}

BOOST_AUTO_TEST_CASE(N8_nodeos_exiting_on_its_own_restarts_after_a_growing_backoff) {
    rig r(in_state{}.validator());
    std::vector<duration> delays;
    for (int i = 0; i < 4; ++i) {
        r.feed(fact::nodeos_exited{"exit code 1"});
        r.expect_change(nodeos_phase::running, nodeos_phase::down, cause::crashed);
        r.expect_commands({});
        auto exited = r.now;
        r.tick_at(r.state().nodeos.start_at);
        delays.push_back(r.now - exited);
        BOOST_TEST_REQUIRE(r.started(mode::standby));
        BOOST_TEST((r.expect<act::start_nodeos>("a start").kind == start_kind::crash));
    }
    std::vector<duration> const want{500ms, 1s, 2s, 4s};
    BOOST_TEST((delays == want), "got " + in_ms(delays));
    BOOST_TEST(r.state().nodeos.crashes == 4);
    BOOST_TEST((r.cause_of<act::start_nodeos>() == cause::lock_held_elsewhere));

    rig f(in_state{}.validator());
    f.feed(fact::nodeos_start_failed{"exec /opt/eosio/bin/nodeos: No such file or directory"});
    f.expect_change(nodeos_phase::running, nodeos_phase::down, cause::start_failed);
}

BOOST_AUTO_TEST_CASE(N9_producer_exiting_on_its_own_hands_the_lock_over) {
    rig r(in_state{}.producer());
    r.feed(fact::nodeos_exited{"killed by signal 11 (SEGV)"});
    r.expect_commands({{"release 7", cause::crash_handover}});
    r.expect_change(role::active, role::standby, cause::crashed);
    r.expect_change(lock_view::mine, lock_view::unknown, cause::crash_handover);
    BOOST_TEST((r.state().hold_off_until == r.state().nodeos.start_at));
    r.feed(fact::revoke_answered{r.expect<act::release>("a release").request});
    r.expect_commands({});  // neither a grant nor a start before the restart time
    r.tick_at(r.state().nodeos.start_at);
    r.expect_commands({{"grant", cause::no_lease}});
}

BOOST_AUTO_TEST_CASE(N10_a_stable_run_clears_the_crash_history) {
    auto st = in_state{}.validator().crashes(2);
    st.s.nodeos.since = st.now - 29s;
    rig r(st);
    r.tick_at(st.now + 1s - 1ns);
    BOOST_TEST(r.state().nodeos.crashes == 2);
    r.tick_at(st.now + 1s);
    BOOST_TEST((r.cause_of<act::note>() == cause::crash_history_cleared));
    BOOST_TEST(r.state().nodeos.crashes == 0);
}

BOOST_AUTO_TEST_CASE(N11_graceful_stop_past_the_stop_timeout_is_a_kill) {
    auto st = in_state{}.ttl(100s).validator().renewing(12).nodeos(nodeos_phase::stopping, mode::standby);
    rig r(st);
    r.tick_at(st.s.nodeos.stop_by - 1ns);
    r.expect_commands({});
    r.tick_at(st.s.nodeos.stop_by);
    r.expect_commands({{"SIGKILL", cause::stop_timeout}});
    r.expect_change(nodeos_phase::stopping, nodeos_phase::killed, cause::stop_timeout);
}

BOOST_AUTO_TEST_CASE(N12_nodeos_surviving_sigkill_is_reported) {
    auto st = in_state{}.validator().nodeos(nodeos_phase::killed, mode::standby);
    rig r(st);
    r.tick_at(st.now + r.p.reap_overdue);
    BOOST_TEST((r.cause_of<act::note>() == cause::stuck_after_kill));
    BOOST_TEST((r.last.back().lvl == level::error));
    r.tick_at(r.now + 1s);
    BOOST_TEST(!r.cause_of<act::note>());  // once
}

// ---- fence ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(F1_producer_without_the_lock_is_killed_at_once) {
    rig r(in_state{}.producer().lock(lock_view::unknown));
    r.feed(fact::tick{});
    r.expect_commands({{"campaign", cause::lock_may_be_free}, {"SIGKILL", cause::fence_lost_lock}});
    r.expect_change(role::active, role::standby, cause::fence_lost_lock);

    // The loop ran only after the deadline: this monitor was frozen.
    auto st = in_state{}.producer().renewing(12);
    rig late(st);
    late.tick_at(st.s.lease.deadline + 100ms);
    late.expect_commands({{"grant", cause::no_lease}, {"SIGKILL", cause::fence_frozen}});
}

BOOST_AUTO_TEST_CASE(F2_producer_not_renewed_is_stopped_gracefully_before_the_deadline) {
    auto st = in_state{}.producer().renewing(12);
    rig r(st);
    auto at = st.s.lease.deadline - r.p.fence_graceful;
    r.tick_at(at - 1ns);
    r.expect_commands({});
    r.tick_at(at);
    r.expect_commands({{"SIGTERM", cause::fence_deadline}});
    r.expect_change(role::active, role::standby, cause::fence_deadline);
}

BOOST_AUTO_TEST_CASE(F3_producer_still_stopping_is_killed_with_the_reserve_left) {
    auto st = in_state{}.producer().renewing(12).nodeos(nodeos_phase::stopping, mode::active);
    rig r(st);
    auto at = st.s.lease.deadline - r.p.fence_kill;
    r.tick_at(at - 1ns);
    r.expect_commands({});
    r.tick_at(at);
    r.expect_commands({{"SIGKILL", cause::fence_deadline}});
    BOOST_TEST((at < st.s.lease.deadline));
}

// ---- shutdown ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(S1_first_stop_signal_stops_nodeos_and_keeps_renewing) {
    auto st = in_state{}.producer();
    rig r(st);
    r.feed(fact::stop_requested{"SIGTERM"});
    r.expect_change(role::active, role::stopping, cause::stop_requested);
    r.expect_commands({{"SIGTERM", cause::shutdown}});
    r.tick_at(st.s.lease.next_renew);
    r.expect_commands({{"renew 7", cause::keepalive_due}});
}

BOOST_AUTO_TEST_CASE(S2_stopped_nodeos_releases_the_lock) {
    rig r(in_state{}.producer().nodeos(nodeos_phase::stopping, mode::active).stopping());
    r.feed(fact::nodeos_exited{"exit code 0"});
    r.expect_commands({{"release 7", cause::shutdown}});
    BOOST_TEST(!r.find<act::start_nodeos>());
    for (auto const& a : r.last) BOOST_TEST(a.text.find("lost") == std::string::npos, a.text);
}

BOOST_AUTO_TEST_CASE(S3_second_stop_signal_kills_and_exits_at_once) {
    rig r(in_state{}.producer().nodeos(nodeos_phase::stopping, mode::active).stopping());
    r.feed(fact::stop_requested{"SIGINT"});
    r.expect_commands({{"SIGKILL", cause::second_stop}, {"exit 1", cause::second_stop}});
    BOOST_TEST(r.feed(fact::tick{}).empty());
}

BOOST_AUTO_TEST_CASE(S4_exit_zero_once_the_lease_is_gone) {
    rig r(in_state{}.lease_in_flight(lease_phase::releasing, 13).nodeos_down().stopping());
    r.feed(fact::revoke_answered{13});
    r.expect_commands({{"exit 0", cause::stopped}});
    rig failed(in_state{}.lease_in_flight(lease_phase::releasing, 13).nodeos_down().stopping());
    failed.feed(fact::request_failed{13, failure::timed_out, "timeout"});
    failed.expect_commands({{"exit 0", cause::stopped}});
}

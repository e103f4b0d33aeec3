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

// The grant of the latest step, or else of the next wakeup (of now, for a core never woken).
act::grant next_grant(rig& r, char const* what) {
    if (r.last.empty()) r.feed(fact::tick{});
    if (!r.find<act::grant>()) r.tick_at(r.core.next_wakeup());
    return r.expect<act::grant>(what);
}

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
    // The group's keys are read (and then watched) under a first lease; the record written.
    r.expect_commands({{"read group", cause::reread_key}, {"publish 8", cause::member_changed}});
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
    BOOST_TEST((r.state().lease.next_renew == sent + r.p.renew_interval));
    BOOST_TEST(r.state().lease.id == 8);

    // A TTL longer than asked for (etcd's minimum, or a lie) never postpones the deadline.
    BOOST_REQUIRE((r.p.ttl == 10s));
    rig longer(in_state{}.lease_in_flight(lease_phase::granting, 11, 0).nodeos(nodeos_phase::running, mode::standby));
    longer.feed(fact::lease_granted{11, 8, 3600s, sent});
    longer.expect_change(lease_phase::granting, lease_phase::live, cause::lease_granted);
    BOOST_TEST((longer.state().lease.deadline == sent + 10s));
    BOOST_TEST((longer.state().lease.next_renew == sent + longer.p.renew_interval));
}

static void failed_grant_retries_with_doubling_delays() {
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

BOOST_AUTO_TEST_CASE(L3_failed_grant_retries_with_doubling_delays_and_the_same_id_after_no_answer) {
    failed_grant_retries_with_doubling_delays();

    rig r(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    auto const first = next_grant(r, "the first grant");
    BOOST_TEST(first.lease > 0);
    // No answer, or one that cannot be read: etcd may have created the lease. Ask again
    // for that same ID, as often as it takes.
    std::uint64_t request = first.request;
    for (auto kind : {failure::timed_out, failure::unavailable, failure::malformed, failure::timed_out}) {
        r.feed(fact::request_failed{request, kind, "no answer"});
        r.expect_change(lease_phase::granting, lease_phase::none, cause::grant_failed);
        auto const again = next_grant(r, "the grant asked again");
        BOOST_TEST(again.lease == first.lease, "after " << name_of(kind));
        request = again.request;
    }
    // A refusal after those: the earlier attempts may still have created it, so the same.
    r.feed(fact::request_failed{request, failure::rejected, "too many requests"});
    auto const after_refusal = next_grant(r, "the grant after a refusal");
    BOOST_TEST(after_refusal.lease == first.lease);
    BOOST_TEST((after_refusal.timeout == r.p.request_timeout));  // etcd answered: TTL/3 again
    // Granted: the next grant (once etcd has forgotten this lease) asks for a new ID.
    r.feed(fact::lease_granted{after_refusal.request, first.lease, 10s, r.now});
    BOOST_TEST_REQUIRE(r.core.has_lease());
    r.tick_at(r.state().lease.next_renew);
    auto const renew = r.expect<act::renew>("a keepalive");
    r.feed(fact::keepalive_answered{renew.request, std::nullopt, r.now});
    auto const next = next_grant(r, "a grant for a new lease");
    BOOST_TEST(next.lease != first.lease);
    BOOST_TEST(next.lease > 0);

    // Grants that time out in a row each wait twice as long, up to the TTL: an overloaded
    // etcd then answers one late, instead of taking a resend every TTL/3 as well.
    rig t(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    auto g = next_grant(t, "the first grant");
    BOOST_TEST((g.timeout == t.p.request_timeout));
    for (auto want : {2 * t.p.request_timeout, t.p.ttl, t.p.ttl}) {
        t.feed(fact::request_failed{g.request, failure::timed_out, "timeout"});
        g = next_grant(t, "the grant after a timeout");
        BOOST_TEST((g.timeout == want));
    }
    // An answer, even a failure, starts over.
    t.feed(fact::request_failed{g.request, failure::unavailable, "HTTP 503"});
    BOOST_TEST((next_grant(t, "the grant after an answer").timeout == t.p.request_timeout));

    // A first attempt refused outright created nothing: the next asks for a new ID.
    rig q(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    auto const refused = next_grant(q, "the first grant");
    q.feed(fact::request_failed{refused.request, failure::unauthenticated, "invalid auth token"});
    BOOST_TEST(next_grant(q, "the next grant").lease != refused.lease);

    // Two instances of one node never ask for the same IDs.
    rig other(in_state{}.nodeos(nodeos_phase::running, mode::standby), identity{me.node, "another-instance"});
    BOOST_TEST(next_grant(other, "the other instance's grant").lease != first.lease);
}

BOOST_AUTO_TEST_CASE(L13_grant_carried_out_unanswered_is_renewed_to_be_ours) {
    rig r(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    auto const first = next_grant(r, "the first grant");
    r.feed(fact::request_failed{first.request, failure::timed_out, "no answer"});
    auto const again = next_grant(r, "the grant asked again");
    r.feed(fact::request_failed{again.request, failure::exists, "etcdserver: lease already exists"});
    r.expect_commands({{"renew " + std::to_string(first.lease), cause::grant_carried_out}});
    r.expect_change(lease_phase::granting, lease_phase::adopting, cause::grant_carried_out);
    BOOST_TEST(!r.core.has_lease());
    // L9: its deadline counts from the renewal's send, not from any grant.
    auto const renew = r.expect<act::renew>("the renewal");
    auto const sent = r.now;
    r.tick_at(r.now + 30ms);
    r.feed(fact::keepalive_answered{renew.request, 10s, sent});
    r.expect_change(lease_phase::adopting, lease_phase::live, cause::lease_adopted);
    BOOST_TEST(r.state().lease.id == first.lease);
    BOOST_TEST((r.state().lease.deadline == sent + 10s));
    BOOST_TEST(!r.state().etcd_failing);
}

BOOST_AUTO_TEST_CASE(L14_grant_of_an_id_taken_first_time_asks_for_another) {
    rig r(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    auto const first = next_grant(r, "the first grant");
    auto const failed_at = r.now;
    // Never sent before, so not this monitor's: another's lease is never adopted.
    r.feed(fact::request_failed{first.request, failure::exists, "etcdserver: lease already exists"});
    r.expect_change(lease_phase::granting, lease_phase::none, cause::grant_failed);
    BOOST_TEST(!r.find<act::renew>());
    auto const next = next_grant(r, "a grant of another ID");
    BOOST_TEST(next.lease != first.lease);
    BOOST_TEST((r.now == failed_at), "asked again at once");
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

    // A TTL longer than asked for counts as the TTL asked for: an answer saying 3600 s
    // does not keep a producer past the deadline its own TTL sets.
    auto lie = in_state{}.producer().renewing(13);
    rig l(lie);
    auto at = l.now;
    l.feed(fact::keepalive_answered{13, 3600s, at});
    BOOST_TEST((l.state().lease.deadline == at + l.p.ttl));
    BOOST_TEST((*l.core.deadman_at() == at + l.p.ttl - l.p.fence_kill / 2));
    l.tick_at(at + l.p.ttl - l.p.fence_graceful);
    BOOST_TEST(l.find<act::signal_nodeos>(), "the producer is fenced by its own TTL");
}

BOOST_AUTO_TEST_CASE(L6_failed_keepalive_retries_within_the_renew_interval) {
    rig r(in_state{}.producer().renewing(12));
    std::vector<duration> delays;
    for (int i = 0; i < 7; ++i) {
        auto k = i == 0 ? std::uint64_t{12} : r.expect<act::renew>("a retried keepalive").request;
        auto failed_at = r.now;
        r.feed(fact::request_failed{k, failure::timed_out, "timeout"});
        BOOST_TEST(!r.find<act::renew>());  // not at once
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

BOOST_AUTO_TEST_CASE(L8_deadline_passed_drops_the_lease_then_renews_it_to_adopt) {
    auto st = in_state{}.validator().renewing(12);
    rig r(st);
    r.tick_at(st.s.lease.deadline - 1ns);
    BOOST_TEST((r.state().lease.phase == lease_phase::live));
    r.tick_at(st.s.lease.deadline);
    r.expect_change(lease_phase::live, lease_phase::none, cause::deadline_passed);
    r.expect_change(lease_phase::none, lease_phase::adopting, cause::deadline_passed);
    auto const id = st.s.lease.id;
    r.expect_commands({{"renew " + std::to_string(id), cause::deadline_passed}});
    BOOST_TEST(!r.core.has_lease());
    BOOST_TEST(!r.core.holds_lock());
    auto const renew = r.expect<act::renew>("the renewal");
    r.feed(fact::keepalive_answered{12, 10s, st.now});  // the late answer to the old keepalive: forgotten
    BOOST_TEST((r.state().lease.phase == lease_phase::adopting));
    // etcd still has it (L9): ours again, its deadline from this renewal's send.
    auto const sent = r.now;
    r.tick_at(r.now + 40ms);
    r.feed(fact::keepalive_answered{renew.request, 10s, sent});
    r.expect_change(lease_phase::adopting, lease_phase::live, cause::lease_adopted);
    BOOST_TEST(r.state().lease.id == id);
    BOOST_TEST((r.state().lease.deadline == sent + 10s));

    // etcd has let it expire (L7): a new grant at once.
    rig gone(st);
    gone.tick_at(st.s.lease.deadline);
    gone.feed(fact::request_failed{gone.expect<act::renew>("the renewal").request, failure::not_found, "requested lease not found"});
    gone.expect_change(lease_phase::adopting, lease_phase::none, cause::lease_gone);
    gone.expect_commands({{"grant", cause::no_lease}});

    // Stopping, or held off (as L1): no renewal, and no grant.
    auto stopping = in_state{}.lease_live().nodeos(nodeos_phase::stopping, mode::standby).stopping().renewing(12);
    rig s(stopping);
    s.tick_at(stopping.s.lease.deadline);
    s.expect_change(lease_phase::live, lease_phase::none, cause::deadline_passed);
    BOOST_TEST(!s.find<act::renew>());
    BOOST_TEST(!s.find<act::grant>());
    auto held = st;
    held.s.hold_off_until = st.s.lease.deadline + 1s;
    rig h(held);
    h.tick_at(held.s.lease.deadline);
    BOOST_TEST((h.state().lease.phase == lease_phase::none));
    BOOST_TEST(!h.find<act::renew>());
}

BOOST_AUTO_TEST_CASE(L9_adopted_lease_is_live_once_renewed) {
    rig r(in_state{}.lease_in_flight(lease_phase::adopting, 11, 5).nodeos(nodeos_phase::running, mode::standby));
    auto sent = r.now - 20ms;
    r.feed(fact::keepalive_answered{11, 10s, sent});
    r.expect_change(lease_phase::adopting, lease_phase::live, cause::lease_adopted);
    // K14 then confirms that its key is still the lock.
    r.expect_commands({{"read group", cause::reread_key}, {"publish 5", cause::member_changed}});
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
    r.expect_commands({{"SIGTERM", cause::promote}});  // the watch is already open (K14)
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
    r.expect_commands({});
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
    r.expect_commands({{"SIGKILL", cause::fence_lost_lock}});
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
    // A failed read of the group's keys, before any watch opened, waits as long.
    rig start(in_state{}.lease_live().watch(watch_phase::idle).nodeos(nodeos_phase::running, mode::standby));
    start.feed(fact::tick{});
    start.expect_commands({{"read group", cause::reread_key}});
    start.feed(fact::request_failed{start.state().lock.request, failure::rejected, "permission denied"});
    start.expect_commands({});
    start.tick_at(start.now + 100ms - 1ns);
    start.expect_commands({});
    start.tick_at(start.now + 1ns);
    start.expect_commands({{"read group", cause::reread_key}});
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

    // A campaign of this monitor's carried out late, seen while it adopts that lease past its
    // deadline (L8): its own key, not another's; once the lease renews, a campaign finds the
    // key under it (K2) and the lock is this node's.
    auto st = in_state{}.validator().renewing(12);
    rig late(st);
    late.tick_at(st.s.lease.deadline);
    auto const renew = late.expect<act::renew>("the renewal after the deadline");
    late.feed(fact::key_written{602, lock_holder{me.node, me.instance, renew.lease, {}}});
    BOOST_TEST((late.state().lock.view == lock_view::unknown));
    late.feed(fact::keepalive_answered{renew.request, 10s, late.now});
    auto const c = late.expect<act::campaign>("a campaign once the lease is ours again");
    late.feed(fact::campaign_answered{c.request, false, 603, lock_holder{me.node, me.instance, renew.lease, {}}});
    BOOST_TEST(late.core.holds_lock());
}

BOOST_AUTO_TEST_CASE(K12_every_node_reads_the_group_when_no_watch_is_open) {
    auto st = in_state{}.producer().watch(watch_phase::broken, in_state{}.now + 100ms);
    rig r(st);
    r.feed(fact::tick{});
    r.expect_commands({});  // not before its time
    r.tick_at(st.now + 100ms);
    r.expect_commands({{"read group", cause::reread_key}});
    // Not only candidates: a crash-looping standby must still learn of a pause or a holder.
    rig sick(in_state{}.validator().watch(watch_phase::broken, in_state{}.now).crashes(3));
    sick.feed(fact::tick{});
    sick.expect_commands({{"read group", cause::reread_key}});
    // At start: a first lease, no watch yet.
    rig start(in_state{}.lease_live().watch(watch_phase::idle).nodeos(nodeos_phase::running, mode::standby));
    start.feed(fact::tick{});
    start.expect_commands({{"read group", cause::reread_key}});
}

BOOST_AUTO_TEST_CASE(K14_the_groups_keys_tell_every_node_the_holder_and_the_control) {
    rig r(in_state{}.lease_live().watch(watch_phase::idle).campaigning(21).crashes(3)
              .nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::group_read{21, 700, peer(), {.group_paused = true}});
    r.expect_change(lock_view::unknown, lock_view::theirs, cause::group_read);
    BOOST_TEST(r.core.holder() == "peer (x)");  // a non-candidate still knows who holds the lock
    BOOST_TEST(r.state().control.group_paused);
    r.expect_commands({{"watch 701", cause::watch_key}});
    // Its own key: it holds the lock; none: free (a candidate campaigns at once).
    rig own(in_state{}.lease_live().watch(watch_phase::idle).campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    own.feed(fact::group_read{21, 700, lock_holder{"me", "inst-me", 7, {}}, {}});
    own.expect_change(lock_view::unknown, lock_view::mine, cause::group_read);
    rig free(in_state{}.lease_live().watch(watch_phase::idle).campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    free.feed(fact::group_read{21, 700, std::nullopt, {}});
    free.expect_commands({{"watch 701", cause::watch_key}, {"campaign", cause::lock_may_be_free}});
    // The producer reading its key gone has lost the lock.
    rig gone(in_state{}.producer().watch(watch_phase::broken).campaigning(21));
    gone.feed(fact::group_read{21, 700, std::nullopt, {}});
    gone.expect_change(lock_view::mine, lock_view::unknown, cause::key_deleted);
    BOOST_TEST(gone.signalled(SIGKILL));
}

BOOST_AUTO_TEST_CASE(K15_a_node_etcd_refuses_is_no_candidate_until_etcd_answers_it) {
    rig r(in_state{}.lease_live().campaigning(21).renewing(12).nodeos(nodeos_phase::running, mode::standby));
    BOOST_TEST((r.core.why_not() == candidacy::candidate));
    r.feed(fact::request_failed{21, failure::rejected, "etcdserver: permission denied"});
    r.expect_commands({});
    BOOST_TEST((r.cause_of<act::note>() == cause::campaign_failed));
    BOOST_TEST((r.core.why_not() == candidacy::etcd_refused));
    BOOST_TEST(!r.state().etcd_failing);  // etcd answered: not an outage
    r.feed(fact::keepalive_answered{12, 10s, r.now});
    r.expect_commands({});  // so no W3 re-read
    // The campaign goes on at K7's pace: it is how the node learns that etcd accepts it again.
    r.tick_at(r.now + 100ms);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    r.feed(fact::request_failed{r.state().lock.request, failure::unauthenticated, "wrong password"});
    BOOST_TEST((r.core.why_not() == candidacy::etcd_refused));
    BOOST_TEST((r.state().lock.retry_at == r.now + 200ms));
    r.tick_at(r.now + 200ms);
    r.feed(fact::campaign_answered{r.state().lock.request, false, 500, peer()});
    BOOST_TEST((r.core.why_not() == candidacy::candidate));
    // A refused grant (a wrong password) too; a granted lease ends it.
    rig grant(in_state{}.nodeos(nodeos_phase::running, mode::standby));
    grant.feed(fact::tick{});
    auto const asked = grant.state().lease.request;
    grant.feed(fact::request_failed{asked, failure::unauthenticated, "wrong password"});
    BOOST_TEST((grant.core.why_not() == candidacy::etcd_refused));
    BOOST_TEST(!grant.state().etcd_failing);
    grant.tick_at(grant.state().lease.retry_at);
    grant.feed(fact::lease_granted{grant.state().lease.request, 7, 10s, grant.now});
    BOOST_TEST((grant.core.why_not() == candidacy::candidate));
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
    rig r(in_state{}.lease_live().watch(watch_phase::idle).campaigning(21).nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::group_read{21, 700, peer(), {}});
    BOOST_TEST(r.expect<act::watch>("a watch").from_revision == 701);
    r.expect_change(watch_phase::idle, watch_phase::open, cause::watch_key);
    BOOST_TEST((r.state().watch.opened_at == r.now));
    // An open watch is not replaced by the next read.
    r.feed(fact::key_deleted{702});
    r.feed(fact::campaign_answered{r.state().lock.request, false, 703, peer()});
    BOOST_TEST(!r.find<act::watch>());
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
        BOOST_TEST_REQUIRE((r.cause_of<act::read_group>() == cause::reread_key), r.listing());
        BOOST_TEST(!r.signalled(SIGKILL));
        waits.push_back(r.now - ended);
        r.feed(fact::group_read{r.state().lock.request, 800 + i, lock_holder{"me", "inst-me", r.state().lease.id, {}}, {}});
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
    r.expect_commands({{"read group", cause::reread_key}});
    BOOST_TEST(!r.state().etcd_failing);
    // At once even right after a failed read, whose backoff (K7) would hold the next one.
    rig after(in_state{}.producer().renewing(12).watch(watch_phase::broken, in_state{}.now + 1s).campaigning(21));
    after.feed(fact::request_failed{21, failure::unavailable, "HTTP 503"});
    after.expect_commands({});
    after.feed(fact::keepalive_answered{12, 10s, after.now});
    after.expect_commands({{"read group", cause::reread_key}});
}

// ---- nodeos --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(N1_holding_the_lock_starts_the_producer) {
    rig r(in_state{}.lease_live().lock(lock_view::mine).nodeos_down());
    r.feed(fact::tick{});
    r.expect_commands({{"start active", cause::holds_lock}, {"publish 7", cause::member_changed}});
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
    r.expect_commands({{"start standby", cause::lock_held_elsewhere}, {"publish 7", cause::member_changed}});
    r.expect_change(role::starting, role::standby, cause::lock_held_elsewhere);
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(N3_not_a_candidate_runs_a_validator) {
    rig r(in_state{}.lease_live().nodeos_down().crashes(3));
    r.feed(fact::tick{});
    r.expect_commands({{"start standby", cause::not_a_candidate}, {"publish 7", cause::member_changed}});
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
    r.expect_commands({{"start active", cause::holds_lock}, {"publish 7", cause::member_changed}});
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

BOOST_AUTO_TEST_CASE(N13_fenced_producer_waits_for_its_lease_s_fate_before_any_restart) {
    // F2 stopped the producer: the keepalive is late, the lease maybe still ours.
    auto st = in_state{}.producer().renewing(12).nodeos_down();
    st.s.lease.deadline = st.now + st.p.fence_graceful - 1s;
    rig r(st);
    r.feed(fact::tick{});
    BOOST_TEST(!r.find<act::start_nodeos>(), "no validator while the lease may be renewed: " << r.listing());
    // Renewed: straight back to producing, one restart in all.
    r.tick_at(r.now + 500ms);
    BOOST_TEST(!r.find<act::start_nodeos>());
    r.feed(fact::keepalive_answered{12, 10s, r.now});
    BOOST_TEST(r.started(mode::active), "the producer again once renewed: " << r.listing());

    // Not renewed: at the deadline the lock is gone, and only then a validator.
    rig lost(st);
    lost.feed(fact::tick{});
    lost.tick_at(st.s.lease.deadline - 1ns);
    BOOST_TEST(!lost.find<act::start_nodeos>());
    lost.tick_at(st.s.lease.deadline);
    BOOST_TEST(lost.started(mode::standby), "a validator once the lease is surely gone: " << lost.listing());
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
    late.expect_commands({{"renew 7", cause::deadline_passed}, {"SIGKILL", cause::fence_frozen}});
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

// ---- paused mode, health, the dirty database -------------------------------------------------

BOOST_AUTO_TEST_CASE(N0_paused_mode_starts_the_producer_config_paused_whatever_the_lock) {
    rig r(in_state{}.paused_mode().nodeos_down());
    r.feed(fact::tick{});
    r.expect_commands({{"grant", cause::no_lease}, {"start active paused", cause::paused_standby}});
    r.expect_change(role::starting, role::standby, cause::paused_standby);
    BOOST_TEST(!r.core.deadman_at().has_value());  // paused: nothing to fence
}

BOOST_AUTO_TEST_CASE(H1_health_is_checked_every_half_second_while_nodeos_runs) {
    auto st = in_state{}.gated().validator().health(health_phase::healthy).checking(0);
    rig r(st);
    r.tick_at(st.s.health.next_check - 1ns);
    r.expect_commands({});
    r.tick_at(st.s.health.next_check);
    r.expect_commands({{"check health", cause::health_check_due}});
    BOOST_TEST((r.expect<act::check_health>("a check").timeout == r.p.api_timeout));
    r.tick_at(r.now + r.p.health_interval);
    r.expect_commands({});  // one at a time: the first has not answered
    rig down(in_state{}.gated().lease_live().lock(lock_view::theirs, "peer").nodeos_down(in_state{}.now + 1s));
    down.tick_at(down.now + 500ms);
    down.expect_commands({});
}

BOOST_AUTO_TEST_CASE(H2_fresh_head_makes_a_candidate_that_campaigns_at_once) {
    rig r(in_state{}.gated().lease_live().nodeos(nodeos_phase::running, mode::standby).health(health_phase::lagging, 9s)
              .checking(30));
    BOOST_TEST((r.core.why_not() == candidacy::nodeos_lagging));
    r.feed(fact::health_answered{30, 501, 400ms});
    r.expect_change(health_phase::lagging, health_phase::healthy, cause::nodeos_healthy);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    BOOST_TEST((r.core.why_not() == candidacy::candidate));
}

BOOST_AUTO_TEST_CASE(H3_lagging_head_keeps_the_node_out_of_the_race) {
    rig r(in_state{}.gated().lease_live().nodeos(nodeos_phase::running, mode::standby).health(health_phase::healthy)
              .checking(30));
    r.feed(fact::health_answered{30, 501, 7s});
    r.expect_change(health_phase::healthy, health_phase::lagging, cause::nodeos_lagging);
    r.expect_commands({});  // no campaign, though the lock may be free
    BOOST_TEST((r.core.why_not() == candidacy::nodeos_lagging));
}

BOOST_AUTO_TEST_CASE(H4_a_head_stopped_with_the_chain_is_not_a_lag) {
    // The producer of a one-producer chain died: every head stopped at #500; its lease
    // expired a TTL later and the key is gone.
    auto st = in_state{}.gated().lease_live().nodeos(nodeos_phase::running, mode::standby).health(health_phase::healthy)
                  .checking(30);
    st.s.health.phase = health_phase::lagging;
    rig r(st);
    r.feed(fact::health_answered{30, 500, 12s});
    r.expect_change(health_phase::lagging, health_phase::healthy, cause::chain_stalled);
    r.expect_commands({{"campaign", cause::lock_may_be_free}});
    // Not while another node holds the lock, nor for a head that moved since it was fresh.
    auto held = st;
    held.lock(lock_view::theirs, "peer");
    rig h(held);
    h.feed(fact::health_answered{30, 500, 12s});
    BOOST_TEST((h.state().health.phase == health_phase::lagging));
    rig moved(st);
    moved.feed(fact::health_answered{30, 480, 12s});
    BOOST_TEST((moved.state().health.phase == health_phase::lagging));
    // A whole group starting on a stopped chain: never fresh, but unmoved for --max-head-lag.
    auto cold = st;
    cold.s.health.fresh_head_num = 0;
    cold.s.health.sent_at = cold.now + cold.p.max_head_lag - 1ns;  // the check in flight was sent then
    rig c(cold);
    c.now = cold.s.health.sent_at;
    c.feed(fact::health_answered{30, 500, 12s});
    BOOST_TEST((c.state().health.phase == health_phase::lagging));
    cold.s.health.sent_at += 1ns;
    rig c2(cold);
    c2.now = cold.s.health.sent_at;
    c2.feed(fact::health_answered{30, 500, 12s});
    c2.expect_change(health_phase::lagging, health_phase::healthy, cause::chain_stalled);
}

BOOST_AUTO_TEST_CASE(H5_unanswered_check_is_unreachable) {
    rig r(in_state{}.gated().validator().health(health_phase::healthy).checking(30));
    r.feed(fact::request_failed{30, failure::timed_out, "no answer in 1000 ms"});
    r.expect_change(health_phase::healthy, health_phase::unreachable, cause::nodeos_unreachable);
    BOOST_TEST((r.core.why_not() == candidacy::nodeos_unreachable));
}

BOOST_AUTO_TEST_CASE(H6_failed_producer_is_handed_over_and_restarted) {
    // Its API last answered a check sent 6 s ago; one check failed since, and the one sent
    // just now fails too.
    auto st = in_state{}.gated().producer().health(health_phase::unreachable).checking(30);
    st.s.health.answered_at = st.now - 6s;
    st.s.health.failures = 1;
    rig r(st);
    r.feed(fact::request_failed{30, failure::timed_out, "no answer in 1000 ms"});
    BOOST_TEST((r.cause_of<act::note>() == cause::producer_unhealthy));
    r.expect_commands({{"SIGTERM", cause::producer_unhealthy}, {"publish 7", cause::member_changed}});
    BOOST_TEST((r.core.why_not() == candidacy::producer_unhealthy));
    r.feed(fact::nodeos_exited{"exit code 0", 0});
    r.expect_change(nodeos_phase::stopping, nodeos_phase::down, cause::producer_unhealthy);
    r.expect_commands({{"release 7", cause::crash_handover}});
    BOOST_TEST(r.state().nodeos.crashes == 1);

    // One check that failed while this monitor was frozen is not a failed producer.
    auto frozen = in_state{}.gated().producer().health(health_phase::healthy).checking(30);
    frozen.s.health.answered_at = frozen.now - 9s;
    rig f(frozen);
    f.feed(fact::request_failed{30, failure::timed_out, "no answer in 1000 ms"});
    BOOST_TEST(!f.state().nodeos.failing);

    // Paused mode: a head that stopped moving while producing; the pause comes first.
    auto ps = in_state{}.paused_mode().paused_producer();
    ps.s.health.head_moved_at = ps.now - 6s;
    rig p(ps);
    p.feed(fact::health_answered{30, 500, 6s});
    p.expect_commands({{"pause", cause::producer_unhealthy}, {"publish 7", cause::member_changed}});
    p.feed(fact::production_answered{p.state().production.request, true});
    p.tick_at(p.state().production.drained_at);
    p.expect_commands({{"check health", cause::health_check_due},
                       {"release 7", cause::producer_unhealthy},
                       {"SIGTERM", cause::producer_unhealthy}});
}

BOOST_AUTO_TEST_CASE(P1_lock_holder_resumes_production) {
    rig r(in_state{}.paused_mode().paused_standby().lock(lock_view::mine));
    r.feed(fact::tick{});
    r.expect_commands({{"resume", cause::promote}});
    r.expect_change(production_phase::paused, production_phase::resuming, cause::promote);
    BOOST_TEST(r.core.deadman_at().has_value());  // it may be producing from now on
    // Having fallen behind since it won, it lets a healthy peer have the lock instead.
    rig lag(in_state{}.paused_mode().paused_standby().lock(lock_view::mine).health(health_phase::lagging, 9s));
    lag.feed(fact::tick{});
    lag.expect_commands({{"release 7", cause::not_a_candidate}});
}

BOOST_AUTO_TEST_CASE(P2_confirmed_resume_is_production) {
    rig r(in_state{}.paused_mode().paused_standby().lock(lock_view::mine).production(production_phase::resuming, 41));
    r.feed(fact::production_answered{41, false});
    r.expect_change(production_phase::resuming, production_phase::producing, cause::resumed);
    r.expect_change(role::standby, role::active, cause::resumed);
    r.expect_commands({{"publish 7", cause::member_changed}});
}

BOOST_AUTO_TEST_CASE(P3_failed_resume_is_paused_to_be_sure) {
    rig r(in_state{}.paused_mode().paused_standby().lock(lock_view::mine).production(production_phase::resuming, 41));
    r.feed(fact::request_failed{41, failure::timed_out, "no answer"});
    r.expect_change(production_phase::resuming, production_phase::pausing, cause::resume_failed);
    r.expect_commands({{"pause", cause::pause_failed}});
    BOOST_TEST(r.core.deadman_at().has_value());
    // Confirmed paused and drained: the next resume waits for its backoff.
    r.feed(fact::production_answered{r.state().production.request, true});
    r.tick_at(r.state().production.drained_at);
    r.expect_commands({});
    r.tick_at(r.now + r.p.retry_min);
    r.expect_commands({{"resume", cause::promote}});
}

BOOST_AUTO_TEST_CASE(P4_producer_no_longer_wanted_is_paused) {
    rig r(in_state{}.paused_mode().paused_producer());
    r.feed(fact::stop_requested{"SIGTERM"});
    r.expect_commands({{"pause", cause::shutdown}});
    r.expect_change(production_phase::producing, production_phase::pausing, cause::shutdown);
    BOOST_TEST(!r.find<act::release>());  // not before it is confirmed paused and drained
}

BOOST_AUTO_TEST_CASE(P5_confirmed_pause_waits_out_the_block_in_progress) {
    rig r(in_state{}.paused_mode().paused_producer().production(production_phase::pausing, 42));
    r.feed(fact::production_answered{42, true});
    r.expect_change(production_phase::pausing, production_phase::draining, cause::paused_confirmed);
    BOOST_TEST((r.state().production.drained_at == r.now + r.p.block_interval));
    BOOST_TEST(r.core.deadman_at().has_value());  // one more block may come
}

BOOST_AUTO_TEST_CASE(P6_after_the_block_interval_it_no_longer_produces) {
    auto st = in_state{}.paused_mode().paused_producer().production(production_phase::draining).stopping();
    rig r(st);
    r.tick_at(st.s.production.drained_at - 1ns);
    r.expect_commands({});
    r.tick_at(st.s.production.drained_at);
    r.expect_change(production_phase::draining, production_phase::paused, cause::drained);
    // At shutdown the lock goes first, then nodeos.
    r.expect_commands({{"release 7", cause::shutdown}, {"SIGTERM", cause::shutdown}});
    BOOST_TEST(!r.core.deadman_at().has_value());
}

BOOST_AUTO_TEST_CASE(P7_failed_pause_is_tried_again_or_falls_back_to_a_stop) {
    rig r(in_state{}.paused_mode().paused_producer().production(production_phase::pausing, 42));
    r.feed(fact::request_failed{42, failure::rejected, "HTTP 500"});
    BOOST_TEST((r.cause_of<act::note>() == cause::pause_failed));
    r.expect_commands({});
    r.tick_at(r.now + r.p.retry_min);
    r.expect_commands({{"pause", cause::pause_failed}});
    r.feed(fact::production_answered{r.state().production.request, false});  // "ok", yet not paused
    BOOST_TEST((r.cause_of<act::note>() == cause::pause_failed));

    rig s(in_state{}.paused_mode().paused_producer().production(production_phase::pausing, 42).stopping());
    s.feed(fact::request_failed{42, failure::timed_out, "no answer"});
    s.expect_commands({{"SIGTERM", cause::shutdown}});
}

BOOST_AUTO_TEST_CASE(D1_dirty_database_is_replayed_with_the_operators_arguments) {
    rig r(in_state{}.gated(/*dirty_recovery=*/true).validator());
    r.feed(fact::nodeos_exited{"exit code 2", 2, true});
    r.expect_change(nodeos_phase::running, nodeos_phase::down, cause::dirty_database);
    r.expect_commands({{"start standby replay", cause::dirty_database}});
    BOOST_TEST((r.last.front().lvl == level::error));
    BOOST_TEST((r.core.why_not() == candidacy::dirty_database));
    BOOST_TEST(r.state().nodeos.crashes == 0);
    // Exit code 2 without the message is just an exit.
    rig plain(in_state{}.gated(true).validator());
    plain.feed(fact::nodeos_exited{"exit code 2", 2, false});
    plain.expect_change(nodeos_phase::running, nodeos_phase::down, cause::crashed);

    rig paused(in_state{}.paused_mode(true).paused_standby());
    paused.feed(fact::nodeos_exited{"exit code 2", 2, true});
    paused.expect_commands({{"start active paused replay", cause::paused_standby}});
}

BOOST_AUTO_TEST_CASE(D2_without_a_way_to_replay_it_waits_for_an_operator) {
    rig r(in_state{}.validator());
    r.feed(fact::nodeos_exited{"exit code 2", 2, true});
    r.expect_change(nodeos_phase::running, nodeos_phase::down, cause::dirty_database);
    r.expect_commands({});
    BOOST_TEST((r.state().nodeos.start_at == r.now + r.p.restart_max));
    BOOST_TEST((r.core.why_not() == candidacy::dirty_database));
    BOOST_TEST(r.last.front().text.find("dirty-db-args") != std::string::npos);  // says what to do
}

BOOST_AUTO_TEST_CASE(D3_nodeos_that_runs_has_passed_its_database_check) {
    auto st = in_state{}.validator();
    st.s.nodeos.dirty = true;
    st.s.nodeos.since = st.now;
    rig r(st);
    r.tick_at(st.now + r.p.dirty_check - 1ns);
    BOOST_TEST(r.state().nodeos.dirty);
    r.tick_at(st.now + r.p.dirty_check);
    BOOST_TEST((r.cause_of<act::note>() == cause::database_clean));
    BOOST_TEST(!r.state().nodeos.dirty);
}

BOOST_AUTO_TEST_CASE(F4_paused_mode_fences_by_pausing) {
    auto st = in_state{}.paused_mode().paused_producer().renewing(12);
    auto at = st.s.lease.deadline - st.p.fence_graceful;
    st.s.health.answered_at = st.s.health.head_moved_at = at - 1s;  // healthy all along
    rig r(st);
    r.tick_at(at - 1ns);
    r.expect_commands({});
    r.tick_at(at);
    r.expect_commands({{"pause", cause::fence_deadline}, {"publish 7", cause::member_changed}});
    // The pause may take until the SIGKILL would come: one block interval and the reserve before the deadline.
    BOOST_TEST((r.expect<act::set_production>("a pause").timeout ==
                std::min(r.p.api_timeout, r.p.pause_budget())));
    r.expect_change(role::active, role::standby, cause::fence_deadline);
}

BOOST_AUTO_TEST_CASE(F5_pause_not_confirmed_in_time_is_a_kill) {
    auto st = in_state{}.paused_mode().paused_producer().renewing(12).production(production_phase::pausing, 42);
    auto at = st.s.lease.deadline - st.p.fence_kill - st.p.block_interval;
    st.s.health.answered_at = st.s.health.head_moved_at = at - 1s;
    rig r(st);
    r.tick_at(at - 1ns);
    r.expect_commands({});
    r.tick_at(at);
    r.expect_commands({{"SIGKILL", cause::fence_deadline}});
    // Confirmed, the block it let through ends with the reserve left.
    auto ds = in_state{}.paused_mode().paused_producer().renewing(12).production(production_phase::draining);
    ds.s.health.answered_at = ds.s.health.head_moved_at = at - 1s;
    rig d(ds);
    d.tick_at(at);
    BOOST_TEST(!d.signalled(SIGKILL));
}

// ---- operating the group ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(O1_switchover_to_a_ready_node_stops_production) {
    rig r(in_state{}.producer());
    r.feed(fact::control_changed{{.switchover_to = "peer", .switchover_target_ready = false}});
    r.expect_commands({});  // not before the target is ready
    BOOST_TEST(r.state().control.switchover_to == "peer");
    r.feed(fact::control_changed{{.switchover_to = "peer", .switchover_target_ready = true}});
    r.expect_commands({{"SIGTERM", cause::switchover}, {"publish 7", cause::member_changed}});
    r.expect_change(role::active, role::standby, cause::switchover);
    BOOST_TEST(r.state().stepping_down);
    BOOST_TEST(!r.find<act::release>());  // not while it may be producing

    rig p(in_state{}.paused_mode().paused_producer());
    p.feed(fact::control_changed{{.switchover_to = "peer", .switchover_target_ready = true}});
    p.expect_commands({{"pause", cause::switchover}, {"publish 7", cause::member_changed}});
    // A switchover to this very node, the producer, changes nothing.
    rig self(in_state{}.producer());
    self.feed(fact::control_changed{{.switchover_to = "me", .switchover_target_ready = true}});
    self.expect_commands({});
}

BOOST_AUTO_TEST_CASE(O2_stopped_production_hands_the_lock_over) {
    auto st = in_state{}.producer().nodeos(nodeos_phase::stopping, mode::active)
                  .control({.switchover_to = "peer", .switchover_target_ready = true});
    st.s.stepping_down = true;
    rig r(st);
    r.feed(fact::nodeos_exited{"exit code 0", 0});
    r.expect_commands({{"release 7", cause::switchover}, {"start standby", cause::not_a_candidate}});
    BOOST_TEST((r.core.why_not() == candidacy::switchover_to_other));
    BOOST_TEST(!r.state().stepping_down);

    auto ps = in_state{}.paused_mode().paused_producer().production(production_phase::draining)
                  .control({.switchover_to = "peer", .switchover_target_ready = true});
    ps.s.stepping_down = true;
    rig p(ps);
    p.tick_at(ps.s.production.drained_at);
    p.expect_commands({{"release 7", cause::switchover}});
    BOOST_TEST((p.state().nodeos.phase == nodeos_phase::running));  // paused, not stopped
}

BOOST_AUTO_TEST_CASE(O3_operator_pauses_take_candidacy_but_never_the_fence) {
    rig r(in_state{}.lease_live().nodeos(nodeos_phase::running, mode::standby));
    r.feed(fact::control_changed{{.group_paused = true}});
    BOOST_TEST((r.cause_of<act::note>() == cause::maintenance));
    r.expect_commands({});  // the lock may be free, but no automatic takeover
    BOOST_TEST((r.core.why_not() == candidacy::group_paused));
    r.feed(fact::control_changed{{.node_paused = true}});
    BOOST_TEST((r.core.why_not() == candidacy::node_paused));
    r.feed(fact::control_changed{{}});
    r.expect_commands({{"campaign", cause::lock_may_be_free}});

    // A paused group's producer still fences on time.
    auto st = in_state{}.producer().renewing(12).control({.group_paused = true});
    rig f(st);
    f.tick_at(st.s.lease.deadline - f.p.fence_graceful);
    f.expect_commands({{"SIGTERM", cause::fence_deadline}});
    // Other nodes do not compete during a switchover to a third one.
    rig o(in_state{}.lease_live().nodeos(nodeos_phase::running, mode::standby)
              .control({.switchover_to = "peer", .switchover_target_ready = true}));
    o.feed(fact::key_deleted{900});
    BOOST_TEST(!o.find<act::campaign>());
}

BOOST_AUTO_TEST_CASE(R1_member_record_written_on_change_at_most_once_a_second) {
    auto st = in_state{}.validator();
    st.s.registry.next_write = st.now + 1s;
    rig r(st);
    r.feed(fact::tick{});
    r.expect_commands({});  // changed, but written less than a second ago
    r.tick_at(st.now + 1s);
    r.expect_commands({{"publish 7", cause::member_changed}});
    BOOST_TEST(r.state().registry.written == r.core.registry_fields());
    r.feed(fact::published{r.state().registry.request});
    r.tick_at(r.now + 2s);
    r.expect_commands({});  // nothing changed: nothing written
    // A new role is written at once, whatever the rate limit: a switchover waits on it.
    r.feed(fact::key_deleted{900});
    r.feed(fact::campaign_answered{r.state().lock.request, true, 901, std::nullopt});
    r.feed(fact::nodeos_exited{"exit code 0", 0});  // the validator stopped for the promotion
    BOOST_TEST((r.core.current_role() == role::active));
    BOOST_TEST((r.cause_of<act::publish>() == cause::member_changed));
    // A new lease: written at once, under it.
    rig n(in_state{}.lease_in_flight(lease_phase::granting, 11, 0).nodeos(nodeos_phase::running, mode::standby));
    n.feed(fact::lease_granted{11, 8, 10s, n.now});
    BOOST_TEST(n.expect<act::publish>("a record under the new lease").lease == 8);
}

BOOST_AUTO_TEST_CASE(R2_head_lag_refreshed_every_ten_seconds_never_per_block) {
    auto st = in_state{}.gated().validator().health(health_phase::healthy);
    st.s.registry.written = "standby candidate healthy";
    st.s.registry.next_write = st.now;
    st.s.registry.refresh_at = st.now + 2s;  // 10 s after the last write
    rig r(st);
    BOOST_TEST_REQUIRE(r.core.registry_fields() == "standby candidate healthy");
    r.feed(fact::health_answered{30, 501, 200ms});  // a new block: no write
    r.expect_commands({});
    r.tick_at(st.now + 2s);
    BOOST_TEST((r.cause_of<act::publish>() == cause::member_refresh));
}

BOOST_AUTO_TEST_CASE(R3_written_record_is_remembered) {
    auto st = in_state{}.validator();
    st.s.registry.request = 51;
    st.s.registry.failures = 2;
    rig r(st);
    r.feed(fact::published{51});
    BOOST_TEST(r.state().registry.request == 0u);
    BOOST_TEST(r.state().registry.failures == 0);
}

BOOST_AUTO_TEST_CASE(R4_failed_write_is_retried_or_means_the_lease_is_gone) {
    auto st = in_state{}.validator();
    st.s.registry.request = 51;
    rig r(st);
    r.feed(fact::request_failed{51, failure::unavailable, "HTTP 503"});
    BOOST_TEST((r.state().registry.next_write == r.now + r.p.retry_min));
    r.tick_at(r.now + r.p.retry_min);
    BOOST_TEST((r.cause_of<act::publish>() == cause::member_changed));

    rig g(st);
    g.feed(fact::request_failed{51, failure::not_found, "requested lease not found"});
    g.expect_change(lease_phase::live, lease_phase::none, cause::lease_gone);
}

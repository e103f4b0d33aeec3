// The order in which the core's sub-machines decide after every fact (failover.cpp,
// decision_steps): one test for each reason the order gives, each failing if the two steps
// it names were swapped (the change would then wait for the next wakeup, or never come).
#define BOOST_TEST_MODULE decision_order
#include <boost/test/unit_test.hpp>

#include <string_view>
#include <vector>

#include "core_rig.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// Where a step stands in the order.
std::size_t position(std::string_view step) {
    auto const order = failover::decision_order();
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (order[i].starts_with(step)) return i;
    }
    BOOST_FAIL(std::string("no decision step named ") + std::string(step));
    return 0;
}

// The index of the first action named `name` in the latest step (the actions' order is the
// order in which the steps took them).
std::size_t index_of(rig const& r, std::string const& name) {
    for (std::size_t i = 0; i < r.last.size(); ++i) {
        if (command_name(r.last[i]) == name) return i;
    }
    BOOST_FAIL("expected " + name + " in: " + r.listing());
    return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_order_as_written) {
    std::vector<std::string_view> const want{
        "lease deadline (L8)",     "nodeos history (N10, D3)", "lease (L1, L4)",         "health (H1)",
        "switchover (O1)",         "production (P1 to P7, F4)", "hand-over (O2)",        "shutdown (S1, S2, S4)",
        "lock (K1, K12)",          "nodeos (N0 to N6)",         "member record (R1, R2)", "fence (F1 to F5, N11, N12)",
        "dead-man timer",
    };
    auto const order = failover::decision_order();
    BOOST_TEST(order == want, boost::test_tools::per_element());
}

// A monitor frozen past its lease's deadline: the deadline, judged first, tells the fence
// that the lease ran out with the producer alive.
BOOST_AUTO_TEST_CASE(the_deadline_before_the_fence) {
    BOOST_TEST(position("lease deadline") < position("fence"));
    auto st = in_state{}.producer().renewing(12);
    rig r(st);
    r.tick_at(st.s.lease.deadline + 100ms);
    BOOST_TEST((r.cause_of<act::signal_nodeos>() == cause::fence_frozen), r.listing());
}

// A database found clean makes the node a candidate in the same step: it campaigns at once.
BOOST_AUTO_TEST_CASE(the_history_before_the_lock) {
    BOOST_TEST(position("nodeos history") < position("lock"));
    auto st = in_state{}.lease_live().watch(watch_phase::open, in_state{}.now).nodeos(nodeos_phase::running, mode::standby);
    st.s.nodeos.dirty = true;
    st.s.nodeos.since = st.now;
    rig r(st);
    r.tick_at(st.now + r.p.dirty_check);
    BOOST_TEST((r.cause_of<act::note>() == cause::database_clean));
    r.expect<act::campaign>("a campaign in the step that found the database clean");
}

// A switchover asked while producing pauses the producer in the same step.
BOOST_AUTO_TEST_CASE(the_switchover_before_production) {
    BOOST_TEST(position("switchover") < position("production"));
    rig r(in_state{}.paused_mode().paused_producer());
    r.feed(fact::control_changed{{.switchover_to = "peer", .switchover_target_ready = true}});
    r.expect_commands({{"pause", cause::switchover}, {"publish 7", cause::member_changed}});
}

// The step whose block interval ends production hands the lock over.
BOOST_AUTO_TEST_CASE(production_before_the_hand_over) {
    BOOST_TEST(position("production") < position("hand-over"));
    auto st = in_state{}.paused_mode().paused_producer().production(production_phase::draining)
                  .control({.switchover_to = "peer", .switchover_target_ready = true});
    st.s.stepping_down = true;
    rig r(st);
    r.tick_at(st.s.production.drained_at);
    r.expect_change(production_phase::draining, production_phase::paused, cause::drained);
    r.expect<act::release>("the lock handed over in the step production stopped");
}

// The member record written in a step says the role that step ends with.
BOOST_AUTO_TEST_CASE(nodeos_before_the_member_record) {
    BOOST_TEST(position("nodeos (N0") < position("member record"));
    auto st = in_state{}.lease_live().lock(lock_view::mine).watch(watch_phase::open, in_state{}.now).nodeos_down();
    rig r(st);
    r.feed(fact::tick{});
    BOOST_TEST(index_of(r, "start active") < index_of(r, "publish 7"));
    BOOST_TEST((r.expect<act::publish>("the record").member.state == role::active), r.listing());
}

// A producer started in a step is under the fence and the dead-man timer in that step.
BOOST_AUTO_TEST_CASE(nodeos_before_the_fence_and_the_dead_man_timer) {
    BOOST_TEST(position("nodeos (N0") < position("fence"));
    BOOST_TEST(position("fence") < position("dead-man timer"));
    BOOST_TEST(position("dead-man timer") == failover::decision_order().size() - 1);
    auto st = in_state{}.lease_live().lock(lock_view::mine).watch(watch_phase::open, in_state{}.now).nodeos_down();
    rig r(st);
    BOOST_TEST(!r.core.deadman_at().has_value());
    r.feed(fact::tick{});
    BOOST_REQUIRE(r.started(mode::active));
    BOOST_TEST((r.core.deadman_at() == st.s.lease.deadline - r.p.fence_kill / 2));
}

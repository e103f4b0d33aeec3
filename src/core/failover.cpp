// The failover core's frame: a fact in, the sub-machines' decisions in their order, the
// actions out; the role and the candidacy derived from the sub-machines; the clock. Each
// sub-machine's rows are in a file of its own: lease.cpp (L), lock.cpp (K, W), nodeos.cpp
// (N, D, F), health.cpp (H), production.cpp (P), operate.cpp (O, R, S).
#include "core/failover.hpp"

#include <algorithm>

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

void failover::on(fact::start const&) {
    s_.nodeos.start_at = now_;
    s_.nodeos.waiting_since = now_;
}

// L3, L6, L7, L11, L12, K7, K15, H5, P3, P7, R4: to the machine whose request failed.
void failover::on(fact::request_failed const& f) {
    auto const detail = cat(name_of(f.kind), ": ", f.detail);
    if (ours(f.request, s_.health.request)) return health_failed(detail);
    if (ours(f.request, s_.production.request)) return production_failed(detail);
    if (ours(f.request, s_.registry.request)) return registry_failed(f);
    if (ours(f.request, s_.lease.request)) return lease_failed(f);
    if (ours(f.request, s_.lock.request)) return lock_failed(f);
}

// The order in which the sub-machines decide after every fact. Each step sees what the
// steps before it did in this same step, and the order is what makes a change take effect
// at once rather than at the next wakeup (tests/unit/test_decision_order.cpp has one test
// for each reason below).
struct failover::decision_step {
    char const* name;
    void (failover::*run)();
};

constexpr failover::decision_step failover::decision_steps[] = {
    // L8 first: every later step must know whether the lease is still live, and the fence
    // whether its deadline passed with a producer alive (a frozen monitor: fence_frozen).
    {"lease deadline (L8)", &failover::check_deadline},
    // N10, D3 from the clock alone, before candidacy is judged: a crash history cleared or
    // a database found clean makes the node a candidate in the same step.
    {"nodeos history (N10, D3)", &failover::check_history},
    // L1, L4: a renewal goes out when due, whatever the other machines decide.
    {"lease (L1, L4)", &failover::keep_lease},
    {"health (H1)", &failover::keep_health},
    // O1 before production: a switchover asked in this step pauses or stops the producer
    // in the same step.
    {"switchover (O1)", &failover::step_down},
    {"production (P1 to P7, F4)", &failover::keep_production},
    // O2 after production: once production has stopped in this step (P6), the lock goes in
    // the same step.
    {"hand-over (O2)", &failover::hand_over},
    {"shutdown (S1, S2, S4)", &failover::shut_down},
    {"lock (K1, K12)", &failover::keep_lock},
    {"nodeos (N0 to N6)", &failover::keep_nodeos},
    // R1, R2 after every change of role and candidacy: the record written is the one the
    // step ends with.
    {"member record (R1, R2)", &failover::keep_registry},
    // F1 to F5 after nodeos: the fence sees a producer started in this step.
    {"fence (F1 to F5, N11, N12)", &failover::fence},
    // Last: the dead-man timer follows the producer and the lease as the step leaves them.
    {"dead-man timer", &failover::arm_deadman},
};

std::vector<std::string_view> failover::decision_order() {
    std::vector<std::string_view> out;
    for (auto const& step : decision_steps) out.emplace_back(step.name);
    return out;
}

void failover::decide() {
    wakeup_ = time_point::max();
    if (s_.exited) return;
    deadline_missed_ = false;
    for (auto const& step : decision_steps) (this->*step.run)();
}

void failover::enter_role(role to, cause why, std::string const& text) {
    if (s_.current_role == role::stopping || s_.current_role == to) return;  // stopping: for good
    record(s_.current_role, to, why, level::info, text);
    s_.role_since = now_;
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
    if (!reached(s_.hold_off_until)) return candidacy::held_off;
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
    return holds_lock() && !reached(s_.lease.deadline - p_.fence_graceful);
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

void failover::wake_at(time_point t) {
    if (t > now_) wakeup_ = std::min(wakeup_, t);
}

bool failover::reached_or_wake(time_point t) {
    if (reached(t)) return true;
    wake_at(t);
    return false;
}

void failover::emit(decltype(action::what) what, cause why, level lvl, std::string text) {
    out_.push_back(action{std::move(what), why, lvl, std::move(text)});
}

void failover::note(cause why, level lvl, std::string text) { emit(act::note{}, why, lvl, std::move(text)); }

}  // namespace nm

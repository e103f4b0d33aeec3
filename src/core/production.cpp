// Paused mode's production (rows P1 to P7, F4): resume and pause through nodeos's API,
// each confirmed, and the block a pause lets through waited out.
#include "core/failover.hpp"

#include <algorithm>

namespace nm {

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
        judge_head_from(now_);  // H6 judges a producer from when it produces
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
        if (reached_or_wake(production.retry_at)) set_production(false, cause::promote, "this node holds the lock: resume production");
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
        if (reached_or_wake(production.retry_at)) set_production(true, cause::pause_failed, "pause again");
        return;
    case production_phase::draining:
        if (reached_or_wake(production.drained_at)) {
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

void failover::enter(production_phase to, cause why, level lvl, std::string text) {
    record(s_.production.phase, to, why, lvl, text);
    enter_role(role_now(), why, text);
}

void failover::enter(production_state next, cause why, level lvl, std::string text) {
    enter_afresh(s_.production, std::move(next), why, lvl, std::move(text));
}

}  // namespace nm

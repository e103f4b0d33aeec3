// nodeos's health (rows H1 to H6): a candidate's head must be fresh; a producer whose API
// or head goes silent has failed.
#include "core/failover.hpp"

#include <algorithm>

namespace nm {

// H2, H3, H4
void failover::on(fact::health_answered const& f) {
    auto& health = s_.health;
    if (!ours(f.request, health.request)) return;
    // Times are those of the check's send: what nodeos said is true of about then, even
    // when this monitor reads the answer late (it was frozen, or the loop was busy).
    health.request = 0;
    health.failures = 0;
    health.answered = true;
    health.answered_at = health.sent_at;
    if (f.head_block_num != health.head_num) health.head_moved_at = health.sent_at;
    health.head_num = f.head_block_num;
    health.head_lag = f.head_lag;
    if (producer_failed(health.sent_at - health.head_moved_at >= p_.max_head_lag,
                        cat("its head #", health.head_num, " has not moved for ", to_ms(health.sent_at - health.head_moved_at),
                            " ms"))) {
        return;
    }
    auto const lag = cat(to_ms(f.head_lag), " ms");
    if (f.head_lag <= p_.max_head_lag) {
        health.fresh_head_num = f.head_block_num;
        return enter(health_phase::healthy, cause::nodeos_healthy, level::info,
                     cat("nodeos is healthy: head #", f.head_block_num, " is ", lag, " old"));
    }
    // On a chain whose only producer is this group's, every head stops with it (or has not
    // started: a whole group starting on a stopped chain). With nobody holding the lock, a
    // head that has not moved since it was fresh, or for --max-head-lag, is not a lag: the
    // chain stopped, not this node. A fresh node still goes first: it campaigns at once.
    bool const stopped_when_fresh = health.fresh_head_num != 0 && f.head_block_num == health.fresh_head_num;
    bool const long_unmoved = health.sent_at - health.head_moved_at >= p_.max_head_lag;
    if ((stopped_when_fresh || long_unmoved) && s_.lock.view == lock_view::unknown) {
        return enter(health_phase::healthy, cause::chain_stalled, level::info,
                     cat("nodeos's head #", f.head_block_num, " (", lag, " old) has not moved ",
                         stopped_when_fresh ? "since it was fresh" : cat("for ", to_ms(health.sent_at - health.head_moved_at), " ms"),
                         " and nobody holds the lock: the chain has stopped, not this node"));
    }
    enter(health_phase::lagging, cause::nodeos_lagging, level::warning,
          cat("nodeos lags: head #", f.head_block_num, " is ", lag, " old (at most ", to_ms(p_.max_head_lag),
              " ms): not a candidate until it catches up"));
}

// H5
void failover::health_failed(std::string const& detail) {
    auto& health = s_.health;
    health.request = 0;
    ++health.failures;
    enter(health_phase::unreachable, cause::nodeos_unreachable, level::warning,
          cat("nodeos's API does not answer (", detail, "): not a candidate"));
    // Two checks in a row, the second sent after the first failed: one check that was in
    // flight while this monitor was frozen is not enough.
    producer_failed(health.failures >= 2 && health.sent_at - health.answered_at >= p_.max_head_lag,
                    cat("its API has not answered for ", to_ms(health.sent_at - health.answered_at), " ms"));
}

// H6: a producer that answered once, then went silent or stopped its head, has failed.
bool failover::producer_failed(bool failed, std::string const& why) {
    auto& nodeos = s_.nodeos;
    if (!failed || !p_.health_gated || !producer_alive() || nodeos.phase != nodeos_phase::running ||
        !s_.health.answered || nodeos.failing) {
        return false;
    }
    nodeos.failing = true;
    note(cause::producer_unhealthy, level::error, cat("the producer has failed: ", why, "; hand over and restart it"));
    if (!paused_mode()) stop_nodeos(cause::producer_unhealthy, "it has failed");
    return true;
}

// H1: only while nodeos runs; each nodeos starts unchecked.
void failover::keep_health() {
    auto& health = s_.health;
    if (!p_.health_gated || s_.nodeos.phase != nodeos_phase::running || health.request != 0) return;
    if (!reached_or_wake(health.next_check)) return;
    health.request = next_request();
    health.sent_at = now_;
    health.next_check = now_ + p_.health_interval;
    emit(act::check_health{health.request, p_.api_timeout}, cause::health_check_due, level::debug, "health check due");
}

void failover::enter(health_phase to, cause why, level lvl, std::string text) {
    record(s_.health.phase, to, why, lvl, std::move(text));
}

void failover::enter(health_state next, cause why, level lvl, std::string text) {
    enter_afresh(s_.health, std::move(next), why, lvl, std::move(text));
}

// H1: the first check of a new nodeos, once it had a moment.
void failover::first_check_after(duration d) { s_.health.next_check = now_ + d; }

// H6 judges a producer's head from t at the earliest (from when it produces).
void failover::judge_head_from(time_point t) { s_.health.head_moved_at = std::max(s_.health.head_moved_at, t); }

}  // namespace nm

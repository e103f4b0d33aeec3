#include "ops/operations.hpp"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <ctime>

#include "ops/http_server.hpp"
#include "ops/log.hpp"
#include "version.hpp"

namespace nm {
namespace asio = boost::asio;

namespace {

double unix_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double seconds_of(duration d) { return std::chrono::duration<double>(d).count(); }

// nodeos_exits_total{reason}, from the cause with which nodeos went down.
char const* exit_reason(cause c) {
    switch (c) {
    case cause::exited_as_asked: return "stopped";
    case cause::start_failed: return "start_failed";
    case cause::dirty_database: return "dirty_database";
    case cause::producer_unhealthy: return "failed";
    default: return "exited";
    }
}

}  // namespace

// The watchdog timer lives on the loop: a stalled or frozen loop stops pinging, which is the point.
struct operations::timers {
    explicit timers(asio::io_context& io) : watchdog(io) {}
    asio::steady_timer watchdog;
    std::chrono::microseconds interval{};
};

operations::operations(asio::io_context& io, settings s, failover const& core, process_view nodeos)
    : settings_(std::move(s)), core_(core), timers_(std::make_unique<timers>(io)), nodeos_(std::move(nodeos)) {
    if (auto const& e = settings_.endpoint) {
        try {
            http_ = std::make_unique<http_server>(
                io, e->first, e->second,
                [this](std::string_view method, std::string_view path) { return answer(method, path); },
                http_server::limits{});
        } catch (std::system_error const& failed) {
            throw listen_error(failed.code());
        }
        log(level::info, cat("serving /metrics, /healthz and /status on ", e->first, ":", e->second));
    }
    if (auto every = watchdog_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
        every && notify_.enabled()) {
        timers_->interval = *every;
        log(level::info, cat("systemd watchdog: a ping every ", every->count() / 1000, " ms"));
        ping_watchdog();
    }
}

operations::~operations() { close(); }

void operations::close() {
    if (http_) http_->close();
    timers_->watchdog.cancel();
}

void operations::observe(action const& a) {
    if (auto const* s = std::get_if<act::start_nodeos>(&a.what)) {
        ++stats_.nodeos_starts[name_of(s->as)];
        if (s->kind != start_kind::first) ++stats_.nodeos_restarts[name_of(s->kind)];
    } else if (std::holds_alternative<act::signal_nodeos>(a.what)) {
        if (auto fence = fence_of(a.why); fence != fence_kind::none) ++stats_.fences[name_of(fence)];
    } else if (auto const* n = std::get_if<act::changed<nodeos_phase>>(&a.what)) {
        if (n->to == nodeos_phase::down) ++stats_.nodeos_exits[exit_reason(a.why)];
    } else if (auto const* r = std::get_if<act::changed<role>>(&a.what)) {
        ++stats_.transitions[{name_of(r->from), name_of(r->to)}];
        last_transition_ = transition{r->from, r->to, unix_now(), name_of(a.why), a.text};
        if (r->to == role::stopping) notify_.send("STOPPING=1");
        if (ready_sent_) notify_status(false);
    }
}

void operations::step_done() {
    if (!ready_sent_ && nodeos_()) {
        ready_sent_ = true;
        notify_status(true);
    }
}

http_reply operations::answer(std::string_view method, std::string_view path) {
    bool known = path == "/metrics" || path == "/healthz" || path == "/status" || path == "/producer" || path == "/standby";
    if (!known) {
        return {404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz, /status, /producer or /standby\n"};
    }
    if (method != "GET") return {405, "text/plain; charset=utf-8", "only GET\n"};
    auto snap = snapshot();
    if (path == "/metrics") {
        stats_.log_lines_dropped = log_lines_dropped();
        gauges g{snap.group,
                 snap.node,
                 snap.state,
                 snap.lock_held,
                 snap.lease_remaining,
                 seconds_of(core_.timings().ttl),
                 snap.nodeos_pid.has_value(),
                 snap.candidate,
                 snap.head_lag,
                 snap.head_block_num,
                 snap.database_dirty};
        return {200, "text/plain; version=0.0.4; charset=utf-8",
                render_metrics(stats_, g, read_process_stats(), NM_VERSION)};
    }
    if (path == "/status") return {200, "application/json", render_status_json(snap)};
    // For load balancers and probes: the producing node, and the standbys ready to take over.
    if (path == "/producer" || path == "/standby") {
        bool const yes = path == "/producer" ? snap.state == role::active && snap.lock_held
                                             : snap.state == role::standby && snap.candidate == candidacy::candidate &&
                                                   snap.nodeos_pid.has_value();
        return {yes ? 200 : 503, "text/plain; charset=utf-8", cat(yes ? "yes: " : "no: ", status_line(snap), "\n")};
    }
    bool ok = healthy(snap);
    return {ok ? 200 : 503, "text/plain; charset=utf-8", (ok ? "ok: " : "unhealthy: ") + status_line(snap) + "\n"};
}

void operations::ping_watchdog() {
    notify_.send("WATCHDOG=1");
    timers_->watchdog.expires_after(timers_->interval);
    timers_->watchdog.async_wait([this](boost::system::error_code ec) {
        if (!ec) ping_watchdog();
    });
}

// The first STATUS goes with READY=1, once nodeos runs in its first role.
void operations::notify_status(bool ready) {
    auto status = status_message(status_line(snapshot()));
    notify_.send(ready ? "READY=1\n" + status : status);
}

status_view operations::snapshot() const {
    status_view s;
    s.node = settings_.node;
    s.group = settings_.group;
    s.state = core_.current_role();
    s.lock_held = core_.holds_lock();
    s.holder = core_.holder();
    auto now = boot_clock::now();
    if (auto deadline = core_.lease_deadline()) s.lease_remaining = seconds_of(*deadline - now);
    auto const& state = core_.state();
    bool const paused_mode = core_.timings().standby == standby_mode::paused;
    if (auto const running = nodeos_()) {
        s.nodeos_pid = running->pid;
        bool const producing = state.production.phase == production_phase::producing;
        s.nodeos_mode = paused_mode ? (producing ? "active" : "paused") : name_of(state.nodeos.as);
        s.nodeos_uptime = seconds_of(now - running->since);
    }
    s.last_transition = last_transition_;
    s.standby_mode = name_of(core_.timings().standby);
    s.candidate = core_.why_not();
    s.database_dirty = state.nodeos.dirty;
    if (core_.timings().health_gated) {
        s.health = name_of(state.health.phase);
        if (state.health.answered) {
            s.head_block_num = state.health.head_num;
            s.head_lag = seconds_of(state.health.head_lag);
        }
    }
    return s;
}

}  // namespace nm

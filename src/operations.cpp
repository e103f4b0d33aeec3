#include "operations.hpp"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <ctime>

#include "http_server.hpp"
#include "log.hpp"
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

char const* restart_reason(std::optional<mode> before, mode now, bool crashed) {
    if (crashed) return "crash";
    if (before == mode::standby && now == mode::active) return "promote";
    if (before == mode::active && now == mode::standby) return "demote";
    return "restart";
}

}  // namespace

// The watchdog timer lives on the loop: a stalled or frozen loop stops pinging, which is the point.
struct operations::timers {
    explicit timers(asio::io_context& io) : watchdog(io) {}
    asio::steady_timer watchdog;
    std::chrono::microseconds interval{};
};

operations::operations(asio::io_context& io, config const& cfg, failover const& core)
    : cfg_(cfg), core_(core), timers_(std::make_unique<timers>(io)) {
    if (cfg.metrics_addr) {
        auto const& a = *cfg.metrics_addr;
        try {
            http_ = std::make_unique<http_server>(
                io, a.host, a.port,
                [this](std::string_view method, std::string_view path) { return answer(method, path); },
                http_server::limits{});
        } catch (std::system_error const& e) {
            throw usage_error(cat("--metrics-addr ", a.host, ":", a.port, ": cannot listen: ", e.code().message()));
        }
        log(level::info, cat("serving /metrics, /healthz and /status on ", a.host, ":", a.port));
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

http_reply operations::answer(std::string_view method, std::string_view path) {
    bool known = path == "/metrics" || path == "/healthz" || path == "/status";
    if (!known) return {404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz or /status\n"};
    if (method != "GET") return {405, "text/plain; charset=utf-8", "only GET\n"};
    if (path == "/metrics") {
        auto snap = snapshot();
        gauges g{snap.state, snap.lock_held, snap.lease_remaining, snap.nodeos_pid.has_value()};
        return {200, "text/plain; version=0.0.4; charset=utf-8",
                render_metrics(stats_, g, read_process_stats(), NM_VERSION)};
    }
    auto snap = snapshot();
    if (path == "/status") return {200, "application/json", render_status_json(snap)};
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

void operations::nodeos_started(pid_t pid, mode as) {
    ++stats_.nodeos_starts[name_of(as)];
    if (previous_mode_) ++stats_.nodeos_restarts[restart_reason(previous_mode_, as, crashed_)];
    previous_mode_ = as;
    crashed_ = false;
    nodeos_pid_ = pid;
    nodeos_since_ = boot_clock::now();
}

void operations::nodeos_start_failed() {
    ++stats_.nodeos_exits["start_failed"];
    crashed_ = true;
    nodeos_pid_ = 0;
}

void operations::nodeos_ended() {
    bool asked = core_.nodeos() == failover::nodeos_phase::stopping;
    ++stats_.nodeos_exits[asked ? "stopped" : "exited"];
    crashed_ = !asked;
    nodeos_pid_ = 0;
}

void operations::nodeos_signalled(act::signal_nodeos const& s) {
    if (s.cause != act::fence_cause::none) ++stats_.fences[act::name_of(s.cause)];
}

void operations::stop_requested() {
    if (!core_.shutting_down()) notify_.send("STOPPING=1");
}

node_state operations::current_state() const {
    if (core_.shutting_down()) return node_state::stopping;
    if (core_.nodeos() == failover::nodeos_phase::running && core_.nodeos_mode() == mode::active) {
        return node_state::active;
    }
    return previous_mode_ ? node_state::standby : node_state::starting;
}

void operations::after_step(std::string const& reason) {
    auto now_state = current_state();
    if (now_state != state_) {
        last_transition_ = transition{state_, now_state, unix_now(), reason};
        ++stats_.transitions[{name_of(state_), name_of(now_state)}];
        log(level::info, cat("state ", name_of(state_), " -> ", name_of(now_state), ": ", reason));
        state_ = now_state;
        notify_state(false);
    }
    if (!ready_sent_ && core_.nodeos() == failover::nodeos_phase::running) {
        ready_sent_ = true;
        notify_state(true);
    }
}

void operations::notify_state(bool first) {
    if (!ready_sent_) return;  // the first STATUS goes with READY=1
    auto status = status_message(status_line(snapshot()));
    notify_.send(first ? "READY=1\n" + status : status);
}

status_view operations::snapshot() const {
    status_view s;
    s.node = cfg_.node_name;
    s.group = cfg_.failover_group;
    s.state = state_;
    s.lock_held = core_.holds_lock();
    s.holder = core_.holder();
    auto now = boot_clock::now();
    if (auto deadline = core_.lease_deadline()) s.lease_remaining = seconds_of(*deadline - now);
    if (nodeos_pid_ > 0) {
        s.nodeos_pid = nodeos_pid_;
        s.nodeos_mode = name_of(core_.nodeos_mode());
        s.nodeos_uptime = seconds_of(now - nodeos_since_);
    }
    s.last_transition = last_transition_;
    return s;
}

}  // namespace nm

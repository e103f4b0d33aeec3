#pragma once
// What operators see, kept in step with the core: the state and its transitions, the
// counters behind /metrics, the /status and /healthz answers, and systemd notifications.
//
//   monitor (driver) ──events──▶ operations ──▶ counters, state ──▶ http_server (GET /metrics, /status, /healthz)
//                                           └──▶ notifier (READY=1, STATUS=, STOPPING=1, WATCHDOG=1)
//
// It only observes: nothing here feeds the core or changes what the monitor does.
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "failover.hpp"
#include "metrics.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "status.hpp"

namespace boost::asio {
class io_context;
}

namespace nm {

class http_server;
struct http_reply;

class operations {
public:
    // Starts the HTTP endpoint (throws usage_error when it cannot listen) and the watchdog pings.
    operations(boost::asio::io_context& io, config const& cfg, failover const& core);
    ~operations();
    operations(operations const&) = delete;
    operations& operator=(operations const&) = delete;

    counters& stats() { return stats_; }

    void nodeos_started(pid_t pid, mode as);
    void nodeos_start_failed();
    // Call before the core hears of the exit: whether it was asked to stop is the core's view now.
    void nodeos_ended();
    void nodeos_signalled(act::signal_nodeos const& s);
    void stop_requested();
    // After each step of the core: a changed state is counted, logged and told to systemd.
    void after_step(std::string const& reason);
    void close();

    status_view snapshot() const;

private:
    http_reply answer(std::string_view method, std::string_view path);
    node_state current_state() const;
    void notify_state(bool first);
    void ping_watchdog();
    struct timers;

    config const& cfg_;
    failover const& core_;
    counters stats_;
    notifier notify_;
    std::unique_ptr<http_server> http_;
    std::unique_ptr<timers> timers_;
    node_state state_ = node_state::starting;
    std::optional<transition> last_transition_;
    bool ready_sent_ = false;
    pid_t nodeos_pid_ = 0;
    time_point nodeos_since_{};
    std::optional<mode> previous_mode_;  // of the last nodeos started
    bool crashed_ = false;               // the last nodeos exited on its own
};

}  // namespace nm

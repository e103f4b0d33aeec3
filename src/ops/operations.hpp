#pragma once
// What operators see: the counters behind /metrics, the /status and /healthz answers, and
// systemd notifications, all kept from the core's own actions.
//
//   driver ──every action of the core──▶ observe() ──▶ counters, last transition
//                                                  └─▶ notifier (READY=1, STATUS=, STOPPING=1)
//   http_server (GET /metrics, /status, /healthz) ──▶ snapshot(): the core's observers + counters
//   watchdog timer ──▶ WATCHDOG=1
//
// It only observes: it keeps no state of its own about the lock or nodeos, and nothing
// here feeds the core or changes what the monitor does.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "core/failover.hpp"
#include "ops/metrics.hpp"
#include "ops/notify.hpp"
#include "ops/status.hpp"

namespace boost::asio {
class io_context;
}

namespace nm {

class http_server;
struct http_reply;

class operations {
public:
    struct settings {
        std::string node;
        std::string group;
        std::optional<std::pair<std::string, std::uint16_t>> endpoint;  // numeric address and port; none: no HTTP
    };

    // The nodeos that runs now, as its supervisor knows it.
    struct process {
        pid_t pid;
        time_point since;
    };
    using process_view = std::function<std::optional<process>()>;

    // The HTTP endpoint's address cannot be listened on.
    struct listen_error : std::system_error {
        using std::system_error::system_error;
    };

    // Starts the HTTP endpoint (throws listen_error when it cannot listen) and the watchdog pings.
    operations(boost::asio::io_context& io, settings s, failover const& core, process_view nodeos);
    ~operations();
    operations(operations const&) = delete;
    operations& operator=(operations const&) = delete;

    counters& stats() { return stats_; }

    // Every action of every step of the core, in order.
    void observe(action const& a);
    // After the actions of one step: READY=1, with the first STATUS, once nodeos runs.
    void step_done();
    void close();

    status_view snapshot() const;

private:
    http_reply answer(std::string_view method, std::string_view path);
    void notify_status(bool ready);
    void ping_watchdog();
    struct timers;

    settings settings_;
    failover const& core_;
    counters stats_;
    notifier notify_;
    std::unique_ptr<http_server> http_;
    std::unique_ptr<timers> timers_;
    std::optional<transition> last_transition_;
    process_view nodeos_;
    bool ready_sent_ = false;
};

}  // namespace nm

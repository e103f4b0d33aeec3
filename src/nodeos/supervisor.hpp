#pragma once
// nodeos as the monitor runs it: started (spawn_process: its own process group, dying with
// the monitor), its output relayed line by line with the dirty-database line noticed, its
// process group signalled, and its end told once as a fact, after its last lines.
//
//   start(argv, tag) ─▶ spawn_process ─▶ output_relay ─▶ on_line(tagged line)
//   SIGCHLD ─▶ reap(): waitpid(-1) ─▶ nodeos: on_reaped(pid, how), then its exit, once its
//                      output has ended (or half a second after the reap) ─▶ on_exit(fact)
//                   └─▶ any other child ─▶ on_other_exit(pid, status) (the hooks' runs)
//
// A system call the fence depends on (kill, waitpid) that fails throws std::system_error:
// the driver's fail-safe then kills nodeos (kill_now()) and exits.
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/facts.hpp"

namespace nm {

class output_relay;

class nodeos_supervisor {
public:
    struct handlers {
        // Each line of nodeos's output, with the tag of the nodeos that wrote it (the lines of
        // one that has exited may still come after the next has started).
        std::function<void(std::string_view tag, std::string_view line)> on_line;
        std::function<void(pid_t pid, std::string const& how)> on_reaped;  // at once
        std::function<void(fact::nodeos_exited const&)> on_exit;           // after its last lines
        // A child that is not nodeos ended; reaped here, since waitpid(-1) reaps them all.
        std::function<void(pid_t pid, int wait_status)> on_other_exit;
    };

    // What runs now.
    struct running {
        pid_t pid;
        time_point since;
    };

    nodeos_supervisor(boost::asio::io_context& io, handlers h);
    ~nodeos_supervisor();
    nodeos_supervisor(nodeos_supervisor const&) = delete;
    nodeos_supervisor& operator=(nodeos_supervisor const&) = delete;

    // Starts nodeos; its lines are handed on with tag. Returns its pid, or throws
    // std::system_error when it cannot be started.
    pid_t start(std::vector<std::string> const& argv, std::string tag);
    // Sends sig to nodeos's process group; false when none runs.
    bool signal(int sig);
    // Reaps every child that has ended (on SIGCHLD).
    void reap();
    std::optional<running> current() const;
    // The fail-safe: SIGKILL to nodeos's process group, then up to a second for it to go.
    void kill_now();
    void close();

private:
    void report_exit();

    boost::asio::io_context& io_;
    handlers handlers_;
    pid_t pid_ = 0;
    time_point since_{};
    // The current child's output: whether it said its database is dirty, and whether it has
    // ended (its exit is told after its last line, or half a second after the reap).
    std::uint64_t generation_ = 0;
    bool said_dirty_ = false;
    bool output_ended_ = false;
    std::weak_ptr<output_relay> output_;
    std::optional<fact::nodeos_exited> exit_waiting_;
    boost::asio::steady_timer exit_wait_;
    bool closed_ = false;
};

}  // namespace nm

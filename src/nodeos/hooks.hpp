#pragma once
// Operators' role-change hooks (--on-role-change CMD): programs run beside the loop when
// this node's role changes, e.g. to switch the finalizer key on chain after a promotion or
// to page someone. A hook never delays a fence or a takeover: it is started and left to
// run (not even its exec is waited for); its output, its exec and its end come back as
// events on the loop, and a bound kills it.
//
//   role_changed ─▶ per command, a queue: one run at a time, in order ─▶ start_process
//                                                                           │
//   output_relay ── "[hook N] " lines ─▶ on_line                            │
//   driver's reaper ── on_exit(pid, status) ─▶ on_done, then the next run ◀─┤
//   steady_timer at the bound ── SIGKILL to the run's process group ────────┘
//
// How CMD runs: /bin/sh -c 'CMD "$@"' nodeos-monitor-hook NEW OLD GROUP NODE
//   - CMD is shell text from the operator's config. The four values are never put into
//     it: they are positional parameters, appended as arguments to CMD's last command and
//     $1 to $4 inside it. A CMD that uses $1..$4 itself and wants no extra arguments ends
//     in " #". (A CMD ending in ";", "&" or "|" would run the arguments as a command.)
//   - The same four in the environment: NM_ROLE, NM_OLD_ROLE, NM_GROUP, NM_NODE (replacing
//     any the monitor inherited); the rest of the monitor's environment is passed on.
//   - The process: its own process group, killed with the monitor (PR_SET_PDEATHSIG),
//     a clean signal mask and dispositions, stdin /dev/null, stdout and stderr relayed to
//     the log line by line, no other inherited descriptor (start_process, output_relay).
//   - The bound is hard: SIGKILL to the whole process group. When the hook's own process
//     ends, whatever it left in its process group is killed too, so nothing a hook starts
//     outlives its run (something meant to last belongs to systemd: systemd-run).
//   - A run is reported once its process is reaped and its output has ended, so that its
//     last lines come before its verdict; should something outside its process group keep
//     the output open, the run is reported half a second after the reap all the same.
//
// Runs of one command follow the order of the role changes, one at a time (a demotion's
// hook never overtakes the promotion's); different commands run independently. At most
// max_waiting runs wait per command; past that the oldest waiting one is dropped, and
// reported. The driver owns SIGCHLD and waitpid: it hands every reaped pid to on_exit().
//
// Callbacks come from the loop's handlers and from on_exit(), never from role_changed()
// or close(), and none after close().
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nm {

// How one run of a hook ended.
struct hook_result {
    std::size_t index = 0;  // the command's place among the --on-role-change flags, from 1
    std::string command;
    std::string new_role, old_role;  // the change this run was for
    std::optional<int> exit_code;    // it exited (127: the shell did not find the command)
    std::optional<int> signal;       // it was killed by this signal
    bool timed_out = false;          // killed at the bound (signal is then SIGKILL)
    bool dropped = false;            // never started: more changes came than the queue holds
    std::string error;               // never ran: no process (fork, pipe), or no shell (exec)
    std::chrono::milliseconds took{0};

    bool succeeded() const { return exit_code == 0; }
};

// One sentence for the log: "hook 1 (notify.sh) for standby -> active: exit code 0 after 12 ms".
std::string describe(hook_result const& r);

class hook_runner {
public:
    static constexpr std::size_t max_waiting = 8;  // runs waiting per command

    // commands: CMD each, not blank. timeout bounds each run (positive). on_line gets each
    // line of output, tagged "[hook N] "; on_done gets each run's end. shell runs the
    // commands (a parameter for the tests). Throws std::invalid_argument.
    hook_runner(boost::asio::io_context& io, std::vector<std::string> commands, std::chrono::milliseconds timeout,
                std::function<void(std::string_view line)> on_line, std::function<void(hook_result const&)> on_done,
                std::string shell = "/bin/sh");
    ~hook_runner();  // close()
    hook_runner(hook_runner const&) = delete;
    hook_runner& operator=(hook_runner const&) = delete;

    // Queues one run of every command for this change and starts those that are idle.
    void role_changed(std::string_view new_role, std::string_view old_role, std::string_view group,
                      std::string_view node);
    // The driver reaped pid: true when it was a hook's (also one killed by close()).
    bool on_exit(pid_t pid, int wait_status);
    // Kills every running hook (SIGKILL to its process group) and drops every waiting run.
    void close();
    // Runs under way: started and not yet reported.
    std::size_t running() const;

private:
    struct state;
    std::shared_ptr<state> state_;  // shared with the handlers on the loop
};

}  // namespace nm

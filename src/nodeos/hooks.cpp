#include "nodeos/hooks.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <system_error>

#include "core/text.hpp"
#include "nodeos/child.hpp"

namespace nm {
namespace asio = boost::asio;
using std::chrono::steady_clock;

namespace {

// The hook's $0, as shells and ps show it.
constexpr char const* hook_name = "nodeos-monitor-hook";
constexpr std::string_view env_names[] = {"NM_ROLE=", "NM_OLD_ROLE=", "NM_GROUP=", "NM_NODE="};

struct change {
    std::string new_role, old_role, group, node;
};

std::chrono::milliseconds since(steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t);
}

// The monitor's environment without the hook's own names, then the hook's values.
std::vector<std::string> hook_environment(change const& c) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        bool ours = std::any_of(std::begin(env_names), std::end(env_names),
                                [&](std::string_view name) { return entry.starts_with(name); });
        if (!ours) env.emplace_back(entry);
    }
    env.push_back(cat(env_names[0], c.new_role));
    env.push_back(cat(env_names[1], c.old_role));
    env.push_back(cat(env_names[2], c.group));
    env.push_back(cat(env_names[3], c.node));
    return env;
}

// Trailing white space would put "$@" on a line of its own, where it would run $1.
std::string trimmed(std::string s) {
    auto end = s.find_last_not_of(" \t\r\n");
    s.erase(end == std::string::npos ? 0 : end + 1);
    return s;
}

}  // namespace

std::string describe(hook_result const& r) {
    auto head = cat("hook ", r.index, " (", r.command, ") for ", r.old_role, " -> ", r.new_role, ": ");
    if (r.dropped) return cat(head, "dropped: more than ", hook_runner::max_waiting, " runs were waiting");
    if (!r.error.empty()) return cat(head, "could not start: ", r.error);
    auto after = cat(" after ", r.took.count(), " ms");
    if (r.timed_out) return cat(head, "still running at the bound: killed", after);
    if (r.exit_code) return cat(head, "exit code ", *r.exit_code, after);
    if (r.signal) {
        char const* abbrev = sigabbrev_np(*r.signal);
        return cat(head, "killed by signal ", *r.signal, " (", abbrev ? abbrev : "?", ")", after);
    }
    return cat(head, "ended", after);
}

// The read end of a run's exec report (start_process) and the errno it may bring.
struct exec_report {
    explicit exec_report(asio::io_context& io) : pipe(io) {}
    asio::posix::stream_descriptor pipe;
    int child_errno = 0;
};

// One --on-role-change command: its queue and its one run at a time.
struct hook_slot {
    // A run ends when its process has been reaped, its exec reported and its output ended
    // (or, should something outside its group hold the output, output_grace after the reap).
    struct run {
        std::uint64_t id = 0;
        pid_t pid = 0;
        change what;
        steady_clock::time_point started;
        std::shared_ptr<output_relay> relay;
        bool killed_at_bound = false;
        std::optional<int> wait_status;  // reaped
        std::chrono::milliseconds took{0};
        bool output_ended = false;
        bool exec_known = false;
        std::optional<std::string> exec_error;  // the shell could not be executed
    };

    hook_slot(asio::io_context& io, std::size_t i, std::string cmd)
        : index(i),
          command(std::move(cmd)),
          script(trimmed(command) + " \"$@\""),
          tag(cat("[hook ", i, "] ")),
          timer(io) {}

    std::size_t index;
    std::string command;  // as the operator wrote it
    std::string script;   // what the shell runs
    std::string tag;
    std::deque<change> waiting;
    std::optional<run> current;
    bool reporting_failure = false;  // a run that could not start is being reported: the next waits
    asio::steady_timer timer;        // the bound while the process runs, then output_grace
    std::uint64_t runs = 0;
    std::uint64_t armed = 0;  // tells a stale expiry (already queued when re-armed) from the current one
};

struct hook_runner::state : std::enable_shared_from_this<state> {
    static constexpr std::chrono::milliseconds output_grace{500};

    asio::io_context& io;
    std::chrono::milliseconds timeout;
    std::function<void(std::string_view)> on_line;
    std::function<void(hook_result const&)> on_done;
    std::string shell;
    std::vector<std::unique_ptr<hook_slot>> slots;
    std::vector<pid_t> killed_at_close;  // not reaped yet, still hooks' for on_exit()
    bool closed = false;

    state(asio::io_context& i, std::chrono::milliseconds t, std::function<void(std::string_view)> l,
          std::function<void(hook_result const&)> d, std::string sh)
        : io(i), timeout(t), on_line(std::move(l)), on_done(std::move(d)), shell(std::move(sh)) {}

    hook_result result_for(hook_slot const& s, change const& c) const {
        hook_result r;
        r.index = s.index;
        r.command = s.command;
        r.new_role = c.new_role;
        r.old_role = c.old_role;
        return r;
    }

    // Reports from a handler of its own, so that no callback runs inside role_changed().
    void report_later(hook_result r, hook_slot* then_start = nullptr) {
        asio::post(io, [weak = weak_from_this(), r = std::move(r), then_start] {
            auto self = weak.lock();
            if (!self || self->closed) return;
            if (then_start) then_start->reporting_failure = false;
            self->on_done(r);
            if (then_start && !self->closed) self->start_next(*then_start);
        });
    }

    void enqueue(hook_slot& s, change const& c) {
        s.waiting.push_back(c);
        if (s.waiting.size() > hook_runner::max_waiting) {
            auto r = result_for(s, s.waiting.front());
            r.dropped = true;
            s.waiting.pop_front();
            report_later(std::move(r));
        }
        start_next(s);
    }

    void start_next(hook_slot& s) {
        if (closed || s.current || s.reporting_failure || s.waiting.empty()) return;
        auto c = std::move(s.waiting.front());
        s.waiting.pop_front();
        auto const started = steady_clock::now();
        auto const id = ++s.runs;
        try {
            auto relay = std::make_shared<output_relay>(
                io,
                [weak = weak_from_this(), tag = s.tag](std::string_view line) {
                    auto self = weak.lock();
                    if (self && !self->closed) self->on_line(cat(tag, line));
                },
                [weak = weak_from_this(), slot = &s, id] {
                    if (auto self = weak.lock()) self->output_ended(*slot, id);
                });
            auto report = std::make_shared<exec_report>(io);
            std::vector<std::string> argv{shell, "-c", s.script, hook_name, c.new_role, c.old_role, c.group, c.node};
            // Not spawn_process: that would wait on the loop for the exec of the shell.
            auto started_as = start_process(argv, relay->write_end(), hook_environment(c));
            relay->start();
            // From a value: clang 14 deems a nested struct with member initializers not default
            // constructible inside its enclosing class, and emplace() would not compile there.
            auto& run = s.current.emplace(hook_slot::run{});
            run.id = id;
            run.pid = started_as.pid;
            run.what = std::move(c);
            run.started = started;
            run.relay = std::move(relay);
            boost::system::error_code ec;
            report->pipe.assign(started_as.report_fd, ec);
            if (ec) {
                ::close(started_as.report_fd);
                run.exec_known = true;  // unverified; a failed exec still shows as exit code 127
            } else {
                watch_exec(s, id, std::move(report));
            }
        } catch (std::exception const& e) {
            // A pipe or the fork failed: a failed run, reported on the loop.
            auto r = result_for(s, c);
            r.error = e.what();
            r.took = since(started);
            s.reporting_failure = true;
            report_later(std::move(r), &s);
            return;
        }
        arm(s, timeout);
    }

    void watch_exec(hook_slot& s, std::uint64_t id, std::shared_ptr<exec_report> report) {
        auto buffer = asio::buffer(&report->child_errno, sizeof report->child_errno);
        auto& pipe = report->pipe;
        pipe.async_read_some(buffer, [weak = weak_from_this(), slot = &s, id, report = std::move(report)](
                                         boost::system::error_code ec, std::size_t n) {
            auto self = weak.lock();
            if (!self) return;
            std::optional<int> failed;
            if (!ec && n > 0) failed = report->child_errno;  // else end of file: the shell runs
            self->exec_reported(*slot, id, failed);
        });
    }

    void exec_reported(hook_slot& s, std::uint64_t id, std::optional<int> failed) {
        if (closed || !s.current || s.current->id != id) return;
        s.current->exec_known = true;
        if (failed) s.current->exec_error = cat("exec ", shell, ": ", std::system_category().message(*failed));
        if (ended(*s.current)) finish(s);
    }

    static bool ended(hook_slot::run const& run) { return run.wait_status && run.exec_known && run.output_ended; }

    void arm(hook_slot& s, std::chrono::milliseconds after) {
        s.timer.expires_after(after);
        s.timer.async_wait([weak = weak_from_this(), slot = &s, n = ++s.armed](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->closed || slot->armed != n || !slot->current) return;
            self->timer_fired(*slot);
        });
    }

    void disarm(hook_slot& s) {
        ++s.armed;
        s.timer.cancel();
    }

    void timer_fired(hook_slot& s) {
        auto& run = *s.current;
        if (!run.wait_status) {
            // Not reaped yet (on_exit has not come), so the group is still this run's.
            ::kill(-run.pid, SIGKILL);
            run.killed_at_bound = true;
            return;  // on_exit() follows
        }
        if (!run.output_ended) {
            on_line(cat(s.tag, "(its output is still open ", output_grace.count(),
                        " ms after it ended, held outside its process group: no longer waited for)"));
        }
        if (!closed) finish(s);
    }

    bool exited(pid_t pid, int status) {
        auto it = std::find_if(slots.begin(), slots.end(), [&](auto const& s) {
            return s->current && !s->current->wait_status && s->current->pid == pid;
        });
        if (it == slots.end()) return false;
        auto& s = **it;
        auto& run = *s.current;
        run.wait_status = status;
        run.took = since(run.started);
        disarm(s);
        // Whatever the hook left in its group dies with it. The pgid cannot have been reused
        // since the reap: the group still exists while anything is left in it.
        if (::kill(-pid, 0) == 0 && ::kill(-pid, SIGKILL) == 0) {
            on_line(cat(s.tag, "(the hook has exited: what it left running in its process group is killed)"));
            if (closed) return true;  // closed from on_line
        }
        if (ended(run)) {
            finish(s);
        } else {
            arm(s, output_grace);  // its last lines are on their way: they come before its verdict
        }
        return true;
    }

    void output_ended(hook_slot& s, std::uint64_t id) {
        if (closed || !s.current || s.current->id != id) return;
        s.current->output_ended = true;
        if (ended(*s.current)) finish(s);
    }

    void finish(hook_slot& s) {
        disarm(s);
        auto run = std::move(*s.current);
        s.current.reset();
        int const status = *run.wait_status;
        auto r = result_for(s, run.what);
        r.took = run.took;
        if (run.exec_error) {
            r.error = *run.exec_error;  // its exit code 127 is ours, not the hook's
        } else {
            if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
            if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
            r.timed_out = run.killed_at_bound && WIFSIGNALED(status);
        }
        on_done(r);
        if (!closed) start_next(s);
    }

    void close() {
        if (closed) return;
        closed = true;
        for (auto& s : slots) {
            s->waiting.clear();
            disarm(*s);
            if (s->current && !s->current->wait_status) {
                ::kill(-s->current->pid, SIGKILL);
                killed_at_close.push_back(s->current->pid);
            }
            s->current.reset();
        }
        // on_line and on_done stay: close() may be called from inside one of them.
    }
};

hook_runner::hook_runner(asio::io_context& io, std::vector<std::string> commands, std::chrono::milliseconds timeout,
                         std::function<void(std::string_view line)> on_line,
                         std::function<void(hook_result const&)> on_done, std::string shell)
    : state_(std::make_shared<state>(io, timeout, std::move(on_line), std::move(on_done), std::move(shell))) {
    if (timeout <= std::chrono::milliseconds::zero()) throw std::invalid_argument("hook timeout must be positive");
    for (std::size_t i = 0; i < commands.size(); ++i) {
        // A blank CMD would leave "$@" alone, which runs the new role as a command.
        if (trimmed(commands[i]).empty()) throw std::invalid_argument(cat("hook ", i + 1, ": empty command"));
        state_->slots.push_back(std::make_unique<hook_slot>(io, i + 1, std::move(commands[i])));
    }
}

hook_runner::~hook_runner() { close(); }

void hook_runner::role_changed(std::string_view new_role, std::string_view old_role, std::string_view group,
                               std::string_view node) {
    if (state_->closed) return;
    change c{std::string(new_role), std::string(old_role), std::string(group), std::string(node)};
    for (auto& s : state_->slots) state_->enqueue(*s, c);
}

bool hook_runner::on_exit(pid_t pid, int wait_status) {
    auto keep = state_;  // on_done may destroy this runner
    auto& closing = keep->killed_at_close;
    if (auto it = std::find(closing.begin(), closing.end(), pid); it != closing.end()) {
        closing.erase(it);
        return true;
    }
    return keep->exited(pid, wait_status);
}

void hook_runner::close() { state_->close(); }

std::size_t hook_runner::running() const {
    auto const& slots = state_->slots;
    auto under_way = std::count_if(slots.begin(), slots.end(), [](auto const& s) { return s->current.has_value(); });
    return static_cast<std::size_t>(under_way);
}

}  // namespace nm

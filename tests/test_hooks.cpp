// Operators' role-change hooks with real shells and real signals. The test reaps as the
// driver does: SIGCHLD through a signalfd, waitpid(-1, WNOHANG), every pid offered to
// on_exit(). Every wait is bounded and says what it expected.
#define BOOST_TEST_MODULE hooks
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/algorithm/string/join.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nodeos/child.hpp"
#include "nodeos/hooks.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace nm;

namespace {

std::string read_file(fs::path const& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// What a result holds, -1 for nothing: printable where std::optional is not.
int code(hook_result const& r) { return r.exit_code.value_or(-1); }
int sig(hook_result const& r) { return r.signal.value_or(-1); }

// A process is gone when it no longer exists or is a zombie (whoever adopted it may not
// have reaped it yet).
bool gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return true;
    auto close_paren = text.rfind(')');
    return close_paren != std::string::npos && close_paren + 2 < text.size() && text[close_paren + 2] == 'Z';
}

// One io_context, a temporary directory (NM_TEST_DIR for the hook scripts), a reaper on
// SIGCHLD like the driver's, and a hook_runner whose callbacks are recorded in order.
struct rig {
    asio::io_context io{1};
    asio::posix::stream_descriptor signals{io};
    fs::path dir;
    std::unique_ptr<hook_runner> hooks;
    std::vector<std::string> events;  // "line ..." and "done N ..." in the order they came
    std::vector<std::string> lines;
    std::vector<hook_result> results;
    std::vector<pid_t> claimed;    // reaped pids on_exit() said were hooks
    std::vector<pid_t> unclaimed;  // reaped pids it said were not

    rig() {
        ::signal(SIGPIPE, SIG_IGN);  // as the monitor: a hook must not inherit it
        sigset_t set;
        ::sigemptyset(&set);
        ::sigaddset(&set, SIGCHLD);
        ::sigprocmask(SIG_BLOCK, &set, nullptr);
        int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        BOOST_REQUIRE_MESSAGE(fd >= 0, "signalfd");
        signals.assign(fd);
        wait_signals();
        char pattern[] = "/tmp/nm-hooks-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(pattern));
        dir = pattern;
        ::setenv("NM_TEST_DIR", dir.c_str(), 1);
    }

    ~rig() {
        hooks.reset();  // close(): kills what still runs
        // Collect what close() killed, so that no zombie is left to the next test.
        auto deadline = steady::now() + 2s;
        while (steady::now() < deadline && ::waitpid(-1, nullptr, WNOHANG) >= 0) std::this_thread::sleep_for(5ms);
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }

    void start(std::vector<std::string> commands, std::chrono::milliseconds timeout = 10s,
               std::string shell = "/bin/sh") {
        hooks = std::make_unique<hook_runner>(
            io, std::move(commands), timeout,
            [this](std::string_view line) {
                lines.emplace_back(line);
                events.push_back("line " + std::string(line));
            },
            [this](hook_result const& r) {
                results.push_back(r);
                events.push_back("done " + std::to_string(r.index) + " " + r.new_role);
                BOOST_TEST_MESSAGE(describe(r));
            },
            std::move(shell));
    }

    // A hook script in the test's directory.
    std::string script(std::string const& name, std::string const& body) {
        auto path = dir / name;
        std::ofstream(path) << "#!/bin/sh\n" << body;
        fs::permissions(path, fs::perms::owner_all);
        return path.string();
    }

    void wait_signals() {
        signals.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
            if (ec) return;
            signalfd_siginfo info{};
            while (::read(signals.native_handle(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {}
            reap();
            wait_signals();
        });
    }

    void reap() {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            if (hooks && hooks->on_exit(pid, status)) {
                claimed.push_back(pid);
            } else {
                unclaimed.push_back(pid);
            }
        }
    }

    // Runs the loop until done() holds or the limit passes. done() is also checked every
    // 10 ms, for what happens off the loop (a file a hook writes).
    bool run_until(std::function<bool()> const& done, steady::duration limit = 10s) {
        io.restart();
        auto const deadline = steady::now() + limit;
        asio::steady_timer poll(io);
        std::function<void()> wake = [&] {
            poll.expires_after(10ms);
            poll.async_wait([&](boost::system::error_code ec) {
                if (!ec) wake();
            });
        };
        wake();
        while (!done() && steady::now() < deadline) io.run_one_until(deadline);
        poll.cancel();
        io.poll();  // the cancelled wait, so that nothing refers to poll once it is gone
        return done();
    }

    void run_for(steady::duration d) {
        asio::steady_timer t(io, d);
        bool fired = false;
        t.async_wait([&](boost::system::error_code) { fired = true; });
        run_until([&] { return fired; }, d + 5s);
    }

    bool results_reach(std::size_t n, steady::duration limit = 10s) {
        return run_until([&] { return results.size() >= n; }, limit);
    }

    bool file_exists(std::string const& name, steady::duration limit = 10s) {
        return run_until([&] { return fs::exists(dir / name) && !read_file(dir / name).empty(); }, limit);
    }

    bool wait_gone(pid_t pid, steady::duration limit = 5s) {
        return run_until([&] { return gone(pid); }, limit);
    }

    pid_t pid_in(std::string const& name) { return static_cast<pid_t>(std::stol(read_file(dir / name))); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(arguments_and_environment_arrive_as_given) {
    rig r;
    ::setenv("NM_ROLE", "stale value the hook must not see", 1);
    int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: the hook must still not get it
    BOOST_REQUIRE(leaked >= 0);
    auto hook = r.script("args.sh", R"sh(out="$NM_TEST_DIR/args.out"
ls /proc/self/fd > "$NM_TEST_DIR/fds.out"
grep -E '^Sig(Blk|Ign):' /proc/self/status > "$NM_TEST_DIR/signals.out"
{
    printf 'argc=%s\n' "$#"
    for a in "$@"; do printf 'arg=[%s]\n' "$a"; done
    printf 'NM_ROLE=[%s]\n' "$NM_ROLE"
    printf 'NM_OLD_ROLE=[%s]\n' "$NM_OLD_ROLE"
    printf 'NM_GROUP=[%s]\n' "$NM_GROUP"
    printf 'NM_NODE=[%s]\n' "$NM_NODE"
    printf 'roles=%s\n' "$(env | grep -c '^NM_ROLE=')"
} > "$out"
)sh");
    // Would the shell interpret any of these, it would create a file or change the value.
    std::string const new_role = R"v(active; touch "$NM_TEST_DIR/pwned1")v";
    std::string const old_role = R"v($(touch "$NM_TEST_DIR/pwned2") `touch pwned3`)v";
    std::string const group = R"v(group with  spaces 'single' "double" \back)v";
    std::string const node = R"v(* ?  | > pwned4 & $HOME ${NM_TEST_DIR} %s)v";

    r.start({hook});
    r.hooks->role_changed(new_role, old_role, group, node);
    BOOST_REQUIRE_MESSAGE(r.results_reach(1), "expected the hook to end within 10 s");
    ::close(leaked);
    ::unsetenv("NM_ROLE");

    BOOST_TEST(code(r.results[0]) == 0);
    auto out = lines_of(read_file(r.dir / "args.out"));
    std::vector<std::string> const expected{
        "argc=4",
        "arg=[" + new_role + "]",
        "arg=[" + old_role + "]",
        "arg=[" + group + "]",
        "arg=[" + node + "]",
        "NM_ROLE=[" + new_role + "]",
        "NM_OLD_ROLE=[" + old_role + "]",
        "NM_GROUP=[" + group + "]",
        "NM_NODE=[" + node + "]",
        "roles=1",
    };
    BOOST_TEST(out == expected, boost::test_tools::per_element());
    for (auto name : {"pwned1", "pwned2", "pwned3", "pwned4"}) {
        BOOST_TEST(!fs::exists(r.dir / name), name << ": a value was interpreted by the shell");
        BOOST_TEST(!fs::exists(fs::current_path() / name), name << ": a value was interpreted by the shell");
    }
    // ls itself opens one descriptor (3) to read the directory; nothing else is inherited.
    auto fds = lines_of(read_file(r.dir / "fds.out"));
    BOOST_TEST(fds.size() <= 4u, "descriptors in the hook: " << read_file(r.dir / "fds.out"));
    BOOST_TEST((std::find(fds.begin(), fds.end(), std::to_string(leaked)) == fds.end()),
               "the monitor's descriptor " << leaked << " leaked into the hook");
    auto sig = lines_of(read_file(r.dir / "signals.out"));
    BOOST_TEST(sig == (std::vector<std::string>{"SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(output_is_relayed_tagged_and_every_end_reported) {
    rig r;
    auto lines = r.script("lines.sh", "printf 'one\\ntwo\\n'\nprintf 'three, no newline'\n");
    auto fails = r.script("fails.sh", "echo \"from two: $1 after $2\"\nexit 3\n");
    r.start({lines, fails, "exec sh -c 'kill -TERM $$'"});
    r.hooks->role_changed("active", "standby", "g", "n");
    BOOST_REQUIRE_MESSAGE(r.results_reach(3), "expected three hooks to end within 10 s, got " << r.results.size());

    auto by_index = [&](std::size_t i) -> hook_result const& {
        auto it = std::find_if(r.results.begin(), r.results.end(), [&](auto const& x) { return x.index == i; });
        BOOST_REQUIRE(it != r.results.end());
        return *it;
    };
    BOOST_TEST(code(by_index(1)) == 0);
    BOOST_TEST(by_index(1).succeeded());
    BOOST_TEST(code(by_index(2)) == 3);
    BOOST_TEST(!by_index(2).succeeded());
    BOOST_TEST(!by_index(3).exit_code.has_value());
    BOOST_TEST(sig(by_index(3)) == SIGTERM);
    BOOST_TEST(!by_index(3).timed_out);
    for (auto const& x : r.results) {
        BOOST_TEST(x.new_role == "active");
        BOOST_TEST(x.old_role == "standby");
        BOOST_TEST(x.error.empty());
    }
    BOOST_TEST(describe(by_index(2)).find("exit code 3") != std::string::npos, describe(by_index(2)));
    BOOST_TEST(describe(by_index(3)).find("killed by signal 15 (TERM)") != std::string::npos, describe(by_index(3)));

    // Each hook's lines, tagged, and before its verdict (even the one without a newline).
    auto pos = [&](std::string const& e) { return std::find(r.events.begin(), r.events.end(), e) - r.events.begin(); };
    auto const done_1 = pos("done 1 active"), done_2 = pos("done 2 active");
    BOOST_TEST(pos("line [hook 1] one") < pos("line [hook 1] two"));
    BOOST_TEST(pos("line [hook 1] two") < pos("line [hook 1] three, no newline"));
    BOOST_TEST(pos("line [hook 1] three, no newline") < done_1);
    BOOST_TEST(pos("line [hook 2] from two: active after standby") < done_2);
    BOOST_TEST(r.lines.size() == 4u, "events: " << boost::algorithm::join(r.events, " / "));
}

BOOST_AUTO_TEST_CASE(a_slow_hook_is_killed_at_its_bound_with_its_group_and_the_loop_keeps_time) {
    rig r;
    auto slow = r.script("slow.sh", R"sh(sleep 30 &
echo $! > "$NM_TEST_DIR/child.pid"
echo $$ > "$NM_TEST_DIR/hook.pid"
wait
)sh");
    auto const bound = 500ms;
    r.start({slow}, bound);

    // A timer on the same loop, every 20 ms: a blocked loop would show a gap of the bound.
    asio::steady_timer ticker(r.io);
    steady::duration worst{};
    int ticks = 0;
    auto last = steady::now();
    std::function<void()> tick = [&] {
        ticker.expires_after(20ms);
        ticker.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            auto now = steady::now();
            worst = std::max(worst, now - last);
            last = now;
            ++ticks;
            tick();
        });
    };
    tick();

    auto const began = steady::now();
    r.hooks->role_changed("active", "standby", "g", "n");
    BOOST_REQUIRE_MESSAGE(r.file_exists("child.pid", 5s) && r.file_exists("hook.pid", 5s),
                          "expected the hook to start and write its pids within 5 s");
    BOOST_REQUIRE_MESSAGE(r.results_reach(1, 5s), "expected the hook to be killed at its 500 ms bound, within 5 s");
    auto const waited = steady::now() - began;
    ticker.cancel();

    auto const& x = r.results[0];
    BOOST_TEST(x.timed_out);
    BOOST_TEST(sig(x) == SIGKILL);
    BOOST_TEST(!x.exit_code.has_value());
    BOOST_TEST(x.took >= bound);
    BOOST_TEST(x.took < 3s);
    BOOST_TEST(describe(x).find("killed") != std::string::npos, describe(x));
    auto const worst_ms = std::chrono::duration_cast<std::chrono::milliseconds>(worst).count();
    BOOST_TEST(worst_ms < 200, "the loop stalled for " << worst_ms << " ms while the hook ran");
    BOOST_TEST(ticks >= static_cast<int>(waited / 20ms / 3), ticks << " ticks of 20 ms in " << waited / 1ms << " ms");

    auto const hook_pid = r.pid_in("hook.pid"), child_pid = r.pid_in("child.pid");
    BOOST_TEST(r.wait_gone(hook_pid), "the hook's shell " << hook_pid << " still runs");
    BOOST_TEST(r.wait_gone(child_pid), "the hook's child " << child_pid << " (sleep 30) still runs");
    BOOST_TEST(r.hooks->running() == 0u);
}

BOOST_AUTO_TEST_CASE(what_a_hook_leaves_in_its_group_dies_when_it_ends) {
    rig r;
    auto leaves = r.script("leaves.sh", R"sh(sleep 30 &
echo $! > "$NM_TEST_DIR/child.pid"
exit 0
)sh");
    r.start({leaves});
    r.hooks->role_changed("active", "standby", "g", "n");
    BOOST_REQUIRE_MESSAGE(r.results_reach(1), "expected the hook to end within 10 s");
    BOOST_TEST(code(r.results[0]) == 0);
    BOOST_TEST(!r.results[0].timed_out);
    auto const child_pid = r.pid_in("child.pid");
    BOOST_TEST(r.wait_gone(child_pid), "what the hook left running (" << child_pid << ") still runs");
    BOOST_TEST(r.lines.size() == 1u);
    if (!r.lines.empty()) BOOST_TEST(r.lines[0].starts_with("[hook 1] (the hook has exited"), r.lines[0]);
}

BOOST_AUTO_TEST_CASE(output_held_open_outside_the_group_delays_the_verdict_half_a_second_at_most) {
    rig r;
    // A process in a session of its own keeps the hook's output open after the hook ends.
    auto holds = r.script("holds.sh", R"sh(setsid sh -c 'echo $$ > "$NM_TEST_DIR/holder.pid"; exec sleep 20' &
while [ ! -s "$NM_TEST_DIR/holder.pid" ]; do sleep 0.01; done
echo bye
)sh");
    r.start({holds});
    r.hooks->role_changed("active", "standby", "g", "n");
    auto const began = steady::now();
    BOOST_REQUIRE_MESSAGE(r.results_reach(1, 5s), "expected the run reported within 5 s, its output open or not");
    auto const waited = steady::now() - began;
    auto const holder = r.pid_in("holder.pid");
    ::kill(holder, SIGKILL);
    BOOST_TEST(code(r.results[0]) == 0);
    BOOST_TEST(waited >= 500ms, "reported after " << waited / 1ms << " ms, before the output's grace");
    BOOST_TEST(waited < 3s, "reported after " << waited / 1ms << " ms");
    BOOST_REQUIRE_MESSAGE(r.events.size() == 3u, "events: " << boost::algorithm::join(r.events, " / "));
    BOOST_TEST(r.events[0] == "line [hook 1] bye");
    BOOST_TEST(r.events[1].starts_with("line [hook 1] (its output is still open"), r.events[1]);
    BOOST_TEST(r.events[2] == "done 1 active");
    BOOST_TEST(r.wait_gone(holder), "the holder " << holder << " still runs");
}

BOOST_AUTO_TEST_CASE(runs_of_one_command_keep_the_order_of_changes_one_at_a_time_others_run_beside) {
    rig r;
    // Hook 1's first run waits until hook 2 has run twice: hook 2 does not wait for hook 1.
    auto first = r.script("first.sh", R"sh(echo "start $1" >> "$NM_TEST_DIR/first.log"
if [ "$1" = active ]; then
    i=0
    while [ ! -e "$NM_TEST_DIR/go" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
fi
sleep 0.1
echo "end $1" >> "$NM_TEST_DIR/first.log"
)sh");
    auto second = r.script("second.sh", R"sh(echo "$1" >> "$NM_TEST_DIR/second.log"
if [ "$1" = standby ]; then touch "$NM_TEST_DIR/go"; fi
)sh");
    r.start({first, second});
    r.hooks->role_changed("active", "standby", "g", "n");
    r.hooks->role_changed("standby", "active", "g", "n");
    BOOST_TEST(r.hooks->running() == 2u);
    BOOST_REQUIRE_MESSAGE(r.results_reach(4), "expected four runs to end within 10 s, got " << r.results.size());

    BOOST_TEST(lines_of(read_file(r.dir / "first.log")) ==
                   (std::vector<std::string>{"start active", "end active", "start standby", "end standby"}),
               boost::test_tools::per_element());
    BOOST_TEST(lines_of(read_file(r.dir / "second.log")) == (std::vector<std::string>{"active", "standby"}),
               boost::test_tools::per_element());
    std::vector<std::string> const order{"done 2 active", "done 2 standby", "done 1 active", "done 1 standby"};
    BOOST_TEST(r.events == order, boost::test_tools::per_element());
    for (auto const& x : r.results) BOOST_TEST(code(x) == 0, describe(x));
}

BOOST_AUTO_TEST_CASE(past_the_queue_bound_the_oldest_waiting_run_is_dropped_and_reported) {
    rig r;
    auto hook = r.script("log.sh", "echo \"$1\" >> \"$NM_TEST_DIR/runs.log\"\n");
    r.start({hook});
    // r1 starts; r2..r9 wait (8); r10 pushes r2 out.
    for (int i = 1; i <= 10; ++i) r.hooks->role_changed("r" + std::to_string(i), "x", "g", "n");
    BOOST_TEST(r.results.empty(), "no callback inside role_changed()");
    BOOST_REQUIRE_MESSAGE(r.results_reach(10), "expected 9 runs and 1 drop within 10 s, got " << r.results.size());

    auto const& dropped = r.results[0];
    BOOST_TEST(dropped.dropped);
    BOOST_TEST(dropped.new_role == "r2");
    BOOST_TEST(!dropped.exit_code.has_value());
    BOOST_TEST(describe(dropped).find("dropped") != std::string::npos, describe(dropped));
    std::vector<std::string> ran{"r1"};
    for (int i = 3; i <= 10; ++i) ran.push_back("r" + std::to_string(i));
    BOOST_TEST(lines_of(read_file(r.dir / "runs.log")) == ran, boost::test_tools::per_element());
    std::vector<std::string> reported;
    for (std::size_t i = 1; i < r.results.size(); ++i) {
        BOOST_TEST(!r.results[i].dropped);
        BOOST_TEST(code(r.results[i]) == 0);
        reported.push_back(r.results[i].new_role);
    }
    BOOST_TEST(reported == ran, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_missing_command_is_a_failed_run) {
    rig r;
    r.start({"/nonexistent/nodeos-monitor-test-hook", "true"});
    r.hooks->role_changed("active", "standby", "g", "n");
    BOOST_REQUIRE_MESSAGE(r.results_reach(2), "expected both runs to end within 10 s");
    auto it = std::find_if(r.results.begin(), r.results.end(), [](auto const& x) { return x.index == 1; });
    BOOST_REQUIRE(it != r.results.end());
    BOOST_TEST(code(*it) == 127);
    BOOST_TEST(!it->succeeded());
    BOOST_TEST(r.lines.size() == 1u);  // the shell says why
    if (!r.lines.empty()) BOOST_TEST(r.lines[0].starts_with("[hook 1] "), r.lines[0]);
}

BOOST_AUTO_TEST_CASE(a_missing_shell_is_a_failed_run_reported_in_order) {
    rig r;
    r.start({"true"}, 10s, "/nonexistent/sh");
    r.hooks->role_changed("active", "standby", "g", "n");
    r.hooks->role_changed("standby", "active", "g", "n");
    BOOST_TEST(r.results.empty(), "no callback inside role_changed()");
    BOOST_REQUIRE_MESSAGE(r.results_reach(2), "expected both failed runs to be reported within 10 s");
    BOOST_TEST(r.results[0].new_role == "active");
    BOOST_TEST(r.results[1].new_role == "standby");
    for (auto const& x : r.results) {
        BOOST_TEST(!x.error.empty());
        BOOST_TEST(!x.exit_code.has_value());
        BOOST_TEST(!x.signal.has_value());
        BOOST_TEST(!x.succeeded());
        BOOST_TEST(describe(x).find("could not start") != std::string::npos, describe(x));
    }
    BOOST_TEST(r.results[0].error.find("/nonexistent/sh") != std::string::npos, r.results[0].error);
    BOOST_TEST(r.claimed.size() == 2u);
}

BOOST_AUTO_TEST_CASE(close_kills_running_hooks_drops_the_queue_and_silences_callbacks) {
    rig r;
    auto hook = r.script("long.sh", R"sh(echo $$ > "$NM_TEST_DIR/hook-$1.pid"
echo started
sleep 30
)sh");
    auto other = r.script("other.sh", R"sh(echo $$ > "$NM_TEST_DIR/other.pid"
sleep 30
)sh");
    r.start({hook, other});
    r.hooks->role_changed("active", "standby", "g", "n");
    r.hooks->role_changed("standby", "active", "g", "n");  // waits behind the first
    BOOST_REQUIRE_MESSAGE(r.file_exists("hook-active.pid") && r.file_exists("other.pid"),
                          "expected both hooks to start within 10 s");
    BOOST_REQUIRE_MESSAGE(r.run_until([&] { return !r.lines.empty(); }), "expected the hook's first line within 10 s");
    auto const hook_pid = r.pid_in("hook-active.pid"), other_pid = r.pid_in("other.pid");
    auto const events = r.events;

    r.hooks->close();
    BOOST_TEST(r.hooks->running() == 0u);
    r.hooks->role_changed("stopping", "active", "g", "n");  // ignored after close()
    BOOST_TEST(r.run_until([&] { return r.claimed.size() == 2; }, 5s),
               "expected both killed hooks reaped and claimed as hooks within 5 s");
    BOOST_TEST(r.wait_gone(hook_pid), "hook 1's shell " << hook_pid << " still runs");
    BOOST_TEST(r.wait_gone(other_pid), "hook 2's shell " << other_pid << " still runs");
    r.run_for(300ms);
    BOOST_TEST(r.events == events, boost::test_tools::per_element());
    BOOST_TEST(!fs::exists(r.dir / "hook-standby.pid"), "the waiting run started after close()");
    BOOST_TEST(!fs::exists(r.dir / "hook-stopping.pid"), "a run started after close()");
}

BOOST_AUTO_TEST_CASE(on_exit_is_false_for_a_pid_that_is_not_a_hook) {
    rig r;
    r.start({"sleep 0.2 #"});
    r.hooks->role_changed("active", "standby", "g", "n");
    BOOST_TEST(!r.hooks->on_exit(::getpid(), 0));
    BOOST_TEST(!r.hooks->on_exit(0, 0));
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(devnull >= 0);
    pid_t other = spawn_process({"/bin/true"}, devnull);
    ::close(devnull);
    BOOST_REQUIRE_MESSAGE(r.run_until([&] { return !r.unclaimed.empty() && r.results.size() == 1; }),
                          "expected /bin/true reaped and the hook's run ended within 10 s");
    BOOST_TEST(r.unclaimed == std::vector<pid_t>{other}, boost::test_tools::per_element());
    BOOST_TEST(r.claimed.size() == 1u);
    BOOST_TEST(code(r.results[0]) == 0);
}

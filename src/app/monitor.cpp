#include "app/monitor.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include "core/failover.hpp"
#include "etcd/etcd_client.hpp"
#include "etcd/lock_value.hpp"
#include "nodeos/child.hpp"
#include "nodeos/deadman.hpp"
#include "ops/log.hpp"
#include "ops/operations.hpp"
#include "version.hpp"

namespace nm {
namespace asio = boost::asio;

namespace {

// Host names are resolved once, here, before the loop runs: a blocking getaddrinfo on the
// loop could stall fencing for as long as DNS takes, and asynchronous resolution would
// need a thread.
std::vector<endpoint> resolve(std::vector<endpoint_url> const& urls) {
    std::vector<endpoint> out;
    for (auto const& u : urls) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* found = nullptr;
        auto port = std::to_string(u.port);
        if (int rc = ::getaddrinfo(u.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
            throw usage_error(cat("--etcd-endpoints ", u.host, ": cannot resolve: ", ::gai_strerror(rc)));
        }
        char text[INET6_ADDRSTRLEN] = {};
        void const* addr = found->ai_family == AF_INET6
                               ? static_cast<void const*>(&reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr)
                               : static_cast<void const*>(&reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr);
        ::inet_ntop(found->ai_family, addr, text, sizeof text);
        ::freeaddrinfo(found);
        out.push_back(endpoint{u.tls, u.host, u.port, text});
    }
    return out;
}

std::string random_instance() {
    unsigned char bytes[8] = {};
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        throw std::system_error(errno, std::system_category(), "getrandom");
    }
    std::string hex;
    for (auto b : bytes) hex += cat(std::hex, static_cast<int>(b >> 4), static_cast<int>(b & 15));
    return hex;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return cat("exit code ", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return cat("killed by signal ", WTERMSIG(status), " (", sigabbrev_np(WTERMSIG(status)), ")");
    return cat("wait status ", status);
}

// A system call the fence depends on failed: see monitor::impl::fail_safe().
[[noreturn]] void fence_call_failed(char const* call) { throw std::system_error(errno, std::system_category(), call); }

template <class T>
etcd_error const* error_of(etcd_result<T> const& r) {
    return std::get_if<etcd_error>(&r);
}

char const* machine_of(act::changed<lease_phase> const&) { return "lease"; }
char const* machine_of(act::changed<lock_view> const&) { return "lock"; }
char const* machine_of(act::changed<watch_phase> const&) { return "watch"; }
char const* machine_of(act::changed<nodeos_phase> const&) { return "nodeos"; }

}  // namespace

struct monitor::impl {
    config cfg;
    asio::io_context io{1};
    std::string instance = random_instance();
    policy timings = policy::from(seconds(cfg.lease_ttl), seconds(cfg.stop_timeout));
    failover core{timings, identity{cfg.node_name, instance}};
    etcd_client etcd;
    deadman_switch deadman;
    std::string key = cfg.failover_group;
    std::string value = lock_value::encode(cfg.node_name, instance, ::getpid());
    asio::posix::stream_descriptor timer{io};
    asio::posix::stream_descriptor signals{io};
    pid_t child = 0;
    std::optional<int> exit_code;
    operations ops;

    explicit impl(config c)
        : cfg(std::move(c)),
          etcd(io, resolve(cfg.etcd_endpoints), tls_files{cfg.etcd_ca, cfg.etcd_cert, cfg.etcd_key},
               [](std::string const& line) { log(level::debug, line); }),
          ops(io, operations::settings{cfg.node_name, cfg.failover_group, http_endpoint(cfg)}, core) {
        open_timer();
        open_signals();
    }

    static std::optional<std::pair<std::string, std::uint16_t>> http_endpoint(config const& c) {
        if (!c.metrics_addr) return std::nullopt;
        return std::pair{c.metrics_addr->host, c.metrics_addr->port};
    }

    int run() {
        log(level::info, cat("nodeos-monitor ", NM_VERSION, " starting: node ", cfg.node_name, ", instance ", instance,
                             ", failover group \"", cfg.failover_group, "\", lease TTL ", cfg.lease_ttl, " s"));
        log(level::info, cat("fencing: a producer whose lease is not renewed gets SIGTERM ", to_ms(timings.fence_graceful),
                             " ms and SIGKILL ", to_ms(timings.fence_kill), " ms before the lease deadline; nodeos dies "
                             "with this monitor (PR_SET_PDEATHSIG); a dead-man timer kills this monitor ",
                             to_ms(timings.fence_kill / 2), " ms before the deadline if it is frozen while active"));
        try {
            wait_signals();
            wait_timer();
            feed(fact::start{});
            io.run();
        } catch (std::exception const& e) {
            return fail_safe(e.what());
        }
        return exit_code.value_or(1);
    }

    // The one failure policy of the loop. Anything that escapes it (a system call the fence
    // depends on failing: the core's timer, the dead-man timer, signalling or reaping
    // nodeos, reading signals; or any exception of a handler) means this monitor can no
    // longer promise to fence on time. Safety first: nodeos is killed now, and the
    // monitor exits 1 (systemd restarts it, as a validator); the lock passes to a peer
    // when the lease expires. Were even the kill refused, the exit itself kills nodeos
    // (PR_SET_PDEATHSIG).
    int fail_safe(std::string const& why) {
        log(level::error, cat("cannot go on safely (", why, "): killing nodeos and exiting"), {"fail_safe"});
        if (child > 0 && ::kill(-child, SIGKILL) == 0) {
            for (int i = 0; i < 100 && ::waitpid(child, nullptr, WNOHANG) == 0; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
        return 1;
    }

    void open_timer() {
        int fd = ::timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::system_category(), "timerfd_create");
        timer.assign(fd);
    }

    void open_signals() {
        ::signal(SIGPIPE, SIG_IGN);
        sigset_t set;
        ::sigemptyset(&set);
        for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, s);
        ::sigprocmask(SIG_BLOCK, &set, nullptr);
        int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::system_category(), "signalfd");
        signals.assign(fd);
    }

    // ---- facts in --------------------------------------------------------------------

    void feed(fact_t const& f) {
        for (auto const& a : core.handle(f, boot_clock::now())) {
            ops.observe(a);
            std::visit([&](auto const& what) { perform(what, a); }, a.what);
        }
        if (exit_code) return;
        ops.step_done();
        if (auto at = core.deadman_at()) {
            deadman.arm(*at);
        } else {
            deadman.disarm();
        }
        arm_timer();
    }

    void arm_timer() {
        itimerspec spec{};  // zero: disarmed
        auto at = core.next_wakeup();
        if (at != time_point::max()) {
            auto ns = std::max<std::int64_t>(at.time_since_epoch().count(), 1);
            spec.it_value.tv_sec = ns / 1'000'000'000;
            spec.it_value.tv_nsec = ns % 1'000'000'000;
        }
        if (::timerfd_settime(timer.native_handle(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
            fence_call_failed("timerfd_settime");
        }
    }

    void wait_timer() {
        timer.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted) return;
            if (ec) throw boost::system::system_error(ec, "wait for the timer");
            std::uint64_t expirations = 0;
            if (::read(timer.native_handle(), &expirations, sizeof expirations) < 0 && errno != EAGAIN) {
                fence_call_failed("read timerfd");
            }
            feed(fact::tick{});
            if (!exit_code) wait_timer();
        });
    }

    void wait_signals() {
        signals.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted) return;
            if (ec) throw boost::system::system_error(ec, "wait for signals");
            signalfd_siginfo info{};
            ssize_t n;
            while ((n = ::read(signals.native_handle(), &info, sizeof info)) == static_cast<ssize_t>(sizeof info)) {
                on_signal(static_cast<int>(info.ssi_signo));
                if (exit_code) return;
            }
            if (n < 0 && errno != EAGAIN) fence_call_failed("read signalfd");
            wait_signals();
        });
    }

    void on_signal(int sig) {
        switch (sig) {
        case SIGCHLD: reap(); break;
        case SIGTERM:
        case SIGINT: feed(fact::stop_requested{cat("SIG", sigabbrev_np(sig))}); break;
        default: log(level::info, cat("SIG", sigabbrev_np(sig), " ignored")); break;
        }
    }

    void reap() {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != child) {
                log(level::debug, cat("reaped pid ", pid, ": ", describe_wait_status(status)));
                continue;
            }
            child = 0;
            ops.nodeos_reaped();
            auto how = describe_wait_status(status);
            log(level::info, cat("nodeos pid ", pid, " ended: ", how));
            feed(fact::nodeos_exited{how});
            if (exit_code) return;
        }
        if (pid < 0 && errno != ECHILD) fence_call_failed("waitpid");
    }

    // ---- actions out -----------------------------------------------------------------

    template <class Phase>
    void perform(act::changed<Phase> const& c, action const& a) {
        if constexpr (std::is_same_v<Phase, role>) {
            log(a.lvl, cat("state ", name_of(c.from), " -> ", name_of(c.to), ": ", a.text), {name_of(a.why)});
        } else {
            auto change = cat(machine_of(c), " ", name_of(c.from), " -> ", name_of(c.to));
            log(a.lvl, a.text, {name_of(a.why), change});
        }
    }

    void perform(act::note const&, action const& a) { log(a.lvl, a.text, {name_of(a.why)}); }

    void perform(act::grant const& g, action const& a) {
        log(a.lvl, cat("grant a lease: ", a.text), {name_of(a.why)});
        auto sent = boot_clock::now();
        ++ops.stats().etcd_requests["grant"];
        etcd.grant(cfg.lease_ttl, g.timeout, [this, req = g.request, sent](etcd_result<lease_grant> r) {
            if (auto e = error_of(r)) return failed("grant", req, *e);
            auto& lease = std::get<lease_grant>(r);
            feed(fact::lease_granted{req, lease.id, seconds(lease.ttl_seconds), sent});
        });
    }

    void perform(act::renew const& k, action const& a) {
        log(a.lvl, cat("renew lease ", k.lease, ": ", a.text), {name_of(a.why)});
        // Taken before the request leaves: etcd cannot handle it earlier, so the deadline
        // computed from this instant is never later than the server's.
        auto sent = boot_clock::now();
        ++ops.stats().etcd_requests["keepalive"];
        etcd.keepalive(k.lease, k.timeout, [this, req = k.request, sent](etcd_result<keepalive_reply> r) {
            if (auto e = error_of(r)) return failed("keepalive", req, *e);
            auto& reply = std::get<keepalive_reply>(r);
            ops.stats().keepalive_rtt.observe(std::chrono::duration<double>(boot_clock::now() - sent).count());
            std::optional<duration> ttl;
            if (reply.ttl_seconds) ttl = seconds(*reply.ttl_seconds);
            feed(fact::keepalive_answered{req, ttl, sent});
        });
    }

    void perform(act::campaign const& c, action const& a) {
        log(a.lvl, cat("campaign with lease ", c.lease, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["campaign"];
        etcd.campaign(key, value, c.lease, c.timeout, [this, req = c.request](etcd_result<campaign_reply> r) {
            if (auto e = error_of(r)) return failed("campaign", req, *e);
            auto& reply = std::get<campaign_reply>(r);
            std::optional<lock_holder> holder;
            if (reply.holder) holder = lock_value::decode(*reply.holder);
            feed(fact::campaign_answered{req, reply.won, reply.revision, holder});
        });
    }

    void perform(act::release const& r, action const& a) {
        log(a.lvl, cat("release lease ", r.lease, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["revoke"];
        etcd.revoke(r.lease, r.timeout, [this, req = r.request](etcd_result<std::monostate> res) {
            if (auto e = error_of(res)) return failed("revoke", req, *e);
            feed(fact::revoke_answered{req});
        });
    }

    void failed(char const* kind, std::uint64_t request, etcd_error const& e) {
        ++ops.stats().etcd_errors[kind];
        feed(fact::request_failed{request, kind_of(e), describe(e)});
    }

    void perform(act::watch const& w, action const& a) {
        log(a.lvl, cat("watch from revision ", w.from_revision, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["watch"];
        etcd.watch(
            key, w.from_revision,
            [this](watch_message const& m) {
                for (auto const& ev : m.events) {
                    if (exit_code) return;
                    if (ev.what == watch_event::type::del) {
                        feed(fact::key_deleted{ev.kv.mod_revision});
                    } else {
                        feed(fact::key_written{ev.kv.mod_revision, lock_value::decode(ev.kv)});
                    }
                }
            },
            [this](etcd_error const& e) {
                ++ops.stats().etcd_errors["watch"];
                feed(fact::watch_ended{describe(e)});
            });
    }

    void perform(act::start_nodeos const& s, action const& a) {
        auto const& dir = s.as == mode::active ? cfg.active_config_dir : cfg.standby_config_dir;
        std::vector<std::string> argv{cfg.nodeos};
        argv.insert(argv.end(), cfg.nodeos_args.begin(), cfg.nodeos_args.end());
        argv.insert(argv.end(), {"--config-dir", dir});
        // The relay keeps itself alive until the child's side of the pipe closes, so the
        // last lines of an exited nodeos are still logged after a new one has started.
        auto relay = std::make_shared<output_relay>(io, [this, tag = cat("[nodeos ", name_of(s.as), "] ")](std::string_view line) {
            ops.stats().count_block_line(line);
            log(level::info, cat(tag, line));
        });
        try {
            child = spawn_process(argv, relay->write_end());
            relay->start();
            ops.nodeos_running(child);
            log(a.lvl, cat("started ", name_of(s.as), " nodeos pid ", child, " with --config-dir ", dir, ": ", a.text),
                {name_of(a.why)});
        } catch (std::system_error const& e) {
            log(level::error, cat("could not start nodeos: ", e.what()));
            asio::post(io, [this, why = std::string(e.what())] { feed(fact::nodeos_start_failed{why}); });
        }
    }

    void perform(act::signal_nodeos const& s, action const& a) {
        if (child <= 0) return;
        log(a.lvl, cat("SIG", sigabbrev_np(s.signal), " to nodeos pid ", child, ": ", a.text), {name_of(a.why)});
        if (::kill(-child, s.signal) != 0 && errno != ESRCH) fence_call_failed("kill");
    }

    void perform(act::exit const& e, action const& a) {
        log(a.lvl, cat("exit ", e.code, ": ", a.text), {name_of(a.why)});
        exit_code = e.code;
        ops.close();
        deadman.disarm();
        etcd.close();
        io.stop();
    }
};

monitor::monitor(config cfg) {
    auto const where = cfg.metrics_addr;
    try {
        impl_ = std::make_unique<impl>(std::move(cfg));
    } catch (operations::listen_error const& e) {
        throw usage_error(cat("--metrics-addr ", where->host, ":", where->port, ": cannot listen: ", e.code().message()));
    }
}
monitor::~monitor() = default;
int monitor::run() { return impl_->run(); }

}  // namespace nm

#include "monitor.hpp"

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
#include <nlohmann/json.hpp>
#include <optional>

#include "child.hpp"
#include "deadman.hpp"
#include "etcd_client.hpp"
#include "failover.hpp"
#include "log.hpp"
#include "operations.hpp"
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

// The lock's value names its holder; a value written by another tool is shown as it is.
holder_info holder_of(key_value const& kv, std::string const& our_instance) {
    holder_info h{kv.value.substr(0, 120), kv.lease};
    auto j = nlohmann::json::parse(kv.value, nullptr, false);
    if (j.is_object() && j.contains("node") && j["node"].is_string()) {
        h.who = j["node"].get<std::string>();
        if (j.contains("instance") && j["instance"].is_string()) {
            auto instance = j["instance"].get<std::string>();
            h.who += cat(" (", instance, ")");
            h.this_monitor = instance == our_instance;
        }
    }
    return h;
}

template <class T>
etcd_error const* error_of(etcd_result<T> const& r) {
    return std::get_if<etcd_error>(&r);
}

}  // namespace

struct monitor::impl {
    config cfg;
    asio::io_context io{1};
    failover core;
    etcd_client etcd;
    deadman_switch deadman;
    std::string instance = random_instance();
    std::string key = cfg.failover_group;
    std::string value;
    asio::posix::stream_descriptor timer{io};
    asio::posix::stream_descriptor signals{io};
    pid_t child = 0;
    std::optional<int> exit_code;
    operations ops;
    std::string step_reason;  // the latest action's reason, for the state transition it causes

    explicit impl(config c)
        : cfg(std::move(c)),
          core(policy::from(seconds(cfg.lease_ttl), seconds(cfg.stop_timeout))),
          etcd(io, resolve(cfg.etcd_endpoints), tls_files{cfg.etcd_ca, cfg.etcd_cert, cfg.etcd_key}),
          ops(io, cfg, core) {
        value = nlohmann::json{{"node", cfg.node_name}, {"instance", instance}, {"pid", ::getpid()}}.dump();
        open_timer();
        open_signals();
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

    int run() {
        auto p = policy::from(seconds(cfg.lease_ttl), seconds(cfg.stop_timeout));
        log(level::info, cat("nodeos-monitor ", NM_VERSION, " starting: node ", cfg.node_name, ", instance ", instance,
                             ", failover group \"", cfg.failover_group, "\", lease TTL ", cfg.lease_ttl, " s"));
        log(level::info, cat("fencing: a producer whose lease is not renewed gets SIGTERM ", to_ms(p.fence_graceful),
                             " ms and SIGKILL ", to_ms(p.fence_kill), " ms before the lease deadline; nodeos dies "
                             "with this monitor (PR_SET_PDEATHSIG); a dead-man timer kills this monitor ",
                             to_ms(p.fence_kill / 2), " ms before the deadline if it is frozen while active"));
        wait_signals();
        wait_timer();
        feed(fact::start{});
        io.run();
        return exit_code.value_or(1);
    }

    void failed(char const* kind) { ++ops.stats().etcd_errors[kind]; }

    // ---- facts in --------------------------------------------------------------------

    void feed(fact_t const& f) {
        for (auto const& a : core.handle(f, boot_clock::now())) perform(a);
        ops.after_step(step_reason);
        if (exit_code) return;
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
        ::timerfd_settime(timer.native_handle(), TFD_TIMER_ABSTIME, &spec, nullptr);
    }

    void wait_timer() {
        timer.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
            if (ec) return;
            std::uint64_t expirations = 0;
            [[maybe_unused]] auto n = ::read(timer.native_handle(), &expirations, sizeof expirations);
            feed(fact::tick{});
            wait_timer();
        });
    }

    void wait_signals() {
        signals.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
            if (ec) return;
            signalfd_siginfo info{};
            while (::read(signals.native_handle(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
                on_signal(static_cast<int>(info.ssi_signo));
                if (exit_code) return;
            }
            wait_signals();
        });
    }

    void on_signal(int sig) {
        switch (sig) {
        case SIGCHLD: reap(); break;
        case SIGTERM:
        case SIGINT:
            ops.stop_requested();
            feed(fact::stop_requested{cat("SIG", sigabbrev_np(sig))});
            break;
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
            ops.nodeos_ended();
            auto how = describe_wait_status(status);
            log(level::info, cat("nodeos pid ", pid, " ended: ", how));
            feed(fact::nodeos_exited{how});
            if (exit_code) return;
        }
    }

    // ---- actions out -----------------------------------------------------------------

    void perform(action const& a) {
        if (!std::holds_alternative<act::note>(a.what)) step_reason = a.reason;
        std::visit([&](auto const& what) { perform(what, a.reason); }, a.what);
    }

    void perform(act::note const& n, std::string const& reason) { log(n.lvl, reason); }

    void perform(act::grant const& g, std::string const& reason) {
        log(level::debug, cat("grant a lease: ", reason));
        auto sent = boot_clock::now();
        ++ops.stats().etcd_requests["grant"];
        etcd.grant(cfg.lease_ttl, g.timeout, [this, req = g.request, sent](etcd_result<lease_grant> r) {
            if (auto e = error_of(r)) {
                failed("grant");
                return feed(fact::request_failed{req, describe(*e)});
            }
            auto& lease = std::get<lease_grant>(r);
            feed(fact::lease_granted{req, lease.id, seconds(lease.ttl_seconds), sent});
        });
    }

    void perform(act::renew const& k, std::string const& reason) {
        log(level::debug, cat("renew lease ", k.lease, ": ", reason));
        // Taken before the request leaves: etcd cannot handle it earlier, so the deadline
        // computed from this instant is never later than the server's.
        auto sent = boot_clock::now();
        ++ops.stats().etcd_requests["keepalive"];
        etcd.keepalive(k.lease, k.timeout, [this, req = k.request, sent](etcd_result<keepalive_reply> r) {
            if (auto e = error_of(r)) {
                failed("keepalive");
                if (e->lease_not_found()) return feed(fact::lease_gone{req});
                return feed(fact::request_failed{req, describe(*e)});
            }
            auto& reply = std::get<keepalive_reply>(r);
            ops.stats().keepalive_rtt.observe(std::chrono::duration<double>(boot_clock::now() - sent).count());
            if (!reply.ttl_seconds) return feed(fact::lease_gone{req});
            feed(fact::lease_renewed{req, seconds(*reply.ttl_seconds), sent});
        });
    }

    void perform(act::campaign const& c, std::string const& reason) {
        log(level::debug, cat("campaign with lease ", c.lease, ": ", reason));
        ++ops.stats().etcd_requests["campaign"];
        etcd.campaign(key, value, c.lease, c.timeout, [this, req = c.request](etcd_result<campaign_reply> r) {
            if (auto e = error_of(r)) {
                failed("campaign");
                if (e->lease_not_found()) return feed(fact::lease_gone{req});
                return feed(fact::request_failed{req, describe(*e)});
            }
            auto& reply = std::get<campaign_reply>(r);
            std::optional<holder_info> holder;
            if (reply.holder) holder = holder_of(*reply.holder, instance);
            feed(fact::campaign_done{req, reply.won, reply.revision, holder});
        });
    }

    void perform(act::release const& r, std::string const& reason) {
        log(level::info, cat("release lease ", r.lease, ": ", reason));
        ++ops.stats().etcd_requests["revoke"];
        etcd.revoke(r.lease, r.timeout, [this, req = r.request](etcd_result<std::monostate> res) {
            auto e = error_of(res);
            if (e) failed("revoke");
            if (e && !e->lease_not_found()) return feed(fact::request_failed{req, describe(*e)});
            feed(fact::released{req});
        });
    }

    void perform(act::watch const& w, std::string const& reason) {
        log(level::debug, cat("watch from revision ", w.from_revision, ": ", reason));
        ++ops.stats().etcd_requests["watch"];
        etcd.watch(
            key, w.from_revision,
            [this](watch_message const& m) {
                for (auto const& ev : m.events) {
                    if (exit_code) return;
                    if (ev.what == watch_event::type::del) {
                        feed(fact::key_deleted{ev.kv.mod_revision});
                    } else {
                        feed(fact::key_written{ev.kv.mod_revision, holder_of(ev.kv, instance)});
                    }
                }
            },
            [this](etcd_error const& e) {
                failed("watch");
                feed(fact::watch_ended{describe(e)});
            });
    }

    void perform(act::start_nodeos const& s, std::string const& reason) {
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
            ops.nodeos_started(child, s.as);
            relay->start();
            log(level::info, cat("started ", name_of(s.as), " nodeos pid ", child, " with --config-dir ", dir, ": ", reason));
        } catch (std::system_error const& e) {
            log(level::error, cat("could not start nodeos: ", e.what()));
            ops.nodeos_start_failed();
            asio::post(io, [this, why = std::string(e.what())] { feed(fact::nodeos_exited{why}); });
        }
    }

    void perform(act::signal_nodeos const& s, std::string const& reason) {
        if (child <= 0) return;
        ops.nodeos_signalled(s);
        log(level::info, cat("SIG", sigabbrev_np(s.signal), " to nodeos pid ", child, ": ", reason));
        if (::kill(-child, s.signal) != 0 && errno != ESRCH) {
            log(level::error, cat("kill(", -child, "): ", std::strerror(errno)));
        }
    }

    void perform(act::exit const& e, std::string const& reason) {
        log(level::info, cat("exit ", e.code, ": ", reason));
        exit_code = e.code;
        ops.close();
        deadman.disarm();
        etcd.close();
        io.stop();
    }
};

monitor::monitor(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
monitor::~monitor() = default;
int monitor::run() { return impl_->run(); }

}  // namespace nm

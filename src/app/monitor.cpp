#include "app/monitor.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstring>
#include <optional>

#include "app/endpoints.hpp"
#include "core/failover.hpp"
#include "etcd/etcd_client.hpp"
#include "etcd/group_keys.hpp"
#include "etcd/lock_value.hpp"
#include "nodeos/api_client.hpp"
#include "nodeos/child.hpp"
#include "nodeos/deadman.hpp"
#include "nodeos/hooks.hpp"
#include "nodeos/supervisor.hpp"
#include "ops/log.hpp"
#include "ops/operations.hpp"
#include "version.hpp"

namespace nm {
namespace asio = boost::asio;

namespace {

std::string random_instance() {
    unsigned char bytes[8] = {};
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        throw std::system_error(errno, std::system_category(), "getrandom");
    }
    std::string hex;
    for (auto b : bytes) hex += cat(std::hex, static_cast<int>(b >> 4), static_cast<int>(b & 15));
    return hex;
}

// A system call the fence depends on failed: see monitor::impl::fail_safe().
[[noreturn]] void fence_call_failed(char const* call) { throw std::system_error(errno, std::system_category(), call); }

// A failed request's detail for the core, without the head its kind already says (the core
// logs "timed out: " and the detail).
template <class Error>
std::string failure_detail(Error const& e) {
    auto text = describe(e);
    auto const head = cat(name_of(kind_of(e)), ": ");
    return text.starts_with(head) ? text.substr(head.size()) : text;
}

template <class T>
etcd_error const* error_of(etcd_result<T> const& r) {
    return std::get_if<etcd_error>(&r);
}

char const* machine_of(act::changed<lease_phase> const&) { return "lease"; }
char const* machine_of(act::changed<lock_view> const&) { return "lock"; }
char const* machine_of(act::changed<watch_phase> const&) { return "watch"; }
char const* machine_of(act::changed<nodeos_phase> const&) { return "nodeos"; }
char const* machine_of(act::changed<health_phase> const&) { return "health"; }
char const* machine_of(act::changed<production_phase> const&) { return "production"; }

std::int64_t unix_ms_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

struct monitor::impl {
    config cfg;
    asio::io_context io{1};
    // Before the members that log: lines stderr does not take at once go out from the loop.
    log_on_loop logs{io};
    std::string instance = random_instance();
    policy timings = cfg.timings();
    failover core{timings, identity{cfg.node_name, instance}};
    etcd_client etcd;
    std::unique_ptr<nodeos_api> api;  // with --nodeos-api
    deadman_switch deadman;
    std::string key = cfg.failover_group;
    group_keys::view group{cfg.failover_group, cfg.node_name};  // the group's keys as the watch reports them
    std::string value = lock_value::encode(cfg.node_name, instance, ::getpid());
    asio::posix::stream_descriptor timer{io};
    asio::posix::stream_descriptor signals{io};
    std::unique_ptr<hook_runner> hooks;  // with --on-role-change
    nodeos_supervisor nodeos{io, nodeos_supervisor::handlers{
                                     [this](std::string_view tag, std::string_view line) {
                                         ops.stats().count_block_line(line);
                                         log(level::info, cat(tag, line));
                                     },
                                     [](pid_t pid, std::string const& how) {
                                         log(level::info, cat("nodeos pid ", pid, " ended: ", how));
                                     },
                                     [this](fact::nodeos_exited const& exited) { feed(exited); },
                                     [this](pid_t pid, int status) {
                                         if (hooks && hooks->on_exit(pid, status)) return;
                                         log(level::debug, cat("reaped pid ", pid, ", not nodeos's"));
                                     },
                                 }};
    std::optional<int> exit_code;
    operations ops;

    explicit impl(config c)
        : cfg(std::move(c)),
          etcd(io, resolve(cfg.etcd_endpoints, "--etcd-endpoints"), tls_files{cfg.etcd_ca, cfg.etcd_cert, cfg.etcd_key},
               etcd_credentials{cfg.etcd_user, cfg.etcd_password}, [](std::string const& line) { log(level::debug, line); },
               [](level lvl, std::string const& line) { log(lvl, line); }),
          ops(io, operations::settings{cfg.node_name, cfg.failover_group, ops_endpoint(cfg)}, core, [this] {
              std::optional<operations::process> p;
              if (auto running = nodeos.current()) p = operations::process{running->pid, running->since};
              return p;
          }) {
        if (!cfg.on_role_change.empty()) {
            hooks = std::make_unique<hook_runner>(
                io, cfg.on_role_change, std::chrono::seconds(cfg.hook_timeout),
                [](std::string_view line) { log(level::info, line); },
                [this](hook_result const& r) {
                    char const* result = r.dropped ? "dropped" : !r.error.empty() ? "error" : r.timed_out ? "timed_out"
                                       : r.succeeded() ? "ok" : "failed";
                    ++ops.stats().hook_runs[result];
                    log(r.succeeded() ? level::info : level::warning, describe(r), {"hook"});
                });
        }
        if (cfg.nodeos_api) {
            auto resolved = resolve({*cfg.nodeos_api}, "--nodeos-api").front();
            api = std::make_unique<nodeos_api>(io, resolved, [](std::string const& line) { log(level::debug, line); });
        }
        open_timer();
        open_signals();
    }

    static std::optional<std::pair<std::string, std::uint16_t>> ops_endpoint(config const& c) {
        if (!c.metrics_addr) return std::nullopt;
        return std::pair{c.metrics_addr->host, c.metrics_addr->port};
    }

    int run() {
        log(level::info, cat("nodeos-monitor ", NM_VERSION, " starting: node ", cfg.node_name, ", instance ", instance,
                             ", failover group \"", cfg.failover_group, "\", lease TTL ", cfg.lease_ttl, " s"));
        if (timings.standby == standby_mode::paused) {
            log(level::info, cat("standby mode paused (hot standby): nodeos runs ", cfg.active_config_dir, " paused; "
                                 "fencing: a producer whose lease is not renewed is paused ", to_ms(timings.fence_graceful),
                                 " ms before the lease deadline, and killed if the pause is not confirmed ",
                                 to_ms(timings.fence_kill + timings.block_interval), " ms before it (one block interval of ",
                                 to_ms(timings.block_interval), " ms, then the SIGKILL reserve of ", to_ms(timings.fence_kill),
                                 " ms)"));
        } else {
            log(level::info, cat("fencing: a producer whose lease is not renewed gets SIGTERM ", to_ms(timings.fence_graceful),
                                 " ms and SIGKILL ", to_ms(timings.fence_kill), " ms before the lease deadline"));
        }
        log(level::info, cat("nodeos dies with this monitor (PR_SET_PDEATHSIG); a dead-man timer kills this monitor ",
                             to_ms(timings.fence_kill / 2), " ms before the deadline if it is frozen while nodeos may produce"));
        if (cfg.nodeos_api) {
            log(level::info, cat("health: a candidate's nodeos answers at http://", cfg.nodeos_api->host, ":",
                                 cfg.nodeos_api->port, " with a head at most ", cfg.max_head_lag, " s old"));
        }
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
        nodeos.kill_now();
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
        case SIGCHLD: nodeos.reap(); break;
        case SIGTERM:
        case SIGINT: feed(fact::stop_requested{cat("SIG", sigabbrev_np(sig))}); break;
        default: log(level::info, cat("SIG", sigabbrev_np(sig), " ignored")); break;
        }
    }

    // ---- actions out -----------------------------------------------------------------

    template <class Phase>
    void perform(act::changed<Phase> const& c, action const& a) {
        if constexpr (std::is_same_v<Phase, role>) {
            log(a.lvl, cat("state ", name_of(c.from), " -> ", name_of(c.to), ": ", a.text), {name_of(a.why)});
            if (hooks) hooks->role_changed(name_of(c.to), name_of(c.from), cfg.failover_group, cfg.node_name);
        } else {
            auto change = cat(machine_of(c), " ", name_of(c.from), " -> ", name_of(c.to));
            log(a.lvl, a.text, {name_of(a.why), change});
        }
    }

    void perform(act::note const&, action const& a) { log(a.lvl, a.text, {name_of(a.why)}); }

    void perform(act::grant const& g, action const& a) {
        log(a.lvl, cat("grant lease ", g.lease, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["grant"];
        etcd.grant(cfg.lease_ttl, g.lease, g.timeout, [this, req = g.request](etcd_result<lease_grant> r) {
            if (auto e = error_of(r)) return failed("grant", req, *e);
            auto& lease = std::get<lease_grant>(r);
            feed(fact::lease_granted{req, lease.id, seconds(lease.ttl_seconds), lease.sent});
        });
    }

    void perform(act::renew const& k, action const& a) {
        log(a.lvl, cat("renew lease ", k.lease, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["keepalive"];
        auto const asked = boot_clock::now();
        etcd.keepalive(k.lease, k.timeout, [this, req = k.request, asked](etcd_result<keepalive_reply> r) {
            if (auto e = error_of(r)) return failed("keepalive", req, *e);
            auto& reply = std::get<keepalive_reply>(r);
            // The whole renewal, a refused token's authentication and second send included.
            ops.stats().keepalive_rtt.observe(std::chrono::duration<double>(boot_clock::now() - asked).count());
            // The deadline counts from the send time of the attempt etcd answered: etcd
            // cannot have handled it earlier, so it is never later than the server's.
            std::optional<duration> ttl;
            if (reply.ttl_seconds) ttl = seconds(*reply.ttl_seconds);
            feed(fact::keepalive_answered{req, ttl, reply.sent});
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

    void perform(act::read_group const& r, action const& a) {
        log(a.lvl, cat("read the group's keys: ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["read"];
        etcd.range(key, group_keys::range_end(key), r.timeout, [this, req = r.request](etcd_result<range_reply> res) {
            if (auto e = error_of(res)) return failed("read", req, *e);
            auto const& reply = std::get<range_reply>(res);
            group.reset(reply.kvs);
            std::optional<lock_holder> holder;
            if (auto lock = group.lock()) holder = lock_value::decode(*lock);
            feed(fact::group_read{req, reply.revision, holder, group.control()});
        });
    }

    void perform(act::publish const& p, action const& a) {
        log(a.lvl, cat("publish: ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["publish"];
        etcd.put(group_keys::member_key(key, cfg.node_name), group_keys::encode(member_record(p.member)), p.lease,
                 p.timeout, [this, req = p.request](etcd_result<std::monostate> res) {
                     if (auto e = error_of(res)) return failed("publish", req, *e);
                     feed(fact::published{req});
                 });
    }

    // The record the core decided to write, with who this node is and when.
    group_keys::member_record member_record(member_view const& m) const {
        timespec wall{};
        ::clock_gettime(CLOCK_REALTIME, &wall);
        double const now = static_cast<double>(wall.tv_sec) + wall.tv_nsec / 1e9;
        auto const ago = std::chrono::duration<double>(boot_clock::now() - m.since).count();
        group_keys::member_record r;
        r.node = cfg.node_name;
        r.instance = instance;
        r.version = NM_VERSION;
        r.state = name_of(m.state);
        r.candidacy = name_of(m.candidate);
        r.standby_mode = name_of(timings.standby);
        if (m.health) r.health = name_of(*m.health);
        r.head_block_num = m.head_block_num;
        if (m.head_lag) r.head_lag_ms = std::chrono::duration_cast<milliseconds>(*m.head_lag).count();
        r.database_dirty = m.database_dirty;
        if (m.since != time_point{}) r.since = iso_time(now - ago);  // empty before the first change of role
        r.updated = iso_time(static_cast<double>(wall.tv_sec));
        return r;
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
        feed(fact::request_failed{request, kind_of(e), failure_detail(e)});
    }

    void perform(act::watch const& w, action const& a) {
        log(a.lvl, cat("watch from revision ", w.from_revision, ": ", a.text), {name_of(a.why)});
        ++ops.stats().etcd_requests["watch"];
        etcd.watch(
            key, group_keys::range_end(key), w.from_revision,
            [this](watch_message const& m) {
                auto const before = group.control();
                for (auto const& ev : m.events) {
                    if (exit_code) return;
                    if (group.apply(ev) != group_keys::view::kind::lock) continue;
                    if (ev.what == watch_event::type::del) {
                        feed(fact::key_deleted{ev.kv.mod_revision});
                    } else {
                        feed(fact::key_written{ev.kv.mod_revision, lock_value::decode(ev.kv)});
                    }
                }
                if (auto after = group.control(); !exit_code && after != before) feed(fact::control_changed{after});
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
        if (s.paused) argv.emplace_back("--pause-on-startup");
        if (s.replay) argv.insert(argv.end(), cfg.dirty_db_args.begin(), cfg.dirty_db_args.end());
        try {
            auto const pid = nodeos.start(argv, cat("[nodeos ", s.paused ? "paused" : name_of(s.as), "] "));
            log(a.lvl, cat("started ", name_of(s.as), " nodeos pid ", pid, " with --config-dir ", dir, ": ", a.text),
                {name_of(a.why)});
        } catch (std::system_error const& e) {
            log(level::error, cat("could not start nodeos: ", e.what()));
            asio::post(io, [this, why = std::string(e.what())] { feed(fact::nodeos_start_failed{why}); });
        }
    }

    void perform(act::check_health const& h, action const& a) {
        log(a.lvl, cat("check nodeos's health: ", a.text), {name_of(a.why)});
        ++ops.stats().api_requests["get_info"];
        api->get_info(h.timeout, [this, req = h.request](api_result<chain_info> r) {
            if (auto e = std::get_if<api_error>(&r)) return api_failed("get_info", req, *e);
            auto const& info = std::get<chain_info>(r);
            auto lag = std::max<std::int64_t>(0, unix_ms_now() - info.head_block_time_ms);
            feed(fact::health_answered{req, info.head_block_num, milliseconds(lag)});
        });
    }

    void perform(act::set_production const& p, action const& a) {
        char const* kind = p.paused ? "pause" : "resume";
        log(a.lvl, cat(kind, " nodeos: ", a.text), {name_of(a.why)});
        ++ops.stats().api_requests[kind];
        api->set_paused(p.paused, p.timeout, [this, req = p.request, kind](api_result<bool> r) {
            if (auto e = std::get_if<api_error>(&r)) return api_failed(kind, req, *e);
            feed(fact::production_answered{req, std::get<bool>(r)});
        });
    }

    void api_failed(char const* kind, std::uint64_t request, api_error const& e) {
        ++ops.stats().api_errors[kind];
        feed(fact::request_failed{request, kind_of(e), failure_detail(e)});
    }

    void perform(act::signal_nodeos const& s, action const& a) {
        auto const running = nodeos.current();
        if (!running) return;
        log(a.lvl, cat("SIG", sigabbrev_np(s.signal), " to nodeos pid ", running->pid, ": ", a.text), {name_of(a.why)});
        nodeos.signal(s.signal);
    }

    void perform(act::exit const& e, action const& a) {
        log(a.lvl, cat("exit ", e.code, ": ", a.text), {name_of(a.why)});
        exit_code = e.code;
        ops.close();
        deadman.disarm();
        etcd.close();
        if (api) api->close();
        if (hooks) hooks->close();
        nodeos.close();
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

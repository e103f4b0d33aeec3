#pragma once
// The failover core on a fake clock: a builder that puts it in any state (as a row of the
// transition table starts), and a rig that feeds it facts and reads its actions.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/failover.hpp"

namespace nm::test {

using namespace std::chrono_literals;

inline identity const me{"me", "inst-me"};

// A command as tests name it: "grant", "renew 7", "campaign", "release 7", "watch 101",
// "start active", "start active paused replay", "check health", "pause", "resume",
// "SIGTERM", "SIGKILL", "exit 0".
inline std::string command_name(action const& a) {
    std::ostringstream out;
    std::visit(
        [&](auto const& w) {
            using T = std::decay_t<decltype(w)>;
            if constexpr (std::is_same_v<T, act::grant>) out << "grant";
            else if constexpr (std::is_same_v<T, act::renew>) out << "renew " << w.lease;
            else if constexpr (std::is_same_v<T, act::campaign>) out << "campaign";
            else if constexpr (std::is_same_v<T, act::read_group>) out << "read group";
            else if constexpr (std::is_same_v<T, act::release>) out << "release " << w.lease;
            else if constexpr (std::is_same_v<T, act::watch>) out << "watch " << w.from_revision;
            else if constexpr (std::is_same_v<T, act::start_nodeos>)
                out << "start " << name_of(w.as) << (w.paused ? " paused" : "") << (w.replay ? " replay" : "");
            else if constexpr (std::is_same_v<T, act::check_health>) out << "check health";
            else if constexpr (std::is_same_v<T, act::set_production>) out << (w.paused ? "pause" : "resume");
            else if constexpr (std::is_same_v<T, act::publish>) out << "publish " << w.lease;
            else if constexpr (std::is_same_v<T, act::signal_nodeos>) out << "SIG" << sigabbrev_np(w.signal);
            else if constexpr (std::is_same_v<T, act::exit>) out << "exit " << w.code;
            else if constexpr (std::is_same_v<T, act::note>) out << "note";
            else out << "change " << name_of(w.from) << " -> " << name_of(w.to);
        },
        a.what);
    return out.str();
}

// "100 200 3333.33" (ms), for messages about a series of delays.
inline std::string in_ms(std::vector<duration> const& ds) {
    std::ostringstream out;
    for (auto d : ds) out << std::chrono::duration<double, std::milli>(d).count() << ' ';
    return out.str();
}

inline std::string describe(action const& a) {
    return command_name(a) + " [" + name_of(a.why) + "]: " + a.text;
}

// One expected command: its name and its cause.
struct command {
    std::string name;
    cause why;
};

// The state a row starts from: a core at 1000 s on the fake clock, TTL 10 s, stop timeout
// 30 s; this node is "me" with lease 7 when it has one; requests in flight are numbered
// below 100, new ones from 101.
struct in_state {
    policy p = policy::from(10s, 30s);
    time_point now = time_point{} + 1000s;
    core_state s;

    in_state() { s.last_request = 100; }

    in_state& ttl(seconds t, seconds stop = 30s) {
        p = policy::from(t, stop);
        return *this;
    }
    // Hot standby: nodeos runs the producer config, paused; health is checked.
    in_state& paused_mode(bool dirty_recovery = false) {
        p = policy::from(policy::settings{.ttl = 10s, .standby = standby_mode::paused, .dirty_recovery = dirty_recovery});
        return *this;
    }
    // Restart mode with --nodeos-api (and --dirty-db-args).
    in_state& gated(bool dirty_recovery = false) {
        p = policy::from(policy::settings{.ttl = 10s, .health_gated = true, .dirty_recovery = dirty_recovery});
        return *this;
    }
    // nodeos answered a health check just now (head #500, `lag` old), and the next one,
    // request 30, is in flight (so that no check is due meanwhile).
    in_state& health(health_phase phase, duration lag = 300ms) {
        s.health = health_state{.phase = phase, .request = 30, .sent_at = now, .next_check = now + p.health_interval,
                                .answered = true,
                                .answered_at = now, .head_num = 500, .head_lag = lag, .head_moved_at = now,
                                .fresh_head_num = lag <= p.max_head_lag ? 500 : 0};
        return *this;
    }
    in_state& checking(std::uint64_t request) {
        s.health.request = request;
        return *this;
    }
    in_state& production(production_phase phase, std::uint64_t request = 0) {
        s.production = production_state{.phase = phase, .request = request, .drained_at = now + p.block_interval};
        if (s.nodeos.phase == nodeos_phase::running)
            s.current_role = phase == production_phase::producing ? role::active : role::standby;
        return *this;
    }
    // Lease 7, renewed just now (or `left` before its deadline).
    in_state& lease_live(std::optional<duration> left_ = {}) {
        auto const left = left_.value_or(p.ttl);
        s.lease = lease_state{.phase = lease_phase::live, .id = 7, .ttl = p.ttl, .deadline = now + left,
                              .next_renew = now + left - p.ttl + p.ttl / 3};
        // Its member record written under it, and not due again for a long while: the rows
        // of the registry set their own. A watch reports the group's keys.
        s.registry = registry_state{.lease = 7, .next_write = now + 1h, .refresh_at = now + 1h};
        s.watch = watch_state{.phase = watch_phase::open, .opened_at = now};
        return *this;
    }
    in_state& lease_in_flight(lease_phase phase, std::uint64_t request, std::int64_t id = 7) {
        s.lease = lease_state{.phase = phase, .id = id, .request = request};
        return *this;
    }
    in_state& renewing(std::uint64_t request) {
        s.lease.request = request;
        return *this;
    }
    in_state& lock(lock_view v, std::string holder = {}) {
        s.lock.view = v;
        s.lock.holder = std::move(holder);
        return *this;
    }
    in_state& campaigning(std::uint64_t request) {
        s.lock.request = request;
        return *this;
    }
    in_state& watch(watch_phase phase, time_point at = {}, int failures = 0) {
        s.watch = watch_state{.phase = phase, .opened_at = at, .reread_at = at, .failures = failures};
        return *this;
    }
    // nodeos in `phase` with `as`'s config, started `ago`; the role follows.
    in_state& nodeos(nodeos_phase phase, mode as, duration ago = 1s) {
        s.nodeos.phase = phase;
        s.nodeos.as = as;
        s.nodeos.since = now - ago;
        s.nodeos.started_before = true;
        s.nodeos.stop_by = now + p.stop_timeout;
        s.nodeos.killed_at = now;
        s.current_role = phase == nodeos_phase::running && as == mode::active ? role::active : role::standby;
        return *this;
    }
    // nodeos down, to be started at `start_at` (now when not given).
    in_state& nodeos_down(std::optional<time_point> start_at = {}) {
        s.nodeos.phase = nodeos_phase::down;
        s.nodeos.start_at = start_at.value_or(now);
        s.nodeos.waiting_since = s.nodeos.start_at;
        return *this;
    }
    in_state& crashes(int n) {
        s.nodeos.crashes = n;
        return *this;
    }
    in_state& etcd_failing() {
        s.etcd_failing = true;
        return *this;
    }
    in_state& control(group_control c) {
        s.control = std::move(c);
        return *this;
    }
    in_state& stopping() {
        s.stop_signals = 1;
        s.current_role = role::stopping;
        return *this;
    }
    // Paused mode, healthy: a paused standby behind another holder, and the producer.
    in_state& paused_standby() {
        return lease_live().lock(lock_view::theirs, "peer (x)").watch(watch_phase::open, now)
            .nodeos(nodeos_phase::running, mode::active).production(production_phase::paused).health(health_phase::healthy);
    }
    in_state& paused_producer() {
        return lease_live().lock(lock_view::mine).watch(watch_phase::open, now).nodeos(nodeos_phase::running, mode::active)
            .production(production_phase::producing).health(health_phase::healthy);
    }
    // The common rows: a producer, and a validator behind another holder.
    in_state& producer() { return lease_live().lock(lock_view::mine).watch(watch_phase::open, now).nodeos(nodeos_phase::running, mode::active); }
    in_state& validator() {
        return lease_live().lock(lock_view::theirs, "peer (x)").watch(watch_phase::open, now).nodeos(nodeos_phase::running, mode::standby);
    }
};

// A core and a fake clock, with a log of everything the core did.
struct rig {
    policy p;
    failover core;
    time_point now;
    std::vector<action> last;  // the actions of the latest step (or steps, after advance())
    std::int64_t lease_id = 7;
    std::int64_t revision = 100;

    explicit rig(in_state const& st, identity const& who = me) : p(st.p), core(st.p, who, recorded(st.s)), now(st.now) {}

    // A built state's member record already names the role it was built in.
    static core_state recorded(core_state s) {
        s.registry.written_role = s.current_role;
        return s;
    }
    // A monitor that has just started, with nothing decided yet.
    explicit rig(policy pol = policy::from(10s, 30s)) : rig(fresh(pol)) {}

    static in_state fresh(policy pol) {
        in_state st;
        st.p = pol;
        st.s.last_request = 0;
        return st;
    }

    core_state const& state() const { return core.state(); }

    std::vector<action> const& feed(fact_t const& f) {
        last = core.handle(f, now);
        return last;
    }

    // Moves the clock to `t` and wakes the core there.
    std::vector<action> const& tick_at(time_point t) {
        now = t;
        return feed(fact::tick{});
    }

    // Moves the clock forward by d, delivering a tick at every wakeup on the way. With
    // healthy_etcd, keepalives and grants are answered at once as they are asked for.
    void advance(duration d, bool healthy_etcd = false) {
        auto target = now + d;
        std::vector<action> seen;
        while (core.next_wakeup() <= target) {
            now = std::max(now, core.next_wakeup());
            feed(fact::tick{});
            seen.insert(seen.end(), last.begin(), last.end());
            if (healthy_etcd) answer_lease_requests(seen);
        }
        now = target;
        last = seen;
    }

    // One wakeup of the core.
    void step(bool healthy_etcd = false) {
        if (core.next_wakeup() == time_point::max()) BOOST_FAIL("the core waits for nothing but an answer; last step: " + listing());
        advance(core.next_wakeup() - now, healthy_etcd);
    }

    // Steps from wakeup to wakeup, calling `each` after every one, until `done`; fails
    // with what was expected, rather than hanging, when that takes too many wakeups.
    void step_until(char const* what, std::function<bool()> const& done, std::function<void()> const& each = {},
                    bool healthy_etcd = false) {
        for (int i = 0; !done(); ++i) {
            if (i == 1000) BOOST_FAIL(std::string("expected ") + what + " within 1000 wakeups; last step: " + listing());
            step(healthy_etcd);
            if (done()) return;  // before `each` answers its requests and replaces the step
            if (each) each();
        }
    }

    // Answers a keepalive of the latest step, if any, with a failure.
    void fail_renewals(char const* why) {
        if (auto k = find<act::renew>()) feed(fact::request_failed{k->request, failure::timed_out, why});
    }

    // Answers at once the keepalives and grants of the latest step; what the core does
    // about each answer joins `seen`, once.
    void answer_lease_requests(std::vector<action>& seen) {
        for (auto const& a : std::vector<action>(last)) {
            if (auto k = std::get_if<act::renew>(&a.what)) {
                feed(fact::keepalive_answered{k->request, p.ttl, now});
            } else if (auto g = std::get_if<act::grant>(&a.what)) {
                feed(fact::lease_granted{g->request, ++lease_id, p.ttl, now});
            } else {
                continue;
            }
            seen.insert(seen.end(), last.begin(), last.end());
        }
    }

    template <class A>
    A const* find() const {
        for (auto const& a : last)
            if (auto p = std::get_if<A>(&a.what)) return p;
        return nullptr;
    }

    template <class A>
    A const& expect(char const* what) const {
        auto p = find<A>();
        if (!p) BOOST_FAIL(std::string("expected ") + what + " in: " + listing());
        return *p;
    }

    // The cause of the first action of type A in the latest step.
    template <class A>
    std::optional<cause> cause_of() const {
        for (auto const& a : last)
            if (std::get_if<A>(&a.what)) return a.why;
        return std::nullopt;
    }

    std::string listing() const { return listing_of(last); }

    static std::string listing_of(std::vector<action> const& actions) {
        std::string s = "[";
        for (auto const& a : actions) s += "\n  " + describe(a);
        return s + "\n]";
    }

    // The commands of the latest step are exactly these, in this order, with these causes.
    void expect_commands(std::vector<command> const& want) const {
        std::vector<command> got;
        for (auto const& a : last)
            if (a.is_command()) got.push_back({command_name(a), a.why});
        bool same = got.size() == want.size();
        for (std::size_t i = 0; same && i < got.size(); ++i) same = got[i].name == want[i].name && got[i].why == want[i].why;
        if (!same) {
            std::string expected = "[";
            for (auto const& c : want) expected += "\n  " + c.name + " [" + name_of(c.why) + "]";
            BOOST_ERROR("expected the commands " + expected + "\n]\ngot " + listing());
        }
    }

    // The latest step changed sub-machine Phase from `from` to `to`, for `why`.
    template <class Phase>
    void expect_change(Phase from, Phase to, cause why) const {
        for (auto const& a : last) {
            auto c = std::get_if<act::changed<Phase>>(&a.what);
            if (c && c->from == from && c->to == to && a.why == why) return;
        }
        BOOST_ERROR(std::string("expected the change ") + name_of(from) + " -> " + name_of(to) + " [" + name_of(why) +
                    "] in: " + listing());
    }

    bool started(mode m) const {
        auto s = find<act::start_nodeos>();
        return s && s->as == m;
    }

    bool signalled(int sig) const {
        for (auto const& a : last)
            if (auto s = std::get_if<act::signal_nodeos>(&a.what); s && s->signal == sig) return true;
        return false;
    }

    // Happy path helpers.
    // Grants the lease asked for; the read of the group's keys that follows finds the lock
    // held by `holder`, or free.
    void grant_ok(std::optional<std::string> holder = std::nullopt) {
        auto g = expect<act::grant>("a lease grant");
        feed(fact::lease_granted{g.request, lease_id, p.ttl, now});
        if (find<act::read_group>()) read_result(holder);
    }
    // Answers the read of the group's keys: the lock held by `node`, or free.
    void read_result(std::optional<std::string> node = std::nullopt, std::int64_t their_lease = 99) {
        auto r = expect<act::read_group>("a read of the group's keys");
        std::optional<lock_holder> h;
        if (node) h = lock_holder{*node, "x", their_lease, {}};
        feed(fact::group_read{r.request, ++revision, h, {}});
    }
    void campaign_result(bool won, std::string node = "peer", std::int64_t their_lease = 99) {
        auto c = expect<act::campaign>("a campaign");
        std::optional<lock_holder> h;
        if (!won) h = lock_holder{node, "x", their_lease, {}};
        feed(fact::campaign_answered{c.request, won, ++revision, h});
    }

    void become_active() {
        feed(fact::start{});
        grant_ok();
        campaign_result(true);
        BOOST_REQUIRE_MESSAGE(started(mode::active), "expected an active start in: " + listing());
    }
    void become_standby() {
        feed(fact::start{});
        grant_ok("peer");
        BOOST_REQUIRE_MESSAGE(started(mode::standby), "expected a standby start in: " + listing());
    }
};

}  // namespace nm::test

#include "app/commands.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app/endpoints.hpp"
#include "core/switchover.hpp"
#include "etcd/etcd_client.hpp"
#include "etcd/group_keys.hpp"
#include "etcd/lock_value.hpp"
#include "ops/status.hpp"

namespace nm {
namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using json = nlohmann::json;
using group_keys::member_record;

constexpr auto request_timeout = std::chrono::seconds(5);

// A refusal: one line on stderr, exit 1.
struct refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string now_iso() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return iso_time(static_cast<double>(ts.tv_sec));
}

std::string operator_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    passwd const* pw = ::getpwuid(::getuid());
    return cat(pw ? pw->pw_name : "?", "@", host);
}

std::string seconds_text(std::int64_t ms) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000 << " s";
    return out.str();
}

// Why a member is not a candidate, as a sentence.
std::string why_not(member_record const& m) {
    auto text = m.candidacy;
    if (m.candidacy == "nodeos_lagging" && m.head_lag_ms) text += cat(": its head is ", seconds_text(*m.head_lag_ms), " behind");
    if (m.candidacy == "node_paused") text = "paused by an operator";
    if (m.candidacy == "dirty_database") text = "its database is dirty: replay required";
    return text;
}

// One etcd client on its own io_context, with a call that waits for the answer.
class session {
public:
    explicit session(config const& cfg)
        : group_(cfg.failover_group),
          etcd_(io_, resolve(cfg.etcd_endpoints, "--etcd-endpoints"), tls_files{cfg.etcd_ca, cfg.etcd_cert, cfg.etcd_key},
                etcd_credentials{cfg.etcd_user, cfg.etcd_password}, [](std::string const&) {},
                // A refusal reaches the operator as the command's own one-line reason.
                [](level, std::string const&) {}) {}

    template <class T, class Start>
    T call(char const* what, Start start) {
        std::optional<etcd_result<T>> result;
        start([&](etcd_result<T> r) { result = std::move(r); });
        run_until([&] { return result.has_value(); }, request_timeout + std::chrono::seconds(1));
        if (!result) throw refused(cat(what, ": no answer from etcd"));
        if (auto const* e = std::get_if<etcd_error>(&*result)) throw refused(cat(what, ": ", describe(*e)));
        return std::get<T>(std::move(*result));
    }

    // Runs the loop until `done` or the time is up; returns whether `done`.
    template <class Done>
    bool run_until(Done done, steady::duration limit) {
        auto const deadline = steady::now() + limit;
        while (!done()) {
            auto const left = deadline - steady::now();
            if (left <= steady::duration::zero()) return false;
            io_.restart();
            io_.run_one_for(std::min<steady::duration>(left, std::chrono::milliseconds(100)));
        }
        return true;
    }

    range_reply read_group() {
        return call<range_reply>("read the group's keys", [&](auto done) {
            etcd_.range(group_, group_keys::range_end(group_), request_timeout, done);
        });
    }

    std::optional<std::int64_t> time_left(std::int64_t lease) {
        if (lease == 0) return std::nullopt;
        return call<lease_time_left>("read a lease", [&](auto done) {
                   etcd_.time_to_live(lease, request_timeout, done);
               })
            .ttl_seconds;
    }

    std::string const& group() const { return group_; }
    etcd_client& etcd() { return etcd_; }

private:
    asio::io_context io_;
    std::string group_;
    etcd_client etcd_;
};

// The group as `status` shows it.
struct group_state {
    group_keys::view keys;
    std::int64_t revision = 0;
    std::optional<lock_holder> holder;
    std::optional<std::int64_t> lock_ttl;
    std::map<std::string, member_record> members;
    std::map<std::string, std::optional<std::int64_t>> member_ttl;

    explicit group_state(std::string const& group) : keys(group, "") {}

    // The member that produces: it holds the lock and says it is active.
    std::optional<std::string> producer() const {
        if (!holder || holder->node.empty()) return std::nullopt;
        auto it = members.find(holder->node);
        if (it == members.end() || it->second.state != "active") return std::nullopt;
        return holder->node;
    }
};

group_state read_state(session& s) {
    group_state g(s.group());
    auto reply = s.read_group();
    g.revision = reply.revision;
    g.keys.reset(reply.kvs);
    if (auto lock = g.keys.lock()) {
        g.holder = lock_value::decode(*lock);
        g.lock_ttl = s.time_left(lock->lease);
    }
    g.members = g.keys.members();
    for (auto const& [node, m] : g.members) g.member_ttl[node] = s.time_left(m.lease);
    return g;
}

json note_json(group_keys::operator_note const& n) {
    return json{{"by", n.by}, {"at", n.at}, {"reason", n.reason}};
}

int status(session& s, command_options const& o) {
    auto g = read_state(s);
    auto const producer = g.producer();
    if (o.json) {
        json members = json::array();
        for (auto const& [node, m] : g.members) {
            members.push_back({{"node", node},
                               {"state", m.state},
                               {"producing", producer == node},
                               {"candidate", m.candidate()},
                               {"not_candidate_reason", m.candidate() ? json(nullptr) : json(m.candidacy)},
                               {"standby_mode", m.standby_mode},
                               {"health", m.health ? json(*m.health) : json(nullptr)},
                               {"head_block_num", m.head_block_num ? json(*m.head_block_num) : json(nullptr)},
                               {"head_lag_seconds", m.head_lag_ms ? json(*m.head_lag_ms / 1000.0) : json(nullptr)},
                               {"database_dirty", m.database_dirty},
                               {"lease_seconds_left", g.member_ttl[node] ? json(*g.member_ttl[node]) : json(nullptr)},
                               {"version", m.version},
                               {"since", m.since}});
        }
        json paused_nodes = json::object();
        for (auto const& [node, n] : g.keys.node_pauses()) paused_nodes[node] = note_json(n);
        auto switchover = g.keys.switchover();
        json out{{"group", s.group()},
                 {"producer", producer ? json(*producer) : json(nullptr)},
                 {"lock", g.holder ? json{{"holder", g.holder->node.empty() ? g.holder->raw : g.holder->node},
                                          {"lease_seconds_left", g.lock_ttl ? json(*g.lock_ttl) : json(nullptr)}}
                                   : json(nullptr)},
                 {"members", members},
                 {"paused", {{"group", g.keys.group_pause() ? note_json(*g.keys.group_pause()) : json(nullptr)},
                             {"nodes", paused_nodes}}},
                 {"switchover", switchover ? json{{"to", switchover->to}, {"by", switchover->by}, {"at", switchover->at}}
                                           : json(nullptr)}};
        std::puts(out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
        return producer ? 0 : 1;
    }

    std::ostringstream out;
    out << "group " << s.group() << ": ";
    if (producer) {
        out << *producer << " produces";
    } else if (g.holder) {
        out << "nobody produces; the lock is held by " << (g.holder->node.empty() ? g.holder->raw : g.holder->node);
    } else {
        out << "nobody produces; the lock is free";
    }
    if (g.lock_ttl) out << " (lock lease " << *g.lock_ttl << " s left)";
    out << "\n\n";
    out << std::left << std::setw(16) << "NODE" << std::setw(10) << "STATE" << std::setw(11) << "PRODUCING"
        << std::setw(40) << "CANDIDATE" << std::setw(10) << "HEAD LAG" << std::setw(9) << "LEASE" << std::setw(9)
        << "MODE" << std::setw(9) << "VERSION" << "SINCE\n";
    for (auto const& [node, m] : g.members) {
        auto ttl = g.member_ttl[node];
        out << std::setw(16) << node << std::setw(10) << m.state << std::setw(11) << (producer == node ? "yes" : "no")
            << std::setw(40) << (m.candidate() ? std::string("yes") : "no: " + why_not(m)) << std::setw(10)
            << (m.head_lag_ms ? seconds_text(*m.head_lag_ms) : "-") << std::setw(9)
            << (ttl ? cat(*ttl, " s") : std::string("-")) << std::setw(9) << m.standby_mode << std::setw(9)
            << m.version << m.since << "\n";
    }
    if (g.members.empty()) out << "(no member has a record: no monitor of this version runs in the group)\n";
    if (auto p = g.keys.group_pause()) {
        out << "\npaused: the group, by " << p->by << " at " << p->at << (p->reason.empty() ? "" : ": " + p->reason)
            << " (no automatic takeover)\n";
    }
    for (auto const& [node, p] : g.keys.node_pauses()) {
        out << "paused: " << node << ", by " << p.by << " at " << p.at << (p.reason.empty() ? "" : ": " + p.reason)
            << " (never a candidate)\n";
    }
    if (auto sw = g.keys.switchover()) out << "switchover: to " << sw->to << ", asked by " << sw->by << " at " << sw->at << "\n";
    std::fputs(out.str().c_str(), stdout);
    return producer ? 0 : 1;
}

int pause_or_resume(session& s, command_options const& o, bool pause) {
    auto key = o.node.empty() ? group_keys::pause_key(s.group()) : group_keys::node_pause_key(s.group(), o.node);
    auto what = o.node.empty() ? cat("the group ", s.group()) : cat("node ", o.node);
    if (pause) {
        auto g = read_state(s);
        if (!o.node.empty() && !g.members.contains(o.node)) {
            std::fprintf(stderr, "note: %s is not a member now; it will not be a candidate when it starts\n",
                         o.node.c_str());
        }
        group_keys::operator_note note{.by = operator_name(), .at = now_iso(), .reason = o.reason};
        s.call<std::monostate>("pause", [&](auto done) {
            s.etcd().put(key, group_keys::encode(note), 0, request_timeout, done);
        });
        std::printf("paused %s: %s\n", what.c_str(),
                    o.node.empty() ? "no automatic takeover; the producer produces on while it holds its lease"
                                   : "it is not a candidate; if it produces, it produces on while it holds its lease");
    } else {
        s.call<std::monostate>("resume", [&](auto done) { s.etcd().erase(key, "", request_timeout, done); });
        std::printf("resumed %s\n", what.c_str());
    }
    return 0;
}

// Why a member cannot take over in a switchover now (empty: it can), by the core's rule.
std::string not_ready(group_state const& g, std::string const& node, member_record const& m) {
    switch (switchover_readiness({m.state, m.candidacy, g.keys.node_pauses().contains(node)})) {
    case switchover_verdict::ready: return {};
    case switchover_verdict::paused: return "paused by an operator";
    case switchover_verdict::not_candidate: return why_not(m);
    case switchover_verdict::not_standby: return cat("it is ", m.state);
    }
    return m.state;
}

// The best candidate: a ready standby with the freshest head.
std::string pick_target(group_state const& g, std::string const& producer) {
    std::vector<member_record> ready;
    std::string not_ready_ones;
    for (auto const& [node, m] : g.members) {
        if (node == producer) continue;
        if (auto why = not_ready(g, node, m); why.empty()) {
            ready.push_back(m);
        } else {
            not_ready_ones += cat(not_ready_ones.empty() ? "" : ", ", node, " (", why, ")");
        }
    }
    if (ready.empty()) {
        throw refused(not_ready_ones.empty() ? "no candidate at all: the producer is the group's only member"
                                             : cat("no candidate at all: ", not_ready_ones));
    }
    std::stable_sort(ready.begin(), ready.end(), [](auto const& a, auto const& b) {
        return a.head_lag_ms.value_or(INT64_MAX) < b.head_lag_ms.value_or(INT64_MAX);
    });
    return ready.front().node;
}

int switchover(session& s, command_options const& o) {
    auto g = read_state(s);
    auto producer = g.producer();
    if (!producer) throw refused("no member is producing: there is nothing to hand over (nodeos-monitor status)");
    if (g.keys.group_pause()) throw refused("the group is paused: resume it first (nodeos-monitor resume)");
    if (auto sw = g.keys.switchover()) throw refused(cat("a switchover to ", sw->to, " is already under way"));
    std::string target = o.to;
    if (target.empty()) {
        target = pick_target(g, *producer);
    } else {
        auto it = g.members.find(target);
        if (it == g.members.end()) throw refused(cat(target, " is not a member of group ", s.group()));
        if (target == *producer) throw refused(cat(target, " is already the producer"));
        if (auto why = not_ready(g, target, it->second); !why.empty()) throw refused(cat(target, " is not ready: ", why));
    }

    // The request lives as long as the wait: a switchover that cannot complete ends by itself.
    auto lease = s.call<lease_grant>("switchover", [&](auto done) {
        s.etcd().grant(o.wait + 1, request_timeout, done);
    });
    group_keys::operator_note note{.to = target, .by = operator_name(), .at = now_iso(), .reason = o.reason};
    auto started = steady::now();
    // Watch from the read on, to see the lock leave the producer and reach the target.
    std::optional<steady::time_point> released, taken, producing;
    std::string failure;
    s.etcd().watch(
        s.group(), group_keys::range_end(s.group()), g.revision + 1,
        [&](watch_message const& m) {
            for (auto const& ev : m.events) {
                auto kind = g.keys.apply(ev);
                auto now = steady::now();
                if (kind == group_keys::view::kind::lock) {
                    if (ev.what == watch_event::type::del) {
                        if (!released) released = now;
                    } else if (lock_value::decode(ev.kv).node == target) {
                        if (!taken) taken = now;
                    } else if (released) {
                        failure = cat("the lock went to ", lock_value::decode(ev.kv).node, " instead");
                    }
                } else if (kind == group_keys::view::kind::member && taken) {
                    auto members = g.keys.members();
                    if (auto it = members.find(target); it != members.end() && it->second.state == "active") producing = now;
                }
            }
        },
        [&](etcd_error const& e) { failure = cat("the watch ended: ", describe(e)); });
    s.call<std::monostate>("switchover", [&](auto done) {
        s.etcd().put(group_keys::switchover_key(s.group()), group_keys::encode(note), lease.id, request_timeout, done);
    });
    std::printf("switchover from %s to %s: asked; waiting up to %d s\n", producer->c_str(), target.c_str(), o.wait);
    std::fflush(stdout);
    bool done = s.run_until([&] { return producing.has_value() || !failure.empty(); }, std::chrono::seconds(o.wait));
    // The request is over either way.
    s.call<std::monostate>("end the switchover", [&](auto d) { s.etcd().revoke(lease.id, request_timeout, d); });
    auto ms = [](auto a, auto b) { return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count(); };
    if (!done || !failure.empty()) {
        auto state = !released ? cat(*producer, " did not release the lock")
                               : !taken ? cat("the lock was released but ", target, " did not take it")
                                        : cat(target, " took the lock but does not report producing");
        throw refused(cat("switchover to ", target, " did not complete in ", o.wait, " s: ",
                          failure.empty() ? state : failure));
    }
    std::printf("switchover to %s done in %lld ms: the lock passed in %lld ms (released -> taken); %s reports "
                "producing %lld ms after the release\n",
                target.c_str(), static_cast<long long>(ms(started, *producing)),
                static_cast<long long>(ms(*released, *taken)), target.c_str(),
                static_cast<long long>(ms(*released, *producing)));
    return 0;
}

}  // namespace

int run_command(command_line const& cl) {
    try {
        session s(cl.cfg);
        switch (cl.action) {
        case command_line::what::status: return status(s, cl.command);
        case command_line::what::switchover: return switchover(s, cl.command);
        case command_line::what::pause: return pause_or_resume(s, cl.command, true);
        case command_line::what::resume: return pause_or_resume(s, cl.command, false);
        default: return 2;
        }
    } catch (refused const& e) {
        std::fprintf(stderr, "nodeos-monitor %s: %s\n",
                     cl.action == command_line::what::status       ? "status"
                     : cl.action == command_line::what::switchover ? "switchover"
                     : cl.action == command_line::what::pause      ? "pause"
                                                                   : "resume",
                     e.what());
        return 1;
    }
}

}  // namespace nm

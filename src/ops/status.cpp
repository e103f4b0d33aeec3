#include "ops/status.hpp"

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

namespace nm {
namespace {

template <class T>
nlohmann::json or_null(std::optional<T> const& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

double rounded(double seconds) { return std::round(seconds * 1000) / 1000; }

}  // namespace

std::string iso_time(double unix_seconds) {
    auto t = static_cast<std::time_t>(unix_seconds);
    tm utc{};
    ::gmtime_r(&t, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
}

std::string render_status_json(status_view const& s) {
    nlohmann::json j{
        {"node", s.node},
        {"group", s.group},
        {"state", name_of(s.state)},
        {"lock_held", s.lock_held},
        {"holder", s.lock_held ? nlohmann::json(s.node) : s.holder.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.holder)},
        {"lease_deadline_remaining_seconds", s.lease_remaining ? nlohmann::json(rounded(*s.lease_remaining)) : nullptr},
        {"nodeos", {{"pid", or_null(s.nodeos_pid)},
                    {"mode", or_null(s.nodeos_mode)},
                    {"uptime_seconds", s.nodeos_uptime ? nlohmann::json(rounded(*s.nodeos_uptime)) : nullptr},
                    {"health", or_null(s.health)},
                    {"head_block_num", or_null(s.head_block_num)},
                    {"head_lag_seconds", s.head_lag ? nlohmann::json(rounded(*s.head_lag)) : nullptr},
                    {"database_dirty", s.database_dirty}}},
        {"standby_mode", s.standby_mode},
        {"candidate", s.candidate == candidacy::candidate},
        {"not_candidate_reason", s.candidate == candidacy::candidate ? nlohmann::json(nullptr)
                                                                      : nlohmann::json(name_of(s.candidate))},
        {"healthy", healthy(s)},
    };
    if (s.last_transition) {
        auto const& t = *s.last_transition;
        j["last_transition"] = {{"from", name_of(t.from)}, {"to", name_of(t.to)}, {"at", iso_time(t.at_unix)},
                                {"cause", t.cause}, {"reason", t.reason}};
    } else {
        j["last_transition"] = nullptr;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string status_line(status_view const& s) {
    auto since = s.last_transition ? " since " + iso_time(s.last_transition->at_unix) : std::string();
    std::string line;
    switch (s.state) {
    case role::starting: line = "starting: waiting for the lock's verdict"; break;
    case role::active: line = "active" + since; break;
    case role::standby:
        line = "standby" + since + (s.holder.empty() ? ", lock holder unknown" : ", holder is " + s.holder);
        break;
    case role::stopping: return "stopping: nodeos first, then the lock";
    }
    if (s.database_dirty) {
        line += "; nodeos's database is dirty: replay required";
    } else if (s.state != role::active && s.candidate != candidacy::candidate) {
        line += std::string("; not a candidate: ") + name_of(s.candidate);
    }
    return line;
}

bool healthy(status_view const& s) {
    if (!s.nodeos_pid || !s.nodeos_mode) return false;
    switch (s.state) {
    case role::active: return *s.nodeos_mode == "active" && s.lock_held;
    case role::standby: return *s.nodeos_mode == "standby" || *s.nodeos_mode == "paused";
    case role::starting:
    case role::stopping: return false;
    }
    return false;
}

}  // namespace nm

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
                    {"uptime_seconds", s.nodeos_uptime ? nlohmann::json(rounded(*s.nodeos_uptime)) : nullptr}}},
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
    switch (s.state) {
    case role::starting: return "starting: waiting for the lock's verdict";
    case role::active: return "active" + since;
    case role::standby:
        return "standby" + since + (s.holder.empty() ? ", lock holder unknown" : ", holder is " + s.holder);
    case role::stopping: return "stopping: nodeos first, then the lock";
    }
    return name_of(s.state);
}

bool healthy(status_view const& s) {
    if (!s.nodeos_pid || !s.nodeos_mode) return false;
    switch (s.state) {
    case role::active: return *s.nodeos_mode == "active" && s.lock_held;
    case role::standby: return *s.nodeos_mode == "standby";
    case role::starting:
    case role::stopping: return false;
    }
    return false;
}

}  // namespace nm

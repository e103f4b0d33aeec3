#pragma once
// GET /status and GET /healthz, and the systemd STATUS= line: one snapshot of the monitor,
// rendered three ways. Pure functions, for unit tests.
#include <optional>
#include <string>

#include "ops/metrics.hpp"

namespace nm {

struct transition {
    role from = role::starting;
    role to = role::starting;
    double at_unix = 0;    // wall-clock time of the change, seconds since the epoch
    std::string cause;     // the core's cause, as in the logs
    std::string reason;    // the core's sentence
};

struct status_view {
    std::string node;
    std::string group;
    role state = role::starting;
    bool lock_held = false;
    std::string holder;                     // who holds the lock, when another node does
    std::optional<double> lease_remaining;  // seconds
    std::optional<int> nodeos_pid;
    std::optional<std::string> nodeos_mode;  // "active" or "standby"
    std::optional<double> nodeos_uptime;     // seconds
    std::optional<transition> last_transition;
    std::string standby_mode = "restart";
    candidacy candidate = candidacy::candidate;
    std::optional<std::string> health;       // with --nodeos-api: healthy, lagging, unreachable, unchecked
    std::optional<std::int64_t> head_block_num;
    std::optional<double> head_lag;          // seconds
    bool database_dirty = false;
};

std::string render_status_json(status_view const& s);

// "active since 2026-11-24T22:30:00Z", "standby, holder is bp1 (…)", …
std::string status_line(status_view const& s);

// Healthy: nodeos runs, in the mode its state calls for (the loop is alive if it answers).
// nodeos_mode is "active" or "standby" (restart mode), "active" or "paused" (paused mode).
bool healthy(status_view const& s);

// An ISO 8601 UTC time for a Unix time in seconds.
std::string iso_time(double unix_seconds);

}  // namespace nm

#pragma once
// What the monitor counts, and its rendering in the Prometheus text format (version 0.0.4).
//
// operations.cpp updates the counters from the core's actions; the HTTP endpoint renders them with a snapshot of the gauges at the moment of the request. No I/O here
// except reading /proc/self, so unit tests render exactly what a scrape would see.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/actions.hpp"

namespace nm {

inline constexpr std::array all_roles{role::starting, role::standby, role::active, role::stopping};
inline constexpr std::array all_candidacies{
    candidacy::candidate,      candidacy::stopping,       candidacy::held_off,         candidacy::crash_loop,
    candidacy::producer_unhealthy, candidacy::dirty_database, candidacy::nodeos_down,  candidacy::nodeos_unchecked,
    candidacy::nodeos_lagging, candidacy::nodeos_unreachable, candidacy::group_paused, candidacy::node_paused,
    candidacy::switchover_to_other, candidacy::etcd_refused};

// A cumulative histogram with fixed upper bounds, in seconds.
class histogram {
public:
    explicit histogram(std::vector<double> bounds);
    void observe(double value);
    std::vector<double> const& bounds() const { return bounds_; }
    std::vector<std::uint64_t> const& counts() const { return counts_; }  // per bound, not cumulative
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

// Counters, by label value. The label values an alert or a panel asks about are there from
// the start, at 0, so that the first event is an increase rather than a new series.
struct counters {
    std::map<std::pair<std::string, std::string>, std::uint64_t> transitions;  // (from, to)
    std::map<std::string, std::uint64_t> nodeos_starts;    // by mode
    std::map<std::string, std::uint64_t> nodeos_exits{
        {"stopped", 0}, {"exited", 0}, {"start_failed", 0}, {"dirty_database", 0}, {"failed", 0}};
    std::map<std::string, std::uint64_t> nodeos_restarts{{"crash", 0}, {"promote", 0}, {"demote", 0}, {"restart", 0}};
    std::map<std::string, std::uint64_t> fences{{"deadline", 0}, {"lost_lock", 0}, {"frozen", 0}};
    std::map<std::string, std::uint64_t> etcd_requests;    // by kind: grant, keepalive, campaign, revoke, watch
    std::map<std::string, std::uint64_t> etcd_errors;      // by kind
    std::map<std::string, std::uint64_t> api_requests;     // to nodeos's API, by kind: get_info, pause, resume
    std::map<std::string, std::uint64_t> api_errors;       // by kind
    std::map<std::string, std::uint64_t> hook_runs{  // role-change hooks, by result
        {"ok", 0}, {"failed", 0}, {"timed_out", 0}, {"dropped", 0}, {"error", 0}};
    histogram keepalive_rtt{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}};
    std::uint64_t blocks_produced = 0;
    std::uint64_t blocks_received = 0;
    std::uint64_t log_lines_dropped = 0;  // kept by the log (ops/log.hpp), copied in at each scrape

    // Counts a nodeos output line that reports a block.
    void count_block_line(std::string_view line);
};

// Gauges, read at scrape time.
struct gauges {
    std::string group;  // labels of every nodeos_monitor_* sample
    std::string node;
    role state = role::starting;
    bool lock_held = false;
    std::optional<double> lease_remaining;  // seconds until the lease deadline, when a lease is live
    double lease_ttl = 0;                   // seconds, --lease-ttl
    bool nodeos_running = false;
    candidacy candidate = candidacy::candidate;
    std::optional<double> head_lag;         // seconds, when nodeos's API answered
    std::optional<std::int64_t> head_block_num;
    bool database_dirty = false;
};

// From /proc/self: what every Prometheus client library reports as process_*.
struct process_stats {
    double cpu_seconds = 0;
    double resident_bytes = 0;
    double virtual_bytes = 0;
    double open_fds = 0;
    double max_fds = 0;
    double start_time_seconds = 0;  // since the Unix epoch
};
process_stats read_process_stats();

std::string render_metrics(counters const& c, gauges const& g, process_stats const& p, std::string const& version);

}  // namespace nm

// /metrics, /status and /healthz rendering, and the log line formats: pure functions, no sockets.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/status.hpp"

using namespace nm;

namespace {

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// The family a sample belongs to: its name without labels and histogram suffixes.
std::string family_of(std::string const& sample, std::set<std::string> const& histograms) {
    auto name = sample.substr(0, sample.find_first_of("{ "));
    for (char const* suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
            auto base = name.substr(0, name.size() - std::string_view(suffix).size());
            if (histograms.contains(base)) return base;
        }
    }
    return name;
}

std::string rendered_example() {
    counters c;
    c.transitions[{"starting", "standby"}] = 1;
    c.transitions[{"standby", "active"}] = 2;
    c.nodeos_starts["active"] = 2;
    c.nodeos_exits["exited"] = 1;
    c.nodeos_restarts["promote"] = 1;
    c.fences["lost_lock"] = 3;
    c.etcd_requests["keepalive"] = 10;
    c.etcd_errors["keepalive"] = 1;
    c.keepalive_rtt.observe(0.003);
    c.keepalive_rtt.observe(0.2);
    c.keepalive_rtt.observe(30);
    c.count_block_line("info 2026 producer_plugin.cpp Produced block 0000a1b2... #42 @ 2026");
    c.count_block_line("info 2026 controller.cpp Received block 0000a1b2... #43");
    c.count_block_line("info something else");
    gauges g{"eos", "bp1", role::active, true, 7.25, 10, true, candidacy::candidate, 0.4, 1234, false};
    process_stats p{1.5, 7e6, 2e8, 11, 1024, 1.7e9};
    return render_metrics(c, g, p, "0.1.0");
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_family_has_help_and_type_once_and_counters_end_in_total) {
    auto text = rendered_example();
    std::map<std::string, std::string> types;
    std::set<std::string> helps, histograms;
    std::vector<std::string> samples;
    for (auto const& line : lines_of(text)) {
        BOOST_TEST_REQUIRE(!line.empty());
        if (line.starts_with("# HELP ")) {
            auto name = line.substr(7, line.find(' ', 7) - 7);
            BOOST_TEST(helps.insert(name).second, "HELP twice for " << name);
        } else if (line.starts_with("# TYPE ")) {
            std::istringstream in(line.substr(7));
            std::string name, type;
            in >> name >> type;
            BOOST_TEST(!types.contains(name), "TYPE twice for " << name);
            BOOST_TEST(helps.contains(name), "TYPE before HELP for " << name);
            types[name] = type;
            if (type == "histogram") histograms.insert(name);
            if (type == "counter") BOOST_TEST(name.ends_with("_total"), name << " is a counter without _total");
        } else {
            samples.push_back(line);
        }
    }
    for (auto const& s : samples) {
        BOOST_TEST(types.contains(family_of(s, histograms)), "sample without TYPE: " << s);
    }
    for (auto const& wanted : {"nodeos_monitor_state", "nodeos_monitor_lock_held", "nodeos_monitor_lease_deadline_remaining_seconds",
                               "nodeos_monitor_state_transitions_total", "nodeos_monitor_nodeos_starts_total",
                               "nodeos_monitor_nodeos_exits_total", "nodeos_monitor_nodeos_restarts_total",
                               "nodeos_monitor_fences_total", "nodeos_monitor_etcd_requests_total",
                               "nodeos_monitor_etcd_errors_total", "nodeos_monitor_keepalive_duration_seconds",
                               "nodeos_monitor_blocks_produced_total", "nodeos_monitor_blocks_received_total",
                               "nodeos_monitor_build_info", "nodeos_monitor_candidate", "nodeos_monitor_candidacy",
                               "nodeos_monitor_head_lag_seconds", "nodeos_monitor_head_block_num",
                               "nodeos_monitor_database_dirty", "nodeos_monitor_api_requests_total",
                               "nodeos_monitor_api_errors_total", "process_cpu_seconds_total", "process_resident_memory_bytes",
                               "process_open_fds", "process_start_time_seconds"}) {
        BOOST_TEST(types.contains(wanted), "missing family " << wanted);
    }
}

BOOST_AUTO_TEST_CASE(samples_carry_the_values) {
    auto text = rendered_example();
    for (auto const& wanted : {
             "nodeos_monitor_state{group=\"eos\",node=\"bp1\",state=\"active\"} 1\n",
             "nodeos_monitor_state{group=\"eos\",node=\"bp1\",state=\"standby\"} 0\n",
             "nodeos_monitor_lock_held{group=\"eos\",node=\"bp1\"} 1\n",
             "nodeos_monitor_lease_deadline_remaining_seconds{group=\"eos\",node=\"bp1\"} 7.25\n",
             "nodeos_monitor_state_transitions_total{group=\"eos\",node=\"bp1\",from=\"standby\",to=\"active\"} 2\n",
             "nodeos_monitor_fences_total{group=\"eos\",node=\"bp1\",cause=\"lost_lock\"} 3\n",
             "nodeos_monitor_etcd_errors_total{group=\"eos\",node=\"bp1\",kind=\"keepalive\"} 1\n",
             "nodeos_monitor_keepalive_duration_seconds_bucket{group=\"eos\",node=\"bp1\",le=\"0.005\"} 1\n",
             "nodeos_monitor_keepalive_duration_seconds_bucket{group=\"eos\",node=\"bp1\",le=\"0.25\"} 2\n",
             "nodeos_monitor_keepalive_duration_seconds_bucket{group=\"eos\",node=\"bp1\",le=\"5\"} 2\n",
             "nodeos_monitor_keepalive_duration_seconds_bucket{group=\"eos\",node=\"bp1\",le=\"+Inf\"} 3\n",
             "nodeos_monitor_keepalive_duration_seconds_count{group=\"eos\",node=\"bp1\"} 3\n",
             "nodeos_monitor_blocks_produced_total{group=\"eos\",node=\"bp1\"} 1\n",
             "nodeos_monitor_blocks_received_total{group=\"eos\",node=\"bp1\"} 1\n",
             "nodeos_monitor_build_info{group=\"eos\",node=\"bp1\",version=\"0.1.0\"} 1\n",
             "nodeos_monitor_candidate{group=\"eos\",node=\"bp1\"} 1\n",
             "nodeos_monitor_candidacy{group=\"eos\",node=\"bp1\",reason=\"candidate\"} 1\n",
             "nodeos_monitor_candidacy{group=\"eos\",node=\"bp1\",reason=\"nodeos_lagging\"} 0\n",
             "nodeos_monitor_head_lag_seconds{group=\"eos\",node=\"bp1\"} 0.4\n",
             "nodeos_monitor_head_block_num{group=\"eos\",node=\"bp1\"} 1234\n",
             "nodeos_monitor_database_dirty{group=\"eos\",node=\"bp1\"} 0\n",
             "process_open_fds 11\n", "process_resident_memory_bytes 7000000\n"}) {
        BOOST_TEST(text.find(wanted) != std::string::npos, "missing: " << wanted);
    }
}

BOOST_AUTO_TEST_CASE(no_lease_means_no_deadline_sample) {
    counters c;
    auto text = render_metrics(c, gauges{}, process_stats{}, "v");
    BOOST_TEST(text.find("\nnodeos_monitor_lease_deadline_remaining_seconds ") == std::string::npos);
    BOOST_TEST(text.find("nodeos_monitor_state{state=\"starting\"} 1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
    counters c;
    c.etcd_errors["a\"b\\c\nd"] = 1;
    auto text = render_metrics(c, gauges{}, process_stats{}, "v");
    BOOST_TEST(text.find(R"(kind="a\"b\\c\nd"} 1)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(process_stats_of_this_process) {
    auto p = read_process_stats();
    BOOST_TEST(p.resident_bytes > 0);
    BOOST_TEST(p.open_fds >= 3);
    BOOST_TEST(p.start_time_seconds > 1.6e9);
}

BOOST_AUTO_TEST_CASE(status_json_has_every_field) {
    status_view s;
    s.node = "bp1";
    s.group = "eos";
    s.state = role::standby;
    s.holder = "bp2 (abc)";
    s.lease_remaining = 8.1234;
    s.nodeos_pid = 42;
    s.nodeos_mode = "standby";
    s.nodeos_uptime = 12.5;
    s.last_transition = transition{role::active, role::standby, 1.7e9, "fence_lost_lock", "the lock is lost"};
    auto j = nlohmann::json::parse(render_status_json(s));
    BOOST_TEST(j["node"] == "bp1");
    BOOST_TEST(j["group"] == "eos");
    BOOST_TEST(j["state"] == "standby");
    BOOST_TEST(j["holder"] == "bp2 (abc)");
    BOOST_TEST(j["lock_held"] == false);
    BOOST_TEST(j["lease_deadline_remaining_seconds"] == 8.123);
    BOOST_TEST(j["nodeos"]["pid"] == 42);
    BOOST_TEST(j["nodeos"]["uptime_seconds"] == 12.5);
    BOOST_TEST(j["last_transition"]["from"] == "active");
    BOOST_TEST(j["last_transition"]["reason"] == "the lock is lost");
    BOOST_TEST(j["last_transition"]["cause"] == "fence_lost_lock");
    BOOST_TEST(j["last_transition"]["at"] == "2023-11-14T22:13:20Z");
    BOOST_TEST(j["healthy"] == true);
    BOOST_TEST(status_line(s) == "standby since 2023-11-14T22:13:20Z, holder is bp2 (abc)");
}

BOOST_AUTO_TEST_CASE(status_json_before_anything_happened) {
    status_view s;
    s.node = "n";
    auto j = nlohmann::json::parse(render_status_json(s));
    BOOST_TEST(j["state"] == "starting");
    BOOST_TEST(j["holder"].is_null());
    BOOST_TEST(j["nodeos"]["pid"].is_null());
    BOOST_TEST(j["last_transition"].is_null());
    BOOST_TEST(j["healthy"] == false);
}

BOOST_AUTO_TEST_CASE(health_follows_the_state) {
    status_view s;
    s.nodeos_pid = 1;
    s.state = role::active;
    s.nodeos_mode = "active";
    s.lock_held = true;
    BOOST_TEST(healthy(s));
    s.lock_held = false;
    BOOST_TEST(!healthy(s));
    s.state = role::standby;
    s.nodeos_mode = "standby";
    BOOST_TEST(healthy(s));
    s.nodeos_pid.reset();
    BOOST_TEST(!healthy(s), "no nodeos running");
    s.nodeos_pid = 1;
    s.state = role::stopping;
    BOOST_TEST(!healthy(s));
    s.state = role::active;
    s.last_transition = transition{role::standby, role::active, 0, "holds_lock", "x"};
    BOOST_TEST(status_line(s) == "active since 1970-01-01T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(log_lines_in_text_journal_and_json) {
    timespec t{1'700'000'000, 123'000'000};
    BOOST_TEST(format_log_line(level::warning, "keepalive failed", {}, t, log_format::text, false) ==
               "2023-11-14T22:13:20.123Z warn  keepalive failed\n");
    BOOST_TEST(format_log_line(level::error, "x", {}, t, log_format::text, true) == "<3>error x\n");
    BOOST_TEST(format_log_line(level::warning, "x", {}, t, log_format::text, true) == "<4>warn  x\n");
    BOOST_TEST(format_log_line(level::info, "x", {}, t, log_format::text, true) == "<6>info  x\n");
    BOOST_TEST(format_log_line(level::debug, "x", {}, t, log_format::text, true) == "<7>debug x\n");
    // A decision of the core carries its cause, and the change it made.
    BOOST_TEST(format_log_line(level::info, "lock acquired", {"lock_acquired", "lock unknown -> mine"}, t,
                               log_format::text, true) == "<6>info  lock acquired [lock_acquired, lock unknown -> mine]\n");
    BOOST_TEST(format_log_line(level::info, "x", {"holds_lock"}, t, log_format::text, true) == "<6>info  x [holds_lock]\n");
    auto decided = nlohmann::json::parse(
        format_log_line(level::info, "lock acquired", {"lock_acquired", "lock unknown -> mine"}, t, log_format::json, false));
    BOOST_TEST(decided["cause"] == "lock_acquired");
    BOOST_TEST(decided["change"] == "lock unknown -> mine");
    BOOST_TEST(decided["message"] == "lock acquired");
    auto line = format_log_line(level::info, "lock \"acquired\"\n\xff", {}, t, log_format::json, true);
    BOOST_TEST(line.ends_with("}\n"));
    BOOST_TEST(std::count(line.begin(), line.end(), '\n') == 1);
    auto j = nlohmann::json::parse(line);
    BOOST_TEST(j["level"] == "info");
    BOOST_TEST(j["time"] == "2023-11-14T22:13:20.123Z");
    BOOST_TEST(j["message"].get<std::string>().starts_with("lock \"acquired\"\n"));
    BOOST_TEST(!j.contains("cause"));
}

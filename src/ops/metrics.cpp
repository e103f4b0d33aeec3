#include "ops/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>

namespace nm {
namespace {

constexpr char const* prefix = "nodeos_monitor_";

// Label values escape backslash, double quote and newline.
std::string escape(std::string_view value) {
    std::string out;
    for (char ch : value) {
        if (ch == '\\') out += "\\\\";
        else if (ch == '"') out += "\\\"";
        else if (ch == '\n') out += "\\n";
        else out += ch;
    }
    return out;
}

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

// Writes the HELP and TYPE lines of one family; every family is written exactly once.
// Every nodeos_monitor_* sample carries `base` labels (the group and node it serves), so
// that rules can compare the monitors of one group; process_* keep the usual bare names.
class writer {
public:
    explicit writer(std::string base) : base_(std::move(base)) {}

    void family(std::string const& name, char const* type, char const* help) {
        name_ = prefix + name;
        labelled_ = true;
        out_ << "# HELP " << name_ << ' ' << help << '\n' << "# TYPE " << name_ << ' ' << type << '\n';
    }
    // A family with an unprefixed name (process_*, the names every exporter uses).
    void plain_family(std::string const& name, char const* type, char const* help) {
        name_ = name;
        labelled_ = false;
        out_ << "# HELP " << name_ << ' ' << help << '\n' << "# TYPE " << name_ << ' ' << type << '\n';
    }
    void sample(double v, std::string const& labels = {}, std::string const& suffix = {}) {
        out_ << name_ << suffix;
        auto all = labelled_ && !base_.empty() ? (labels.empty() ? base_ : base_ + "," + labels) : labels;
        if (!all.empty()) out_ << '{' << all << '}';
        out_ << ' ' << number(v) << '\n';
    }
    std::string text() const { return out_.str(); }

private:
    std::ostringstream out_;
    std::string name_;
    std::string base_;
    bool labelled_ = true;
};

std::string label(std::string const& name, std::string_view value) {
    return name + "=\"" + escape(value) + "\"";
}

void by_label(writer& w, std::string const& name, std::map<std::string, std::uint64_t> const& values) {
    for (auto const& [value, count] : values) w.sample(static_cast<double>(count), label(name, value));
}

void write_histogram(writer& w, histogram const& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds().size(); ++i) {
        cumulative += h.counts()[i];
        w.sample(static_cast<double>(cumulative), label("le", number(h.bounds()[i])), "_bucket");
    }
    w.sample(static_cast<double>(h.count()), label("le", "+Inf"), "_bucket");
    w.sample(h.sum(), {}, "_sum");
    w.sample(static_cast<double>(h.count()), {}, "_count");
}

void write_state(writer& w, counters const& c, gauges const& g) {
    w.family("state", "gauge", "1 for the state the monitor is in (starting, standby, active, stopping), else 0.");
    for (auto s : all_roles) w.sample(s == g.state ? 1 : 0, label("state", name_of(s)));
    w.family("lock_held", "gauge", "1 while this monitor holds the failover group's lock with a live lease.");
    w.sample(g.lock_held ? 1 : 0);
    w.family("lease_deadline_remaining_seconds", "gauge",
             "Seconds until the lease deadline (last acknowledged keepalive's send time + TTL); absent without a lease.");
    if (g.lease_remaining) w.sample(*g.lease_remaining);
    w.family("lease_ttl_seconds", "gauge", "The lease TTL (--lease-ttl): the remaining time above starts from it at each renewal.");
    w.sample(g.lease_ttl);
    w.family("nodeos_up", "gauge", "1 while nodeos runs (in either mode).");
    w.sample(g.nodeos_running ? 1 : 0);
    w.family("candidate", "gauge", "1 while this node may take the lock.");
    w.sample(g.candidate == candidacy::candidate ? 1 : 0);
    w.family("candidacy", "gauge",
             "1 for why this node may or may not take the lock (candidate, or the reason it is not), else 0.");
    for (auto c : all_candidacies) w.sample(c == g.candidate ? 1 : 0, label("reason", name_of(c)));
    w.family("head_lag_seconds", "gauge", "How far nodeos's head block time is behind the wall clock; absent until its API answers.");
    if (g.head_lag) w.sample(*g.head_lag);
    w.family("head_block_num", "gauge", "nodeos's head block number; absent until its API answers.");
    if (g.head_block_num) w.sample(static_cast<double>(*g.head_block_num));
    w.family("database_dirty", "gauge", "1 while nodeos refuses to start on a dirty database (replay required).");
    w.sample(g.database_dirty ? 1 : 0);
    w.family("state_transitions_total", "counter", "State changes, by from and to.");
    for (auto const& [edge, count] : c.transitions) {
        w.sample(static_cast<double>(count), label("from", edge.first) + "," + label("to", edge.second));
    }
}

void write_nodeos(writer& w, counters const& c) {
    w.family("nodeos_starts_total", "counter", "nodeos processes started, by mode.");
    by_label(w, "mode", c.nodeos_starts);
    w.family("nodeos_exits_total", "counter",
             "nodeos processes ended, by reason (stopped: asked to; exited: on its own; start_failed; "
             "dirty_database: refused a dirty database; failed: stopped as an unhealthy producer).");
    by_label(w, "reason", c.nodeos_exits);
    w.family("nodeos_restarts_total", "counter",
             "nodeos started again after an earlier one, by reason (crash, promote, demote, restart).");
    by_label(w, "reason", c.nodeos_restarts);
    w.family("fences_total", "counter",
             "Signals sent to stop a producer that may no longer produce, by cause (deadline, lost_lock, frozen).");
    by_label(w, "cause", c.fences);
    w.family("blocks_produced_total", "counter", "\"Produced block\" lines in nodeos's output.");
    w.sample(static_cast<double>(c.blocks_produced));
    w.family("blocks_received_total", "counter", "\"Received block\" lines in nodeos's output.");
    w.sample(static_cast<double>(c.blocks_received));
}

void write_etcd(writer& w, counters const& c) {
    w.family("etcd_requests_total", "counter", "Requests to etcd, by kind (grant, keepalive, campaign, revoke, watch).");
    by_label(w, "kind", c.etcd_requests);
    w.family("etcd_errors_total", "counter", "Failed requests to etcd, by kind.");
    by_label(w, "kind", c.etcd_errors);
    w.family("keepalive_duration_seconds", "histogram", "Time from a lease keepalive's first send to its acknowledgement (a refused token's authentication and second send included).");
    write_histogram(w, c.keepalive_rtt);
    w.family("api_requests_total", "counter", "Requests to nodeos's HTTP API, by kind (get_info, pause, resume).");
    by_label(w, "kind", c.api_requests);
    w.family("api_errors_total", "counter", "Failed requests to nodeos's HTTP API, by kind.");
    by_label(w, "kind", c.api_errors);
    w.family("hook_runs_total", "counter",
             "Runs of the --on-role-change commands, by result (ok, failed, timed_out: killed at --hook-timeout, "
             "dropped: too many changes queued, error: could not start).");
    by_label(w, "result", c.hook_runs);
}

void write_log(writer& w, counters const& c) {
    w.family("log_lines_dropped_total", "counter",
             "Log lines never written to stderr: dropped whole while the log buffer was full (stderr not taking "
             "them: a stalled journald or reader), or refused by stderr (a write error).");
    w.sample(static_cast<double>(c.log_lines_dropped));
}

void write_process(writer& w, process_stats const& p, std::string const& version) {
    w.family("build_info", "gauge", "Always 1; the version in its label.");
    w.sample(1, label("version", version));
    struct row { char const* name; char const* type; char const* help; double value; };
    for (auto const& r : {
             row{"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds},
             row{"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes},
             row{"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes},
             row{"process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds},
             row{"process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds},
             row{"process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                 p.start_time_seconds},
         }) {
        w.plain_family(r.name, r.type, r.help);
        w.sample(r.value);
    }
}

double boot_time_seconds() {
    std::ifstream stat("/proc/stat");
    std::string key;
    double value = 0;
    while (stat >> key) {
        if (key == "btime" && stat >> value) return value;
        stat.ignore(1 << 16, '\n');
    }
    return 0;
}

double count_open_fds() {
    double n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') ++n;
        }
        ::closedir(d);
        n -= 1;  // the directory stream itself
    }
    return n;
}

}  // namespace

histogram::histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size()) {}

void histogram::observe(double value) {
    auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    if (at != bounds_.end()) ++counts_[static_cast<std::size_t>(at - bounds_.begin())];
    ++count_;
    sum_ += value;
}

void counters::count_block_line(std::string_view line) {
    if (line.find("Produced block") != std::string_view::npos) {
        ++blocks_produced;
    } else if (line.find("Received block") != std::string_view::npos) {
        ++blocks_received;
    }
}

process_stats read_process_stats() {
    process_stats p;
    std::ifstream stat_file("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close != std::string::npos) {
        // Fields after the command name, numbered from 3 (state) as in proc(5).
        std::istringstream fields(text.substr(close + 2));
        std::vector<std::string> f{"", "", ""};
        for (std::string x; fields >> x;) f.push_back(x);
        if (f.size() > 24) {
            double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
            double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
            p.cpu_seconds = (std::stod(f[14]) + std::stod(f[15])) / ticks;
            static double const boot_time = boot_time_seconds();  // fixed until the next boot
            p.start_time_seconds = boot_time + std::stod(f[22]) / ticks;
            p.virtual_bytes = std::stod(f[23]);
            p.resident_bytes = std::stod(f[24]) * page;
        }
    }
    p.open_fds = count_open_fds();
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = static_cast<double>(lim.rlim_cur);
    return p;
}

std::string render_metrics(counters const& c, gauges const& g, process_stats const& p, std::string const& version) {
    std::string base;
    if (!g.group.empty() || !g.node.empty()) base = label("group", g.group) + "," + label("node", g.node);
    writer w(base);
    write_state(w, c, g);
    write_nodeos(w, c);
    write_etcd(w, c);
    write_log(w, c);
    write_process(w, p, version);
    return w.text();
}

}  // namespace nm

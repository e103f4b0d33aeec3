// nodeos-monitor: runs nodeos as the block producer only while this node holds its
// failover group's lock in etcd, and as a validator otherwise.
#include <chrono>
#include <cstdio>
#include <exception>

#include "app/commands.hpp"
#include "app/monitor.hpp"
#include "ops/log.hpp"
#include "app/options.hpp"
#include "version.hpp"

int main(int argc, char** argv) {
    using namespace nm;
    // At every return: the lines still queued for stderr, within a bounded wait (ops/log.hpp).
    struct flush_at_exit {
        ~flush_at_exit() { flush_log(std::chrono::seconds(1)); }
    } flush;
    try {
        auto cl = parse_command_line(argc, argv);
        switch (cl.action) {
        case command_line::what::help: std::fputs(cl.text.c_str(), stdout); return 0;
        case command_line::what::version: std::puts("nodeos-monitor " NM_VERSION); return 0;
        case command_line::what::status:
        case command_line::what::switchover:
        case command_line::what::pause:
        case command_line::what::resume: return run_command(cl);
        case command_line::what::run: break;
        }
        set_debug_logging(cl.cfg.debug);
        set_log_format(cl.cfg.json_logs ? log_format::json : log_format::text);
        set_journal_priorities(stderr_is_journal());
        monitor m(std::move(cl.cfg));
        return m.run();
    } catch (usage_error const& e) {
        std::fprintf(stderr, "nodeos-monitor: %s\n", e.what());
        return 2;
    } catch (std::exception const& e) {
        log(level::error, cat("fatal: ", e.what()));
        return 1;
    }
}

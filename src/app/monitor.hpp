#pragma once
// The driver: runs the failover core on one io_context and carries out its actions.
//
//        signalfd (SIGCHLD, SIGTERM, SIGINT) ──┐
//        timerfd on CLOCK_BOOTTIME ────────────┤ facts            actions
//        etcd_client answers and watch ────────┼────────▶ failover ───────▶ perform() ──▶ log
//        nodeos exit (reaped on SIGCHLD) ──────┘                               │     └──▶ operations
//                  ▲                                                           │          (observes all)
//                  └──── etcd requests, nodeos start and signals ◀─────────────┘
//
// One thread. The core decides; this file only does what it is told and reports back,
// and when it cannot do what the fence needs, it stops nodeos itself (fail_safe()).
#include <memory>

#include "app/options.hpp"

namespace nm {

class monitor {
public:
    // Resolves the endpoints and loads TLS files; throws usage_error when they are unusable.
    explicit monitor(config cfg);
    ~monitor();
    monitor(monitor const&) = delete;
    monitor& operator=(monitor const&) = delete;

    // Runs until the core exits; returns the exit code.
    int run();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace nm

#!/usr/bin/env python3
"""Measures how often one idle monitor opens a watch on the lock key when every watch is
cut right after it opens (the proxy's `cut_watch` mode: an etcd behind a load balancer
that ends streaming connections).

For each TTL: a one-member etcd, a proxy in `cut_watch` between it and one monitor (which
becomes the producer, alone), a warm-up, then a window in which the watch requests are
counted at the proxy, and cross-checked with the monitor's own
nodeos_monitor_etcd_requests_total{kind="watch"} from /metrics.

    NM_MONITOR=build/nodeos-monitor python3 tests/faults/watch_rate.py --ttl 3 --ttl 10 --seconds 60

Run by hand, not by meson; the fault scenario Faults.test_watch_streams_cut asserts a bound
on the same figure. Every process is stopped by its PID; every wait has a deadline."""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from harness import (  # noqa: E402
    MONITOR, Etcd, Ledger, Monitor, make_config_dirs, reap_orphans, stop_monitors,
    wait_single_producer)
from proxy import Proxy  # noqa: E402

WATCH_METRIC = re.compile(r'^nodeos_monitor_etcd_requests_total\{[^}]*kind="watch"\} (\S+)$', re.M)


def metric_watches(monitor):
    """The monitor's own count of watches it opened, from /metrics."""
    with urllib.request.urlopen(f"http://{monitor.metrics_addr}/metrics", timeout=2) as r:
        found = WATCH_METRIC.search(r.read().decode())
    return int(float(found.group(1))) if found else 0


def measure(ttl, seconds, warmup):
    """Returns (proxy count, proxy cuts, metric count, window in s) for one TTL."""
    workdir = tempfile.mkdtemp(prefix=f"nm-watch-rate-ttl{ttl}-")
    make_config_dirs(workdir)
    ledger = Ledger(os.path.join(workdir, "ledger.jsonl"))
    etcd = Etcd(workdir).start()
    proxy = Proxy(etcd.client_port, name="watch-rate")
    monitor = None
    try:
        proxy.set("cut_watch")
        monitor = Monitor(workdir, "node-a", [proxy.url], "bp-watch-rate", ttl=ttl,
                          stop_timeout=4, ledger=ledger)
        wait_single_producer(ledger, ttl + 10)
        time.sleep(warmup)
        monitor.assert_running()
        start = (time.monotonic(), proxy.watch_requests, proxy.watches_cut, metric_watches(monitor))
        # The window, with the monitor checked once a second: a monitor that died would
        # open no watch and look well-behaved.
        end_at = start[0] + seconds
        while time.monotonic() < end_at:
            time.sleep(min(1.0, max(0.0, end_at - time.monotonic())))
            monitor.assert_running()
        end = (time.monotonic(), proxy.watch_requests, proxy.watches_cut, metric_watches(monitor))
        return end[1] - start[1], end[2] - start[2], end[3] - start[3], end[0] - start[0]
    finally:
        if monitor is not None:
            stop_monitors([monitor])
            left = reap_orphans([monitor], ledger)
            if left:
                print(f"simulators outlived the monitor (killed now): {left}", file=sys.stderr)
        proxy.close()
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttl", type=int, action="append", help="lease TTL in s (repeatable)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the window")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="s after the monitor produces before the window opens")
    args = parser.parse_args()
    if not os.access(MONITOR, os.X_OK):
        sys.exit(f"no executable nodeos-monitor at {MONITOR}: build it, or set NM_MONITOR")
    print(f"monitor: {MONITOR}")
    for ttl in args.ttl or [3, 10]:
        seen, cut, metric, window = measure(ttl, args.seconds, args.warmup)
        per_min = 60.0 / window
        print(f"TTL {ttl:>2} s, {window:.1f} s window: proxy saw {seen} watch requests "
              f"({seen * per_min:.0f}/min, cut {cut}); monitor's metric +{metric} "
              f"({metric * per_min:.0f}/min); renew interval allows {60 / (ttl / 3):.0f}/min",
              flush=True)


if __name__ == "__main__":
    main()

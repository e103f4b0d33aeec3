#!/usr/bin/env python3
"""Failover figures of nodeos-monitor against a real etcd and the nodeos simulator.

Prints, over several rounds each:
  - graceful handover: SIGTERM to the active monitor, the old producer's last block to the
    new producer's first block;
  - SIGKILL of the active monitor: until its lease expired in etcd, and from that expiry to
    the peer's first block;
  - a lone node whose active nodeos crashes: until it produces again;
  - the idle cost of a monitor: CPU, RSS, threads, descriptors, etcd requests a minute.

Timing goals are checked here, by eye, not in the tests. Usage:
  failover_bench.py [--ttl 10] [--rounds 5] [--idle-seconds 60]"""

import argparse
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
import shutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    Etcd, Ledger, Monitor, make_config_dirs, reap_orphans, stop_monitors, wait_single_producer,
    wait_until)

BLOCK_MS = 20


def summary(values, unit="ms"):
    if not values:
        return "no data"
    return (f"median {statistics.median(values):.0f} {unit}, min {min(values):.0f}, "
            f"max {max(values):.0f} (n={len(values)})")


def holder_lease(etcd, key):
    """The lease ID bound to the lock key, or None when nobody holds it."""
    kvs = etcd.get(key)
    return kvs[0].get("lease") if kvs else None


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.etcd = Etcd(workdir).start()
        make_config_dirs(workdir)
        self.ledger = Ledger(os.path.join(workdir, "ledger.jsonl"))
        self.monitors = []

    def monitor(self, name, group):
        m = Monitor(self.workdir, name, self.etcd.url, group, ttl=self.args.ttl, stop_timeout=10,
                    ledger=self.ledger, block_ms=BLOCK_MS, debug=False)
        self.monitors.append(m)
        return m

    def wait_producer(self, timeout):
        return wait_single_producer(self.ledger, timeout, 4 * BLOCK_MS)

    def close(self):
        stop_monitors(self.monitors)
        reap_orphans(self.monitors, self.ledger)
        self.etcd.stop()

    def pair(self, group):
        monitors = {n: self.monitor(n, group) for n in ("node-a", "node-b")}
        active = monitors[self.wait_producer(self.args.ttl + 10)]
        standby = next(m for m in monitors.values() if m is not active)
        standby.wait_nodeos_mode("validator", 10)
        return active, standby

    def graceful_handover(self):
        gaps, exits = [], []
        active, standby = self.pair("bench-graceful")
        for _ in range(self.args.rounds):
            sent = time.monotonic_ns()
            active.signal(signal.SIGTERM)
            active.wait_exit(20)
            exits.append((time.monotonic_ns() - sent) / 1e6)
            first = self.ledger.wait_first_block(sent, standby.name, 20,
                                                 "the standby to produce")
            gaps.append((first["t"] - self.ledger.last_block_time(active.name)) / 1e6)
            active.start()  # back as the standby
            active.wait_nodeos_mode("validator", 10)
            active, standby = standby, active
        stop_monitors([active, standby])
        return gaps, exits

    def killed_monitor(self):
        to_expiry, after_expiry, total = [], [], []
        active, standby = self.pair("bench-kill")
        for _ in range(self.args.rounds):
            lease = holder_lease(self.etcd, "bench-kill")
            killed = time.monotonic_ns()
            active.signal(signal.SIGKILL)
            active.wait_exit(2)
            # The key leaves the dead lease when etcd expires it (timetolive is no help:
            # it rounds down to whole seconds).
            wait_until(lambda: holder_lease(self.etcd, "bench-kill") != lease, self.args.ttl * 3,
                       "the dead monitor's lease to expire")
            expired = time.monotonic_ns()
            first = self.ledger.wait_first_block(killed, standby.name,
                                                 self.args.ttl * 3, "the peer to produce")
            to_expiry.append((expired - killed) / 1e6)
            after_expiry.append((first["t"] - expired) / 1e6)
            total.append((first["t"] - killed) / 1e6)
            active.start()
            active.wait_nodeos_mode("validator", 10)
            active, standby = standby, active
        stop_monitors([active, standby])
        return to_expiry, after_expiry, total

    def lone_crash(self):
        gaps = []
        lone = self.monitor("lone", "bench-lone")
        self.wait_producer(10)
        for _ in range(self.args.rounds):
            pid = lone.nodeos_pids()[0]
            crashed = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            first = self.ledger.wait_first_block(crashed, "lone", 10,
                                                 "the lone node to produce again")
            gaps.append((first["t"] - self.ledger.last_block_time("lone", pid)) / 1e6)
            # Past the stable period, so that the next crash is not part of a loop.
            time.sleep(self.args.ttl * 3 + 1)
        stop_monitors([lone])
        return gaps

    def etcd_requests(self):
        with urllib.request.urlopen(self.etcd.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(float(m.group(1)) for m in
                   re.finditer(r'^grpc_server_started_total\{[^}]*\} (\S+)$', text, re.M))

    def idle(self):
        a, b = self.pair("bench-idle")
        time.sleep(2)
        before = {m.name: cpu_seconds(m.pid) for m in (a, b)}
        requests_before = self.etcd_requests()
        start = time.monotonic()
        time.sleep(self.args.idle_seconds)
        elapsed = time.monotonic() - start
        requests = (self.etcd_requests() - requests_before) / 2 / elapsed * 60
        rows = []
        for m in (a, b):
            cpu = (cpu_seconds(m.pid) - before[m.name]) / elapsed * 100
            status = proc_status(m.pid)
            rows.append((m.name, "active" if m is a else "standby", cpu, status["VmRSS"],
                         status["Threads"], len(os.listdir(f"/proc/{m.pid}/fd"))))
        stop_monitors([a, b])
        return rows, requests


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ttl", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=int, default=60)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="nm-bench-")
    bench = Bench(args, workdir)
    try:
        print(f"lease TTL {args.ttl} s, blocks every {BLOCK_MS} ms, {args.rounds} rounds each", flush=True)
        gaps, exits = bench.graceful_handover()
        print(f"graceful handover, last old block to first new block: {summary(gaps)}")
        print(f"SIGTERM to monitor exit:                             {summary(exits)}", flush=True)
        to_expiry, after_expiry, total = bench.killed_monitor()
        print(f"SIGKILL of the active monitor, until its lease expired: {summary(to_expiry)}")
        print(f"  lease expiry to the peer's first block:              {summary(after_expiry)}")
        print(f"  kill to the peer's first block:                      {summary(total)}", flush=True)
        gaps = bench.lone_crash()
        print(f"lone node, active nodeos crashed, until it produces again: {summary(gaps)}", flush=True)
        rows, requests = bench.idle()
        print(f"idle over {args.idle_seconds} s:")
        for name, role, cpu, rss, threads, fds in rows:
            print(f"  {name} ({role}): CPU {cpu:.2f} %, RSS {rss}, threads {threads}, open fds {fds}")
        print(f"  etcd requests per monitor per minute: {requests:.1f}")
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Failover figures of nodeos-monitor against a real etcd and the nodeos simulator.

Prints, over several rounds each:
  - restart mode against paused mode (hot standby), on a chain of 500 ms blocks with a
    nodeos that takes --startup-ms to load (3 s by default): the missed block slots and the
    gap (the old producer's last block to the new producer's first) of a graceful handover
    (SIGTERM to the producing node's monitor), of an operator's `switchover`, and of a
    takeover after the producing node's monitor was SIGKILLed (its lease expiring first);
  - graceful handover: SIGTERM to the active monitor, the old producer's last block to the
    new producer's first block;
  - SIGKILL of the active monitor: until its lease expired in etcd, and from that expiry to
    the peer's first block;
  - a lone node whose active nodeos crashes: until it produces again;
  - the idle cost of a monitor: CPU, RSS, threads, descriptors, etcd requests a minute.

A missed slot is a block slot (--compare-block-ms) in which nobody signed, between the old
producer's last block and the new producer's first: (new block's timestamp - old block's
timestamp) / interval - 1, from the timestamps the simulator gives its blocks.

Timing goals are checked here, by eye, not in the tests. Usage:
  failover_bench.py [--ttl 10] [--rounds 5] [--idle-seconds 60]
                    [--compare-rounds 5] [--startup-ms 3000] [--only compare|classic]"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    MONITOR, SIM, Etcd, Ledger, Monitor, make_config_dirs, reap_orphans, stop_monitors,
    wait_single_producer, wait_until)

BLOCK_MS = 20


def fast_nodeos(workdir):
    """The simulator as this interpreter runs it, without site packages (it needs the
    standard library only): started through `#!/usr/bin/env python3`, a version manager's
    shim and the site packages' start-up can take a second or more, which a benchmark of
    the monitor must not count as its own. Returns the executable's path."""
    path = os.path.join(workdir, "nodeos")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{SIM}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def start_cost_ms(nodeos, rounds=5):
    """How long the simulator takes to start and exit at once (a missing config dir): the
    interpreter's share of every nodeos start measured here, which a real nodeos does not
    have (it has its own loading time instead)."""
    took = []
    for _ in range(rounds):
        t = time.monotonic_ns()
        subprocess.run([nodeos, "--config-dir", "/nonexistent"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        took.append((time.monotonic_ns() - t) / 1e6)
    return took


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
        self.nodeos = fast_nodeos(workdir)

    def monitor(self, name, group):
        m = Monitor(self.workdir, name, self.etcd.url, group, ttl=self.args.ttl, stop_timeout=10,
                    ledger=self.ledger, block_ms=BLOCK_MS, debug=False,
                    overrides={"--nodeos": self.nodeos})
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


def block_time_ms(record):
    """A block record's timestamp (the end of its slot), in ms since the epoch."""
    t = datetime.datetime.fromisoformat(record["time"]).replace(tzinfo=datetime.timezone.utc)
    return round(t.timestamp() * 1000)


def http_json(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


class Handover:
    """One handover on the ledger: the old producer's last block before the new
    producer's first."""

    def __init__(self, last, first, block_ms):
        self.last, self.first = last, first
        self.gap_ms = (first["t"] - last["t"]) / 1e6
        self.missed = (block_time_ms(first) - block_time_ms(last)) // block_ms - 1
        self.forked = first["block"] != last["block"] + 1
        self.after_expiry_ms = None  # SIGKILL: from the lease's expiry in etcd to the first block


class Compare:
    """Restart mode against paused mode: a pair of monitors per mode, on a chain of
    `block_ms` blocks whose nodeos takes `startup_ms` to load, each mode on its own ledger
    (its own chain) and group."""

    KINDS = ("graceful", "switchover", "sigkill")

    def __init__(self, args, workdir, etcd):
        self.args = args
        self.workdir = workdir
        self.etcd = etcd
        self.block_ms = args.compare_block_ms
        self.ttl = args.compare_ttl
        self.monitors = []
        self.ledger = None
        self.group = None
        self.nodeos = fast_nodeos(workdir)

    def monitor(self, name, mode):
        m = Monitor(self.workdir, name, self.etcd.url, self.group, ttl=self.ttl, stop_timeout=10,
                    ledger=self.ledger, block_ms=self.block_ms, debug=False, standby_mode=mode,
                    max_head_lag=6, sim_args=[f"--sim-startup-ms={self.args.startup_ms}"],
                    overrides={"--nodeos": self.nodeos})
        self.monitors.append(m)
        return m

    def status(self, m):
        return http_json(f"http://{m.metrics_addr}/status") if m.poll() is None else None

    def wait_ready(self, active, standby):
        """The producer producing and the standby standing by as a candidate, both as their
        /status say; then one more block, so that the round starts on a running chain."""
        timeout = self.ttl * 3 + self.args.startup_ms / 1000 + 20

        def ready():
            a, b = self.status(active), self.status(standby)
            return (a and b and a["state"] == "active" and b["state"] == "standby"
                    and b.get("candidate") and self.ledger.current_producers(3 * self.block_ms)
                    == [active.name])
        wait_until(ready, timeout, f"{active.name} producing and {standby.name} a ready candidate")
        now = time.monotonic_ns()
        self.ledger.wait_first_block(now, active.name, 5, f"{active.name} to sign a block")

    def handover(self, old, new, since_ns, timeout):
        first = self.ledger.wait_first_block(since_ns, new.name, timeout,
                                             f"{new.name} to produce after the handover")
        last = [b for b in self.ledger.events("block", node=old.name) if b["t"] < first["t"]][-1]
        return Handover(last, first, self.block_ms)

    def command(self, *args, timeout=60):
        argv = [MONITOR, *args, "--etcd-endpoints", self.etcd.url, "--failover-group", self.group]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def switchover(self, target):
        # The command reads the members' records, written at most once a second: wait
        # until the target's says that it is a ready standby.
        def recorded():
            done = self.command("status", "--json", timeout=10)
            try:
                members = json.loads(done.stdout)["members"]
            except (ValueError, KeyError):
                return False
            return any(m["node"] == target.name and m["state"] == "standby" and m["candidate"]
                       for m in members)
        wait_until(recorded, 10, f"{target.name} recorded as a ready standby")
        done = self.command("switchover", "--to", target.name, "--wait", "30")
        if done.returncode != 0:
            raise AssertionError(f"switchover failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip().splitlines()[-1]

    def run_mode(self, mode):
        self.group = f"bench-{mode}"
        self.ledger = Ledger(os.path.join(self.workdir, f"ledger-{mode}.jsonl"))
        results = {k: [] for k in self.KINDS}
        pair = [self.monitor(n, mode) for n in ("node-a", "node-b")]
        name = wait_single_producer(self.ledger, self.ttl + 20 + self.args.startup_ms / 1000,
                                    3 * self.block_ms)
        active = next(m for m in pair if m.name == name)
        standby = next(m for m in pair if m is not active)
        rounds = self.args.compare_rounds
        for kind in self.KINDS:
            for i in range(rounds):
                self.wait_ready(active, standby)
                # Anywhere in a block slot and a keepalive period, not in step with them.
                time.sleep(self.block_ms / 1000 * ((i * 0.37) % 1))
                sent = time.monotonic_ns()
                if kind == "graceful":
                    active.signal(signal.SIGTERM)
                    active.wait_exit(30)
                    h = self.handover(active, standby, sent, 30)
                    replacement = active.clone().start()
                elif kind == "switchover":
                    self.switchover(standby)
                    h = self.handover(active, standby, sent, 30)
                    replacement = active
                else:
                    lease = holder_lease(self.etcd, self.group)
                    active.signal(signal.SIGKILL)
                    active.wait_exit(2)
                    wait_until(lambda: holder_lease(self.etcd, self.group) != lease,
                               3 * self.ttl, "the killed monitor's lease to expire")
                    expired = time.monotonic_ns()
                    h = self.handover(active, standby, sent, 3 * self.ttl + 10)
                    h.after_expiry_ms = (h.first["t"] - expired) / 1e6
                    replacement = active.clone().start()
                results[kind].append(h)
                print(f"  {mode:<7} {kind:<10} round {i + 1}: {h.missed} missed slots, gap "
                      f"{h.gap_ms:.0f} ms{' (fork!)' if h.forked else ''}", flush=True)
                if replacement is not active:
                    self.monitors.append(replacement)
                active, standby = standby, replacement
        stop_monitors([active, standby])
        return results

    def run(self):
        return {mode: self.run_mode(mode) for mode in ("restart", "paused")}


def median_range(values, fmt="{:.0f}"):
    if not values:
        return "no data"
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}–{fmt.format(max(values))})")


def print_comparison(results, args):
    rows = (("graceful", "graceful handover (SIGTERM to the producer's monitor)"),
            ("switchover", "`nodeos-monitor switchover --to` the standby"),
            ("sigkill", "SIGKILL of the producer's monitor: takeover after its lease expired"))
    print()
    print(f"restart mode against paused mode: blocks every {args.compare_block_ms} ms, nodeos "
          f"start-up {args.startup_ms} ms, TTL {args.compare_ttl} s, "
          f"{args.compare_rounds} rounds each; median (min–max)")
    print("| handover | restart: missed slots | paused: missed slots | restart: gap | paused: gap |")
    print("|---|---|---|---|---|")
    for kind, label in rows:
        r, p = results["restart"][kind], results["paused"][kind]
        print(f"| {label} | {median_range([h.missed for h in r])} | "
              f"{median_range([h.missed for h in p])} | "
              f"{median_range([h.gap_ms / 1000 for h in r], '{:.2f}')} s | "
              f"{median_range([h.gap_ms / 1000 for h in p], '{:.2f}')} s |")
    r, p = results["restart"]["sigkill"], results["paused"]["sigkill"]
    print(f"| … of which from the lease's expiry in etcd to the first block | | | "
          f"{median_range([h.after_expiry_ms / 1000 for h in r], '{:.2f}')} s | "
          f"{median_range([h.after_expiry_ms / 1000 for h in p], '{:.2f}')} s |")
    forks = sum(h.forked for m in results.values() for hs in m.values() for h in hs)
    print(f"forks (the new producer's first block not the old one's next): {forks}", flush=True)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        version = subprocess.run([MONITOR, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = "unknown version"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, load average {load}; {version}")


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
    parser.add_argument("--compare-rounds", type=int, default=5,
                        help="rounds of each handover in each standby mode")
    parser.add_argument("--compare-ttl", type=int, default=10)
    parser.add_argument("--compare-block-ms", type=int, default=500)
    parser.add_argument("--startup-ms", type=int, default=3000,
                        help="how long the simulated nodeos takes to load its state")
    parser.add_argument("--only", choices=("compare", "classic"),
                        help="only the restart/paused comparison, or only the other figures")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="nm-bench-")
    bench = Bench(args, workdir)
    print(machine(), flush=True)
    try:
        if args.only != "classic":
            compare = Compare(args, workdir, bench.etcd)
            try:
                results = compare.run()
            finally:
                stop_monitors(compare.monitors)
                if compare.ledger is not None:
                    reap_orphans(compare.monitors, compare.ledger)
            print_comparison(results, args)
        if args.only == "compare":
            return
        print(f"\nlease TTL {args.ttl} s, blocks every {BLOCK_MS} ms, {args.rounds} rounds each", flush=True)
        print(f"the simulator's own start (interpreter, imports; exits at once): "
              f"{summary(start_cost_ms(bench.nodeos))}", flush=True)
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

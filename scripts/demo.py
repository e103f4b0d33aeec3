#!/usr/bin/env python3
"""Shows nodeos-monitor failing over, on one machine: a single-member etcd on loopback and
two monitors, node-a and node-b, in one failover group, each supervising the nodeos
simulator (tests/nodeos_sim.py). One produces; after a few seconds its monitor gets
SIGTERM and the other takes over; the stopped monitor is started again and comes back as
standby. Then `nodeos-monitor status` shows the group, and `nodeos-monitor switchover` hands
production back, planned. Then a status line every few seconds until Ctrl-C, which stops
everything this script started.

Run through scripts/demo, which builds first; NM_MONITOR names the binary."""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from harness import (  # noqa: E402
    MONITOR, Etcd, Ledger, Monitor, make_config_dirs, ms, pid_alive, reap_orphans,
    stop_monitors, wait_single_producer, wait_until)

NODES = ("node-a", "node-b")
GROUP = "eos"
TTL = 5
BLOCK_MS = 500
STOP_TIMEOUT = 10
# Monitor log lines worth showing live; the simulator's block lines are not.
INTERESTING = re.compile(r"activ|standby|lock|lease|fenc|campaign|promot|demot|acquir|releas"
                         r"|revok|stop|exit|signal|error|warn", re.IGNORECASE)
BORING = re.compile(r"(Produced|Received) block|using configuration file|nodeos version")


class Demo:
    def __init__(self, workdir, show_logs):
        self.workdir = workdir
        self.show_logs = show_logs
        self.began = time.monotonic()
        self.ledger = Ledger(os.path.join(workdir, "ledger.jsonl"))
        self.etcd = Etcd(workdir, name="demo")
        self.monitors = {}
        self.log_offsets = {}
        self.all_monitors = []

    def say(self, text):
        print(f"[{time.monotonic() - self.began:6.1f} s] {text}", flush=True)

    def start_etcd(self):
        self.etcd.start()
        self.say(f"etcd is up at {self.etcd.url} (log: {self.etcd.log_path})")

    def start_monitor(self, name):
        monitor = Monitor(self.workdir, name, [self.etcd.url], GROUP, ttl=TTL,
                          stop_timeout=STOP_TIMEOUT, ledger=self.ledger, block_ms=BLOCK_MS,
                          debug=False)
        self.monitors[name] = monitor
        self.all_monitors.append(monitor)
        self.log_offsets.setdefault(name, 0)
        self.say(f"started the monitor of {name} (pid {monitor.pid}, log: {monitor.log_path})")
        return monitor

    def mode_of(self, name):
        """What the node runs now, from its monitor's state and the ledger."""
        monitor = self.monitors.get(name)
        if monitor is None or monitor.poll() is not None:
            return "monitor stopped"
        start = self.ledger.latest_start(name)
        if start is None or not pid_alive(start["pid"]):
            return "no nodeos"
        return f"{start['mode']} (nodeos pid {start['pid']})"

    def status(self):
        producers = self.ledger.current_producers(3 * BLOCK_MS)
        who = ", ".join(producers) if producers else "nobody"
        warning = "   <-- more than one!" if len(producers) > 1 else ""
        self.say(f"producing: {who}{warning} | "
                 + " | ".join(f"{name}: {self.mode_of(name)}" for name in NODES))

    def pump_logs(self):
        """Prints the new interesting monitor log lines, each prefixed with its node."""
        for name, monitor in self.monitors.items():
            try:
                with open(monitor.log_path, "rb") as f:
                    f.seek(self.log_offsets[name])
                    data = f.read()
            except FileNotFoundError:
                continue
            complete = data[:data.rfind(b"\n") + 1]
            self.log_offsets[name] += len(complete)
            if not self.show_logs:
                continue
            for line in complete.decode(errors="replace").splitlines():
                if INTERESTING.search(line) and not BORING.search(line):
                    print(f"    {name} | {line}", flush=True)

    def wait_candidate(self, name, timeout):
        """Waits until the group's registry shows `name` as a ready standby: its nodeos
        answers with a fresh head."""
        argv = [MONITOR, "status", "--json", "--etcd-endpoints", self.etcd.url,
                "--failover-group", GROUP]

        def ready():
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            members = json.loads(done.stdout)["members"] if done.stdout else []
            return any(m["node"] == name and m["state"] == "standby" and m["candidate"]
                       for m in members)
        wait_until(ready, timeout, f"{name} to be a ready standby")

    def command(self, *args):
        """Runs `nodeos-monitor COMMAND ...` against the demo's group and shows what it says;
        raises when it fails."""
        argv = [MONITOR, *args, "--etcd-endpoints", self.etcd.url, "--failover-group", GROUP]
        self.say("$ nodeos-monitor " + " ".join(args))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        for line in (done.stdout + done.stderr).splitlines():
            print(f"    {line}", flush=True)
        if done.returncode != 0:
            raise RuntimeError(f"nodeos-monitor {args[0]} exited with {done.returncode}")

    def watch(self, seconds, status_every=3.0):
        """Shows logs and a status line every `status_every` seconds for `seconds`
        (forever when seconds is None)."""
        end = None if seconds is None else time.monotonic() + seconds
        next_status = time.monotonic() + status_every
        while end is None or time.monotonic() < end:
            self.pump_logs()
            if time.monotonic() >= next_status:
                self.status()
                next_status += status_every
            time.sleep(0.2)

    def run(self, duration):
        make_config_dirs(self.workdir, producer="bpdemo")
        self.start_etcd()
        for name in NODES:
            self.start_monitor(name)
        producer = wait_single_producer(self.ledger, 30, within_ms=3 * BLOCK_MS)
        standby = [n for n in NODES if n != producer][0]
        self.monitors[standby].wait_nodeos_mode("validator", TTL + 10)
        self.pump_logs()
        self.say(f"==> {producer} is producing; {standby} runs its nodeos as a standby")
        self.status()
        self.watch(8)

        producer = wait_single_producer(self.ledger, 10, within_ms=3 * BLOCK_MS)
        peer = [n for n in NODES if n != producer][0]
        old = self.monitors[producer]
        self.say(f"==> sending SIGTERM to the monitor of {producer} (pid {old.pid})")
        sent = time.monotonic_ns()
        old.signal(signal.SIGTERM)
        code = old.wait_exit(STOP_TIMEOUT + 5)
        exited = time.monotonic_ns()
        self.pump_logs()
        self.say(f"the monitor of {producer} exited with status {code} after "
                 f"{ms(exited - sent):.0f} ms")
        first = self.ledger.wait_first_block(sent, peer, TTL + 10,
                                             f"{peer} to take over")
        last = self.ledger.last_block_time(producer)
        self.pump_logs()
        self.say(f"==> {peer} took over: its first block came {ms(first['t'] - last):.0f} ms "
                 f"after {producer}'s last one (blocks every {BLOCK_MS} ms)")
        overlaps = self.ledger.overlaps()
        self.say("no two producers at any instant" if not overlaps
                 else f"OVERLAP: {overlaps}")

        restarted = self.start_monitor(producer)
        restarted.wait_nodeos_mode("validator", TTL + 10)
        self.pump_logs()
        self.say(f"==> {producer} is back, as standby; {peer} keeps producing")
        self.wait_candidate(producer, TTL + 10)
        self.command("status")

        self.say(f"==> a planned switchover: {peer} hands production to {producer}")
        sent = time.monotonic_ns()
        self.command("switchover", "--to", producer, "--wait", str(TTL + 10))
        first = self.ledger.wait_first_block(sent, producer, TTL + 10,
                                             f"{producer} to produce after the switchover")
        last = self.ledger.last_block_time(peer)
        self.pump_logs()
        self.say(f"{producer}'s first block came {ms(first['t'] - last):.0f} ms after {peer}'s "
                 "last one")
        overlaps = self.ledger.overlaps()
        self.say("no two producers at any instant" if not overlaps
                 else f"OVERLAP: {overlaps}")
        self.say("status every 3 s; Ctrl-C stops everything"
                 if duration is None else f"status every 3 s for {duration:.0f} s")
        self.watch(duration)

    def stop(self):
        stop_monitors(self.all_monitors)
        leftovers = reap_orphans(self.all_monitors, self.ledger)
        if leftovers:
            print(f"killed leftover simulators: {leftovers}", file=sys.stderr)
        self.etcd.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float,
                        help="seconds to keep showing the status after the failover "
                             "(default: until Ctrl-C)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, ledger) at the end")
    parser.add_argument("--quiet-logs", action="store_true",
                        help="do not echo the monitors' log lines")
    args = parser.parse_args()
    if not os.access(MONITOR, os.X_OK):
        sys.exit(f"demo: no executable nodeos-monitor at {MONITOR} (build it, or set NM_MONITOR)")

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    workdir = tempfile.mkdtemp(prefix="nodeos-monitor-demo-")
    print(f"working in {workdir}: monitor logs are monitor-node-a.log and monitor-node-b.log, "
          "the simulators' ledger is ledger.jsonl", flush=True)
    demo = Demo(workdir, show_logs=not args.quiet_logs)
    status = 0
    try:
        demo.run(args.duration)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    except Exception as e:  # report it, and still clean up everything started
        print(f"demo failed: {e}", file=sys.stderr)
        for monitor in demo.all_monitors:
            print(monitor.log_tail(15), file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        demo.stop()
        if args.keep:
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("stopped everything the demo started", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The randomized fault run: three monitors (each supervising the simulator through its own
proxies to every etcd member) and a three-member etcd whose members talk through proxies.
Each round injects one fault, sometimes two at once, chosen with --seed, for up to
--duration seconds, then heals everything and checks the safety invariants
(docs/testing.md, "Proven under faults") on the shared ledger:

  - 0 ms of overlap between producers, ever;
  - exactly one producer within a bound after the heal (2 TTL + 4 s; plus the stable period
    after a crash loop, as a crash-looping node leaves the race until it has run stably);
  - no nodeos outlives its monitor (checked whenever a monitor is found gone);
  - a monitor asked to stop exits within its stop timeout plus 2.5 s;
  - the producer of a node cut off from etcd (or frozen) signs nothing after the latest
    possible lease deadline (fault start + TTL).

The nodes' nodeos behave differently on purpose: node-b's keeps producing 1.5 s after
SIGTERM (slow shutdown), node-c's ignores SIGTERM as a producer (only SIGKILL ends it).
--mode picks the standby modes: `mixed` (the default: node-a in paused mode, hot standby,
node-b and node-c in restart mode), `restart` or `paused` (all three). Every monitor is
health-gated (--nodeos-api) and replays a dirty database (--dirty-db-args).

Besides the network, process and etcd faults, a round may hit nodeos itself (the
simulator's switches, see nodeos_sim.py): its API hanging or answering 500; pause
answered 500, hanging or acknowledged and ignored (on a paused-mode node, together with
what makes the monitor pause it: its link to etcd cut, a SIGTERM, a switchover away from
it, or its API hanging); a lagging head (lag-ms) or a stalled one (stall); a slow start
(startup-ms) of a nodeos SIGKILLed meanwhile (so it also replays a dirty database). And
operators act: `nodeos-monitor pause` (the group, sometimes with the producer's monitor
SIGKILLed or its nodeos crashed meanwhile), `pause --node N` (likewise), `switchover`
(to the best standby or `--to` one), each run with --etcd-endpoints and --failover-group.

How the checks account for what legitimately stops a takeover: liveness is checked only
after the heal, and the heal clears every nodeos switch and resumes the group and every
node (`nodeos-monitor resume`, retried until etcd takes it), so a lagging or stalled head,
a hung API and an operator's pause all end before the bound starts; the bound then adds the
slow start set in the round (startup-ms), as a node started during it still loads that
long. During a pause, two more invariants: while the group is paused no node other than
the lock holder or the producer at the pause begins to produce; a paused node never begins
to produce. A switchover that reports success must be followed by a block of its target.
A node whose nodeos refused a dirty database must start it again with a replay, and every
running node's nodeos must come back (alive and loaded) within 60 s of the last round that
touched it.

    python3 tests/faults/chaos.py --seed 1 --rounds 200 --duration 8 --mode mixed

It prints a line per round and a table at the end; exit status 1 if any invariant failed.
Failing rounds keep their evidence in the workdir (printed), which is kept then."""

import argparse
import base64
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import (  # noqa: E402
    MONITOR, NS, Cluster, Ledger, Node, ledger_excerpt, longest_gap, make_config_dirs, ms,
    pid_alive, sigterm_and_time, stop_nodes, wait_single_producer, wait_stable_producer)

GROUP = "bp-chaos"
STOP_BOUND = 2.5
NET_MODES = ("blackhole", "cut", "stall_c2s", "stall_s2c", "drop_c2s", "drop_s2c", "delay")
NODE_NAMES = ("node-a", "node-b", "node-c")
MODES = {"mixed": ("paused", "restart", "restart"), "restart": ("restart",) * 3,
         "paused": ("paused",) * 3}
# The simulator's run-time switches and its slow start, all cleared at each heal; the
# nodes' own behaviour (stop-delay-ms, ignore-sigterm) is set once and kept.
HEALED_SWITCHES = ("api", "pause", "lag-ms", "stall", "startup-ms")
# A node's nodeos must be back (alive, its state loaded) this long after the last round
# that touched the node: a crash loop's restart backoff grows to 30 s.
COMEBACK_BOUND = 60.0
# After an operator's pause command returns, the monitors see the key through their watch;
# a promotion already under way may still end in production this soon after.
PAUSE_GRACE_NS = 1 * 1_000_000_000


class Violation(Exception):
    pass


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.ttl = args.ttl
        self.stop_timeout = args.stop_timeout
        self.workdir = tempfile.mkdtemp(prefix=f"nm-chaos-{args.seed}-")
        self.ledger = Ledger(os.path.join(self.workdir, "ledger.jsonl"))
        make_config_dirs(self.workdir)
        self.cluster = Cluster(self.workdir, 3)
        self.nodes = []
        self.faults = collections.Counter()
        self.stops = []          # (seconds, node, round)
        self.deadman = []        # (seconds from SIGSTOP to death, round)
        self.fence_margins = []  # (seconds before the latest deadline, round, fault)
        self.after_heal = []     # (seconds from heal to the single producer's first block, round)
        self.gaps = []           # (longest gap in round (s), round, faults)
        self.violations = []
        self.round = 0
        self.labels = []  # the faults of the current round
        self.sigkilled = set()  # monitor pids SIGKILLed here
        self._seen_overlaps = []
        self.window_ms = 300
        self.modes = dict(zip(NODE_NAMES, MODES[args.mode]))
        self.post_heals = []     # run once etcd is healthy again (operators' resumes)
        self.pauses = []         # operators' pauses: dicts, see operator_pause()
        self.switchovers = []    # (outcome, round, detail)
        self.touched = {}        # node name -> monotonic time of the last round that hit it
        self.round_touched = set()
        self.down_since = {}     # node name -> (monotonic time, round) its nodeos was not back
        self.slack_startup = 0.0

    # --- set-up and tear-down -------------------------------------------------------

    def start(self):
        self.cluster.start()
        behaviour = {"node-a": {}, "node-b": {"stop-delay-ms": 1500},
                     "node-c": {"ignore-sigterm": "producer"}}
        for i, name in enumerate(NODE_NAMES):
            node = Node(self.workdir, name, self.cluster, self.ledger, GROUP, self.ttl,
                        self.stop_timeout, start=False, standby_mode=self.modes[name])
            # Each node prefers a different member first.
            urls = node.link.urls[i:] + node.link.urls[:i]
            argv = node.monitor.argv
            argv[argv.index("--etcd-endpoints") + 1] = ",".join(urls)
            for fault, value in behaviour[name].items():
                node.nodeos_fault(fault, value)
            node.monitor.start()
            self.nodes.append(node)
        wait_single_producer(self.ledger, self.ttl + 15, self.window_ms)

    def stop(self):
        for n in self.nodes:
            n.link.heal()
        left = stop_nodes(self.nodes, self.ledger)
        self.cluster.stop()
        return left

    # --- helpers --------------------------------------------------------------------

    def count(self, fault):
        self.faults[fault] += 1
        self.labels.append(fault)

    def producer(self):
        p = self.ledger.current_producers(self.window_ms)
        return next((n for n in self.nodes if n.name == p[0]), None) if len(p) == 1 else None

    def running_nodes(self):
        return [n for n in self.nodes if n.monitor.poll() is None and not n.frozen]

    def paused_mode(self, node):
        return self.modes[node.name] == "paused"

    def touch(self, *nodes):
        for n in nodes:
            self.touched[n.name] = time.monotonic()
            self.round_touched.add(n.name)

    def command(self, *args, timeout=20.0):
        """`nodeos-monitor COMMAND ...` against the group, straight to every etcd member (an
        operator's link is not the monitors'); (exit code, stdout, stderr), code None when
        it ran out of time (killed by its PID). The running members come first, as an
        operator would list them: a command makes one attempt, on the first endpoint, and
        fails when that member is down (it does not move on to the next one)."""
        members = sorted(self.cluster.members, key=lambda m: not m.running)
        argv = [MONITOR, *args, "--etcd-endpoints", ",".join(m.url for m in members),
                "--failover-group", GROUP]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return None, out, err
        return proc.returncode, out, err

    def lock_holder(self):
        """The node named in the lock's value, read from any member that answers."""
        for m in self.cluster.members:
            if m.running:
                try:
                    kvs = m.get(GROUP, timeout=1.0)
                except (OSError, ValueError):
                    continue
                if not kvs:
                    return None
                return json.loads(base64.b64decode(kvs[0]["value"])).get("node")
        return None

    def resume_all(self):
        """After the heal: every pause of the round resumed, retried until etcd takes it."""
        for pause in self.pauses:
            if pause["until"] is not None:  # resumed already
                continue
            node = pause["node"]
            args = ("resume",) if node is None else ("resume", "--node", node)
            # The pause may end as soon as the command starts: what happens from then on is
            # no longer the pause's.
            pause["until"] = time.monotonic_ns()
            for _ in range(5):
                code, _, err = self.command(*args, timeout=10)
                if code == 0:
                    break
                time.sleep(1)
            else:
                self.violation("an operator's resume failed", f"`{' '.join(args)}` exits 0",
                               f"exit {code}: {err.strip()}", time.monotonic_ns())

    def violation(self, what, expected, observed, since_ns, nodes=None):
        logs = []
        for n in nodes or self.nodes:
            for m in n.history[-2:]:
                logs.append(f"--- {m.name} (pid {m.pid}) ---\n" + m.log_tail(25))
        evidence = (f"round {self.round} (seed {self.args.seed}): {what}\n"
                    f"expected: {expected}\nobserved: {observed}\n"
                    f"--- ledger from 10 s before ---\n"
                    f"{ledger_excerpt(self.ledger, since_ns - 10 * NS)}\n" + "\n".join(logs))
        path = os.path.join(self.workdir, f"violation-round-{self.round}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(evidence)
        self.violations.append((self.round, what, path))
        print(f"  VIOLATION: {what}: expected {expected}; observed {observed} (evidence: {path})",
              flush=True)

    def check_overlap(self):
        found = self.ledger.overlaps()
        new = [o for o in found if o not in self._seen_overlaps]
        self._seen_overlaps = found
        for a, b, overlap in new:
            self.violation("two producers at once", "0 ms overlap",
                           f"{self.ledger.describe(a)} and {self.ledger.describe(b)} overlap by "
                           f"{overlap:.1f} ms", min(a.start, b.start))

    def check_gone(self, node):
        """A monitor found gone: its nodeos must be gone too within 1 s."""
        m = node.monitor
        try:
            m.assert_nodeos_gone(1.0)
        except AssertionError as e:
            self.violation("nodeos outlived its monitor", "gone within 1 s", str(e).splitlines()[0],
                           time.monotonic_ns())

    def sigterm(self, node, why):
        """SIGTERM to a monitor, checking the bounded stop; leaves it dead."""
        m = node.monitor
        if m.poll() is not None:
            return
        self.thawed(node)  # sigterm_and_time sends SIGCONT first
        self.count(f"monitor SIGTERM ({why})")
        try:
            took = sigterm_and_time(m, STOP_BOUND)
            self.stops.append((took, node.name, self.round))
        except AssertionError as e:
            self.violation("monitor did not stop cleanly",
                           f"exit 0 within its stop timeout + {STOP_BOUND} s, its nodeos gone",
                           str(e).splitlines()[0], time.monotonic_ns(), [node])
            if m.poll() is None:
                m.signal(signal.SIGKILL)
                m.wait_exit(5)

    def thawed(self, node):
        """Notes that a frozen monitor is let run again (SIGCONT): from then on it renews its
        lease, and the fence its freeze called for no longer applies."""
        if node.frozen:
            node.thawed_at = time.monotonic_ns()
        node.frozen = False

    # --- faults ---------------------------------------------------------------------

    def pick_node(self, active_bias=0.7):
        p = self.producer()
        live = [n for n in self.nodes if n.monitor.poll() is None]
        if p is not None and p.monitor.poll() is None and self.rng.random() < active_bias:
            return p
        return self.rng.choice(live or self.nodes)

    def fence_watch(self, fault, grace=0.0):
        """Remembers the current producer's pid, to check that it stops signing before the
        latest possible lease deadline of a fault that cuts it off from etcd: fault start +
        TTL, plus `grace` when etcd may still acknowledge keepalives for a while after the
        fault began."""
        p = self.producer()
        if p is None:
            return None
        start = self.ledger.latest_start(p.name)
        if not start or start["mode"] != "producer":
            return None
        return (p, start["pid"], time.monotonic_ns() + int(grace * NS), fault)

    def check_fence(self, watch):
        if watch is None:
            return
        node, pid, t0, fault = watch
        deadline = t0 + self.ttl * NS
        if t0 <= node.thawed_at < deadline:
            return  # let run before its lease could expire: it may have renewed it
        last = self.ledger.last_block_time(node.name, pid)
        if last is None:
            return
        if not pid_alive(pid) or time.monotonic_ns() > deadline:
            self.fence_margins.append(((deadline - last) / NS, self.round, fault))
            if last >= deadline:
                self.violation("producer signed after its latest lease deadline",
                               f"{node.name}'s pid {pid} stops before fault + TTL",
                               f"last block {ms(last - deadline):.0f} ms after it", t0, [node])

    def inject(self, kind):
        """Starts one fault; returns (heal function, liveness slack, fence watch)."""
        rng = self.rng
        slack = 0.0
        if kind == "net":
            node = self.pick_node()
            mode = rng.choice(NET_MODES)
            watch = self.fence_watch(f"net {mode}") if node is self.producer() else None
            if mode == "delay":
                delay = rng.choice((0.05, 0.2, 0.5, 1.0, 2.0))
                node.link.set("pass", delay=delay)
                self.count(f"monitor link delay {delay:g} s each way")
                watch = None  # some renewals may still succeed: no fence is certain
            else:
                node.link.set(mode)
                self.count(f"monitor link {mode}")
            return node.link.heal, slack, watch
        if kind == "monitor_sigstop":
            node = self.pick_node()
            watch = self.fence_watch("monitor SIGSTOP") if node is self.producer() else None
            node.monitor.signal(signal.SIGSTOP)
            frozen_at = time.monotonic_ns()
            node.frozen = frozen_at  # truthy, and names this freeze
            if watch is not None:
                # When the dead-man timer fires, measured by a thread waiting on the pid; a
                # monitor that outlives this freeze and dies in a later one is that one's.
                def waiter(node=node, proc=node.monitor.proc, rnd=self.round):
                    proc.wait()
                    by_timer = proc.returncode == -signal.SIGKILL and node.frozen == frozen_at \
                        and proc.pid not in self.sigkilled
                    if by_timer and node.monitor.proc is proc:
                        self.deadman.append(((time.monotonic_ns() - frozen_at) / NS, rnd))
                threading.Thread(target=waiter, daemon=True).start()
            self.count("monitor SIGSTOP")

            def heal(node=node):
                code = node.monitor.poll()
                if code is None:
                    node.monitor.signal(signal.SIGCONT)
                elif code == -signal.SIGKILL and node.monitor.pid not in self.sigkilled:
                    self.count("monitor killed by its dead-man timer")
                self.thawed(node)
            return heal, slack, watch
        if kind == "monitor_sigkill":
            node = self.pick_node()
            node.monitor.nodeos_pids()
            self.sigkilled.add(node.monitor.pid)  # not by its dead-man timer
            node.monitor.signal(signal.SIGKILL)
            node.monitor.wait_exit(2)
            self.check_gone(node)
            self.count("monitor SIGKILL")
            return (lambda: None), slack, None
        if kind == "monitor_sigterm":
            node = self.pick_node()
            self.sigterm(node, "alone")
            return (lambda: None), slack, None
        if kind == "etcd_member_kill":
            victim = self.cluster.leader() if rng.random() < 0.5 else rng.choice(self.cluster.members)
            is_leader = victim is self.cluster.leader()
            victim.kill()
            self.count("etcd leader SIGKILL" if is_leader else "etcd follower SIGKILL")
            return (lambda: victim.start(wait=False)), slack, None
        if kind == "etcd_member_sigstop":
            victim = rng.choice(self.cluster.members)
            victim.pause()
            self.count("etcd member SIGSTOP")
            return victim.resume, slack, None
        if kind == "etcd_member_cut_off":
            victim = self.cluster.leader() if rng.random() < 0.5 else rng.choice(self.cluster.members)
            self.cluster.isolate(victim)
            self.count("etcd member cut off from its peers")
            return self.cluster.heal, slack, None
        if kind == "etcd_quorum_loss":
            victims = rng.sample(self.cluster.members, 2)
            # A leader left without its quorum goes on acknowledging keepalives until it
            # notices and steps down, up to two election timeouts (1 s each) later.
            watch = self.fence_watch("etcd quorum lost", grace=2.0)
            for v in victims:
                v.kill()
            self.count("etcd quorum lost (2 of 3 SIGKILLed)")

            def heal():
                for v in victims:
                    v.start(wait=False)
            return heal, slack, watch
        if kind == "etcd_total_outage":
            watch = self.fence_watch("etcd total outage")
            if rng.random() < 0.5:
                for m in self.cluster.members:
                    m.pause()
                self.count("etcd all members SIGSTOP")
                heal = lambda: [m.resume() for m in self.cluster.members]  # noqa: E731
            else:
                for m in self.cluster.members:
                    m.kill()
                self.count("etcd all members SIGKILL, restart with data")
                heal = lambda: [m.start(wait=False) for m in self.cluster.members]  # noqa: E731
            return heal, slack, watch
        if kind == "nodeos_crash":
            p = self.producer()
            if p is None:
                return (lambda: None), slack, None
            pid = p.monitor.nodeos_pids()
            if pid:
                os.kill(pid[0], rng.choice((signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT)))
            self.count("nodeos crash (active)")
            return (lambda: None), slack, None
        if kind == "nodeos_crash_loop":
            sick = rng.sample(self.nodes, rng.choice((1, 2)))
            for n in sick:
                if rng.random() < 0.7:
                    n.nodeos_fault("crash-producer-ms", rng.choice((300, 600, 1000)))
                else:
                    n.nodeos_fault("crash-validator-ms", rng.choice((300, 600)))
            p = self.producer()
            if p is not None and p in sick:
                pid = p.monitor.nodeos_pids()
                if pid:
                    os.kill(pid[0], signal.SIGKILL)
            self.count(f"nodeos crash loop ({len(sick)} node{'s' if len(sick) > 1 else ''})")

            def heal(sick=sick):
                for n in sick:
                    n.nodeos_fault("crash-producer-ms")
                    n.nodeos_fault("crash-validator-ms")
            # A crash-looping node leaves the race until it has run 3 TTLs stably.
            self.touch(*sick)
            return heal, 3 * self.ttl + self.ttl, None
        if kind == "nodeos_api":
            node = self.pick_node()
            mode = rng.choice(("hang", "500"))
            node.nodeos_fault("api", mode)
            self.touch(node)
            self.count(f"nodeos API {'hanging' if mode == 'hang' else 'answering 500'}"
                       f" ({self.role(node)})")
            return (lambda: node.nodeos_fault("api")), slack, None
        if kind == "nodeos_pause_refused":
            return self.pause_refused()
        if kind == "nodeos_lag":
            node = self.pick_node(active_bias=0.3)
            lag = rng.choice((300, 1500, 4000))
            node.nodeos_fault("lag-ms", lag)
            self.count(f"nodeos head lagging {lag / 1000:g} s")
            return (lambda: node.nodeos_fault("lag-ms")), slack, None
        if kind == "nodeos_stall":
            node = self.pick_node()
            node.nodeos_fault("stall", 1)
            self.touch(node)
            self.count(f"nodeos head stalled ({self.role(node)})")
            return (lambda: node.nodeos_fault("stall")), slack, None
        if kind == "nodeos_slow_start":
            node = self.pick_node(active_bias=0.5)
            startup = rng.choice((1000, 2000, 3000))
            role = self.role(node)
            node.nodeos_fault("startup-ms", startup)
            self.slack_startup = max(self.slack_startup, startup / 1000)
            pid = node.monitor.nodeos_pids()
            if pid:  # SIGKILLed: a dirty database to replay, then the slow start
                os.kill(pid[0], signal.SIGKILL)
            self.touch(node)
            self.count(f"nodeos SIGKILL, then a slow start ({role})")
            return (lambda: node.nodeos_fault("startup-ms")), slack, None
        if kind == "operator_pause_group":
            return self.operator_pause(None)
        if kind == "operator_pause_node":
            return self.operator_pause(self.rng.choice(self.nodes))
        if kind == "operator_switchover":
            return self.operator_switchover()
        raise ValueError(kind)

    def role(self, node):
        p = self.producer()
        return "producer" if node is p else "standby"

    def pause_refused(self):
        """A paused-mode node whose pause fails (500, hang, or acknowledged and ignored),
        with what makes its monitor pause it."""
        rng = self.rng
        candidates = [n for n in self.nodes if self.paused_mode(n) and n.monitor.poll() is None]
        if not candidates:
            self.count("pause refused (no paused-mode node running)")
            return (lambda: None), 0.0, None
        p = self.producer()
        node = p if p in candidates and rng.random() < 0.8 else rng.choice(candidates)
        how = rng.choice(("error", "hang", "ignore"))
        node.nodeos_fault("pause", how)
        self.touch(node)
        trigger = rng.choice(("link blackhole", "SIGTERM", "switchover", "API hanging"))
        if trigger == "switchover" and node is not p:
            trigger = "link blackhole"
        self.count(f"nodeos pause {'answering 500' if how == 'error' else how}")
        self.faults[f"  ... the pause needed by: {trigger}"] += 1
        self.labels[-1] += f" ({trigger})"
        watch = None
        if trigger == "link blackhole":
            watch = self.fence_watch(f"pause {how}, link blackhole") if node is p else None
            node.link.set("blackhole")
        elif trigger == "SIGTERM":
            self.sigterm(node, "pause refused")
        elif trigger == "switchover":
            self.switchover_now(None)
        else:
            node.nodeos_fault("api", "hang")

        def heal():
            node.nodeos_fault("pause")
            node.nodeos_fault("api")
            node.link.heal()
        return heal, 0.0, watch

    def operator_pause(self, node):
        """`nodeos-monitor pause` of the group (node None) or of one node; then, often, the
        producer's monitor SIGKILLed or its nodeos crashed, so that a takeover would be due."""
        rng = self.rng
        p = self.producer()
        holder = self.lock_holder()
        args = ("pause", "--reason", f"chaos round {self.round}")
        if node is not None:
            args += ("--node", node.name)
        code, _, err = self.command(*args, timeout=10)
        what = "the group" if node is None else f"a node ({self.role(node)})"
        if code != 0:
            self.count(f"operator pause of {what}: failed")
            print(f"  operator pause failed ({code}): {(err or '').strip()}", flush=True)
            return (lambda: None), 0.0, None
        # The lock holder just before and just after the pause may still begin to produce:
        # it won before the pause, and a pause stops only campaigns.
        exempt = {x for x in (holder, self.lock_holder(), p.name if p else None) if x}
        self.pauses.append({"node": node.name if node else None, "exempt": exempt,
                            "since": time.monotonic_ns() + PAUSE_GRACE_NS, "until": None,
                            "round": self.round, "checked": False})
        self.post_heals.append(self.resume_all)
        then = rng.choice(("nothing", "monitor SIGKILL", "nodeos crash"))
        if p is not None and then == "monitor SIGKILL" and p.monitor.poll() is None:
            p.monitor.nodeos_pids()
            self.sigkilled.add(p.monitor.pid)
            p.monitor.signal(signal.SIGKILL)
            p.monitor.wait_exit(2)
            self.check_gone(p)
            self.touch(p)
        elif p is not None and then == "nodeos crash":
            pid = p.monitor.nodeos_pids()
            if pid:
                os.kill(pid[0], signal.SIGKILL)
            self.touch(p)
        else:
            then = "nothing"
        self.count(f"operator pause of {what}" + ("" if then == "nothing" else
                                                   f", then the producer's {then}"))
        return (lambda: None), 0.0, None

    def switchover_now(self, target):
        """`nodeos-monitor switchover` (to `target`, or to the best standby); records the
        outcome. One that reports success must be followed by a block of its target."""
        args = ["switchover", "--wait", "8", "--reason", f"chaos round {self.round}"]
        if target is not None:
            args += ["--to", target.name]
        started = time.monotonic_ns()
        # A fault of the same round that stops a nodeos from signing (its head stalled, or
        # crashing as the producer) can strike the target after it was found ready: its
        # monitor then hands the lock on, rightly, and no block of it is to be expected.
        def unable_to_sign():
            return {n.name for n in self.nodes if n.nodeos_faulted("stall", "crash-producer-ms")}
        unable = unable_to_sign()
        code, out, err = self.command(*args, timeout=20)
        if code == 0:
            line = out.strip().splitlines()[-1] if out.strip() else ""
            to = line.split()[2] if line.startswith("switchover to ") else None
            self.switchovers.append(("done", self.round, line))
            if to is not None:
                try:
                    self.ledger.wait_first_block(started, to, 3, f"{to} to produce")
                except AssertionError:
                    if to not in unable | unable_to_sign():
                        self.violation("switchover reported done, its target never produced",
                                       f"a block of {to} after the command started", line, started)
            return "done"
        outcome = "timed out" if code is None else "refused"
        self.switchovers.append((outcome, self.round, (err or "").strip()))
        return outcome

    def operator_switchover(self):
        rng = self.rng
        p = self.producer()
        target = None
        if rng.random() < 0.5:
            others = [n for n in self.nodes if n is not p]
            target = rng.choice(others)
        outcome = self.switchover_now(target)
        self.count(f"operator switchover {'--to a node' if target else 'to the best standby'}:"
                   f" {outcome}")
        return (lambda: None), 0.0, None

    KINDS = [("net", 30), ("monitor_sigstop", 10), ("monitor_sigkill", 7),
             ("monitor_sigterm", 7), ("etcd_member_kill", 8), ("etcd_member_sigstop", 5),
             ("etcd_member_cut_off", 6), ("etcd_quorum_loss", 5), ("etcd_total_outage", 5),
             ("nodeos_crash", 8), ("nodeos_crash_loop", 3),
             ("nodeos_api", 6), ("nodeos_pause_refused", 6), ("nodeos_lag", 4),
             ("nodeos_stall", 4), ("nodeos_slow_start", 5), ("operator_pause_group", 4),
             ("operator_pause_node", 4), ("operator_switchover", 6)]
    OPERATOR_KINDS = {"operator_pause_group", "operator_pause_node", "operator_switchover"}

    def pick_kind(self, exclude=()):
        if "paused" not in self.modes.values():
            exclude = set(exclude) | {"nodeos_pause_refused"}
        kinds = [(k, w) for k, w in self.KINDS if k not in exclude]
        total = sum(w for _, w in kinds)
        x = self.rng.uniform(0, total)
        for k, w in kinds:
            x -= w
            if x <= 0:
                return k
        return kinds[-1][0]

    # --- one round ------------------------------------------------------------------

    def one_round(self):
        rng = self.rng
        d = self.args.duration
        duration = rng.uniform(0.3 * d, d)
        kinds = [self.pick_kind()]
        if rng.random() < 0.25:  # two faults at once
            etcd_kinds = {"etcd_quorum_loss", "etcd_total_outage", "etcd_member_kill",
                          "etcd_member_sigstop", "etcd_member_cut_off"}
            exclude = set(kinds) | (etcd_kinds if kinds[0] in etcd_kinds else set())
            kinds.append(self.pick_kind(exclude))
        t0 = time.monotonic_ns()
        self.labels = []
        self.slack_startup = 0.0
        self.round_touched = set()
        heals, slack, watches = [], 0.0, []
        for k in kinds:
            heal, s, watch = self.inject(k)
            heals.append(heal)
            slack = max(slack, s)
            watches.append(watch)
        # A SIGTERM to some monitor in the middle of a third of the faults.
        mid_term = rng.random() < 0.33
        end = time.monotonic() + duration
        if mid_term:
            time.sleep(duration * rng.uniform(0.2, 0.8))
            live = self.running_nodes()
            if live:
                self.sigterm(rng.choice(live), "during a fault")
        time.sleep(max(0.0, end - time.monotonic()))
        for w in watches:
            self.check_fence(w)
        # Heal everything.
        for heal in reversed(heals):
            heal()
        for n in self.nodes:
            for switch in HEALED_SWITCHES:
                n.nodeos_fault(switch)
        for name in self.round_touched:  # the comeback bound starts at the heal
            self.touched[name] = time.monotonic()
        for m in self.cluster.members:
            if not m.running:
                m.start(wait=False)
        self.cluster.heal()
        for n in self.nodes:
            n.link.heal()
            if n.monitor.poll() is None:
                n.monitor.signal(signal.SIGCONT)
                self.thawed(n)
        try:
            self.cluster.wait_healthy(30)
        except AssertionError as e:
            self.violation("etcd did not recover", "every member healthy within 30 s", str(e), t0)
        post_heals, self.post_heals = self.post_heals, []
        for post_heal in dict.fromkeys(post_heals):
            post_heal()
        self.check_pauses()
        healed = time.monotonic_ns()
        for n in self.nodes:
            if n.monitor.poll() is not None:
                self.check_gone(n)
                n.restart()
        self.check_overlap()
        # Liveness: a node started during the round still loads for its slow start.
        slack += self.slack_startup
        bound = 2 * self.ttl + 4 + slack
        try:
            name = wait_stable_producer(self.ledger, self.window_ms, bound, 0.5)
            first = self.ledger.first_block_after(healed, name)
            took = (first["t"] - healed) / NS if first else 0.0
            self.after_heal.append((took, self.round, list(self.labels)))
        except AssertionError as e:
            self.violation("no single producer after the heal",
                           f"exactly one producer within {bound:.0f} s of the heal", str(e), healed)
            try:
                wait_stable_producer(self.ledger, self.window_ms, 60, 0.5)
            except AssertionError:
                raise Violation("the group did not recover within 60 s more") from None
        gap, _ = longest_gap(self.ledger, since=t0, until=time.monotonic_ns())
        self.gaps.append((gap / NS, self.round, list(self.labels)))
        self.check_overlap()
        self.check_comeback()
        return self.labels, duration

    # --- invariants of the nodeos and operator faults ---------------------------------

    def check_pauses(self):
        """While the group was paused, no node but the lock holder or the producer at the
        pause began to produce; a paused node never began to produce."""
        for pause in self.pauses:
            if pause["until"] is None or pause["checked"]:
                continue
            pause["checked"] = True
            node, exempt, since = pause["node"], pause["exempt"], pause["since"]
            starts = [r for r in self.ledger.events("producing", after=since)
                      if r["t"] < pause["until"]]
            for r in starts:
                if node is None and r["node"] not in exempt:
                    self.violation("a takeover while the group was paused",
                                   f"no node but {sorted(exempt) or 'none'} begins to produce",
                                   f"{r['node']} (pid {r['pid']}) began to produce", since)
                elif r["node"] == node and node not in exempt:
                    self.violation("a paused node began to produce",
                                   f"{node} is not a candidate while paused",
                                   f"{r['node']} (pid {r['pid']}) began to produce", since)

    def node_back(self, node):
        """Its monitor's latest nodeos is alive and has loaded its state."""
        start = node.monitor.latest_nodeos()
        return bool(start) and bool(self.ledger.events("ready", pid=start["pid"]))

    def check_comeback(self):
        """Every running node's nodeos comes back (after a crash, a dirty database and its
        replay, a slow start) within COMEBACK_BOUND of the last round that touched it."""
        now = time.monotonic()
        for n in self.nodes:
            if n.monitor.poll() is not None or self.node_back(n):
                self.down_since.pop(n.name, None)
                continue
            since = max(self.down_since.get(n.name, (now, self.round))[0],
                        self.touched.get(n.name, 0.0))
            self.down_since[n.name] = (since, self.down_since.get(n.name, (now, self.round))[1])
            if now - since > COMEBACK_BOUND:
                self.violation("a nodeos did not come back",
                               f"{n.name}'s nodeos alive and loaded within {COMEBACK_BOUND:g} s",
                               f"not back since round {self.down_since[n.name][1]}",
                               time.monotonic_ns() - int(COMEBACK_BOUND * NS), [n])
                self.down_since[n.name] = (now, self.round)  # one report per minute at most

    def dirty_database_figures(self):
        """(refusals, replays, replays that loaded, refusals never followed by a replay of
        that node while it was started again)."""
        records = [r for r in self.ledger.refresh()
                   if r["event"] in ("dirty", "replay", "ready", "start")]
        dirty = [r for r in records if r["event"] == "dirty"]
        replays = [r for r in records if r["event"] == "replay"]
        ready = {r["pid"] for r in records if r["event"] == "ready"}
        loaded = sum(1 for r in replays if r["pid"] in ready)
        unanswered = []
        for d in dirty:
            later = [r for r in records if r["node"] == d["node"] and r["t"] > d["t"]]
            # Started again 3 times or more without a replay: the replay never came.
            if sum(r["event"] == "start" for r in later) >= 3 \
                    and not any(r["event"] == "replay" for r in later):
                unanswered.append(d)
        return len(dirty), len(replays), loaded, unanswered

    def run(self):
        print(f"workdir {self.workdir}; monitor {MONITOR}; TTL {self.ttl} s, stop timeout "
              f"{self.stop_timeout} s; seed {self.args.seed}", flush=True)
        started = time.monotonic()
        self.start()
        aborted = None
        try:
            for self.round in range(1, self.args.rounds + 1):
                t = time.monotonic()
                kinds, duration = self.one_round()
                print(f"round {self.round:3d} {' + '.join(kinds):<60} fault {duration:4.1f} s, "
                      f"round {time.monotonic() - t:5.1f} s, producer "
                      f"{self.ledger.producer_at_end(self.window_ms)}", flush=True)
        except Violation as e:
            aborted = str(e)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, and still print the table
            aborted = f"interrupted in round {self.round}"
            self.round -= 1
        except Exception:
            aborted = traceback.format_exc()
        finally:
            left = self.stop()
            if left:
                self.violation("simulators left after every monitor stopped", "none", left,
                               time.monotonic_ns())
        self.check_overlap()
        _, _, _, unanswered = self.dirty_database_figures()
        for d in unanswered:
            self.violation("a dirty database was never replayed",
                           f"{d['node']} starts nodeos with --replay-blockchain after the refusal",
                           f"3 starts of {d['node']} since pid {d['pid']} refused, none replaying",
                           d["t"])
        self.table(time.monotonic() - started, aborted)
        ok = not self.violations and not aborted
        if ok and not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"files kept in {self.workdir}")
        return 0 if ok else 1

    def table(self, elapsed, aborted):
        overlaps = self.ledger.overlaps()
        worst_gap = max(self.gaps, default=(0, 0, []))
        stops = sorted(self.stops)
        heal = max(self.after_heal, default=(0, 0, []))
        margins = sorted(self.fence_margins)
        print()
        print(f"randomized fault run: seed {self.args.seed}, {self.round} rounds of up to "
              f"{self.args.duration:g} s, TTL {self.ttl} s, stop timeout {self.stop_timeout} s, "
              f"{elapsed / 60:.1f} min; standby modes: "
              + ", ".join(f"{n} {m}" for n, m in self.modes.items()))
        print(f"| what | value |\n|---|---|")
        print(f"| rounds | {self.round}{' (aborted: ' + aborted.splitlines()[-1] + ')' if aborted else ''} |")
        for fault, count in sorted(self.faults.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"| faults: {fault} | {count} |")
        print(f"| overlaps (must be 0) | {len(overlaps)} |")
        print(f"| longest time without a producer | {worst_gap[0]:.2f} s (round {worst_gap[1]}: "
              f"{' + '.join(worst_gap[2])}) |")
        print(f"| longest from a heal to one producer alone | {heal[0]:.2f} s (round {heal[1]}: "
              f"{' + '.join(heal[2])}) |")
        if stops:
            print(f"| longest stop (SIGTERM to exit) | {stops[-1][0]:.2f} s ({stops[-1][1]}, round "
                  f"{stops[-1][2]}); median {stops[len(stops) // 2][0]:.2f} s of {len(stops)} |")
        if self.deadman:
            kills = sorted(k for k, _ in self.deadman)
            print(f"| dead-man kills of a frozen active monitor (SIGSTOP to death) | "
                  f"{len(kills)}: {kills[0]:.2f}-{kills[-1]:.2f} s (TTL {self.ttl} s) |")
        if margins:
            print(f"| smallest fence margin (latest lease deadline minus last block) | "
                  f"{margins[0][0] * 1000:.0f} ms (round {margins[0][1]}: {margins[0][2]}), "
                  f"{len(margins)} fences |")
        outcomes = collections.Counter(o for o, _, _ in self.switchovers)
        if self.switchovers:
            print(f"| switchovers (done, refused, timed out) | {outcomes['done']}, "
                  f"{outcomes['refused']}, {outcomes['timed out']} |")
        dirty, replays, loaded, _ = self.dirty_database_figures()
        print(f"| dirty database refusals; replays; replays that loaded | {dirty}; {replays}; "
              f"{loaded} |")
        print(f"| invariant violations | {len(self.violations)} |")
        for rnd, what, path in self.violations:
            print(f"  round {rnd}: {what} ({path})")


def main():
    # SIGTERM ends the run like Ctrl-C: everything started is stopped by PID first.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--duration", type=float, default=6.0,
                        help="longest fault of a round, in seconds (each lasts 30-100 %% of it)")
    parser.add_argument("--ttl", type=int, default=3)
    parser.add_argument("--stop-timeout", type=int, default=4)
    parser.add_argument("--mode", choices=sorted(MODES), default="mixed",
                        help="standby modes: mixed (node-a paused, the others restart), "
                             "restart or paused (all three)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    args = parser.parse_args()
    if not os.access(MONITOR, os.X_OK):
        sys.exit(f"no executable nodeos-monitor at {MONITOR}: build it, or set NM_MONITOR")
    return Chaos(args).run()


if __name__ == "__main__":
    sys.exit(main())

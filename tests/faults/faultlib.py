"""The fault-injection harness: an etcd of one or three members on loopback with a
controllable proxy in front of every peer port, one proxy per (monitor, member) for the
client traffic, monitors supervising the simulator through sick_nodeos.py (so a test can
make a node's nodeos crash, ignore SIGTERM or stop slowly), and the safety invariants
checked on the shared ledger.

Every process started here is stopped by its PID, also when a test fails; every wait has
a deadline and says what it expected."""

import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from harness import (  # noqa: E402,F401
    MONITOR, Etcd, Ledger, Monitor, WorkdirCase, free_port, hold, make_config_dirs, metric_samples, ms,
    pid_alive, reap_orphans, stop_monitors, wait_single_producer, wait_until)
from proxy import Proxy  # noqa: E402

SICK_NODEOS = os.path.join(HERE, "sick_nodeos.py")
NS = 1_000_000_000


# --- etcd -----------------------------------------------------------------------------

class Member(Etcd):
    """An etcd member of a Cluster, which can be killed and started again with its data."""

    credentials = None  # (user, password) once the cluster has authentication on
    _token = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _headers(self, timeout):
        # etcd 3.4.42-3.4.45, 3.5.28-3.5.31 and 3.6.0-3.6.11 answer a status question with
        # authentication on to root only.
        if self.credentials is None:
            return {}
        if self._token is None:
            user, password = self.credentials
            self._token = self.request("/v3/auth/authenticate", {"name": user, "password": password},
                                       timeout=timeout)["token"]
        return {"Authorization": self._token}

    def status(self, timeout=0.5):
        """(member id, leader id) from /v3/maintenance/status, or None."""
        try:
            answer = self.request("/v3/maintenance/status", {}, timeout=timeout, headers=self._headers(timeout))
            return answer["header"]["member_id"], answer.get("leader")
        except (OSError, ValueError, KeyError):
            self._token = None  # refused, or a restarted member that forgot it
            return None

    def kill(self, sig=signal.SIGKILL):
        """Ends the process (SIGKILL by default: no clean shutdown), keeping its data."""
        if self.running:
            self.stop(sig)


class Cluster:
    """`size` etcd members on loopback; with more than one, each member's peer port sits
    behind a Proxy, so a member can be cut off from its peers."""

    def __init__(self, workdir, size=1, extra_args=()):
        self.members = []
        self.peer_proxies = {}
        names = [f"e{i + 1}" for i in range(size)]
        peer_ports = {n: free_port() for n in names}
        if size > 1:
            for n in names:
                self.peer_proxies[n] = Proxy(peer_ports[n], name=f"peer-{n}",
                                             identify=self.pids)
            advertise = {n: self.peer_proxies[n].url for n in names}
        else:
            advertise = {n: f"http://127.0.0.1:{peer_ports[n]}" for n in names}
        initial = ",".join(f"{n}={advertise[n]}" for n in names)
        for n in names:
            self.members.append(Member(workdir, n, cluster=initial, peer_port=peer_ports[n],
                                       advertise_peer_url=advertise[n], extra_args=extra_args))

    def pids(self):
        return [m.proc.pid for m in self.members if m.running]

    def login(self, user, password):
        """The test's own questions to the members (status, leader) go as this user."""
        for m in self.members:
            m.credentials = (user, password)

    def start(self, timeout=20.0):
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_healthy(timeout)
        return self

    def leader(self, timeout=10.0):
        """The member that every running member agrees leads."""
        found = []

        def agreed():
            ids = {}
            for m in self.members:
                if m.running:
                    st = m.status()
                    if st is None:
                        return None
                    ids[st[0]] = (m, st[1])
            leaders = {lead for _, lead in ids.values()}
            if len(leaders) == 1:
                lead = leaders.pop()
                if lead in ids:
                    found[:] = [ids[lead][0]]
                    return True
            return None
        wait_until(agreed, timeout, "the running etcd members to agree on a leader")
        return found[0]

    def isolate(self, member, mode="blackhole"):
        """Cuts `member` off from its peers both ways; clients still reach it."""
        for name, proxy in self.peer_proxies.items():
            if name == member.name:
                proxy.set(mode)
            else:
                proxy.set(mode, only_from=[member.proc.pid])

    def heal(self):
        for proxy in self.peer_proxies.values():
            proxy.heal()

    def wait_healthy(self, timeout=20.0):
        for m in self.members:
            if m.running:
                m.wait_healthy(timeout)

    def stop(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                m.stop()
        for proxy in self.peer_proxies.values():
            proxy.close()


class ClientLink:
    """One proxy per etcd member between one monitor and the cluster."""

    def __init__(self, name, cluster):
        self.name = name
        self.proxies = [Proxy(m.client_port, name=f"{name}-{m.name}") for m in cluster.members]
        self.urls = [p.url for p in self.proxies]

    def set(self, mode, delay=0.0):
        for p in self.proxies:
            p.set(mode, delay=delay)

    def heal(self):
        for p in self.proxies:
            p.heal()

    def close(self):
        for p in self.proxies:
            p.close()


# --- nodes ----------------------------------------------------------------------------

class Node:
    """A monitor with its own link to etcd and its own nodeos fault controls."""

    def __init__(self, workdir, name, cluster, ledger, group, ttl, stop_timeout, block_ms=50,
                 sim_args=(), start=True, **monitor_args):
        self.name = name
        self.link = ClientLink(name, cluster)
        self.control = os.path.join(workdir, f"control-{name}")
        os.makedirs(self.control, exist_ok=True)
        self.monitor = Monitor(workdir, name, self.link.urls, group, ttl=ttl,
                               stop_timeout=stop_timeout, ledger=ledger, block_ms=block_ms,
                               sim_args=[f"--fault-control={self.control}", *sim_args],
                               overrides={"--nodeos": SICK_NODEOS},
                               start=False, **monitor_args)
        if start:
            self.monitor.start()
        self.history = [self.monitor]  # every monitor process this node ran
        self.frozen = False  # SIGSTOPped by a test
        self.thawed_at = 0  # when a test last let it run again (monotonic ns)

    def nodeos_fault(self, name, value=None):
        """Sets (or with None clears) a nodeos fault of this node (see nodeos_sim.py):
        start-time faults (crash-*-ms, ignore-sigterm, stop-delay-ms, startup-ms) apply
        from its next nodeos start, run-time ones (lag-ms, stall, api, pause) at once. The
        value is written to a hidden file and renamed into place, so that the simulator
        never reads half of it."""
        path = os.path.join(self.control, name)
        if value is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        else:
            staging = os.path.join(self.control, f".{name}")
            with open(staging, "w", encoding="utf-8") as f:
                f.write(str(value))
            os.replace(staging, path)

    def nodeos_faulted(self, *names):
        """Whether any of these nodeos faults is set now."""
        return any(os.path.exists(os.path.join(self.control, n)) for n in names)

    def clear_nodeos_faults(self):
        for name in os.listdir(self.control):
            os.unlink(os.path.join(self.control, name))

    def restart(self):
        """Starts a new monitor process with the same command line (same node name)."""
        assert self.monitor.poll() is not None, f"{self.name}: monitor still running"
        fresh = self.monitor.clone().start()
        self.monitor = fresh
        self.history.append(fresh)
        return fresh


def stop_nodes(nodes, ledger):
    """Stops every monitor the nodes ran, by PID, then their links; returns the simulators
    that outlived their monitors (killed now)."""
    monitors = [m for n in nodes for m in n.history]
    stop_monitors(monitors)
    leftovers = reap_orphans(monitors, ledger)
    for node in nodes:
        node.link.close()
    return leftovers


def sigterm_and_time(monitor, bound):
    """SIGTERM to a monitor; asserts that it exits 0 within its stop timeout plus `bound`
    seconds and that its nodeos is gone; returns how long the stop took (s)."""
    monitor.signal(signal.SIGCONT)
    monitor.nodeos_pids()
    sent = time.monotonic()
    monitor.signal(signal.SIGTERM)
    code = monitor.wait_exit(monitor.stop_timeout + bound)
    took = time.monotonic() - sent
    if code != 0:
        raise AssertionError(f"monitor {monitor.name} exited with {code} after SIGTERM; "
                             f"expected 0\n{monitor.log_tail()}")
    monitor.assert_nodeos_gone(1.0)
    return took


def wait_stable_producer(ledger, window_ms, timeout, stable=1.0):
    """Waits (up to `timeout` s for it to begin) until exactly one node has been producing
    alone for `stable` seconds; returns its name."""
    state = {"node": None, "since": 0.0}

    def settled():
        now = time.monotonic()
        producers = ledger.current_producers(window_ms)
        if len(producers) != 1:
            state["node"] = None
            return None
        if producers[0] != state["node"]:
            state.update(node=producers[0], since=now)
        return producers[0] if now - state["since"] >= stable else None
    try:
        return wait_until(settled, timeout + stable, f"one node producing alone for {stable:g} s")
    except AssertionError as e:
        raise AssertionError(f"{e}; producing now: {ledger.current_producers(window_ms) or 'none'}") \
            from None


# --- ledger figures -------------------------------------------------------------------

def producing_intervals(ledger):
    return sorted((r.start, r.end) for r in ledger.runs() if r.blocks)


def longest_gap(ledger, since=None, until=None):
    """The longest time (ns) inside [since, until] during which no node produced, with the
    instant it began; measured from the first production after `since`."""
    intervals = producing_intervals(ledger)
    if since is not None:
        intervals = [(s, e) for s, e in intervals if e >= since]
    if not intervals:
        return 0, None
    best, at = 0, None
    reach = intervals[0][1]
    for s, e in intervals[1:]:
        if s > reach and (until is None or s <= until):
            if s - reach > best:
                best, at = s - reach, reach
        reach = max(reach, e)
    if until is not None and until > reach and until - reach > best:
        best, at = until - reach, reach
    return best, at


def ledger_excerpt(ledger, since_ns, until_ns=None, limit=60):
    """The start/producing/stop/crash/sigterm records in a window (blocks summarised)."""
    origin = ledger.origin()
    lines = []
    for r in ledger.refresh():
        if r["t"] < since_ns or (until_ns is not None and r["t"] > until_ns):
            continue
        if r["event"] == "block":
            continue
        lines.append(f"{ms(r['t'] - origin):10.1f} ms {r['node']:>7} pid {r['pid']:>7} "
                     f"{r['event']:<9} {r['mode']}")
    return "\n".join(lines[-limit:])


# --- the base test case ---------------------------------------------------------------

class FaultCase(WorkdirCase):
    """A workdir (kept when a test fails), an etcd of `etcd_size` members, and nodes; in the
    cleanups every monitor is stopped, then every simulator must be gone, then the proxies
    and etcd members are stopped, all by PID."""

    ttl = 3
    stop_timeout = 4
    etcd_size = 1
    etcd_args = ()  # every member's extra flags
    group = "bp-faults"
    workdir_prefix = "nm-fault"
    stop_bound = 2.5  # a monitor asked to stop exits within its stop timeout plus this

    def setUp(self):
        self.make_workdir()
        self.nodes = []
        self.cluster = Cluster(self.workdir, self.etcd_size, self.etcd_args_for(self.workdir))
        self.addCleanup(self.cluster.stop)
        self.addCleanup(self._stop_nodes)
        self.cluster.start()

    def etcd_args_for(self, workdir):
        """The members' extra flags (a subclass may write files they name into workdir)."""
        return self.etcd_args

    def evidence(self):
        return [node.monitor.log_tail() for node in self.nodes] + \
            ["--- ledger (last records) ---\n" + ledger_excerpt(self.ledger, 0)]

    def _stop_nodes(self):
        leftovers = stop_nodes(self.nodes, self.ledger)
        if leftovers:
            raise AssertionError(f"nodeos simulators outlived their monitors: {leftovers}")

    # --- nodes -----------------------------------------------------------------------

    def node(self, name, **kwargs):
        kwargs.setdefault("ttl", self.ttl)
        kwargs.setdefault("stop_timeout", self.stop_timeout)
        kwargs.setdefault("block_ms", self.block_ms)
        n = Node(self.workdir, name, self.cluster, self.ledger, self.group, **kwargs)
        self.nodes.append(n)
        return n

    def node_named(self, name):
        return next(n for n in self.nodes if n.name == name)

    def start_nodes(self, names=("node-a", "node-b"), **kwargs):
        """Starts the nodes; waits for one producer and every other standing by (a
        validator, or paused); returns (active, [others])."""
        nodes = [self.node(n, **kwargs) for n in names]
        active = self.wait_producer(self.ttl + 10)
        others = [n for n in nodes if n is not active]
        active.monitor.wait_producing(5)
        for n in others:
            n.monitor.wait_standby(self.ttl + 5)
        return active, others

    def restart_producer(self):
        """Kills the producing nodeos so that the nodes restart theirs with the nodeos faults
        just set; waits until a new producer runs and every other node validates; returns
        (active, [others])."""
        active = self.wait_producer(self.ttl + 5)
        pid = active.monitor.wait_nodeos_mode("producer", 2)
        killed = time.monotonic_ns()
        os.kill(pid, signal.SIGKILL)
        new = wait_until(lambda: self.ledger.events("producing", after=killed), self.ttl + 5,
                         "a new producer after the producing nodeos was killed")[0]
        active = self.node_named(new["node"])
        active.monitor.wait_nodeos_mode("producer", 2)
        others = [n for n in self.nodes if n is not active]
        for n in others:
            n.monitor.wait_nodeos_mode("validator", self.stop_timeout + 3 * self.ttl)
        return active, others

    def wait_producer(self, timeout):
        return self.node_named(
            wait_single_producer(self.ledger, timeout, self.producing_window_ms))

    def producers(self):
        return self.ledger.current_producers(self.producing_window_ms)

    # --- invariants ------------------------------------------------------------------

    def assert_single_producer_after_heal(self, healed_ns, bound, why="", stable=1.0):
        """Liveness: within `bound` seconds of `healed_ns`, exactly one node produces and
        goes on alone for `stable` seconds (a producer that is being fenced at that moment
        does not count); returns (node, seconds from the heal to its first block)."""
        left = bound - (time.monotonic_ns() - healed_ns) / NS
        try:
            name = wait_stable_producer(self.ledger, self.producing_window_ms, max(0.5, left),
                                        stable)
        except AssertionError as e:
            raise AssertionError(f"no single producer within {bound:.1f} s of the heal"
                                 f"{' (' + why + ')' if why else ''}: {e}\n"
                                 + ledger_excerpt(self.ledger, healed_ns - 5 * NS)) from None
        producer = self.node_named(name)
        first = self.ledger.first_block_after(healed_ns, producer.name)
        took = (first["t"] - healed_ns) / NS if first else 0.0
        self.assert_no_overlap()
        return producer, took

    def assert_fenced_before(self, node, pid, deadline_ns, timeout):
        """The producer `pid` of `node` stops signing before `deadline_ns` (the latest
        possible lease deadline) and is gone soon after."""
        wait_until(lambda: not pid_alive(pid), timeout,
                   f"{node.name}'s producer {pid} to be stopped by the fence")
        last = self.ledger.last_block_time(node.name, pid)
        self.assertIsNotNone(last)
        self.assertLess(last, deadline_ns,
                        f"{node.name}'s producer signed a block {ms(last - deadline_ns):.0f} ms "
                        f"after its latest possible lease deadline\n{node.monitor.log_tail()}")
        return (deadline_ns - last) / NS

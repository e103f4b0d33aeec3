"""Shared pieces of the real-process tests and the demo: a real etcd on free loopback
ports, monitors supervising the nodeos simulator, and the production ledger.

Every process started here is stopped by its PID; every wait has a deadline and fails
with a message that says what was expected."""

import base64
import copy
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Stopped(Exception):
    """The test runner stopped this process (SIGTERM: meson's timeout)."""


def _stopped(signum, frame):
    # An exception, not an exit: the test fails with it and its cleanups still stop every
    # process it started (etcd runs in a session of its own, out of the runner's reach).
    raise Stopped(f"stopped by signal {signum}")


signal.signal(signal.SIGTERM, _stopped)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_FLOOR = 10000
_handed_out = set()
_pick = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port():
    """A TCP port on 127.0.0.1 that nothing is bound to right now, below the kernel's
    ephemeral range. A port from bind(0) is an ephemeral one: between this call and the
    server's listen (seconds, for a nodeos that loads first), any outgoing connection on
    the machine may take it as its local port and the server fails with EADDRINUSE."""
    top = max(_ephemeral_low(), _PORT_FLOOR + 1000)
    for _ in range(1000):
        port = _pick.randrange(_PORT_FLOOR, top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 in [{_PORT_FLOOR}, {top})")


def wait_until(predicate, timeout, what):
    """Polls predicate until it returns a true value; raises AssertionError naming `what`
    when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(0.02)


def stop_pid(proc, timeout=10.0, sig=signal.SIGTERM):
    """Stops a subprocess.Popen by its PID: `sig`, then SIGKILL after `timeout`. Returns
    its exit status."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def etcd_binary():
    return shutil.which("etcd") or "/usr/bin/etcd"


_etcd_version = None


def etcd_version():
    """The version of the etcd the tests run (the first on PATH: scripts/test --etcd), as a
    tuple of ints."""
    global _etcd_version
    if _etcd_version is None:
        out = subprocess.run([etcd_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", out)
        if not found:
            raise AssertionError(f"cannot tell the version of {etcd_binary()}: {out!r}")
        _etcd_version = tuple(int(part) for part in found.groups())
    return _etcd_version


def etcd_checks_keepalive_tokens(version=None):
    """Whether that etcd refuses a lease keepalive with an invalid token: 3.4.42, 3.5.28,
    3.6.9 and later do (security advisory GHSA-q8m4-xhhv-38mg), earlier ones do not."""
    major, minor, patch = version or etcd_version()
    fixed = {(3, 4): 42, (3, 5): 28, (3, 6): 9}
    if (major, minor) in fixed:
        return patch >= fixed[(major, minor)]
    return (major, minor) > (3, 6)


class Etcd:
    """One etcd member on free loopback ports, with its own data directory."""

    def __init__(self, workdir, name="m1", client_port=None, peer_port=None, cluster=None,
                 extra_args=(), advertise_peer_url=None):
        self.name = name
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        # What its peers dial: its own peer port, or a proxy in front of it.
        self.advertise_peer_url = advertise_peer_url or self.peer_url
        self.data_dir = os.path.join(workdir, f"etcd-{name}")
        self.log_path = os.path.join(workdir, f"etcd-{name}.log")
        self.cluster = cluster or f"{name}={self.peer_url}"
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, wait=True, cluster_state="new"):
        args = [etcd_binary(), "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.advertise_peer_url,
                "--initial-cluster", self.cluster,
                "--initial-cluster-token", "nm-test",
                "--initial-cluster-state", cluster_state,
                "--log-level", "warn", "--logger", "zap"] + self.extra_args
        self.log = open(self.log_path, "ab")
        # Its own session: a Ctrl-C meant for the demo or the test runner must not reach
        # etcd before the monitors that depend on it have been stopped.
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=0.5) as r:
                return json.load(r).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout=15.0):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd {self.name} exited with {self.proc.returncode}; "
                                     f"see {self.log_path}")
            return self.healthy()
        wait_until(ok, timeout, f"etcd {self.name} at {self.url} to report healthy")

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            if sig == signal.SIGTERM:
                try:
                    os.kill(self.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            stop_pid(self.proc, sig=sig)
            self.log.close()

    def request(self, path, body, timeout=5.0, headers=None):
        """A JSON POST to the gateway; returns the decoded answer."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def get(self, key, timeout=5.0):
        """The kvs stored under `key` (a str): a list, empty when the key is absent."""
        body = {"key": base64.b64encode(key.encode()).decode()}
        return self.request("/v3/kv/range", body, timeout).get("kvs", [])


SIM = os.path.join(ROOT, "tests", "nodeos_sim.py")
MONITOR = os.environ.get("NM_MONITOR") or os.path.join(ROOT, "build", "nodeos-monitor")
# Makes a system call fail on demand (tests/e2e/fail_syscall.cpp), loaded with LD_PRELOAD.
FAIL_SYSCALL_LIB = os.environ.get("NM_FAIL_SYSCALL_LIB") or os.path.join(ROOT, "build", "tests", "libfail_syscall.so")


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_samples(text, identity=None):
    """{'name{labels}': value} of a Prometheus text exposition, with the group and node
    labels that every nodeos_monitor_* sample carries left out of the keys. With
    `identity` ({"group": ..., "node": ...}), asserts that they are there and right."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = SAMPLE.match(line)
        if not found:
            raise AssertionError(f"not a sample line: {line!r}")
        name, labels, value = found.groups()
        pairs = LABEL.findall(labels or "")
        if identity is not None and name.startswith("nodeos_monitor_"):
            got = {k: v for k, v in pairs if k in identity}
            if got != identity:
                raise AssertionError(f"{line!r}: expected the labels {identity}")
        kept = ",".join(f'{k}="{v}"' for k, v in pairs if k not in ("group", "node"))
        samples[f"{name}{{{kept}}}" if kept else name] = float(value)
    return samples


def hold(predicate, duration, what):
    """Asserts that predicate stays true for `duration` seconds: the bounded check that a
    state is stable, as opposed to waiting for one to appear."""
    start = time.monotonic()
    while True:
        if not predicate():
            raise AssertionError(f"expected {what} for {duration:.1f} s; it stopped holding "
                                 f"after {time.monotonic() - start:.2f} s")
        if time.monotonic() - start >= duration:
            return
        time.sleep(0.02)


def ms(ns):
    return ns / 1e6


# --- processes -------------------------------------------------------------------------

def proc_state(pid):
    """(state letter, parent pid) from /proc, or None when the pid does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def pid_alive(pid):
    """A zombie counts as gone: it runs no code, and nobody may be left to reap it."""
    state = proc_state(pid)
    return state is not None and state[0] not in ("Z", "X")


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError):
        return []


def live_children(pid):
    """Live processes whose parent is `pid` (scans /proc: the kernel here has no
    /proc/PID/task/TID/children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = proc_state(int(entry))
            if state and state[1] == pid and state[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def live_simulators(ledger_path):
    """Every live simulator writing to this ledger, whoever its parent is now: after the
    monitors are gone, any of them is an orphan."""
    marker = f"--sim-ledger={ledger_path}"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_alive(int(entry)):
            if marker in proc_cmdline(int(entry)):
                found.append(int(entry))
    return sorted(found)


# --- configuration ---------------------------------------------------------------------

NODEOS_COMMON_CONFIG = """\
# nodeos configuration, as a block producer would keep it
chain-state-db-size-mb = 16384
reversible-blocks-db-size-mb = 512
http-server-address = 127.0.0.1:8888
p2p-listen-endpoint = 127.0.0.1:9876
p2p-peer-address = 127.0.0.1:9877
agent-name = nodeos-monitor-test
max-clients = 25
plugin = eosio::chain_plugin
plugin = eosio::chain_api_plugin
plugin = eosio::net_plugin
"""


def make_config_dirs(workdir, producer="bp1"):
    """Creates workdir/active (producing as `producer`) and workdir/standby (validating
    only), each with a config.ini; returns (active_dir, standby_dir)."""
    active = os.path.join(workdir, "active")
    standby = os.path.join(workdir, "standby")
    os.makedirs(active, exist_ok=True)
    os.makedirs(standby, exist_ok=True)
    with open(os.path.join(active, "config.ini"), "w", encoding="utf-8") as f:
        f.write(NODEOS_COMMON_CONFIG)
        f.write("plugin = eosio::producer_plugin\n"
                "plugin = eosio::producer_api_plugin\n"
                f"producer-name = {producer}\n"
                "signature-provider = EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
                "=KEY:not-a-real-key\n")
    with open(os.path.join(standby, "config.ini"), "w", encoding="utf-8") as f:
        f.write(NODEOS_COMMON_CONFIG)
        f.write("# standby: no producer plugin, this node only validates\n"
                f"# producer-name = {producer}\n")
    return active, standby


# --- the ledger ------------------------------------------------------------------------

@dataclass
class Run:
    """One producing period of one simulator process, on CLOCK_MONOTONIC in ns: from its
    "producing" record to the record that ended it ("paused": the pause took effect, after
    the last block it let through; "stop"; "crash"), or, while none has, to its last
    "block" record. One process has a period per resume. A process killed with SIGKILL
    leaves no stop record; its run ends at its last block, which is exact because the
    simulator signs blocks only at the instants it records."""
    node: str
    pid: int
    start: int
    end: int
    blocks: int = 0
    closed: bool = False  # a paused, stop or crash record ended it
    ended_by: str = ""  # that record's event


# The records that end a producing period, and how describe() says so.
RUN_ENDINGS = {"paused": "paused", "stop": "stopped", "crash": "crashed"}


class Ledger:
    """Reads the ledger the simulators append to (see nodeos_sim.py), incrementally.

    Overlap is judged on closed intervals: two runs of different processes overlap when
    max(starts) <= min(ends). Touching counts as an overlap (of 0.0 ms): the clock has
    nanosecond resolution, so equal instants mean that a second process was already set to
    produce at the instant the first one signed, which the invariant forbids."""

    def __init__(self, path):
        self.path = path
        self.records = []
        self._offset = 0
        self._partial = b""
        # Nodes that produce on the same chain but are not in the group under test (the
        # other producers of a multi-producer chain): their blocks move every head, and
        # they never count in runs() or overlaps().
        self.outside_group = set()

    def refresh(self):
        """Parses whatever was appended since the last call; a last line without its
        newline is still being written (or its writer died) and waits for the next call."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return self.records
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"ledger {self.path}: a complete line is not JSON: "
                                         f"{line[:200]!r}") from None
        return self.records

    def origin(self):
        """The first record's time: messages show times relative to it."""
        records = self.refresh()
        return records[0]["t"] if records else 0

    def runs(self):
        """Every producing period, in the order they began. A block record outside a
        period (the simulator writes none) opens one at its own instant, so that it still
        counts in overlaps()."""
        runs, open_runs = [], {}
        for r in self.refresh():
            if r["node"] in self.outside_group:
                continue
            key = (r["node"], r["pid"])
            event = r["event"]
            if event == "producing" or (event == "block" and key not in open_runs):
                open_runs[key] = Run(r["node"], r["pid"], r["t"], r["t"])
                runs.append(open_runs[key])
            if event == "block":
                run = open_runs[key]
                run.end = r["t"]
                run.blocks += 1
            elif event in RUN_ENDINGS and key in open_runs:
                run = open_runs.pop(key)
                run.end = r["t"]
                run.closed = True
                run.ended_by = event
        return runs

    def overlaps(self):
        """[(run_a, run_b, overlap_ms)] for every pair of runs of different processes that
        share an instant; empty when the invariant held."""
        runs = self.runs()
        found = []
        for i, a in enumerate(runs):
            for b in runs[i + 1:]:
                if a.pid == b.pid:
                    continue
                lo, hi = max(a.start, b.start), min(a.end, b.end)
                if lo <= hi:
                    found.append((a, b, ms(hi - lo)))
        return found

    def describe(self, run):
        origin = self.origin()
        return (f"{run.node}/pid {run.pid} [{ms(run.start - origin):.1f} ms .. "
                f"{ms(run.end - origin):.1f} ms, {run.blocks} blocks"
                f"{', ' + RUN_ENDINGS[run.ended_by] if run.closed else ''}]")

    def current_producers(self, within_ms=300):
        """Nodes whose latest run signed a block in the last `within_ms` and has not
        ended (paused, stopped, crashed) since."""
        since = time.monotonic_ns() - int(within_ms * 1e6)
        return sorted({run.node for run in self.runs()
                       if not run.closed and run.blocks and run.end >= since})

    def producer_at_end(self, window_ms=300):
        """The single node producing in the last `window_ms`, else None."""
        producers = self.current_producers(window_ms)
        return producers[0] if len(producers) == 1 else None

    def starts(self, node):
        return [r for r in self.refresh() if r["node"] == node and r["event"] == "start"]

    def latest_start(self, node):
        starts = self.starts(node)
        return starts[-1] if starts else None

    def events(self, event, node=None, pid=None, after=None):
        """Records of one kind, optionally of one node or process, after an instant."""
        return [r for r in self.refresh() if r["event"] == event
                and (node is None or r["node"] == node) and (pid is None or r["pid"] == pid)
                and (after is None or r["t"] > after)]

    def last_block_time(self, node, pid=None):
        blocks = self.events("block", node=node, pid=pid)
        return blocks[-1]["t"] if blocks else None

    def first_block_after(self, t, node=None):
        """The first block record after instant `t` (of `node` when given), or None."""
        blocks = self.events("block", node=node, after=t)
        return blocks[0] if blocks else None

    def wait_first_block(self, t, node, timeout, what):
        """Waits for the first block after instant `t` (of `node` unless None); returns it."""
        return wait_until(lambda: self.first_block_after(t, node), timeout, what)

    def pids(self, node, since=None):
        """Every simulator process of `node` that wrote a start record (after `since`)."""
        return sorted({r["pid"] for r in self.starts(node) if since is None or r["t"] >= since})


def assert_no_overlap(ledger):
    found = ledger.overlaps()
    if found:
        raise AssertionError("two producers at the same instant: " + "; ".join(
            f"{ledger.describe(a)} and {ledger.describe(b)} overlap by {overlap:.1f} ms"
            for a, b, overlap in found))


def wait_single_producer(ledger, timeout, within_ms=300):
    """Waits until exactly one node has produced in the last `within_ms`; returns it."""
    seen = []

    def single():
        seen[:] = ledger.current_producers(within_ms)
        return seen[0] if len(seen) == 1 else None
    try:
        return wait_until(single, timeout, "exactly one producing node")
    except AssertionError as e:
        raise AssertionError(f"{e}; producing in the last {within_ms} ms: {seen or 'none'}") \
            from None


# --- monitors --------------------------------------------------------------------------

class Monitor:
    """One nodeos-monitor supervising the simulator, its output in workdir/monitor-NAME.log.

    Single-valued flags live in a dict so that a test can replace or drop one
    (`overrides={"--lease-ttl": "1"}`, or None to omit) without passing it twice."""

    def __init__(self, workdir, name, etcd_urls, group, ttl=3, stop_timeout=5, sim_args=(),
                 extra_args=(), ledger=None, block_ms=50, overrides=None, debug=True,
                 start=True, env=None, standby_mode="restart", api=True,
                 dirty_db_args=("--replay-blockchain",), max_head_lag=1):
        self.workdir = workdir
        self.env = env  # extra environment variables
        self.name = name
        self.ttl = ttl
        self.stop_timeout = stop_timeout
        self.ledger = ledger or Ledger(os.path.join(workdir, "ledger.jsonl"))
        active, standby = (os.path.join(workdir, "active"), os.path.join(workdir, "standby"))
        if not (os.path.isdir(active) and os.path.isdir(standby)):
            active, standby = make_config_dirs(workdir)
        if not isinstance(etcd_urls, str):
            etcd_urls = ",".join(etcd_urls)
        # nodeos as a producer runs it: its own data dir and API address, kept by a restarted
        # monitor of this node (clone()); one producer on this test chain, so stale
        # production is on (-e), as a one-producer testnet needs it.
        self.data_dir = os.path.join(workdir, f"data-{name}")
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.standby_mode = standby_mode
        flags = {
            "--nodeos": SIM,
            "--active-config-dir": active,
            "--standby-config-dir": standby,
            "--etcd-endpoints": etcd_urls,
            "--failover-group": group,
            "--lease-ttl": str(ttl),
            "--stop-timeout": str(stop_timeout),
            "--node-name": name,
            "--standby-mode": standby_mode,
            "--block-interval-ms": str(block_ms),
            "--max-head-lag": str(max_head_lag),
        }
        # Health-gated by default, as a real deployment should be (and --dirty-db-args needs it).
        if api or standby_mode == "paused":
            flags["--nodeos-api"] = self.api_url
        # Each monitor its own HTTP endpoint, as two on one machine cannot share port 3000;
        # unless the caller chose one in extra_args.
        given = [a for a in extra_args if a == "--metrics-addr" or a.startswith("--metrics-addr=")]
        if not given:
            flags["--metrics-addr"] = f"127.0.0.1:{free_port()}"
        flags.update(overrides or {})
        self.metrics_addr = flags.get("--metrics-addr")
        self.argv = [MONITOR]
        for flag, value in flags.items():
            if value is not None:
                self.argv += [flag, value]
        sim = [f"--sim-node={name}", f"--sim-ledger={self.ledger.path}",
               f"--sim-block-ms={block_ms}", f"--data-dir={self.data_dir}",
               f"--http-server-address={self.api_url.removeprefix('http://')}",
               "--enable-stale-production", *sim_args]
        self.argv += [f"--nodeos-args={arg}" for arg in sim]
        self.argv += [f"--dirty-db-args={arg}" for arg in dirty_db_args]
        if debug:
            self.argv.append("--debug")
        self.argv += list(extra_args)
        self.log_path = os.path.join(workdir, f"monitor-{name}.log")
        self.proc = None
        self.seen_pids = set()
        if start:
            self.start()

    def start(self):
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.started_ns = time.monotonic_ns()
        with open(self.log_path, "ab") as log:
            # Its own session: only the signals a test sends on purpose reach it.
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **self.env} if self.env else None)
        return self

    def clone(self):
        """A new, unstarted monitor with the same command line (a restart of this node)."""
        fresh = copy.copy(self)
        fresh.proc = None
        fresh.seen_pids = set()
        return fresh

    @property
    def pid(self):
        return self.proc.pid

    def poll(self):
        return self.proc.poll()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL when it outlives `timeout` (default: its stop timeout plus
        a margin); returns the exit status."""
        if timeout is None:
            timeout = self.stop_timeout + 5
        return stop_pid(self.proc, timeout)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"monitor {self.name} (pid {self.pid}) still running after "
                                 f"{timeout:.1f} s; expected it to exit\n"
                                 + self.log_tail()) from None

    def log_text(self, since=0):
        """This run's output (a restarted monitor appends to the same file), from
        position `since` (a log_mark())."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset + since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """The current end of this run's output: log checks after an event start here."""
        try:
            return os.path.getsize(self.log_path) - self._log_offset
        except FileNotFoundError:
            return 0

    def log_tail(self, lines=40):
        """The monitor's last decisions, without nodeos's relayed block lines."""
        kept = [line for line in self.log_text().splitlines()
                if not ("[nodeos " in line and " block " in line)]
        return (f"--- last {min(lines, len(kept))} lines of {self.log_path} (blocks left out) "
                f"---\n" + "\n".join(kept[-lines:]))

    def wait_for_log(self, regex, timeout, since=0, flags=re.IGNORECASE):
        try:
            return wait_until(lambda: re.search(regex, self.log_text(since), flags), timeout,
                              f"monitor {self.name} to log /{regex}/")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tail()}") from None

    def nodeos_pids(self):
        """The live children of this monitor, i.e. its nodeos."""
        pids = live_children(self.proc.pid) if self.proc.poll() is None else []
        self.seen_pids.update(pids)
        return pids

    def owned_pids(self):
        """Every simulator this monitor ever started, as far as anyone saw: its children
        when observed, and the ledger's start records of its node since it started."""
        return sorted(self.seen_pids | set(self.ledger.pids(self.name, since=self.started_ns)))

    def assert_running(self):
        code = self.proc.poll()
        if code is not None:
            raise AssertionError(f"monitor {self.name} exited with {code} unexpectedly\n"
                                 + self.log_tail())

    def latest_nodeos(self):
        """The latest start record of this node's nodeos if it is a live child of this
        monitor, else None."""
        start = self.ledger.latest_start(self.name)
        if start and start["t"] >= self.started_ns and start["pid"] in self.nodeos_pids():
            return start
        return None

    def producing_now(self, pid):
        """Whether simulator `pid` is in a producing period (it wrote "producing" after its
        last "paused")."""
        marks = [r["event"] for r in self.ledger.refresh()
                 if r["pid"] == pid and r["event"] in ("producing", "paused")]
        return bool(marks) and marks[-1] == "producing"

    def wait_standby(self, timeout):
        """Waits until this node's nodeos stands by: a validator (restart mode) or the
        producer config, paused (paused mode); returns its pid."""
        if self.standby_mode != "paused":
            return self.wait_nodeos_mode("validator", timeout)

        def ready():
            self.assert_running()
            start = self.latest_nodeos()
            if start and start["mode"] == "producer" and not self.producing_now(start["pid"]) \
                    and self.ledger.events("ready", pid=start["pid"]):
                return start["pid"]
            return None
        return wait_until(ready, timeout, f"node {self.name} to run nodeos paused")

    def wait_producing(self, timeout):
        """Waits until this node's nodeos produces (a producer, resumed in paused mode);
        returns its pid."""
        if self.standby_mode != "paused":
            return self.wait_nodeos_mode("producer", timeout)

        def ready():
            self.assert_running()
            start = self.latest_nodeos()
            if start and self.producing_now(start["pid"]):
                return start["pid"]
            return None
        return wait_until(ready, timeout, f"node {self.name} to produce")

    def wait_nodeos_mode(self, mode, timeout):
        """Waits until the latest simulator of this node started in `mode` ("producer" or
        "validator") and is a live child of this monitor; returns its pid."""
        def ready():
            self.assert_running()
            start = self.ledger.latest_start(self.name)
            if start and start["t"] >= self.started_ns and start["mode"] == mode \
                    and start["pid"] in self.nodeos_pids():
                return start["pid"]
            return None
        try:
            return wait_until(ready, timeout, f"node {self.name} to run nodeos as {mode}")
        except AssertionError as e:
            if "exited" in str(e):
                raise
            raise AssertionError(f"{e}; latest start record: {self.ledger.latest_start(self.name)}"
                                 f", live children: {self.nodeos_pids()}\n"
                                 + self.log_tail()) from None

    def assert_nodeos_gone(self, timeout):
        """Every simulator this monitor started is gone within `timeout` seconds; returns
        how long that took, in seconds."""
        start = time.monotonic()
        try:
            wait_until(lambda: not any(pid_alive(p) for p in self.owned_pids()), timeout,
                       f"every nodeos of {self.name} to be gone")
        except AssertionError as e:
            alive = [p for p in self.owned_pids() if pid_alive(p)]
            raise AssertionError(f"{e}; still alive: {alive}\n{self.log_tail()}") from None
        return time.monotonic() - start


def stop_monitors(monitors):
    """Sends one SIGTERM to every running monitor, all at once (a second SIGTERM would mean
    "stop now"), then SIGKILLs any that outlives its stop timeout plus 5 s."""
    running = [m for m in monitors if m.proc and m.poll() is None]
    for monitor in running:
        monitor.nodeos_pids()  # remembered, for the orphan check
        monitor.signal(signal.SIGCONT)  # in case a test froze it
        monitor.signal(signal.SIGTERM)
    deadline = time.monotonic() + max([m.stop_timeout for m in running], default=0) + 5
    for monitor in running:
        try:
            monitor.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            monitor.signal(signal.SIGKILL)
            monitor.proc.wait()


def kill_leftovers(find, timeout, what):
    """Waits up to `timeout` for find() (the PIDs still alive) to come back empty; SIGKILLs
    and returns those still alive then."""
    leftovers = []

    def none_left():
        leftovers[:] = find()
        return not leftovers
    try:
        wait_until(none_left, timeout, what)
    except AssertionError:
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return leftovers


def reap_orphans(monitors, ledger, timeout=3.0):
    """Once the monitors are gone, waits up to `timeout` for every simulator they started
    (or that writes to their ledger) to be gone too; SIGKILLs and returns any left."""
    return kill_leftovers(
        lambda: sorted(set(live_simulators(ledger.path))
                       | {p for m in monitors for p in m.owned_pids()
                          if pid_alive(p) and SIM in " ".join(proc_cmdline(p))}),
        timeout, "every simulator to be gone after its monitor")


# --- the base test case ----------------------------------------------------------------

def etcd_down_at_start(test):
    """Marks a test whose etcd is created but not started: the test starts it."""
    test.etcd_down_at_start = True
    return test


class WorkdirCase(unittest.TestCase):
    """A temporary workdir with the two config dirs and a shared ledger: kept, and printed
    with what `evidence` returns, when the test fails; removed when it passes (or kept
    with NM_KEEP_WORKDIR set)."""

    workdir_prefix = "nm"
    block_ms = 50

    @property
    def producing_window_ms(self):
        """How recent a block must be for its node to count as producing now."""
        return max(300, 6 * self.block_ms)

    def make_workdir(self):
        self.assertTrue(os.access(MONITOR, os.X_OK),
                        f"no executable nodeos-monitor at {MONITOR}: build it, or set NM_MONITOR")
        self.workdir = tempfile.mkdtemp(prefix=f"{self.workdir_prefix}-{self._testMethodName}-")
        self.ledger = Ledger(os.path.join(self.workdir, "ledger.jsonl"))
        make_config_dirs(self.workdir)

    def evidence(self):
        """What to print when the test fails: a list of texts."""
        return []

    def report(self, what, value):
        """An informational measurement, printed so that it shows up in the test log."""
        print(f"\nmeasured: {self._testMethodName}: {what}: {value}", flush=True)

    def assert_no_overlap(self):
        assert_no_overlap(self.ledger)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        problems = len(result.failures) + len(result.errors)
        super().run(result)
        workdir = getattr(self, "workdir", None)
        if workdir is None:
            return result
        if len(result.failures) + len(result.errors) > problems:
            print(f"\n{self.id()} failed; its files are kept in {workdir}", file=sys.stderr)
            for text in self.evidence():
                print(text, file=sys.stderr)
        elif os.environ.get("NM_KEEP_WORKDIR"):
            print(f"\n{self.id()}: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        return result


class MonitorTestCase(WorkdirCase):
    """One etcd, a shared ledger, and monitors that are all stopped by PID in the cleanups,
    after which no simulator of this test may be left alive."""

    ttl = 3
    stop_timeout = 5
    group = "bp-group"

    def setUp(self):
        self.make_workdir()
        self.monitors = []
        self.etcd = Etcd(self.workdir)
        self.addCleanup(self.etcd.stop)
        self.addCleanup(self._stop_monitors)
        if not getattr(getattr(self, self._testMethodName), "etcd_down_at_start", False):
            self.etcd.start()

    def evidence(self):
        return [monitor.log_tail(25) for monitor in self.monitors]

    def spawn_monitor(self, name, **kwargs):
        kwargs.setdefault("ttl", self.ttl)
        kwargs.setdefault("stop_timeout", self.stop_timeout)
        kwargs.setdefault("block_ms", self.block_ms)
        monitor = Monitor(self.workdir, name, [self.etcd.url], self.group, ledger=self.ledger,
                          **kwargs)
        self.monitors.append(monitor)
        return monitor

    def _stop_monitors(self):
        stop_monitors(self.monitors)
        leftovers = reap_orphans(self.monitors, self.ledger)
        if leftovers:
            raise AssertionError(f"orphaned nodeos simulators outlived their monitors: "
                                 f"{leftovers} (killed now)")

    def monitor_named(self, name):
        """The latest monitor started under `name`."""
        return [m for m in self.monitors if m.name == name][-1]

    def wait_producer(self, timeout):
        """Waits for exactly one producing node; returns its monitor."""
        return self.monitor_named(wait_single_producer(self.ledger, timeout,
                                                       self.producing_window_ms))

    def start_pair(self, names=("node-a", "node-b"), **kwargs):
        """Two monitors in one group; waits until one produces and the other stands by
        (a validator, or paused); returns (active, standby) monitors."""
        for name in names:
            self.spawn_monitor(name, **kwargs)
        active = self.wait_producer(self.ttl + 10)
        standby = [self.monitor_named(n) for n in names if n != active.name][0]
        active.wait_producing(5)
        standby.wait_standby(self.ttl + 5)
        return active, standby

    def etcd_leases(self):
        """The IDs of every lease etcd holds."""
        leases = self.etcd.request("/v3/lease/leases", {}).get("leases", [])
        return [lease["ID"] for lease in leases]

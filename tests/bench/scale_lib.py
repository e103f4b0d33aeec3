"""The pieces of the scale benchmark (scale_bench.py): a three-member etcd on loopback,
fleets of monitors supervising the nodeos stub (nodeos_stub.c), cheap incremental
reading of one ledger per group, a watch on the lock keys with arrival times, and the
costs read from /proc and from etcd's /metrics.

Every process started here is stopped by its PID; every wait is bounded."""

import base64
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)

from harness import (  # noqa: E402
    MONITOR, ROOT, Etcd, Ledger, free_port, kill_leftovers, make_config_dirs, pid_alive, proc_cmdline,
    wait_until)

STUB = os.environ.get("NM_NODEOS_STUB") or os.path.join(ROOT, "build", "tests", "nodeos_stub")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NS = 1_000_000_000


# --- figures ----------------------------------------------------------------------------

def quantile(values, q):
    """The q-quantile of `values` (nearest rank), or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def spread(values, unit="ms", digits=1):
    """"median M, p99 P, max X (n=N)"."""
    if not values:
        return "no data"
    f = f"{{:.{digits}f}}"
    return (f"median {f.format(statistics.median(values))} {unit}, p99 {f.format(quantile(values, 0.99))}, "
            f"min {f.format(min(values))}, max {f.format(max(values))} (n={len(values)})")


# --- the machine ------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def cpu_seconds(pid):
    """user + system CPU of a whole process (every thread, also the ones that ended), or
    None when it is gone. Clock ticks: 10 ms."""
    text = read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns(pid):
    """CPU time of a process's live threads from schedstat, in ns: precise, for a process
    whose threads live as long as it does."""
    total, found = 0, False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return None
    for tid in tasks:
        text = read_text(f"/proc/{pid}/task/{tid}/schedstat")
        if text:
            total += int(text.split()[0])
            found = True
    return total if found else None


def cpu_total(pids):
    """{pid: CPU seconds} of the pids that still exist, from schedstat (to the nanosecond:
    a tick-based figure would round a thousand small consumers to nothing)."""
    each = {}
    for pid in pids:
        ns = cpu_ns(pid)
        if ns is not None:
            each[pid] = ns / NS
    return each


def cpu_delta(before, after):
    """CPU seconds spent between two cpu_total() snapshots by the processes in both (a
    process gone since `before` counts up to its last snapshot: nothing)."""
    return sum(after[p] - before[p] for p in before if p in after)


def smaps_rollup(pid):
    """{field: kB} of /proc/PID/smaps_rollup, or None."""
    text = read_text(f"/proc/{pid}/smaps_rollup")
    if text is None:
        return None
    out = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def private_kb(pid):
    r = smaps_rollup(pid)
    return None if r is None else r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)


def proc_status(pid):
    out = {}
    text = read_text(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def mem_available_kb():
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return None


def loadavg():
    return float(read_text("/proc/loadavg").split()[0])


def cpu_busy_jiffies():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(x) for x in read_text("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def machine():
    model = "unknown CPU"
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(read_text("/proc/meminfo").split()[1])
    return (f"{model}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB, "
            f"Linux {os.uname().release}")


def wait_quiet(limit_s, threshold=0.5, hold_s=60, out=print):
    """Waits (up to limit_s) until the 1-minute load average has stayed below `threshold`
    for `hold_s` seconds; returns (quiet, load now)."""
    deadline = time.monotonic() + limit_s
    since = None
    last_report = 0.0
    while True:
        load = loadavg()
        now = time.monotonic()
        if load < threshold:
            since = since or now
            if now - since >= hold_s:
                return True, load
        else:
            since = None
        if now >= deadline:
            return False, load
        if now - last_report >= 60:
            out(f"  waiting for a quiet machine: load average {load:.2f} (want < {threshold} for {hold_s} s)")
            last_report = now
        time.sleep(2)


class Window:
    """CPU of the machine, of etcd and of the fleet over a stretch of time, etcd's
    requests and its leader changes: opened with a snapshot, closed with another."""

    def __init__(self, cluster, monitor_pids, stub_pids=()):
        self.cluster = cluster
        self.monitor_pids = list(monitor_pids)
        self.stub_pids = list(stub_pids)
        self.t0 = time.monotonic()
        self.load0 = loadavg()
        self.busy0 = cpu_busy_jiffies()
        self.etcd0 = {m.name: cpu_seconds(m.proc.pid) for m in cluster.members}
        self.mon0 = cpu_total(self.monitor_pids)
        self.stub0 = cpu_total(self.stub_pids)
        metrics = cluster.metrics()
        self.req0 = cluster.grpc_started(metrics)
        self.elections0 = cluster.leader_changes(metrics)

    def close(self):
        elapsed = time.monotonic() - self.t0
        busy1 = cpu_busy_jiffies()
        etcd1 = {m.name: cpu_seconds(m.proc.pid) for m in self.cluster.members}
        mon1 = cpu_total(self.monitor_pids)
        stub1 = cpu_total(self.stub_pids)
        metrics = self.cluster.metrics()
        req1 = self.cluster.grpc_started(metrics)
        per_member = {n: (etcd1[n] - self.etcd0[n]) for n in etcd1 if etcd1[n] is not None and self.etcd0.get(n) is not None}
        methods = {k: req1.get(k, 0) - self.req0.get(k, 0) for k in set(req1) | set(self.req0)}
        requests = dict(sorted(((k, v) for k, v in methods.items() if v), key=lambda kv: -kv[1]))  # most first
        busy = (busy1[0] - self.busy0[0]) / max(1, busy1[1] - self.busy0[1]) * os.cpu_count()
        return {
            "seconds": elapsed,
            "etcd_cpu_s": sum(per_member.values()),
            "etcd_core_pct": sum(per_member.values()) / elapsed * 100,
            "etcd_member_core_pct": {n: v / elapsed * 100 for n, v in per_member.items()},
            "monitors_cpu_s": cpu_delta(self.mon0, mon1),
            "monitors_core_pct": cpu_delta(self.mon0, mon1) / elapsed * 100,
            "stubs_core_pct": cpu_delta(self.stub0, stub1) / elapsed * 100,
            "requests": requests,
            "leader_changes": self.cluster.leader_changes(metrics) - self.elections0,
            "requests_per_s": sum(requests.values()) / elapsed,
            "requests_by_method": {k: v / elapsed for k, v in requests.items()},
            "machine_busy_cores": busy,
            "load_start": self.load0,
            "load_end": loadavg(),
        }


def describe_window(w):
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(w["requests_by_method"].items())[:5])
    members = ", ".join(f"{n} {v:.1f} %" for n, v in sorted(w["etcd_member_core_pct"].items()))
    return (f"over {w['seconds']:.1f} s: etcd {w['etcd_core_pct']:.1f} % of a core ({members}); "
            f"{w['requests_per_s']:.1f} requests/s ({top}); monitors {w['monitors_core_pct']:.2f} % of a core "
            f"in all; stubs {w['stubs_core_pct']:.2f} %; machine busy {w['machine_busy_cores']:.2f} cores; "
            f"load {w['load_start']:.2f} -> {w['load_end']:.2f}")


# --- etcd -------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {labels}, value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            name, labels, value = m.groups()
            try:
                out.append((name, dict(LABEL.findall(labels or "")), float(value)))
            except ValueError:
                pass
    return out


def scrape(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Cluster:
    """`size` etcd members on loopback, peers talking directly (no proxies: the fault
    harness's proxies would cost more than etcd itself at this scale)."""

    def __init__(self, workdir, size=3, extra_args=()):
        names = [f"e{i + 1}" for i in range(size)]
        peer_ports = {n: free_port() for n in names}
        initial = ",".join(f"{n}=http://127.0.0.1:{peer_ports[n]}" for n in names)
        self.members = [Etcd(workdir, n, cluster=initial, peer_port=peer_ports[n], extra_args=extra_args)
                        for n in names]

    @property
    def urls(self):
        return [m.url for m in self.members]

    def pids(self):
        return [m.proc.pid for m in self.members if m.proc and m.proc.poll() is None]

    def start(self, timeout=30.0):
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_healthy(timeout)
        return self

    def stop(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                m.stop()

    def metrics(self):
        """{member name: parsed samples}."""
        out = {}
        for m in self.members:
            try:
                out[m.name] = parse_metrics(scrape(m.url + "/metrics"))
            except OSError:
                out[m.name] = []
        return out

    def grpc_started(self, metrics=None):
        """RPCs started, by method, summed over the members (unary and streams; the
        gateway's requests are RPCs on the member's own gRPC server); from `metrics` (a
        scrape of metrics()) if given."""
        out = {}
        for samples in (self.metrics() if metrics is None else metrics).values():
            for name, labels, value in samples:
                if name == "grpc_server_started_total" and value:
                    method = labels.get("grpc_method", "?")
                    out[method] = out.get(method, 0) + value
        return out

    def histograms(self, names):
        """{member: {metric: [(le, cumulative count)]}} for histogram metrics."""
        out = {}
        for member, samples in self.metrics().items():
            per = {}
            for name, labels, value in samples:
                for wanted in names:
                    if name == wanted + "_bucket":
                        le = labels.get("le")
                        per.setdefault(wanted, []).append((float("inf") if le == "+Inf" else float(le), value))
            out[member] = {k: sorted(v) for k, v in per.items()}
        return out

    def leader_changes(self, metrics):
        """Leader changes the members have seen (the most any one has: a member that was
        down missed some), from `metrics` (a scrape of metrics())."""
        seen = [value for samples in metrics.values() for name, _, value in samples
                if name == "etcd_server_leader_changes_seen_total"]
        return max(seen, default=0)

    def leader(self):
        """The name of the member every member names as leader, or None."""
        ids = {}
        for m in self.members:
            try:
                st = m.request("/v3/maintenance/status", {}, timeout=1.0)
                ids[st["header"]["member_id"]] = (m.name, st.get("leader"))
            except (OSError, ValueError, KeyError):
                return None
        leaders = {lead for _, lead in ids.values()}
        if len(leaders) == 1:
            lead = leaders.pop()
            return ids[lead][0] if lead in ids else None
        return None


def histogram_delta(before, after):
    """Bucket counts gained between two cumulative snapshots of one histogram."""
    b = dict(before)
    return [(le, count - b.get(le, 0)) for le, count in after]


def histogram_quantile(buckets, q):
    """The upper bound of the bucket that holds the q-quantile (cumulative buckets), or
    None without observations; in seconds."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    for le, count in buckets:
        if count >= target:
            return le
    return buckets[-1][0]


# --- the watch on the lock keys ----------------------------------------------------------

WATCH_HELPER = os.path.abspath(__file__)


class LockWatch:
    """A separate process (this file, `watch`) watching [start, end) on one member and
    writing each event of a lock key (a key without "/") with its arrival time on
    CLOCK_MONOTONIC: when the bench's own loop is busy, the times stay right."""

    def __init__(self, workdir, url, start, end):
        self.path = os.path.join(workdir, "lock-events.jsonl")
        self.log = open(os.path.join(workdir, "lock-watch.log"), "ab")
        self.proc = subprocess.Popen([sys.executable, WATCH_HELPER, "watch", url, start, end, self.path],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._offset = 0
        self._partial = b""
        self.events = []
        wait_until(lambda: os.path.exists(self.path) and os.path.getsize(self.path) > 0, 10,
                   "the lock watch to be created")

    def refresh(self):
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                r = json.loads(line)
                if r.get("type") != "created":
                    self.events.append(r)
        return self.events

    def deletes(self, key, after):
        return [e for e in self.refresh() if e["key"] == key and e["type"] == "DELETE" and e["t"] > after]

    def puts(self, key, after):
        return [e for e in self.refresh() if e["key"] == key and e["type"] == "PUT" and e["t"] > after]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_watch(url, start, end, out_path):
    """The watch helper: one streamed /v3/watch; one line per event of a lock key."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"create_request": {"key": base64.b64encode(start.encode()).decode(),
                                          "range_end": base64.b64encode(end.encode()).decode()}})
    conn = http.client.HTTPConnection(host, int(port), timeout=None)
    conn.request("POST", "/v3/watch", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        line = resp.readline()
        if not line:
            return 1
        t = time.monotonic_ns()
        msg = json.loads(line).get("result", {})
        out = []
        if msg.get("created"):
            out.append({"t": t, "type": "created"})
        for ev in msg.get("events", []):
            kv = ev.get("kv", {})
            key = base64.b64decode(kv.get("key", "")).decode(errors="replace")
            if "/" in key:
                continue
            out.append({"t": t, "type": ev.get("type", "PUT"), "key": key, "lease": kv.get("lease"),
                        "rev": int(kv.get("mod_revision", 0))})
        if out:
            os.write(fd, "".join(json.dumps(r) + "\n" for r in out).encode())


# --- ledgers ----------------------------------------------------------------------------

BLOCK = re.compile(rb'^\{"t":(\d+),"node":"(?:[^"\\]|\\.)*","pid":(\d+),"event":"block"')


class GroupLedger:
    """One group's ledger, read incrementally and cheaply: block records by regular
    expression (they are most of it), the rest as JSON. The invariant itself is checked on
    the harness's Ledger at the end (overlaps())."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.starts = []          # (t, pid, node, mode)
        self.producing = {}       # pid -> t of its first producing record
        self.paused = set()       # pids whose latest producing/paused record is "paused"
        self.stops = {}           # pid -> t
        self.first_block = {}     # pid -> t
        self.last_block = {}      # pid -> t
        self.node_of = {}         # pid -> node
        self.mode_of = {}         # pid -> mode

    def refresh(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            m = BLOCK.match(line)
            if m:
                t, pid = int(m.group(1)), int(m.group(2))
                self.first_block.setdefault(pid, t)
                self.last_block[pid] = t
                continue
            if not line.strip():
                continue
            r = json.loads(line)
            pid, t, event = r["pid"], r["t"], r["event"]
            self.node_of[pid] = r["node"]
            self.mode_of[pid] = r["mode"]
            if event == "start":
                self.starts.append((t, pid, r["node"], r["mode"]))
            elif event == "producing":
                self.producing.setdefault(pid, t)
                self.paused.discard(pid)
            elif event == "paused":
                self.paused.add(pid)
            elif event in ("stop", "crash"):
                self.stops[pid] = t
            elif event == "block":  # a record the regular expression did not take
                self.first_block.setdefault(pid, t)
                self.last_block[pid] = t

    def live_producers(self):
        """Producer processes that have signed, not stopped, and still run."""
        return [pid for pid in self.first_block
                if pid not in self.stops and pid not in self.paused and pid_alive(pid)]

    def validator_started(self, node, after):
        """Whether `node` started a validator after instant `after`."""
        self.refresh()
        return any(n == node and mode == "validator" and t > after for t, pid, n, mode in self.starts)

    def live_validators(self):
        return [pid for t, pid, node, mode in self.starts
                if mode == "validator" and pid not in self.stops and pid_alive(pid)]

    def first_block_after(self, t, exclude_pid=None):
        """(t, pid) of the earliest first block of a process after instant t."""
        found = [(ft, pid) for pid, ft in self.first_block.items() if ft > t and pid != exclude_pid]
        return min(found) if found else None

    def start_of(self, pid):
        for t, p, node, mode in self.starts:
            if p == pid:
                return t
        return None


def count_overlaps(path):
    """(overlaps, producing periods) of a ledger, judged by the harness's Ledger."""
    ledger = Ledger(path)
    return len(ledger.overlaps()), len(ledger.runs())


# --- monitors ---------------------------------------------------------------------------

class Node:
    """One monitor process of a group, supervising the stub."""

    def __init__(self, fleet, group, name, ledger_path, metrics_port=None, extra_args=()):
        self.fleet = fleet
        self.group = group
        self.name = name
        self.ledger_path = ledger_path
        self.metrics_port = metrics_port
        self.log_path = os.path.join(fleet.logdir, f"{name}.log")
        f = fleet
        self.argv = [MONITOR, "--nodeos", f.nodeos, "--active-config-dir", f.active, "--standby-config-dir", f.standby,
                     "--etcd-endpoints", ",".join(f.endpoints), "--failover-group", group,
                     "--lease-ttl", str(f.ttl), "--stop-timeout", str(f.stop_timeout), "--node-name", name,
                     "--metrics-addr", f"127.0.0.1:{metrics_port}" if metrics_port else ""]
        nodeos_args = f.nodeos_args(name, ledger_path)
        self.api_port = None
        if f.api:  # the simulator's HTTP API, health-gated candidacy
            self.api_port = free_port()
            nodeos_args += [f"--http-server-address=127.0.0.1:{self.api_port}", "--enable-stale-production"]
            self.argv += ["--nodeos-api", f"http://127.0.0.1:{self.api_port}"]
        if f.standby_mode != "restart":
            self.argv += ["--standby-mode", f.standby_mode, "--block-interval-ms", str(f.block_ms)]
        self.argv += [f"--nodeos-args={a}" for a in nodeos_args]
        if f.debug:
            self.argv.append("--debug")
        self.argv += f.extra_args + list(extra_args)
        self.proc = None
        self.runs = 0

    def start(self, log_path=None):
        if log_path:
            self.log_path = log_path
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.runs += 1
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def metrics(self):
        return parse_metrics(scrape(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2.0))

    def etcd_requests(self):
        """{kind: count} of nodeos_monitor_etcd_requests_total."""
        out = {}
        for name, labels, value in self.metrics():
            if name == "nodeos_monitor_etcd_requests_total":
                out[labels.get("kind", "?")] = value
        return out


class Fleet:
    """Monitors on one etcd cluster, each with the stub (or another nodeos) as nodeos."""

    def __init__(self, workdir, cluster, ttl=10, stop_timeout=5, block_ms=20, nodeos=None, log_ms=0, debug=False,
                 api=False, standby_mode="restart", extra_args=()):
        self.workdir = workdir
        self.cluster = cluster
        self.endpoints = cluster.urls
        self.ttl = ttl
        self.stop_timeout = stop_timeout
        self.block_ms = block_ms
        self.log_ms = log_ms
        self.debug = debug
        self.nodeos = nodeos or STUB
        self.api = api
        self.standby_mode = standby_mode
        self.extra_args = list(extra_args)  # for every monitor
        self.logdir = os.path.join(workdir, "logs")
        self.ledgerdir = os.path.join(workdir, "ledgers")
        os.makedirs(self.logdir, exist_ok=True)
        os.makedirs(self.ledgerdir, exist_ok=True)
        self.active, self.standby = make_config_dirs(workdir)
        self.nodes = []

    def nodeos_args(self, name, ledger_path):
        args = [f"--sim-node={name}", f"--sim-ledger={ledger_path}", f"--sim-block-ms={self.block_ms}",
                f"--data-dir={os.path.join(self.workdir, 'data', name)}"]
        if self.log_ms:
            args.append(f"--sim-log-ms={self.log_ms}")
        return args

    def ledger_path(self, group):
        return os.path.join(self.ledgerdir, f"{group}.jsonl")

    def add(self, group, name, metrics_port=None, extra_args=()):
        node = Node(self, group, name, self.ledger_path(group), metrics_port, extra_args)
        self.nodes.append(node)
        return node

    def monitor_pids(self):
        return [n.pid for n in self.nodes if n.running()]

    def stub_pids(self):
        """Live processes whose parent is one of the fleet's monitors."""
        parents = set(self.monitor_pids())
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                text = read_text(f"/proc/{entry}/stat")
                if text:
                    fields = text.rsplit(")", 1)[1].split()
                    if int(fields[1]) in parents and fields[0] not in ("Z", "X"):
                        found.append(int(entry))
        return found

    def stop(self, nodes=None, sig=signal.SIGTERM, bound=None):
        """Sends `sig` (None: none) to every running monitor at once, waits for them (their
        stop timeout plus 5 s, or `bound`), SIGKILLs the rest; returns ({name: exit code},
        [SIGKILLed])."""
        nodes = [n for n in (self.nodes if nodes is None else nodes) if n.proc is not None]
        for n in nodes:
            if n.running() and sig is not None:
                try:
                    os.kill(n.pid, signal.SIGCONT)
                    os.kill(n.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + (self.stop_timeout + 5 if bound is None else bound)
        codes, killed = {}, []
        for n in nodes:
            try:
                codes[n.name] = n.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(n.pid, signal.SIGKILL)
                codes[n.name] = n.proc.wait()
                killed.append(n.name)
        return codes, killed

    def leftovers(self):
        """Live processes that belong to this run (their command line names the work
        directory): none may outlive the fleet."""
        found = []
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me and pid_alive(int(entry)):
                cmd = " ".join(proc_cmdline(int(entry)))
                if self.workdir in cmd and ("nodeos" in cmd or "--sim-ledger" in cmd):
                    found.append(int(entry))
        return found

    def reap_leftovers(self, timeout=3.0):
        """Waits for the stubs to follow their monitors; SIGKILLs and returns any left."""
        return kill_leftovers(self.leftovers, timeout, "every process of the run to be gone")


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- logs -------------------------------------------------------------------------------

STAMP = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z (\w+)\s+(.*)$')


class Clocks:
    """Converts the monitors' log times (CLOCK_REALTIME, truncated to the millisecond) to
    the ledger's CLOCK_MONOTONIC: the offset between the two is sampled here."""

    def __init__(self):
        samples = []
        for _ in range(50):
            a = time.monotonic_ns()
            w = time.time_ns()
            b = time.monotonic_ns()
            samples.append((b - a, w - (a + b) // 2))
        self.offset = min(samples)[1]  # the tightest sample

    def mono_ns(self, wall_ns):
        return wall_ns - self.offset


def log_lines(path, clocks, since_mono=0):
    """[(monotonic ns, level, message)] of a monitor's text log; a line's instant is the
    middle of its millisecond."""
    import calendar
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = STAMP.match(line)
                if not m:
                    continue
                y, mo, d, h, mi, s, ms_, lvl, msg = m.groups()
                secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
                wall = secs * NS + int(ms_) * 1_000_000 + 500_000
                t = clocks.mono_ns(wall)
                if t >= since_mono:
                    out.append((t, lvl, msg))
    except FileNotFoundError:
        pass
    return out


def first_line(lines, needle, after=0):
    """The monotonic time of the first line after `after` that contains `needle`."""
    for t, _lvl, msg in lines:
        if t >= after and needle in msg:
            return t
    return None


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "watch":
    sys.exit(run_watch(*sys.argv[2:]))

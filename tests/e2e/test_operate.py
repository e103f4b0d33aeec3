#!/usr/bin/env python3
"""End-to-end tests of the operations side: the HTTP endpoint (/metrics, /healthz,
/status) read with a real HTTP client, slow and excess clients, the log formats, the
--config file, and the systemd notify protocol received on a socket made here.

Run one with: python3 tests/e2e/test_operate.py OperateTest.test_endpoints
(NM_MONITOR names the binary; default build/nodeos-monitor)."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    SIM, Monitor, MonitorTestCase, hold, metric_samples, ms, pid_alive, stop_monitors, wait_until)

MAX_CONNECTIONS = 16     # http_server::limits::max_connections
REQUEST_DEADLINE = 5.0   # http_server::limits::deadline, seconds
NS = 1_000_000_000
LOG_BUFFER_BYTES = 1 << 20  # log_writer::default_bound

# A nodeos that logs heavily (a real one does while it replays or syncs): the simulator, with
# a thread writing 3 KB lines to its output, four at a time (a read of a quiet writer is held
# for a second; this one is never quiet), more than the 200 lines a second that the monitor
# relays into its own log: about 600 KB/s of the monitor's lines. The thread is the
# simulator's own, so that the monitor's child is the simulator itself and nothing outlives it.
FLOODING_NODEOS = """#!{python}
import os, runpy, sys, threading, time

def flood():
    lines = (b"info  heavy output " + b"0123456789" * 300 + b"\\n") * 4
    while True:
        try:
            os.write(1, lines)
        except BlockingIOError:
            pass  # the relay's pipe is non-blocking, and full for a moment
        except OSError:
            return
        time.sleep(0.005)

threading.Thread(target=flood, daemon=True).start()
sys.argv[0] = {sim!r}
runpy.run_path({sim!r}, run_name="__main__")
"""


def http_get(monitor, path, method="GET", timeout=2.0):
    """(status, content type, body) of one request to the monitor's endpoint."""
    req = urllib.request.Request(f"http://{monitor.metrics_addr}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def raw_exchange(monitor, data, timeout=3.0):
    """Sends raw bytes and returns everything the server answers before it closes."""
    host, port = monitor.metrics_addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")




def wait_endpoint(monitor, timeout=5.0):
    def up():
        monitor.assert_running()
        try:
            return http_get(monitor, "/healthz", timeout=0.5)
        except OSError:
            return None
    return wait_until(up, timeout, f"the HTTP endpoint of {monitor.name} at {monitor.metrics_addr}")


def start_with_unread_stderr(monitor):
    """Starts `monitor` with its stdout and stderr a pipe, and returns the pipe's (read end,
    write end): the caller keeps the read end open and does not read it, so that the pipe
    fills and a blocking write to it would wait for good, as to a stalled journald or a
    paused terminal. The write end is the open file description the monitor's stderr shares
    with its parent (as a shell's terminal), which it must leave blocking."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    monitor._log_offset = 0  # its log file stays empty until the pipe is read into it
    monitor.started_ns = time.monotonic_ns()
    try:
        monitor.proc = subprocess.Popen(monitor.argv, stdin=subprocess.DEVNULL, stdout=write_end,
                                        stderr=write_end, start_new_session=True,
                                        env={**os.environ, **monitor.env} if monitor.env else None)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    return read_end, write_end


def read_until(fd, regex, timeout, what):
    """Reads the pipe `fd` until its text matches `regex` (multi-line); returns (match, text)."""
    text = b""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(regex, text.decode(errors="replace"), re.MULTILINE)
        if found:
            return found, text.decode(errors="replace")
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout:.1f} s reading {what} for /{regex}/; "
                                 f"read {len(text)} bytes")
        if select.select([fd], [], [], min(left, 0.2))[0]:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise AssertionError(f"{what} ended before /{regex}/; read {len(text)} bytes")
            text += chunk


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, name):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name)
        self.env = "@" + name
        self.messages = []  # (monotonic time, text)

    def drain(self, wait=0.0):
        """Collects what has arrived, waiting up to `wait` seconds for the first datagram."""
        if wait > 0:
            self.sock.settimeout(wait)
        else:
            self.sock.setblocking(False)
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, socket.timeout):
                return self.messages
            self.messages.append((time.monotonic(), data.decode()))
            self.sock.setblocking(False)

    def wait_for(self, regex, timeout):
        def found():
            self.drain(0.05)
            return next((m for m in self.messages if re.search(regex, m[1])), None)
        try:
            return wait_until(found, timeout, f"a notify datagram matching /{regex}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; got {[m[1] for m in self.messages]}") from None

    def close(self):
        self.sock.close()


class OperateTest(MonitorTestCase):

    def test_endpoints(self):
        """/metrics, /status and /healthz of an active and a standby monitor, read with
        urllib; unknown paths 404, other methods 405, malformed and oversized requests 400."""
        active, standby = self.start_pair()
        wait_endpoint(active)
        wait_endpoint(standby)
        for m, name in ((active, "nodeos_monitor_blocks_produced_total"),
                        (standby, "nodeos_monitor_blocks_received_total")):
            wait_until(lambda: metric_samples(http_get(m, "/metrics")[2])[name] > 0, 5,
                       f"{m.name}'s {name} to count the relayed block lines")

        status, ctype, body = http_get(active, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        # Every sample of the monitor's own names says which group and node it serves.
        m = metric_samples(body, identity={"group": self.group, "node": active.name})
        self.assertEqual(m['nodeos_monitor_state{state="active"}'], 1)
        self.assertEqual(m['nodeos_monitor_state{state="standby"}'], 0)
        self.assertEqual(m["nodeos_monitor_lock_held"], 1)
        self.assertGreater(m["nodeos_monitor_lease_deadline_remaining_seconds"], 0)
        self.assertLessEqual(m["nodeos_monitor_lease_deadline_remaining_seconds"], self.ttl)
        self.assertGreaterEqual(m['nodeos_monitor_etcd_requests_total{kind="grant"}'], 1)
        self.assertGreaterEqual(m['nodeos_monitor_nodeos_starts_total{mode="active"}'], 1)
        self.assertGreater(m["nodeos_monitor_blocks_produced_total"], 0)
        self.assertGreater(m["process_resident_memory_bytes"], 1e6)
        self.assertGreater(m["process_open_fds"], 3)
        self.assertIn(f'nodeos_monitor_build_info{{group="{self.group}",node="{active.name}",version="', body)
        self.assertIn("# TYPE nodeos_monitor_keepalive_duration_seconds histogram", body)
        for line in body.splitlines():
            if line.startswith("# TYPE") and line.endswith(" counter"):
                self.assertTrue(line.split()[2].endswith("_total"), line)

        sm = metric_samples(http_get(standby, "/metrics")[2])
        self.assertEqual(sm['nodeos_monitor_state{state="standby"}'], 1)
        self.assertEqual(sm["nodeos_monitor_lock_held"], 0)
        self.assertGreater(sm["nodeos_monitor_blocks_received_total"], 0)
        self.assertEqual(sm["nodeos_monitor_blocks_produced_total"], 0)

        status, ctype, body = http_get(active, "/status")
        self.assertEqual((status, ctype), (200, "application/json"))
        s = json.loads(body)
        self.assertEqual((s["node"], s["group"], s["state"]), (active.name, self.group, "active"))
        self.assertTrue(s["lock_held"])
        self.assertEqual(s["holder"], active.name)
        self.assertEqual(s["nodeos"]["mode"], "active")
        self.assertEqual(s["nodeos"]["pid"], active.nodeos_pids()[0])
        self.assertGreater(s["nodeos"]["uptime_seconds"], 0)
        self.assertGreater(s["lease_deadline_remaining_seconds"], 0)
        self.assertEqual(s["last_transition"]["to"], "active")
        self.assertTrue(s["last_transition"]["reason"])
        s = json.loads(http_get(standby, "/status")[2])
        self.assertEqual(s["state"], "standby")
        self.assertTrue(s["holder"].startswith(active.name), s["holder"])

        self.assertEqual(http_get(active, "/healthz")[0], 200)
        self.assertEqual(http_get(standby, "/healthz")[0], 200)
        # For load balancers: 200 on the producing node only, and on the standbys ready to take over.
        wait_until(lambda: http_get(standby, "/standby")[0] == 200, 5, "the standby to be a candidate")
        self.assertEqual(http_get(active, "/producer")[0], 200)
        self.assertEqual(http_get(standby, "/producer")[0], 503)
        self.assertEqual(http_get(active, "/standby")[0], 503)
        self.assertEqual(http_get(active, "/nope")[0], 404)
        self.assertEqual(http_get(active, "/")[0], 404)
        self.assertEqual(http_get(active, "/metrics", method="POST")[0], 405)
        self.assertEqual(http_get(active, "/status?pretty=1")[0], 200)
        self.assertRegex(raw_exchange(active, b"NOT HTTP AT ALL\r\n\r\n"), r"^HTTP/1\.1 400 ")
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        self.assertRegex(raw_exchange(active, big), r"^HTTP/1\.1 400 ")
        body = b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        self.assertRegex(raw_exchange(active, body), r"^HTTP/1\.1 400 ")
        self.assertEqual(http_get(active, "/healthz")[0], 200, "the endpoint serves on after bad requests")

        # Handover: the counters record the transition and the fence-free stop.
        active.signal(signal.SIGTERM)
        active.wait_exit(active.stop_timeout + 3)
        standby.wait_nodeos_mode("producer", self.ttl + 3)
        sm = metric_samples(http_get(standby, "/metrics")[2])
        self.assertEqual(sm['nodeos_monitor_state_transitions_total{from="standby",to="active"}'], 1)
        self.assertEqual(sm['nodeos_monitor_nodeos_restarts_total{reason="promote"}'], 1)
        self.assertEqual(sm['nodeos_monitor_nodeos_exits_total{reason="stopped"}'], 1)
        self.assert_no_overlap()

    def test_disabled_endpoint(self):
        """An empty --metrics-addr: no endpoint, and two monitors need no ports."""
        a = self.spawn_monitor("node-a", overrides={"--metrics-addr": ""})
        a.wait_nodeos_mode("producer", self.ttl + 5)
        a.wait_for_log(r"starting", 1)
        self.assertNotIn("serving /metrics", a.log_text())

    def test_metrics_port_in_use(self):
        """A taken --metrics-addr exits 2 before anything starts."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            m = Monitor(self.workdir, "busy", [self.etcd.url], self.group, ledger=self.ledger,
                        overrides={"--metrics-addr": f"127.0.0.1:{port}"}, start=False)
            done = subprocess.run(m.argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(b"--metrics-addr", done.stderr)
        self.assertEqual(self.ledger.starts("busy"), [])

    def test_slow_clients_do_not_stall_failover(self):
        """Every connection slot held by clients that send a byte at a time or nothing:
        the next connection is closed at once, the active monitor keeps renewing its lease
        and producing for longer than a TTL, a handover is as fast as ever, and the slow
        clients are dropped at their deadline."""
        active, standby = self.start_pair()
        wait_endpoint(active)
        host, port = active.metrics_addr.rsplit(":", 1)
        before = metric_samples(http_get(active, "/metrics")[2])
        held = [socket.create_connection((host, int(port)), timeout=2) for _ in range(MAX_CONNECTIONS)]
        try:
            for s in held[:4]:
                s.sendall(b"GET /metr")  # a request that never ends
            with socket.create_connection((host, int(port)), timeout=2) as extra:
                try:
                    extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    answer = extra.recv(100)
                except ConnectionResetError:
                    answer = b""
                self.assertEqual(answer, b"", "a connection past the limit is closed unanswered")
            started = time.monotonic()
            producer_pid = active.nodeos_pids()
            while time.monotonic() - started < self.ttl + 1:
                for s in held[:4]:
                    s.sendall(b"i")  # trickle: each byte is progress, the deadline still ends it
                time.sleep(0.25)
                self.assertEqual(self.ledger.current_producers(self.producing_window_ms), [active.name])
            self.assertEqual(active.nodeos_pids(), producer_pid, "the producer was not fenced")
            # The deadline drops them all, the trickling ones included.
            for s in held:
                s.settimeout(REQUEST_DEADLINE + 2)
                try:
                    s.recv(100)
                except ConnectionResetError:
                    pass
            self.assertLess(time.monotonic() - started, REQUEST_DEADLINE + 2)
        finally:
            for s in held:
                s.close()
        after = metric_samples(http_get(active, "/metrics")[2])
        self.assertGreater(after['nodeos_monitor_etcd_requests_total{kind="keepalive"}'],
                           before.get('nodeos_monitor_etcd_requests_total{kind="keepalive"}', 0))
        self.assertEqual(after.get('nodeos_monitor_fences_total{cause="deadline"}', 0), 0)

        sent = time.monotonic_ns()
        active.signal(signal.SIGTERM)
        active.wait_exit(active.stop_timeout + 3)
        first = self.ledger.wait_first_block(sent, standby.name, self.ttl,
                                             f"{standby.name} to produce after the handover")
        self.assertLess(first["t"] - sent, self.ttl * 1e9 / 2)
        self.assert_no_overlap()

    def test_json_logs(self):
        """--log-format json: every line is one JSON object with time, level and message,
        and, for a decision of the core, its cause and the change of phase it made."""
        m = self.spawn_monitor("node-a", extra_args=["--log-format", "json"])
        m.wait_nodeos_mode("producer", self.ttl + 5)
        m.wait_for_log(r'"cause":"lock_acquired","change":"lock unknown -> mine","level":"info",'
                       r'"message":"lock acquired"', 3)
        m.stop()
        lines = m.log_text().splitlines()
        self.assertGreater(len(lines), 5)
        for line in lines:
            record = json.loads(line)
            self.assertLessEqual({"time", "level", "message"}, set(record), line)
            self.assertLessEqual(set(record), {"time", "level", "message", "cause", "change"}, line)
            self.assertIn(record["level"], ("error", "warn", "info", "debug"))
            self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertTrue(any(json.loads(l)["message"].startswith("[nodeos active]") for l in lines))

    def test_journal_priorities(self):
        """Text lines carry <3>/<4>/<6>/<7> when JOURNAL_STREAM names stderr; not when it
        names another file."""
        log_path = os.path.join(self.workdir, "monitor-journal.log")
        open(log_path, "ab").close()
        st = os.stat(log_path)
        m = self.spawn_monitor("journal", env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
                                overrides={"--etcd-endpoints": "http://127.0.0.1:1"})
        m.wait_nodeos_mode("validator", 5)
        m.wait_for_log(r"^<4>warn  lease grant failed", 3, flags=re.MULTILINE)
        m.wait_for_log(r"^<6>info  started standby nodeos", 3, flags=re.MULTILINE)
        m.wait_for_log(r"^<7>debug ", 3, flags=re.MULTILINE)
        for line in m.log_text().splitlines():
            self.assertRegex(line, r"^<[3467]>(error|warn |info |debug) ")

        other = self.spawn_monitor("plain", env={"JOURNAL_STREAM": "1:1"})
        other.wait_for_log(r"starting", 3)
        self.assertRegex(other.log_text().splitlines()[0], r"^\d{4}-\d\d-\d\dT")

    def write_config(self, name, text, mode=0o640):
        path = os.path.join(self.workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_config_file(self):
        """--config sets the options by their flag names; flags override it; errors exit 2
        naming the file and the line."""
        path = self.write_config("nm.conf", "\n".join([
            "# as installed in /etc/nodeos-monitor",
            f"etcd-endpoints = {self.etcd.url}",
            "failover-group = from-the-file",
            "lease-ttl = 4",
            "log-format = json",
            ""]))
        m = self.spawn_monitor("node-a", overrides={"--failover-group": None, "--lease-ttl": None,
                                                    "--etcd-endpoints": None},
                               extra_args=["--config", path, "--log-format", "text"])
        m.wait_nodeos_mode("producer", 10)
        self.assertEqual(len(self.etcd.get("from-the-file")), 1, "the file's group is the lock key")
        m.wait_for_log(r"lease TTL 4 s", 2)
        self.assertRegex(m.log_text().splitlines()[0], r"^\d{4}-", "the flag's --log-format wins")
        m.stop()

        key = self.write_config("client-key.pem", "x")
        cert = self.write_config("client.pem", "x")
        cases = {
            "unknown key": ("lease-ttl = 4\nno-such-key = 1\n", 0o640, r"bad\.conf:2: unknown option 'no-such-key'"),
            "bad value": ("\nlease-ttl = ten\n", 0o640, r"bad\.conf:2: .*lease-ttl"),
            "ttl too small": ("lease-ttl = 1\n", 0o640, r"bad\.conf:1: --lease-ttl 1"),
            "world-readable key": (f"etcd-cert = {cert}\netcd-key = {key}\n", 0o644,
                                   r"bad\.conf:2: names a private key file"),
        }
        for name, (text, mode, expected) in cases.items():
            with self.subTest(name):
                bad = self.write_config("bad.conf", text, mode)
                argv = Monitor(self.workdir, "bad", [self.etcd.url], self.group, ledger=self.ledger,
                               start=False, overrides={"--lease-ttl": None},
                               extra_args=["--config", bad]).argv
                done = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
                stderr = done.stderr.decode()
                self.assertEqual(done.returncode, 2, stderr)
                self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
                self.assertRegex(stderr, expected)
                self.assertEqual(self.ledger.starts("bad"), [])

    def test_notify_protocol(self):
        """READY=1 once nodeos runs (with a STATUS), STATUS on each state change, WATCHDOG=1
        at half of WATCHDOG_USEC while the loop runs (none while it is frozen), STOPPING=1
        on SIGTERM."""
        sock = NotifySocket(f"nm-notify-test-{os.getpid()}")
        self.addCleanup(sock.close)
        m = self.spawn_monitor("node-a", env={"NOTIFY_SOCKET": sock.env, "WATCHDOG_USEC": "400000"})
        sock.wait_for(r"^READY=1\nSTATUS=", self.ttl + 5)
        # The monitor logs the start of nodeos (after its exec succeeded) before it sends READY=1.
        self.assertRegex(m.log_text(), r"started (active|standby) nodeos pid \d+",
                         "READY=1 may only come once nodeos runs")
        self.assertEqual(sum(1 for _, t in sock.messages if "READY=1" in t), 1)
        m.wait_nodeos_mode("producer", self.ttl + 5)
        sock.wait_for(r"(^|\n)STATUS=active since \d{4}-", 3)

        sock.drain(0.05)
        sock.messages.clear()
        time.sleep(1.0)
        pings = [t for t, text in sock.drain(0.05) if text == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pings), 3, "a ping every 200 ms")
        self.assertLessEqual(len(pings), 7)

        m.signal(signal.SIGSTOP)
        sock.drain(0.1)
        sock.messages.clear()
        time.sleep(0.8)
        self.assertEqual([t for _, t in sock.drain(0.05) if t == "WATCHDOG=1"], [],
                         "a frozen loop must not ping")
        m.signal(signal.SIGCONT)
        sock.wait_for(r"^WATCHDOG=1$", 2)

        # A standby peer: its STATUS names the holder.
        peer_sock = NotifySocket(f"nm-notify-peer-{os.getpid()}")
        self.addCleanup(peer_sock.close)
        self.spawn_monitor("node-b", env={"NOTIFY_SOCKET": peer_sock.env})
        peer_sock.wait_for(r"^READY=1\nSTATUS=standby since .*, holder is node-a", self.ttl + 5)

        sock.messages.clear()
        m.signal(signal.SIGTERM)
        sock.wait_for(r"^STOPPING=1$", 3)
        sock.wait_for(r"^STATUS=stopping", 3)
        self.assertEqual(m.wait_exit(m.stop_timeout + 3), 0)
        peer_sock.wait_for(r"^STATUS=active since", self.ttl + 3)
        self.assert_no_overlap()

    def test_unread_stderr_keeps_renewing_and_fences_on_time(self):
        """stderr a pipe that nobody reads (a stalled journald, a terminal paused with
        Ctrl-S), with --debug and a nodeos that logs heavily: the producer keeps renewing its
        lease for several TTLs and its loop answers /metrics at once, while log lines are
        dropped and counted; with etcd frozen it fences before the lease deadline (its loop
        does, not the dead-man timer: the monitor lives on); once the pipe is read again, one
        line says how many lines were dropped."""
        nodeos = os.path.join(self.workdir, "flooding-nodeos")
        with open(nodeos, "w", encoding="utf-8") as f:
            f.write(FLOODING_NODEOS.format(python=sys.executable, sim=SIM))
        os.chmod(nodeos, 0o755)
        pipes = {}

        def stop_then_close():
            # The monitors first: a pipe closed under a running monitor would only end its
            # stall. What the pipes hold goes to the log files, for the evidence of a failure.
            stop_monitors(list(pipes))
            for m, (fd, shared) in pipes.items():
                os.close(shared)
                with open(m.log_path, "ab") as log:
                    os.set_blocking(fd, False)
                    try:
                        while chunk := os.read(fd, 1 << 20):
                            log.write(chunk)
                    except BlockingIOError:
                        pass
                os.close(fd)
        self.addCleanup(stop_then_close)

        def spawn(name):
            m = self.spawn_monitor(name, start=False, overrides={"--nodeos": nodeos},
                                   sim_args=["--sim-stop-delay-ms=300"])
            pipes[m] = start_with_unread_stderr(m)
            return m
        active = spawn("node-a")
        pid = active.wait_nodeos_mode("producer", self.ttl + 10)
        standby = spawn("node-b")
        standby.wait_nodeos_mode("validator", self.ttl + 5)
        wait_endpoint(active)
        wait_endpoint(standby)

        def metrics(m):
            return metric_samples(http_get(m, "/metrics")[2])
        dropped = "nodeos_monitor_log_lines_dropped_total"
        wait_until(lambda: metrics(active)[dropped] > 0 and metrics(standby)[dropped] > 0, 30,
                   "both monitors to drop log lines: their pipes and buffers full")
        with open(f"/proc/{active.pid}/status") as f:
            self.assertIn("Threads:\t1\n", f.read(), "the writer adds no thread")
        for m, (_, shared) in pipes.items():
            self.assertTrue(os.get_blocking(shared), f"{m.name} set O_NONBLOCK on the stderr it shares")

        # Several TTLs of a full stderr: the lease is renewed every TTL/3, the producer never
        # fenced, every scrape answered at once.
        before = metrics(active)
        started = time.monotonic()
        slowest, least_left = 0.0, float(self.ttl)
        while time.monotonic() - started < 3 * self.ttl:
            asked = time.monotonic()
            status = json.loads(http_get(active, "/status")[2])
            metrics(active)
            slowest = max(slowest, time.monotonic() - asked)
            self.assertEqual(status["state"], "active")
            least_left = min(least_left, status["lease_deadline_remaining_seconds"])
            self.assertGreater(status["lease_deadline_remaining_seconds"], 0, "the lease ran out")
            self.assertEqual(self.ledger.current_producers(self.producing_window_ms), [active.name])
            active.assert_running()
            standby.assert_running()
            time.sleep(0.25)
        after = metrics(active)
        renewals = (after['nodeos_monitor_etcd_requests_total{kind="keepalive"}']
                    - before['nodeos_monitor_etcd_requests_total{kind="keepalive"}'])
        self.assertGreaterEqual(renewals, 3 * 3 - 2, "a renewal every TTL/3")
        self.assertEqual(after['nodeos_monitor_fences_total{cause="deadline"}'], 0)
        self.assertEqual(active.nodeos_pids(), [pid], "the producer was not restarted")
        self.assertGreater(after[dropped], before[dropped], "lines keep being dropped, and counted")
        self.assertLess(slowest, 1.0, "the loop answers a scrape and /status at once")
        self.report("renewals during 3 TTLs of an unread stderr",
                    f"{renewals:.0f} (least lease time left {least_left:.2f} s of {self.ttl} s; "
                    f"slowest /status + /metrics {slowest * 1000:.0f} ms)")
        self.report("log lines dropped by then", f"{after[dropped]:.0f} (producer), "
                    f"{metrics(standby)[dropped]:.0f} (standby)")

        # etcd frozen: the producer's last block before the lease deadline, which cannot be
        # later than the freeze + TTL (no keepalive sent after it is answered).
        frozen = time.monotonic_ns()
        self.etcd.pause()
        deadline = frozen + self.ttl * NS
        wait_until(lambda: not pid_alive(pid) or self.ledger.events("stop", pid=pid), self.ttl + 1,
                   f"the active nodeos {pid} to stop while etcd is frozen")
        last = self.ledger.last_block_time(active.name, pid)
        self.assertLess(last, deadline, "the active nodeos produced past the lease deadline")
        active.assert_running()  # fenced by its loop: the dead-man timer did not have to kill it
        hold(lambda: not self.ledger.events("block", after=last),
             max(0.0, (deadline - time.monotonic_ns()) / NS) + 0.5, "nobody producing while etcd is frozen")
        fenced = metrics(active)
        self.assertGreaterEqual(fenced['nodeos_monitor_fences_total{cause="deadline"}'], 1)
        self.report("fence margin (lease deadline bound minus last block)",
                    f"{ms(deadline - last):.0f} ms (TTL {self.ttl} s)")
        self.etcd.resume()
        self.wait_producer(self.ttl + 5)
        self.assert_no_overlap()

        # The pipe read again: the backlog comes out, then the line that tells the gap, in
        # the monitor's own format.
        for m in (active, standby):
            found, text = read_until(pipes[m][0], r"^\d{4}-\d\d-\d\dT[\d:.]+Z warn  dropped (\d+) log lines "
                                     r"while stderr was not taking them$", 10, f"{m.name}'s stderr")
            told = int(found.group(1))
            self.assertGreater(told, 0)
            self.assertLessEqual(told, metrics(m)[dropped], "the metric counts every line the notice tells")
            # Whole lines only: each one that has ended is one of the monitor's.
            complete = text[:text.rfind("\n")].splitlines()
            self.assertGreater(len(complete), 10)
            for line in complete:
                self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z (error|warn |info |debug) ")
            backlog = len(text[:found.start()].encode())
            self.report(f"{m.name}: the first notice once read again",
                        f"dropped {told} log lines (after {backlog / 1024:.0f} KiB of backlog)")
            self.assertLessEqual(backlog, 64 * 1024 + LOG_BUFFER_BYTES,
                                 "the backlog is bounded: what the pipe held, then the buffer")
            self.assertTrue(os.get_blocking(pipes[m][1]), f"{m.name} set O_NONBLOCK on the stderr it shares")


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""A hostile etcd (hostile_etcd.py) between one monitor and a real etcd. Each case turns
the fake hostile, takes the lock from the monitor (its lease is revoked in the real etcd,
so that producing again needs a lock won and verified through the fake), holds the fault
until the monitor has met it on the requests it names, then lets traffic through again.
For every case, on the ledger of the real nodeos simulator and the real etcd:

  - the monitor never crashes: its process is alive after the fault and after the heal;
  - its memory stays under MEMORY_BOUND_KB (docs/design.md, "Hostile answers"; not checked in a
    sanitizer build, whose resident set is mostly the sanitizer's): the peak resident
    set (VmHWM, /proc/PID/status), reset before each case (/proc/PID/clear_refs), so that
    each case reports its own peak;
  - the producer that held the revoked lock stops signing before the lease deadline it
    last verified (at most the fault's start plus the TTL);
  - it never starts a producer on a lock it has not verified: every "producing" record is
    made while the real etcd shows this node's value in the lock key (as the test's own
    watch of the key sees it); in a case where nothing can be verified through the fake
    (`blind`), there is no "producing" record at all until the heal;
  - it recovers: after the heal it produces again within RECOVERY_BOUND seconds.

The monitor runs in paused mode (hot standby): a fenced producer is paused, or killed and
started again paused, during the fault, so that the recovery resumes it instead of
starting nodeos. The cases run one after the other against one etcd and one monitor, in
two groups (one meson test each), each case a subtest of its own: a failing case is
reported and the next one still runs, from a clean start (Hostile.run_cases: the fake
passing traffic, no intruder in the lock, counters and the peak resident set taken anew,
and a monitor that produces, a new one if the last case left it dead, unable to produce
or over the memory bound). Run a group with: python3 tests/faults/test_hostile.py
Hostile.test_answers (NM_MONITOR names the binary; default build/nodeos-monitor)."""

import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import (  # noqa: E402
    NS, FaultCase, Monitor, hold, ms, pid_alive, reap_orphans, stop_monitors, wait_until)
from harness import Stopped  # noqa: E402
from hostile_etcd import Dechunker, HostileEtcd, b64  # noqa: E402

# The peak resident set the monitor may reach, whatever etcd sends (docs/design.md,
# "Hostile answers"): about 7 MiB idle, plus what the client's limits let an answer cost (a 1 MiB
# body or a 4 MiB watch message, the JSON values of at most one, and 64 KiB of bytes not
# yet parsed on each connection).
MEMORY_BOUND_KB = 64 * 1024
# A sanitizer build's resident set is mostly the sanitizer's own (AddressSanitizer's shadow
# memory and its quarantine of freed blocks, 256 MiB by default): there the bound is not
# checked, only reported, and the run checks everything else (NM_SANITIZE: meson's
# b_sanitize; scripts/test --sanitize).
SANITIZED = os.environ.get("NM_SANITIZE", "none") != "none"
# A block or a producing record is judged against the lock's history as the test's watch
# saw it, which lags the real change.
HISTORY_LAG = 0.5
# After the heal: a grant after the backoff of the failed ones (at most 2 s), the old
# lease's expiry when the fault kept it alive in etcd (TTL), the txn, the resume.
RECOVERY_BOUND = 8.0
TTL = 2
# Requests the monitor must have sent through the fault before it is healed: the first
# one meets the fault, the second shows that it handled the failure and tried again.
MET = 2


def proc_status_kb(pid, field):
    """A field of a live process's /proc/PID/status in kB: VmHWM, the peak resident set;
    VmRSS, the resident set now."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def vm_hwm_kb(pid):
    return proc_status_kb(pid, "VmHWM")


def vm_rss_kb(pid):
    return proc_status_kb(pid, "VmRSS")


def reset_hwm(pid):
    """Resets the peak resident set of `pid` to its current one (Linux 4.0 and later)."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


class LockHistory:
    """Who holds the lock key in the real etcd, over time: a watch of the test's own, each
    change stamped with CLOCK_MONOTONIC at its arrival (the ledger's clock)."""

    def __init__(self, etcd, key):
        self.key = key
        self.changes = []  # (t_ns, node or None)
        self._stop = False
        kvs = etcd.get(key)
        revision = int(etcd.request("/v3/kv/range", {"key": b64(key)})["header"]["revision"])
        self.changes.append((time.monotonic_ns(), self._node(kvs[0]) if kvs else None))
        self._sock = socket.create_connection(("127.0.0.1", etcd.client_port), timeout=5)
        body = json.dumps({"create_request": {"key": b64(key), "start_revision": str(revision + 1)}}).encode()
        self._sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, name="lock-history", daemon=True)
        self._thread.start()

    @staticmethod
    def _node(kv):
        import base64
        try:
            return json.loads(base64.b64decode(kv.get("value", ""))).get("node") or "?"
        except ValueError:
            return "?"

    def _run(self):
        head, dechunker = b"", Dechunker()
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic_ns()
            if head is not None:
                head += data
                if b"\r\n\r\n" not in head:
                    continue
                data = head.split(b"\r\n\r\n", 1)[1]
                head = None
            for line in dechunker.feed(data):
                for event in json.loads(line).get("result", {}).get("events", []):
                    holder = None if event.get("type") == "DELETE" else self._node(event["kv"])
                    self.changes.append((now, holder))

    def close(self):
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def held(self, node, t_from, t_to):
        """Whether `node` was seen holding the lock at some instant of [t_from, t_to]."""
        changes = list(self.changes)
        for i, (start, holder) in enumerate(changes):
            end = changes[i + 1][0] if i + 1 < len(changes) else None
            if holder == node and start <= t_to and (end is None or end > t_from):
                return True
        return False

    def describe(self, origin):
        return ", ".join(f"{ms(t - origin):.0f} ms: {holder or 'free'}" for t, holder in self.changes)



class HostileNode:
    """A monitor whose only etcd endpoint is its own hostile fake."""

    def __init__(self, case, name):
        self.name = name
        self.fake = HostileEtcd(case.cluster.members[0].client_port, name=name, lock_key=case.group)
        self.link = self.fake  # closed by the harness with the monitors' links
        self.monitor = Monitor(case.workdir, name, [self.fake.url], case.group, ttl=TTL,
                               stop_timeout=case.stop_timeout, ledger=case.ledger,
                               block_ms=case.block_ms, standby_mode="paused")
        self.history = [self.monitor]


class Hostile(FaultCase):
    workdir_prefix = "nm-hostile"
    ttl = TTL
    stop_timeout = 2

    def setUp(self):
        super().setUp()
        self.etcd = self.cluster.members[0]
        self.lock_history = LockHistory(self.etcd, self.group)
        self.addCleanup(self.lock_history.close)
        self.started = time.monotonic()
        self.intruders = []  # leases of locks taken behind the monitor's back, revoked after each case
        self.replaced = []  # (case, whether it passed, why) for each monitor a case left unfit for the next
        self.orphans = []  # simulators that outlived a replaced monitor
        self.node = HostileNode(self, "node-a")
        self.nodes.append(self.node)
        self.node.monitor.wait_producing(TTL + 10)

    def evidence(self):
        return super().evidence() + ["--- the lock in etcd, as the test's watch saw it ---\n"
                                     + self.lock_history.describe(self.ledger.origin())]

    def tearDown(self):
        self.report("duration", f"{time.monotonic() - self.started:.1f} s")

    # --- cases, each on its own ---------------------------------------------------------

    def run_cases(self, cases):
        """Runs each (name, body) as a subtest of its own, so that a failing case is
        reported and does not hide the next; each one begins from a clean start
        (fresh_start) and ends with the fake passing traffic and any intruder's lease
        revoked, whatever happened in it. A stop by the test runner ends the run."""
        stopped, self.previous = None, ("the start", True)
        for name, body in cases:
            passed = False
            with self.subTest(name):
                try:
                    self.fresh_start()
                    body()
                    passed = True
                except Stopped as e:
                    stopped = e
                    raise
                finally:
                    self.end_case()
            if stopped is not None:
                raise stopped
            self.previous = (name, passed)
        if self.replaced:
            self.report("monitors replaced between cases",
                        "; ".join(f"after {case}: {why}" for case, _, why in self.replaced))
        self.assertEqual(self.orphans, [], "nodeos simulators outlived a monitor replaced between "
                         "cases (killed then)")
        self.assertEqual([f"after {case}: {why}" for case, passed, why in self.replaced if passed], [],
                         "expected every case that passed to leave the monitor alive and producing")

    def fresh_start(self):
        """What every case starts from, whatever the case before it left: the fake passes
        traffic, nobody but this monitor holds the lock, the monitor is alive, below the
        memory bound and producing; else it is replaced by a new one (same command line)."""
        self.node.fake.heal()
        self.revoke_intruders()
        monitor = self.node.monitor
        why = None
        code = monitor.poll()
        if code is None and not pid_alive(monitor.pid):  # killed, not reaped yet
            code = monitor.proc.wait(5)
        rss = vm_rss_kb(monitor.pid) if code is None and not SANITIZED else 0
        if code is not None:
            why = f"it had exited with {code}"
        elif rss >= MEMORY_BOUND_KB:
            why = f"its resident set was {rss} kB"
        else:
            try:
                monitor.wait_producing(RECOVERY_BOUND)
            except AssertionError as e:
                why = f"it did not produce within {RECOVERY_BOUND} s ({str(e).splitlines()[0]})"
        if why is None:
            return
        self.replaced.append((*self.previous, why))
        stop_monitors([monitor])
        self.orphans += reap_orphans([monitor], self.ledger)
        fresh = monitor.clone().start()
        self.node.monitor = fresh
        self.node.history.append(fresh)
        fresh.wait_producing(TTL + 10)

    def end_case(self):
        self.node.fake.heal()
        self.revoke_intruders()

    def revoke_intruders(self):
        while self.intruders:
            lease = self.intruders.pop()
            try:
                self.etcd.request("/v3/lease/revoke", {"ID": lease})
            except OSError:
                pass  # gone already: expired, or revoked by the case itself

    # --- one case --------------------------------------------------------------------

    def faulted(self, path):
        """Requests for `path` the fake answered with a fault since the case began."""
        return self.node.fake.counts()[1].get(path, 0) - self.base.get(path, 0)

    def fenced(self, pid, since):
        """The time of the record that ended the producing period of `pid` that began
        before `since` (paused, stop, crash; or its death), or None while it goes on."""
        for r in self.ledger.events("paused", pid=pid, after=since) + self.ledger.events("stop", pid=pid, after=since):
            return r["t"]
        if not pid_alive(pid):  # killed; perhaps before its first block
            last = self.ledger.last_block_time(self.node.name, pid)
            return (since if last is None else last) + 1
        return None

    def requested(self, path):
        """Requests for `path` that reached the fake since the case began."""
        return self.node.fake.counts()[0].get(path, 0) - self.requests.get(path, 0)

    def restarted(self):
        """Whether a producer started since the case began (a lock won for real)."""
        return bool(self.ledger.events("producing", node=self.node.name, after=self.t0))

    def alive(self, what):
        code = self.node.monitor.poll()
        if code is not None:
            raise AssertionError(f"{what}: the monitor exited with {code}; expected it to stay "
                                 f"alive\n{self.node.monitor.log_tail()}")
        return True

    def revoke_lock(self):
        """Revokes the lease of the lock key's holder in the real etcd (the key goes with it)."""
        kvs = self.etcd.get(self.group)
        self.assertTrue(kvs, f"the lock key {self.group!r} is held in etcd before the fault")
        self.etcd.request("/v3/lease/revoke", {"ID": kvs[0]["lease"]})

    def case(self, mode, paths=None, until=None, blind=True, revoke=True, during=None):
        """One hostile case: the fault `mode` (on `paths`, else on every request) from t0,
        the lock revoked at t0 (unless `revoke` is false); waits until `until()` (what the
        monitor must have met) while the monitor stays alive; runs `during()`; heals; the
        monitor produces again. `blind`: nothing can be verified through the fault, so
        nothing may start producing until the heal."""
        monitor = self.node.monitor
        pid = monitor.wait_producing(RECOVERY_BOUND)
        reset_hwm(monitor.pid)
        t0 = time.monotonic_ns()
        self.node.fake.set(mode, paths)
        self.baseline()
        self.t0, self.lies_before = t0, self.node.fake.lies
        if revoke:
            self.revoke_lock()
        what = f"{mode}{' on ' + ', '.join(paths) if paths else ''}"
        wait_until(lambda: self.alive(what) and until(), TTL + 8,
                   f"the monitor to meet {what} (faulted so far: {self.node.fake.counts()[1]})")
        if during:
            during()
        # The producer of the revoked lock is fenced (paused, or stopped) by the deadline
        # it last verified; its blocks up to then are those of the lock it held.
        fence = wait_until(lambda: self.fenced(pid, t0), TTL + 1, f"{what}: the producer {pid} to be fenced")
        last = max((b["t"] for b in self.ledger.events("block", pid=pid) if b["t"] < fence), default=t0)
        self.assertLess(last, t0 + TTL * NS, f"{what}: the producer {pid} signed a block "
                        f"{ms(last - t0 - TTL * NS):.0f} ms after its latest possible lease deadline")
        healed = time.monotonic_ns()
        if blind:
            started = self.ledger.events("producing", node=self.node.name, after=t0)
            self.assertEqual(started, [], f"{what}: a producer started while nothing could be "
                             "verified through the fake")
        self.alive(what)
        self.assert_memory(what, monitor)
        self.node.fake.heal()
        first = self.ledger.wait_first_block(
            healed, self.node.name, RECOVERY_BOUND,
            f"node-a to produce within {RECOVERY_BOUND} s of the heal of {what}")
        new = monitor.wait_producing(RECOVERY_BOUND)
        self.alive(f"{what}, healed")
        peak = self.assert_memory(what, monitor)
        self.assert_verified_starts(what, t0)
        self.report(f"{what}: peak resident set (VmHWM)",
                    f"{peak / 1024:.1f} MiB" + (" (a sanitizer build: not checked)" if SANITIZED else ""))
        self.report(f"{what}: fault to heal; heal to first block",
                    f"{ms(healed - t0):.0f} ms; {ms(first['t'] - healed):.0f} ms (producer {new})")

    def baseline(self):
        """The fake's counts from which faulted() and requested() count."""
        self.requests, self.base = self.node.fake.counts()

    def assert_memory(self, what, monitor):
        """The monitor's peak resident set so far in this case, below the bound (checked
        outside a sanitizer build)."""
        peak = vm_hwm_kb(monitor.pid)
        if not SANITIZED:
            self.assertLess(peak, MEMORY_BOUND_KB, f"{what}: peak resident set {peak} kB, expected "
                            f"below {MEMORY_BOUND_KB} kB\n{monitor.log_tail(15)}")
        return peak

    def assert_verified_starts(self, what, since):
        """Every producing record since `since` was made while the real etcd showed this
        node in the lock key."""
        origin = self.ledger.origin()
        for record in self.ledger.events("producing", node=self.node.name, after=since):
            t = record["t"]
            if not self.lock_history.held(self.node.name, t, t + int(HISTORY_LAG * NS)):
                raise AssertionError(
                    f"{what}: node-a started producing at {ms(t - origin):.0f} ms without holding "
                    f"the lock in etcd (history: {self.lock_history.describe(origin)})")

    def grants(self, n=MET):
        return lambda: self.faulted("/v3/lease/grant") >= n

    def txns(self, n=MET):
        return lambda: self.faulted("/v3/kv/txn") >= n

    # --- the groups ------------------------------------------------------------------

    def test_answers(self):
        """Bad answers, then false ones: one subtest per case."""
        self.run_cases(self.garbage() + self.lies())

    def garbage(self):
        """Truncated JSON, wrong types, missing fields in every answer; answers for another
        lease."""
        cases = [(mode, lambda mode=mode: self.case(mode, until=self.grants()))
                 for mode in ("truncated", "wrong_types", "missing_fields")]
        # Lease IDs: a grant of another lease; keepalives for another lease (grants and txns
        # pass: a new lock may be won for real, and is lost when it cannot be renewed).
        cases.append(("grant_wrong_id", lambda: self.case("grant_wrong_id", until=self.grants())))
        # Two new leases granted: each one lost in turn (fenced at its deadline) because
        # no keepalive answer can be taken for its renewal.
        cases.append(("keepalive_wrong_id", lambda: self.case(
            "keepalive_wrong_id", blind=False,
            until=lambda: self.faulted("/v3/lease/keepalive") >= MET and self.requested("/v3/lease/grant") >= 2)))
        return cases

    def lies(self):
        """A `succeeded` for a txn that did not happen; TTLs longer than asked for; watch
        events for other keys."""
        # The txn is never sent: the key is not written, and the answer says succeeded.
        cases = [("campaign_lie_unwritten",
                  lambda: self.case("campaign_lie_unwritten", ("/v3/kv/txn",), until=self.txns()))]
        cases.append(("campaign_lie_held", self.campaign_lie_held))
        cases.append(("ttl_inflated, then hang", self.ttl_inflated_then_hang))
        cases.append(("watch_foreign_event", self.watch_foreign_event))
        return cases

    def campaign_lie_held(self):
        """The lock is held by an intruder: the txn fails in etcd, and the answer says
        succeeded."""
        intruder = {}
        lied = [0]

        def take_lock():
            intruder["lease"] = self.etcd.request("/v3/lease/grant", {"TTL": "60"})["ID"]
            self.intruders.append(intruder["lease"])
            self.etcd.request("/v3/kv/put", {"key": b64(self.group), "lease": intruder["lease"],
                                            "value": b64(json.dumps({"node": "intruder"}))})
            return True

        def free_lock():
            hold(lambda: self.alive("campaign_lie_held") and not self.ledger.events(
                "producing", node=self.node.name, after=lied[0]), 0.5,
                "no producer while an intruder holds the lock and the monitor is told it won")
            self.revoke_intruders()

        def told_won():
            if not intruder:
                take_lock()
                lied[0] = time.monotonic_ns()
            # One is enough: the monitor then reads the key, sees the intruder and waits
            # for the key to be deleted instead of campaigning again.
            return self.node.fake.lies - self.lies_before >= 1
        self.case("campaign_lie_held", ("/v3/kv/txn",), until=told_won, during=free_lock)

    def ttl_inflated_then_hang(self):
        """TTL 3600 in every grant and keepalive answer, then no answer at all: the producer
        is still fenced by the TTL it asked for (case() checks that against the hang's
        start)."""
        self.baseline()
        self.node.fake.set("ttl_inflated")
        wait_until(lambda: self.faulted("/v3/lease/keepalive") >= MET, 2 * TTL,
                   "two keepalives answered with TTL 3600")
        self.case("hang", revoke=False, until=self.grants(1))

    def watch_foreign_event(self):
        """Watch messages preceded by events for keys outside the watched range: the watch
        is ended as malformed and the key read again; the lock is won for real."""
        mark = self.node.monitor.log_mark()
        self.case("watch_foreign_event", ("/v3/watch",), blind=False,
                  until=lambda: self.faulted("/v3/watch") >= MET and self.restarted())
        self.node.monitor.wait_for_log(r"watch event for another key", 1, since=mark)

    def test_sizes(self):
        """Bodies of 300 MB, endless chunked bodies and chunk-size lines, answers of the
        densest JSON just under the limits, answers one byte a second; then an endless watch
        stream: one subtest per case. (A 300 MB chunked body meets the same limit as
        endless_chunked: the http client's tests cover it.)"""
        cases = [(mode, lambda mode=mode: self.case(mode, until=self.grants()))
                 for mode in ("huge_body", "endless_chunked", "endless_chunk_header", "dense_json", "slow")]
        # Only the watch hostile: the lock is won for real and the producer goes on.
        cases.append(("watch_flood", lambda: self.case(
            "watch_flood", ("/v3/watch",), blind=False,
            until=lambda: self.faulted("/v3/watch") >= 1 and self.restarted())))
        self.run_cases(cases)


if __name__ == "__main__":
    unittest.main()

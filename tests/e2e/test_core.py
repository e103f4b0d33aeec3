#!/usr/bin/env python3
"""End-to-end tests of nodeos-monitor: real etcd, real monitors supervising the nodeos
simulator, real signals. The shared ledger the simulators write is the proof: no two
processes ever produce at the same instant, and after each fault exactly one node produces.

Run one with: python3 tests/e2e/test_core.py CoreTest.test_two_monitors
(NM_MONITOR names the binary; default build/nodeos-monitor)."""

import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    FAIL_SYSCALL_LIB, Monitor, MonitorTestCase, etcd_down_at_start, hold, ms, pid_alive, wait_until)

NS = 1_000_000_000
# Row S3 waits for nothing (no stop timeout, no revoke, no reap): the second SIGTERM is
# handled at the next turn of the monitor's loop. The bound leaves room for a loaded machine.
SECOND_STOP_BOUND = 1.0


def thread_count(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


class CoreTest(MonitorTestCase):

    def single_producer(self, node):
        """A predicate: `node`, and only it, is producing now."""
        return lambda: self.ledger.current_producers(self.producing_window_ms) == [node]

    def test_two_monitors(self):
        """One of two monitors becomes active and produces; the other runs a validator."""
        active, standby = self.start_pair()
        producer_pid = active.wait_nodeos_mode("producer", 1)
        hold(self.single_producer(active.name), 1.5, f"{active.name} alone producing")
        self.assertEqual(active.nodeos_pids(), [producer_pid], "the producer was restarted")
        self.assertEqual(len(standby.nodeos_pids()), 1, "the standby runs exactly one nodeos")
        self.assertEqual(len(self.etcd.get(self.group)), 1, "the lock key is held")
        for m in (active, standby):
            self.assertEqual(thread_count(m.pid), 1, f"{m.name} must run on exactly one thread")
        self.assert_no_overlap()
        active.wait_for_log(r"started active nodeos pid", 1)
        standby.wait_for_log(r"started standby nodeos pid", 1)

    def test_sigterm_hands_over(self):
        """SIGTERM to the active monitor: it stops its nodeos, revokes the lease and exits
        0; the peer produces well within the TTL, with no overlap. A restarted monitor
        comes back as standby."""
        active, standby = self.start_pair()
        mark = standby.log_mark()
        sent = time.monotonic_ns()
        active.signal(signal.SIGTERM)
        code = active.wait_exit(active.stop_timeout + 3)
        exited = time.monotonic_ns()
        self.assertEqual(code, 0, active.log_tail())
        active.assert_nodeos_gone(1.0)
        first = self.ledger.wait_first_block(
            sent, standby.name, self.ttl + 2,
            f"{standby.name} to produce after {active.name} stopped")
        last_old = self.ledger.last_block_time(active.name)
        self.assertLess(first["t"] - exited, self.ttl * NS / 2,
                        "the lease was revoked, so the peer must not wait for it to expire")
        active.wait_for_log(r"exit 0: ", 1)
        standby.wait_for_log(r"lock acquired|state standby -> active", 1, since=mark)
        self.report("SIGTERM to exit", f"{ms(exited - sent):.0f} ms")
        self.report("graceful handover (last old block to first new block)",
                    f"{ms(first['t'] - last_old):.0f} ms")
        self.assert_no_overlap()

        restarted = self.spawn_monitor(active.name)
        restarted.wait_nodeos_mode("validator", self.ttl + 5)
        hold(self.single_producer(standby.name), 1.0, f"{standby.name} still the producer")
        self.assert_no_overlap()

    def test_sigkill_active_monitor(self):
        """SIGKILL of the active monitor: PR_SET_PDEATHSIG takes its nodeos at once; the
        peer produces once the lease has expired, never before the old one's last block."""
        active, standby = self.start_pair()
        active.nodeos_pids()
        mark = standby.log_mark()
        killed = time.monotonic_ns()
        active.signal(signal.SIGKILL)
        active.wait_exit(2)
        gone_after = active.assert_nodeos_gone(1.0)
        first = self.ledger.wait_first_block(
            killed, standby.name, self.ttl + 3,
            f"{standby.name} to produce within TTL + 3 s of the kill")
        last_old = self.ledger.last_block_time(active.name)
        self.assertGreater(first["t"], last_old, "the peer produced before the old nodeos stopped")
        standby.wait_for_log(r"lock acquired|state standby -> active", 1, since=mark)
        self.report("nodeos gone after monitor SIGKILL", f"{gone_after * 1000:.0f} ms")
        self.report("peer's first block after the kill", f"{ms(first['t'] - killed):.0f} ms "
                    f"(TTL {self.ttl} s)")
        wait_until(self.single_producer(standby.name), 2, f"{standby.name} alone producing")
        self.assert_no_overlap()

    def crash_producer(self, monitor, sig):
        """Kills the producing nodeos of `monitor` with `sig`; returns (signal time, time it
        was seen gone)."""
        pid = monitor.wait_nodeos_mode("producer", 1)
        sent = time.monotonic_ns()
        os.kill(pid, sig)
        wait_until(lambda: not pid_alive(pid), 2, f"crashed nodeos {pid} to be gone")
        return sent, time.monotonic_ns()

    def test_nodeos_crash_lone_node(self):
        """A lone node whose active nodeos crashes produces again: its restart finds the
        database dirty (the crash was unclean), replays it (--dirty-db-args), and, its head
        the chain's last block, takes the free lock again (bound: restart backoff 0.5 s +
        replay + first health check 0.5 s + promotion, here 5 s)."""
        lone = self.spawn_monitor("node-a")
        self.wait_producer(self.ttl + 10)
        mark = lone.log_mark()
        crashed, gone = self.crash_producer(lone, signal.SIGKILL)
        first = self.ledger.wait_first_block(
            gone, lone.name, 5,
            "the lone node to produce again within 5 s")
        lone.wait_for_log(r"replay its dirty database with --dirty-db-args, as a validator \[dirty_database\]", 1,
                          since=mark)
        self.report("lone node producing again after its nodeos crashed",
                    f"{ms(first['t'] - crashed):.0f} ms")
        lone.wait_nodeos_mode("producer", 1)
        lone.wait_for_log(r"nodeos pid \d+ ended: killed by signal 9", 1, since=mark)
        self.assert_no_overlap()

    def test_nodeos_crash_two_nodes(self):
        """The active nodeos crashes (SIGSEGV) with a peer waiting: afterwards exactly one node
        produces and the other validates, with no overlap."""
        active, standby = self.start_pair()
        crashed, gone = self.crash_producer(active, signal.SIGSEGV)
        first = self.ledger.wait_first_block(gone, None, self.ttl + 5,
                                             "some node to produce after the crash")
        producer = self.wait_producer(self.ttl + 5)
        other = standby if producer is active else active
        producer.wait_nodeos_mode("producer", 1)
        other.wait_nodeos_mode("validator", self.ttl + 5)
        hold(self.single_producer(producer.name), 1.0, f"{producer.name} alone producing")
        self.report("first block after the crash", f"{ms(first['t'] - crashed):.0f} ms "
                    f"(by {first['node']})")
        self.assert_no_overlap()

    def freeze_etcd_while_active(self, active):
        """Freezes etcd and checks the fence: the active nodeos signs its last block before
        freeze + TTL (the lease deadline cannot be later: no keepalive sent after the freeze
        is acknowledged) and nobody produces while etcd stays frozen past that deadline.
        Then thaws etcd and expects exactly one producer within TTL + 5 s."""
        pid = active.wait_nodeos_mode("producer", 1)
        mark = active.log_mark()
        frozen = time.monotonic_ns()
        self.etcd.pause()
        deadline = frozen + self.ttl * NS
        wait_until(lambda: not pid_alive(pid) or self.ledger.events("stop", pid=pid),
                   self.ttl + 1, f"the active nodeos {pid} to stop while etcd is frozen")
        last = self.ledger.last_block_time(active.name, pid)
        self.report("fence margin (lease deadline bound minus last block)",
                    f"{ms(deadline - last):.0f} ms (TTL {self.ttl} s)")
        self.assertLess(last, deadline, "the active nodeos produced past the lease deadline")
        active.wait_for_log(r"deadline|fenc", 1, since=mark)
        # The fault lasts beyond the deadline, so that a node that wrongly resumes producing
        # without the lock would be caught.
        hold(lambda: not self.ledger.events("block", after=last),
             max(0.0, (deadline - time.monotonic_ns()) / NS) + 0.5,
             "nobody producing while etcd is frozen")
        self.etcd.resume()
        resumed = time.monotonic_ns()
        producer = self.wait_producer(self.ttl + 5)
        first = self.ledger.first_block_after(resumed)
        self.report("producing again after etcd thawed", f"{ms(first['t'] - resumed):.0f} ms "
                    f"(by {producer.name})")
        hold(self.single_producer(producer.name), 1.0, f"{producer.name} alone producing")
        self.assert_no_overlap()

    def test_etcd_frozen(self):
        """etcd frozen while active: the nodeos (which keeps producing for 300 ms after
        SIGTERM) is gone before the lease deadline; no overlap; one producer after the thaw."""
        active, _ = self.start_pair(sim_args=["--sim-stop-delay-ms=300"])
        self.freeze_etcd_while_active(active)

    def test_second_sigterm(self):
        """Row S3: a second SIGTERM during a slow graceful stop SIGKILLs nodeos and exits 1
        at once, without releasing the lock (it is left to expire)."""
        monitor = self.spawn_monitor("node-a", stop_timeout=30, sim_args=["--sim-stop-delay-ms=20000"],
                                     api=False, dirty_db_args=())  # the first start is the producer's
        self.wait_producer(self.ttl + 10)
        pid = monitor.wait_nodeos_mode("producer", 1)
        monitor.signal(signal.SIGTERM)
        wait_until(lambda: self.ledger.events("sigterm", pid=pid), 3,
                   "nodeos to receive SIGTERM from the monitor")
        self.assertIsNone(monitor.poll(), "the monitor must wait for the slow nodeos after the first SIGTERM")
        self.assertTrue(pid_alive(pid), f"nodeos {pid} must still be stopping (20 s) when the second SIGTERM comes")
        mark = monitor.log_mark()
        second = time.monotonic()
        monitor.signal(signal.SIGTERM)
        code = monitor.wait_exit(SECOND_STOP_BOUND + 2)
        took = time.monotonic() - second
        self.assertEqual(code, 1, f"expected exit 1 after the second SIGTERM (row S3), got {code}\n"
                         + monitor.log_tail())
        self.assertLess(took, SECOND_STOP_BOUND,
                        f"expected the exit within {SECOND_STOP_BOUND:.1f} s of the second SIGTERM (row S3 "
                        f"waits for nothing); it took {took:.2f} s")
        # Killed, not stopped: its 20 s graceful stop had only begun, and it is gone at once.
        monitor.assert_nodeos_gone(0.5)
        self.assertEqual(self.ledger.events("stop", pid=pid), [],
                         f"nodeos {pid} finished its 20 s graceful stop: it was not killed")
        monitor.wait_for_log(rf"SIGKILL to nodeos pid {pid}: .*\[second_stop\]$", 0.5, since=mark,
                             flags=re.MULTILINE)
        monitor.wait_for_log(r"exit 1: .*\[second_stop\]$", 0.5, since=mark, flags=re.MULTILINE)
        self.assertEqual(len(self.etcd.get(self.group)), 1,
                         "the lock key is gone: row S3 exits without releasing the lock")
        self.report("second SIGTERM to exit", f"{took * 1000:.0f} ms (exit status {code})")

    def test_fail_safe_when_a_timer_cannot_be_set(self):
        """A system call that fencing depends on fails (the dead-man timer on the producer's
        monitor, the core's own timer on the standby's): that monitor kills its nodeos and
        exits 1 at once; the peer takes over once the lease expires, with no overlap."""
        trigger = os.path.join(self.workdir, "fail-now")

        def failing(call):
            return {"LD_PRELOAD": FAIL_SYSCALL_LIB, "NM_FAIL_SYSCALL": call, "NM_FAIL_SYSCALL_WHEN": trigger}
        producer = self.spawn_monitor("node-a", env=failing("timer_settime"))
        self.wait_producer(self.ttl + 10)
        standby = self.spawn_monitor("node-b")
        standby.wait_nodeos_mode("validator", self.ttl + 5)
        producer_pid = producer.wait_nodeos_mode("producer", 1)
        open(trigger, "w").close()
        failed_at = time.monotonic_ns()
        # The dead-man timer is set again at the next renewal, TTL/3 from the last.
        self.assertEqual(producer.wait_exit(self.ttl), 1, producer.log_tail())
        producer.assert_nodeos_gone(1.0)
        producer.wait_for_log(r"error cannot go on safely \(timer_settime: .*\): killing nodeos and exiting "
                              r"\[fail_safe\]$", 1, flags=re.MULTILINE)
        self.assertFalse(pid_alive(producer_pid))
        self.ledger.wait_first_block(failed_at, standby.name, 2 * self.ttl + 5,
                                     f"{standby.name} to produce once node-a's lease expired")
        self.assert_no_overlap()

        # The standby's core timer: nothing to fence, but it stops all the same.
        os.remove(trigger)
        second = self.spawn_monitor("node-c", env=failing("timerfd_settime"))
        second.wait_nodeos_mode("validator", self.ttl + 5)
        open(trigger, "w").close()
        self.assertEqual(second.wait_exit(self.ttl), 1, second.log_tail())
        second.assert_nodeos_gone(1.0)
        second.wait_for_log(r"error cannot go on safely \(timerfd_settime: .*\): killing nodeos and exiting "
                            r"\[fail_safe\]$", 1, flags=re.MULTILINE)
        hold(self.single_producer(standby.name), 1.0, f"{standby.name} still the producer")
        self.assert_no_overlap()

    def test_invalid_input(self):
        """Each invalid input exits 2 with a one-line reason, before starting anything: no
        nodeos (no ledger record) and no lease in etcd."""
        not_executable = os.path.join(self.workdir, "nodeos-not-executable")
        with open(not_executable, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(not_executable, 0o644)
        empty_dir = os.path.join(self.workdir, "empty-config")
        os.makedirs(empty_dir)
        cert = os.path.join(self.workdir, "client.pem")
        with open(cert, "w", encoding="utf-8") as f:
            f.write("not used: the key is missing\n")
        cases = {
            "unknown flag": dict(extra_args=["--no-such-flag"]),
            "nodeos missing": dict(overrides={"--nodeos": os.path.join(self.workdir, "nope")}),
            "nodeos not executable": dict(overrides={"--nodeos": not_executable}),
            "active config dir missing": dict(
                overrides={"--active-config-dir": os.path.join(self.workdir, "no-such-dir")}),
            "standby config dir without config.ini": dict(
                overrides={"--standby-config-dir": empty_dir}),
            "lease ttl 1": dict(overrides={"--lease-ttl": "1"}),
            "lease ttl not a number": dict(overrides={"--lease-ttl": "ten"}),
            "ftp endpoint": dict(overrides={"--etcd-endpoints": "ftp://x"}),
            "ftp endpoint in a list": dict(
                overrides={"--etcd-endpoints": f"{self.etcd.url},ftp://x"}),
            "cert without key": dict(extra_args=["--etcd-cert", cert]),
        }
        for name, kwargs in cases.items():
            with self.subTest(name):
                monitor = Monitor(self.workdir, "invalid", [self.etcd.url], self.group,
                                  ledger=self.ledger, start=False, **kwargs)
                try:
                    done = subprocess.run(monitor.argv, stdin=subprocess.DEVNULL,
                                          capture_output=True, timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail(f"{name}: still running after 10 s; expected exit 2")
                stderr = done.stderr.decode(errors="replace").strip()
                self.assertEqual(done.returncode, 2, f"{name}: {stderr}")
                self.assertEqual(len(stderr.splitlines()), 1,
                                 f"{name}: expected a one-line reason, got:\n{stderr}")
                self.assertEqual(self.ledger.starts("invalid"), [], f"{name}: nodeos started")
                self.assertEqual(self.etcd_leases(), [], f"{name}: a lease was granted")

        with self.subTest("the same command line without the fault runs"):
            control = self.spawn_monitor("control")
            control.wait_nodeos_mode("producer", self.ttl + 10)

    @etcd_down_at_start
    def test_etcd_down_at_startup(self):
        """With etcd unreachable the monitor runs nodeos as a validator and keeps trying;
        once etcd is up it becomes active."""
        monitor = self.spawn_monitor("node-a")
        monitor.wait_nodeos_mode("validator", 10)
        hold(lambda: monitor.poll() is None and not self.ledger.events("producing"), 2.0,
             "the monitor running a validator while etcd is down")
        self.etcd.start()
        up = time.monotonic_ns()
        monitor.wait_nodeos_mode("producer", self.ttl + 10)
        first = self.ledger.wait_first_block(
            up, monitor.name, 2,
            "the first block after etcd came up")
        self.report("producing after etcd came up", f"{ms(first['t'] - up):.0f} ms")
        self.assert_no_overlap()

    def test_sigkill_standby_monitor(self):
        """SIGKILL of the standby monitor kills its validator; the active node carries on
        with the same nodeos."""
        active, standby = self.start_pair()
        producer_pid = active.wait_nodeos_mode("producer", 1)
        standby.nodeos_pids()
        killed = time.monotonic_ns()
        standby.signal(signal.SIGKILL)
        standby.wait_exit(2)
        gone_after = standby.assert_nodeos_gone(1.0)
        wait_until(lambda: len(self.ledger.events("block", pid=producer_pid, after=killed)) >= 10,
                   3, f"{active.name}'s nodeos {producer_pid} to go on producing")
        self.assertEqual(active.nodeos_pids(), [producer_pid], active.log_tail())
        self.report("standby nodeos gone after its monitor's SIGKILL",
                    f"{gone_after * 1000:.0f} ms")
        self.assert_no_overlap()

    def test_sigterm_while_etcd_frozen(self):
        """SIGTERM to the active monitor while etcd is frozen stays bounded (the revoke has a
        short timeout); the peer takes over once etcd is back."""
        active, standby = self.start_pair()
        self.etcd.pause()
        sent = time.monotonic()
        active.signal(signal.SIGTERM)
        code = active.wait_exit(active.stop_timeout + 3)
        took = time.monotonic() - sent
        self.assertEqual(code, 0, active.log_tail())
        active.assert_nodeos_gone(0.5)
        self.report("SIGTERM to exit with etcd frozen", f"{took * 1000:.0f} ms")
        self.etcd.resume()
        resumed = time.monotonic_ns()
        self.ledger.wait_first_block(resumed, standby.name, self.ttl + 5,
                                     f"{standby.name} to produce within TTL + 5 s of etcd's return")
        self.assert_no_overlap()


if __name__ == "__main__":
    unittest.main()

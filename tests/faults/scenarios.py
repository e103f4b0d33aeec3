#!/usr/bin/env python3
"""Fixed fault scenarios: one per fault type, each checking the safety invariants
on the shared ledger (0 ms of overlap ever; exactly one producer
within a bound after the fault heals; no nodeos outlives its monitor; a monitor asked to
stop exits within its stop timeout plus a small bound).

Run one with: python3 tests/faults/scenarios.py Faults.test_partition_blackhole
(NM_MONITOR names the binary; default build/nodeos-monitor). TTL 3 s, stop timeout 4 s."""

import os
import re
import signal
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultlib import (  # noqa: E402
    NS, FaultCase, hold, ledger_excerpt, metric_samples, ms, pid_alive, sigterm_and_time, wait_stable_producer,
    wait_until)

# How long after a heal exactly one node must produce, beyond the TTL: time for the old
# lease to run out in etcd (its lessor checks every 500 ms), for the watch to report it,
# for the winner to stop its validator and start its producer.
LIVENESS_SLACK = 4.0
# A frozen producer's lease runs out in etcd at most a TTL after the freeze (its last
# keepalive went out before it); the rest of LIVENESS_SLACK then applies, without a heal
# to wait for: etcd's lessor (every 500 ms), the peer's watch, the stop of its validator
# and the start of its producer.
FROZEN_TAKEOVER_SLACK = 3.0

# Watches cut as soon as they open: each monitor may open its watch at most once per renew
# interval (TTL/3) once its backoff has grown to that cap, so a window of W seconds holds
# at most W / (TTL/3) + 1 opens (one at each edge). The allowance adds the doubling steps
# below the cap (100, 200, 400, 800 ms before 1 s with TTL 3: four opens), should the
# backoff start over inside the window. The bug it guards against re-opened every 100 ms:
# about 140 opens in a 15 s window, against at most 20 here.
WATCH_REOPEN_ALLOWANCE = 5
# The window the rate is measured over, after a warm-up of three renew intervals: time
# for the backoff to reach its cap (a doubling from 100 ms up to TTL/3 sums to less than
# two renew intervals).
WATCH_RATE_WINDOW = 15.0
# With its watch cut, a standby learns that the lock is free from its own re-read of the
# key, at most one renew interval after the holder released it; then it takes the lock
# (one round trip), stops its validator and starts its producer, which signs a block
# within block_ms. This covers all but the renew interval.
CUT_WATCH_HANDOVER_SLACK = 2.0


# etcd's --election-timeout, which the clusters here run with (etcd's default, 1000 ms).
ELECTION_TIMEOUT = 1.0
SWITCHED = re.compile(r"\betcd .*; switching to 127\.0\.0\.1:(\d+)$", re.MULTILINE)


def cut_settle(ttl):
    """How long after the leader is cut off from its peers every monitor has moved off it
    and renewed through the rest of the cluster (s). The cut-off leader goes on
    acknowledging keepalives until check-quorum steps it down, within two election
    timeouts; its peers elect a leader of their own within about as long (each waits one
    to two election timeouts after the last heartbeat), a split vote costing a third. A
    monitor meets the hang at its next request, at most a renew interval (TTL/3) after the
    step-down, and moves on when that request times out (requests time out at TTL/3); its
    rotation may meet a member still electing, or the cut-off one again, once more (two
    renew intervals); its next renewal, at most a renew interval later, goes through. Plus
    1 s for a loaded machine."""
    renew = ttl / 3
    return 3 * ELECTION_TIMEOUT + 5 * renew + 1.0


def current_endpoint(node):
    """The port of the proxy the node's monitor sends its requests to, as its log says: the
    first endpoint until it logs a switch."""
    found = SWITCHED.findall(node.monitor.log_text())
    return int(found[-1]) if found else node.link.proxies[0].port


def moved_off(node, port, since):
    """Whether the node's monitor switched endpoints after log position `since` and no
    longer sends its requests to `port`."""
    return bool(SWITCHED.search(node.monitor.log_text(since))) and current_endpoint(node) != port


def lease_remaining(node):
    """The monitor's nodeos_monitor_lease_deadline_remaining_seconds, or None without a lease
    (or without an answer)."""
    try:
        with urllib.request.urlopen(f"http://{node.monitor.metrics_addr}/metrics", timeout=1) as r:
            samples = metric_samples(r.read().decode())
    except OSError:
        return None
    return samples.get("nodeos_monitor_lease_deadline_remaining_seconds")


def renewed_since(node, t, ttl):
    """Whether the monitor holds a lease renewed by a keepalive sent after monotonic time `t`
    (s): its deadline, the send time plus the TTL, lies past t + TTL."""
    now = time.monotonic()
    remaining = lease_remaining(node)
    return remaining is not None and now + remaining > t + ttl


def watch_requests(node):
    """Watch requests the node's link to etcd saw, counted by its proxies."""
    return sum(p.watch_requests for p in node.link.proxies)


def watches_cut(node):
    return sum(p.watches_cut for p in node.link.proxies)


class Scenario(FaultCase):

    # --- helpers ---------------------------------------------------------------------

    def assert_nobody_produces(self, since_ns, until_ns, why):
        """No block after `since_ns` (the fenced producer's last) until `until_ns` plus
        0.5 s has passed."""
        left = (until_ns - time.monotonic_ns()) / NS + 0.5
        hold(lambda: not self.ledger.events("block", after=since_ns), max(0.5, left),
             f"nobody producing {why}")

    def cut_off_active(self, mode, delay=0.0, sim_faults=None, stop_timeout=None):
        """Common body of the partition scenarios: A produces, B validates; A's link to
        etcd gets `mode`. Checks that A's producer is stopped before its latest possible
        lease deadline (fault start + TTL) and that B takes over; returns (a, b)."""
        kwargs = {} if stop_timeout is None else {"stop_timeout": stop_timeout}
        a, (b,) = self.start_nodes(**kwargs)
        for name, value in (sim_faults or {}).items():
            a.nodeos_fault(name, value)
            b.nodeos_fault(name, value)
        if sim_faults:  # restart the producer so that it runs with the fault
            a, (b,) = self.restart_producer()
        pid = a.monitor.wait_nodeos_mode("producer", 2)
        t0 = time.monotonic_ns()
        a.link.set(mode, delay=delay)
        margin = self.assert_fenced_before(a, pid, t0 + self.ttl * NS, self.ttl + 1)
        first = self.ledger.wait_first_block(
            t0, b.name, 2 * self.ttl + LIVENESS_SLACK,
            f"{b.name} to take over while {a.name} is cut off ({mode})")
        self.assertGreater(first["t"], self.ledger.last_block_time(a.name, pid))
        self.assert_no_overlap()
        self.report(f"{mode}: fence margin (latest lease deadline minus last block)",
                    f"{margin * 1000:.0f} ms")
        self.report(f"{mode}: peer's first block after the fault began",
                    f"{ms(first['t'] - t0):.0f} ms (TTL {self.ttl} s)")
        return a, b

    def heal_and_check(self, heal, expect=None, bound=None, why=""):
        healed = time.monotonic_ns()
        heal()
        producer, took = self.assert_single_producer_after_heal(
            healed, bound or self.ttl + LIVENESS_SLACK, why)
        if expect is not None:
            self.assertEqual(producer.name, expect.name,
                             f"expected {expect.name} to produce after the heal, not "
                             f"{producer.name}\n" + ledger_excerpt(self.ledger, healed - 10 * NS))
        self.report("one producer after the heal", f"{producer.name} after {took * 1000:.0f} ms")
        return producer


class Faults(Scenario):
    """Scenarios on a one-member etcd."""

    # --- a monitor cut off from etcd -------------------------------------------------

    def test_partition_blackhole(self):
        """A's link to etcd loses every packet both ways; its nodeos ignores SIGTERM as a
        producer, so the fence must SIGKILL it. B takes over; SIGTERM to the cut-off A
        stays bounded; after the heal A validates and B keeps producing (no swap back)."""
        a, b = self.cut_off_active(
            "blackhole", sim_faults={"ignore-sigterm": "producer"}, stop_timeout=2 * self.ttl)
        a.monitor.wait_nodeos_mode("validator", self.ttl + 2)
        took = sigterm_and_time(a.monitor, self.stop_bound)
        self.report("SIGTERM to exit of the cut-off monitor", f"{took * 1000:.0f} ms")
        a.restart()
        a.monitor.wait_nodeos_mode("validator", self.ttl + 3)
        self.heal_and_check(a.link.heal, expect=b)
        a.monitor.wait_nodeos_mode("validator", self.ttl)

    def test_partition_requests_dropped(self):
        """A's requests are dropped (client to server), answers would flow; its nodeos
        keeps producing 1.5 s after SIGTERM, longer than the fence allows, so the fence
        escalates to SIGKILL before the deadline."""
        a, b = self.cut_off_active("drop_c2s", sim_faults={"stop-delay-ms": 1500})
        self.heal_and_check(a.link.heal, expect=b)
        a.monitor.wait_nodeos_mode("validator", self.ttl + 2)

    def test_partition_replies_dropped(self):
        """etcd handles A's keepalives but A never sees the answers: its lease lives on in
        etcd while A keeps sending, yet A must fence on its own deadline. B takes over once
        A has given the lease up and it expired (up to two TTLs). SIGTERM to A while its
        answers are lost stays bounded; A restarts as a validator before the heal."""
        a, b = self.cut_off_active("drop_s2c")
        took = sigterm_and_time(a.monitor, self.stop_bound)
        self.report("SIGTERM to exit of the monitor whose answers are lost", f"{took * 1000:.0f} ms")
        a.restart()
        a.monitor.wait_nodeos_mode("validator", self.ttl + 3)
        self.heal_and_check(a.link.heal, expect=b)
        a.monitor.wait_nodeos_mode("validator", self.ttl + 2)

    def test_partition_replies_stalled_then_delivered(self):
        """Answers to A are held (not lost) and all delivered at the heal, long after A gave
        up on them: late answers must not make A produce again."""
        a, b = self.cut_off_active("stall_s2c")
        healed = time.monotonic_ns()
        self.heal_and_check(a.link.heal, expect=b)
        self.assertEqual(self.ledger.events("producing", node=a.name, after=healed), [])

    def test_delay_small_keeps_producer(self):
        """200 ms added each way on the active's link (a slow WAN): renewals still succeed,
        so nothing changes: the same nodeos produces throughout."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        a.link.set("pass", delay=0.2)
        b.link.set("pass", delay=0.2)
        hold(lambda: self.producers() == [a.name] and pid_alive(pid), 3 * self.ttl,
             f"{a.name}'s nodeos {pid} alone producing despite the delay")
        a.link.heal()
        b.link.heal()
        self.assertEqual(self.ledger.events("producing", node=b.name), [])
        self.assert_no_overlap()

    def test_delay_large_fences(self):
        """1.5 s each way (a round trip longer than a keepalive may take): A fences before
        its deadline and B takes over. Then SIGTERM to B while A still cannot renew: nobody
        produces; after the heal A produces within TTL plus the slack."""
        a, b = self.cut_off_active("pass", delay=1.5)
        took = sigterm_and_time(b.monitor, self.stop_bound)
        self.report("SIGTERM to exit of the active peer", f"{took * 1000:.0f} ms")
        gone = time.monotonic_ns()
        hold(lambda: not self.ledger.events("producing", after=gone), 1.0,
             f"nobody producing while {a.name} cannot renew and {b.name} is gone")
        self.heal_and_check(a.link.heal, expect=a)
        self.assertTrue(self.ledger.events("producing", node=a.name, after=gone))

    # --- watches cut by the network -------------------------------------------------

    def test_watch_streams_cut(self):
        """Every watch on the lock key is cut right after it opens (an etcd behind a proxy
        or load balancer that ends streaming connections), on both nodes' links; other
        requests flow. A keeps producing alone; each monitor opens its watch at most once
        per renew interval (plus the backoff's first steps), measured at the proxies; SIGTERM
        to A still hands over to B, which finds the lock free by re-reading the key. The
        rate is asserted last, so that a monitor that re-opens too fast is still checked
        for safety and the handover first."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        renew = self.ttl / 3
        nodes = (a, b)
        for n in nodes:
            n.link.set("cut_watch")

        def a_alone():
            return self.producers() == [a.name] and pid_alive(pid)
        hold(a_alone, 3 * renew, f"{a.name} alone producing while watches are cut (warm-up)")
        before = {n.name: watch_requests(n) for n in nodes}
        started = time.monotonic()
        hold(a_alone, WATCH_RATE_WINDOW, f"{a.name} alone producing while watches are cut")
        opens = {n.name: watch_requests(n) - before[n.name] for n in nodes}
        window = time.monotonic() - started
        for n in nodes:
            n.monitor.assert_running()  # a dead monitor opens no watch: it must not pass
        allowed = int(window / renew) + WATCH_REOPEN_ALLOWANCE
        for n in nodes:
            self.report(f"{n.name}: watch opens at the proxy",
                        f"{opens[n.name]} in {window:.1f} s ({opens[n.name] * 60 / window:.0f}/min; "
                        f"at most {allowed} allowed, renew interval {renew:.1f} s)")

        sent = time.monotonic_ns()
        took = sigterm_and_time(a.monitor, self.stop_bound)
        bound = took + renew + CUT_WATCH_HANDOVER_SLACK
        what = (f"{b.name} to produce within {bound:.1f} s of the SIGTERM to {a.name} ({a.name}'s "
                f"stop took {took:.1f} s; with its watch cut, {b.name} re-reads the key at most "
                f"{renew:.1f} s apart)")
        first = self.ledger.wait_first_block(sent, b.name, renew + CUT_WATCH_HANDOVER_SLACK, what)
        self.assertLessEqual((first["t"] - sent) / NS, bound, what)
        producer, _ = self.assert_single_producer_after_heal(sent, bound + 1.0, "after the handover")
        self.assertEqual(producer.name, b.name)
        self.report("SIGTERM handover with watches cut",
                    f"stop {took * 1000:.0f} ms, {b.name}'s first block {ms(first['t'] - sent):.0f} ms "
                    f"after the SIGTERM (bound {bound * 1000:.0f} ms)")
        self.assert_no_overlap()

        for n in nodes:
            self.assertGreater(watches_cut(n), 0,
                               f"the proxy cut none of {n.name}'s watches: the fault was not in effect")
        for n in nodes:
            self.assertLessEqual(
                opens[n.name], allowed,
                f"{n.name} opened its watch {opens[n.name]} times in {window:.1f} s with every "
                f"watch cut at once ({opens[n.name] * 60 / window:.0f}/min); expected at most "
                f"{allowed}: one per renew interval ({renew:.1f} s) plus {WATCH_REOPEN_ALLOWANCE} "
                f"for the backoff's first steps\n{n.monitor.log_tail(15)}")

    # --- a frozen, killed monitor ----------------------------------------------------

    def test_monitor_sigstop_deadman(self):
        """The active monitor frozen longer than the TTL: it cannot fence anything, so its
        dead-man timer must have the kernel kill it before its lease deadline, and every
        nodeos it started dies with it. B produces once the lease has expired (within
        FROZEN_TAKEOVER_SLACK of it), with no overlap. A frozen standby is left alone (its
        switch is disarmed). SIGCONT to the dead one changes nothing; it restarts as a
        validator."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        t0 = time.monotonic_ns()
        a.monitor.signal(signal.SIGSTOP)
        code = a.monitor.wait_exit(self.ttl + 1)
        died = time.monotonic_ns()
        self.assertEqual(code, -signal.SIGKILL, "expected the dead-man timer's SIGKILL")
        a.monitor.assert_nodeos_gone(1.0)
        gone = time.monotonic_ns()
        deadline = t0 + self.ttl * NS
        self.assertLess(gone, deadline, "the frozen monitor's nodeos outlived the lease deadline")
        last = self.ledger.last_block_time(a.name, pid)
        self.assertLess(last, deadline, "the frozen monitor's nodeos produced past the lease deadline")
        first = self.ledger.wait_first_block(
            t0, b.name, self.ttl + FROZEN_TAKEOVER_SLACK,
            f"{b.name} to take over within TTL + {FROZEN_TAKEOVER_SLACK:g} s of the freeze")
        self.assertGreater(first["t"], last, f"{b.name} produced before the frozen monitor's nodeos stopped")
        self.assert_no_overlap()
        self.report("dead-man kill after SIGSTOP", f"{ms(died - t0):.0f} ms (TTL {self.ttl} s, "
                    f"nodeos gone {ms(deadline - gone):.0f} ms before the latest deadline)")
        self.report("peer's first block after the freeze", f"{ms(first['t'] - t0):.0f} ms")
        try:
            os.kill(a.monitor.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        a.restart()
        a.monitor.wait_nodeos_mode("validator", self.ttl + 3)
        # Now freeze the standby past its TTL: it must survive and stay standby.
        a.monitor.signal(signal.SIGSTOP)
        hold(lambda: a.monitor.poll() is None, self.ttl + 1,
             "a standby monitor frozen past its TTL to be left alive")
        a.monitor.signal(signal.SIGCONT)
        self.heal_and_check(lambda: None, expect=b)
        a.monitor.wait_nodeos_mode("validator", self.ttl + 3)

    def test_monitor_sigkill_restart(self):
        """SIGKILL of the active monitor: its nodeos dies at once; B takes over after the
        lease; A restarts as a validator; SIGTERM to B hands the lock back to A at once."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        t0 = time.monotonic_ns()
        a.monitor.signal(signal.SIGKILL)
        a.monitor.wait_exit(2)
        wait_until(lambda: not pid_alive(pid), 1, f"nodeos {pid} to die with its monitor")
        self.ledger.wait_first_block(
            t0, b.name, self.ttl + LIVENESS_SLACK,
            f"{b.name} to take over")
        a.restart()
        a.monitor.wait_nodeos_mode("validator", self.ttl + 3)
        sent = time.monotonic_ns()
        took = sigterm_and_time(b.monitor, self.stop_bound)
        first = self.ledger.wait_first_block(sent, a.name, 3,
                                             f"{a.name} to take over at once after B's SIGTERM")
        self.report("SIGTERM handover to the restarted monitor",
                    f"stop {took * 1000:.0f} ms, first block {ms(first['t'] - sent):.0f} ms")
        self.assert_no_overlap()

    def assert_killed_after_sigterm(self, node, pid, since_ns, mark, why):
        """node's nodeos `pid`, which ignores SIGTERM, got SIGTERM after since_ns, never
        stopped gracefully, and was SIGKILLed for `why` (the log's cause)."""
        self.assertTrue(self.ledger.events("sigterm", pid=pid, after=since_ns),
                        f"{node.name}'s nodeos {pid} was not sent SIGTERM before the SIGKILL")
        self.assertEqual(self.ledger.events("stop", pid=pid), [],
                         f"{node.name}'s nodeos {pid} stopped gracefully although it ignores SIGTERM")
        node.monitor.wait_for_log(rf"SIGKILL to nodeos pid {pid}: .*\[{why}\]$", 1, since=mark, flags=re.MULTILINE)

    # --- etcd faults (one member) ----------------------------------------------------

    def test_etcd_sigstop(self):
        """etcd frozen past the TTL while A produces (its nodeos ignores SIGTERM, the stop
        timeout is longer than the TTL): A's producer is killed before the deadline; nobody
        produces while etcd is frozen; SIGTERM to the standby B is bounded; after the thaw
        one node produces."""
        a, (b,) = self.start_nodes(stop_timeout=2 * self.ttl)
        a.nodeos_fault("ignore-sigterm", "producer")
        b.nodeos_fault("ignore-sigterm", "producer")
        a, (b,) = self.restart_producer()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        etcd = self.cluster.members[0]
        mark = a.monitor.log_mark()
        t0 = time.monotonic_ns()
        etcd.pause()
        try:
            margin = self.assert_fenced_before(a, pid, t0 + self.ttl * NS, self.ttl + 1)
            # The stop timeout (2 TTL) is longer than the lease: the fence itself escalated
            # from its SIGTERM, which nodeos ignored, to SIGKILL.
            self.assert_killed_after_sigterm(a, pid, t0, mark, "fence_deadline")
            self.report("etcd frozen: fence margin (latest lease deadline minus last block)",
                        f"{margin * 1000:.0f} ms (TTL {self.ttl} s)")
            took = sigterm_and_time(b.monitor, self.stop_bound)
            self.report("SIGTERM to exit of the standby with etcd frozen", f"{took * 1000:.0f} ms")
            self.assert_nobody_produces(self.ledger.last_block_time(a.name, pid),
                                        t0 + self.ttl * NS, "while etcd is frozen")
        finally:
            etcd.resume()
        self.heal_and_check(lambda: None, expect=a)

    def test_etcd_kill_restart_same_producer(self):
        """etcd SIGKILLed while A produces and kept down past the TTL (A fences), then
        restarted with its data: A's lease survived, so A must produce again (it adopts
        its lease) and B must not: no needless swap after a total outage."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        etcd = self.cluster.members[0]
        (before,) = etcd.get(self.group)
        t0 = time.monotonic_ns()
        etcd.kill()
        self.assert_fenced_before(a, pid, t0 + self.ttl * NS, self.ttl + 1)
        time.sleep(1.0)  # the outage lasts past the deadline
        etcd.start()
        healed = time.monotonic_ns()
        producer = self.heal_and_check(lambda: None, expect=a)
        self.assertEqual(self.ledger.events("producing", node=b.name), [],
                         "B produced: a needless swap after the outage")
        # The lock is still the key A wrote before the outage, under the same lease: A
        # renewed that lease (row L8, etcd back in time for its renewal past the deadline,
        # or K5, found by a campaign under a new lease that A then gave back).
        (after,) = etcd.get(self.group)
        self.assertEqual((after["lease"], after["create_revision"]), (before["lease"], before["create_revision"]),
                         f"the lock key after the outage is not the one A held before it: {after} against {before}")
        a.monitor.wait_for_log(r"earlier lease|of this monitor is alive: it is ours again", 1)
        self.report("etcd down", f"{ms(healed - t0):.0f} ms; same producer after: {producer.name}")

    def test_etcd_sigterm_restart_short(self):
        """etcd restarted gracefully, quickly (well within the TTL): the producer may keep
        going or fence, but there is never an overlap and one node produces afterwards."""
        a, (b,) = self.start_nodes()
        etcd = self.cluster.members[0]
        etcd.kill(signal.SIGTERM)
        etcd.start()
        self.heal_and_check(lambda: None)

    # --- nodeos faults ---------------------------------------------------------------

    def test_nodeos_crash_then_sigterm(self):
        """The active nodeos crashes (SIGSEGV): A releases the lock at once and B produces
        within about a second; SIGTERM to A right after the crash stays bounded."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        t0 = time.monotonic_ns()
        os.kill(pid, signal.SIGSEGV)
        first = self.ledger.wait_first_block(t0, b.name, self.ttl,
                                             f"{b.name} to take over after the crash")
        took = sigterm_and_time(a.monitor, self.stop_bound)
        self.report("peer's first block after the crash", f"{ms(first['t'] - t0):.0f} ms")
        self.report("SIGTERM to exit after the crash", f"{took * 1000:.0f} ms")
        self.assert_no_overlap()

    def test_crash_loop_two_sick_nodes(self):
        """Both nodes' producers crash 600 ms after they start. Each node takes itself out
        of the race after 3 quick exits: a bounded number of takeovers, then quiet (no
        ping-pong); once healthy again one node produces."""
        a, (b,) = self.start_nodes()
        loop = 3
        for n in (a, b):
            n.nodeos_fault("crash-producer-ms", 600)
        t0 = time.monotonic_ns()
        os.kill(a.monitor.wait_nodeos_mode("producer", 1), signal.SIGKILL)
        # Both out of the race: no new producer for a whole TTL, within 5 TTLs.
        quiet = []

        def settled():
            last = self.ledger.events("producing", after=t0)
            since = last[-1]["t"] if last else t0
            quiet[:] = [len(last)]
            return time.monotonic_ns() - since > (self.ttl + 1) * NS
        wait_until(settled, 5 * self.ttl + 5, "both sick nodes to stop taking the lock")
        runs = quiet[0]
        self.assertLessEqual(runs, 2 * loop, f"{runs} takeovers: lock ping-pong")
        for n in (a, b):
            n.monitor.wait_for_log(r"not a candidate", 1)
        self.report("takeovers before both sick nodes left the race", runs)
        self.assert_no_overlap()
        for n in (a, b):
            n.clear_nodeos_faults()
        cleared = time.monotonic_ns()
        # A node runs stably for 3 TTLs before it campaigns again.
        self.heal_and_check(lambda: None, bound=3 * self.ttl + self.ttl + LIVENESS_SLACK,
                            why="a node must first run stably for 3 TTLs")
        self.report("producing again after the nodes recovered",
                    f"{ms(self.ledger.events('producing', after=cleared)[0]['t'] - cleared):.0f} ms")

    def test_standby_crash_loop_never_campaigns(self):
        """B's validator crashes every 500 ms. When A stops (SIGTERM releases the lock), B
        must not take it while it is crash-looping; once B runs stably it does."""
        a, (b,) = self.start_nodes()
        b.nodeos_fault("crash-validator-ms", 500)
        mark = b.monitor.log_mark()
        os.kill(b.monitor.wait_nodeos_mode("validator", 1), signal.SIGKILL)
        b.monitor.wait_for_log(r"exit [3-9] in a row", 3 * self.ttl, since=mark)
        took = sigterm_and_time(a.monitor, self.stop_bound)
        gone = time.monotonic_ns()
        hold(lambda: not self.ledger.events("producing", after=gone), self.ttl + 1,
             "no producer while the only candidate is crash-looping")
        b.clear_nodeos_faults()
        healed = time.monotonic_ns()
        producer = self.heal_and_check(lambda: None, expect=b,
                                       bound=4 * self.ttl + LIVENESS_SLACK,
                                       why="B must first run stably for 3 TTLs")
        self.report("SIGTERM to exit of the healthy active", f"{took * 1000:.0f} ms")
        self.report("sick standby producing after it recovered",
                    f"{ms(self.ledger.events('producing', node=producer.name)[-1]['t'] - healed):.0f} ms")

    def test_sigterm_nodeos_ignores_sigterm(self):
        """SIGTERM to the active monitor whose nodeos ignores SIGTERM: nodeos gets SIGTERM
        first, SIGKILL after the stop timeout (2 s), and the monitor exits 0 within it plus
        2 s; B takes over after, no overlap."""
        a, (b,) = self.start_nodes(stop_timeout=2)
        # As a producer only: a validator that ignores SIGTERM could not be promoted but by
        # SIGKILL, and its dirty database would be replayed first.
        a.nodeos_fault("ignore-sigterm", "producer")
        b.nodeos_fault("ignore-sigterm", "producer")
        a, (b,) = self.restart_producer()
        pid = a.monitor.wait_nodeos_mode("producer", 2)
        mark = a.monitor.log_mark()
        sent = time.monotonic_ns()
        took = sigterm_and_time(a.monitor, 2.0)
        self.assertGreaterEqual(took, 1.9, "nodeos ignores SIGTERM: it cannot stop before the timeout")
        self.assert_killed_after_sigterm(a, pid, sent, mark, "stop_timeout")
        first = self.ledger.wait_first_block(sent, b.name, took + 3, f"{b.name} to take over")
        self.report("SIGTERM to exit, nodeos ignoring SIGTERM (stop timeout 2 s)",
                    f"{took * 1000:.0f} ms; peer's first block after {ms(first['t'] - sent):.0f} ms")
        self.assert_no_overlap()

    def test_sigterm_slow_shutdown(self):
        """SIGTERM to the active monitor whose nodeos keeps producing 1.5 s after SIGTERM:
        the monitor waits (within its stop timeout), then releases; B produces only after
        A's last block."""
        a, (b,) = self.start_nodes()
        a.nodeos_fault("stop-delay-ms", 1500)
        b.nodeos_fault("stop-delay-ms", 1500)
        a, (b,) = self.restart_producer()
        sent = time.monotonic_ns()
        took = sigterm_and_time(a.monitor, self.stop_bound)
        first = self.ledger.wait_first_block(sent, b.name, took + 3, f"{b.name} to take over")
        self.report("slow shutdown: SIGTERM to exit", f"{took * 1000:.0f} ms; peer's first "
                    f"block {ms(first['t'] - sent):.0f} ms after the SIGTERM")
        self.assert_no_overlap()


class PausedFaults(Scenario):
    """Hot standby (--standby-mode paused): every node runs the producer config, paused; a
    fence is a pause, confirmed and waited out for one block interval, and a SIGKILL only
    when the pause cannot be confirmed in time."""

    def start_paused(self, **kwargs):
        a, (b,) = self.start_nodes(standby_mode="paused", **kwargs)
        return a, b

    def test_paused_partition_fenced_by_pause(self):
        """The producer cut off from etcd is paused before its lease deadline: its last
        block (the one in progress at the pause included) comes first, its nodeos lives on
        (no SIGKILL, no dirty database), and the peer resumes once the lease expired."""
        a, b = self.start_paused()
        pid = a.monitor.wait_producing(2)
        standby_pid = b.monitor.wait_standby(2)
        mark = a.monitor.log_mark()
        t0 = time.monotonic_ns()
        a.link.set("blackhole")
        latest = t0 + self.ttl * NS  # the latest possible lease deadline
        paused = wait_until(lambda: self.ledger.events("paused", pid=pid, after=t0), self.ttl + 1,
                            f"{a.name}'s producer to be paused by the fence")[0]
        last = self.ledger.last_block_time(a.name, pid)
        self.assertLess(paused["t"], latest, "the pause took effect after the lease deadline")
        self.assertLess(last, latest, "a block was signed after the lease deadline")
        first = self.ledger.wait_first_block(t0, b.name, 2 * self.ttl + LIVENESS_SLACK,
                                             f"{b.name} to resume while {a.name} is cut off")
        self.assertGreater(first["t"], last)
        self.assertTrue(pid_alive(pid), "the fenced producer was killed, not paused")
        self.assertEqual(b.monitor.latest_nodeos()["pid"], standby_pid, "the standby was restarted")
        a.monitor.wait_for_log(r"pause nodeos: .* \[fence_deadline\]$", 1, since=mark,
                               flags=re.MULTILINE)
        self.assertNotRegex(a.monitor.log_text(mark), r"SIGKILL to nodeos", "a fence by pause needs no kill")
        self.assert_no_overlap()
        self.report("fenced by pause: margin (latest lease deadline minus the pause taking effect)",
                    f"{ms(latest - paused['t']):.0f} ms; last block {ms(latest - last):.0f} ms before")
        # Healed, the old producer stands by, paused, with the same nodeos.
        a.link.heal()
        hold(lambda: pid_alive(pid) and not a.monitor.producing_now(pid), 2 * self.ttl,
             f"{a.name} standing by with its paused nodeos after the heal")
        self.assert_no_overlap()

    def pause_refused(self, mode):
        """The producer cut off from etcd, its pause hanging, answered with an error, or
        acknowledged and ignored: it is killed before its lease deadline."""
        a, b = self.start_paused()
        pid = a.monitor.wait_producing(2)
        a.nodeos_fault("pause", mode)
        t0 = time.monotonic_ns()
        a.link.set("blackhole")
        margin = self.assert_fenced_before(a, pid, t0 + self.ttl * NS, self.ttl + 1)
        self.ledger.wait_first_block(t0, b.name, 2 * self.ttl + LIVENESS_SLACK,
                                     f"{b.name} to resume while {a.name} is cut off")
        a.monitor.wait_for_log(r"SIGKILL to nodeos pid \d+: .*\[fence_deadline\]$", 1, flags=re.MULTILINE)
        self.assert_no_overlap()
        self.report(f"pause {mode}: fence margin (latest lease deadline minus last block)",
                    f"{margin * 1000:.0f} ms")
        a.nodeos_fault("pause", None)
        a.link.heal()
        # Killed, its database is dirty: replayed (--dirty-db-args), then standing by again.
        a.monitor.wait_for_log(r"\[dirty_database, nodeos running -> down\]", self.ttl + 5)
        a.monitor.wait_standby(self.ttl + 10)
        self.assert_no_overlap()

    def test_paused_partition_pause_hangs(self):
        self.pause_refused("hang")

    def test_paused_partition_pause_refused(self):
        self.pause_refused("error")

    def test_paused_partition_pause_ignored(self):
        self.pause_refused("ignore")

    def test_paused_producer_api_hangs(self):
        """The producer's API stops answering: it has failed. It is paused if it can be, else
        killed, the lock is handed over, and it is restarted; the peer resumes."""
        a, b = self.start_paused()
        pid = a.monitor.wait_producing(2)
        t0 = time.monotonic_ns()
        a.nodeos_fault("api", "hang")
        wait_until(lambda: not pid_alive(pid), 5, f"{a.name}'s hung producer to be stopped")
        first = self.ledger.wait_first_block(t0, b.name, 5, f"{b.name} to take over from the hung producer")
        a.monitor.wait_for_log(r"the producer has failed: its API has not answered .*\[producer_unhealthy\]$", 1,
                               flags=re.MULTILINE)
        self.assert_no_overlap()
        self.report("hung producer API: peer's first block after the API hung", f"{ms(first['t'] - t0):.0f} ms")
        a.nodeos_fault("api", None)
        a.monitor.wait_standby(10)  # restarted (its database replayed), standing by
        self.assert_no_overlap()


class ClusterFaults(Scenario):
    """Scenarios on a three-member etcd whose members talk through proxies."""
    etcd_size = 3

    # --- a three-member cluster ------------------------------------------------------

    def test_cluster_leader_killed(self):
        """The etcd leader SIGKILLed: a new leader within about a second; leases are
        extended, never shortened; one producer all along or soon after; the old leader
        restarts with its data and rejoins; SIGTERM to the active hands over."""
        a, (b,) = self.start_nodes()
        leader = self.cluster.leader()
        t0 = time.monotonic_ns()
        leader.kill()
        self.cluster.leader()
        elected = time.monotonic_ns()
        producer, _ = self.assert_single_producer_after_heal(elected, self.ttl + LIVENESS_SLACK,
                                                             "after the new leader")
        self.report("new leader after", f"{ms(elected - t0):.0f} ms; producer {producer.name}"
                    f"{' (no swap)' if producer is a else ' (swapped)'}")
        leader.start()
        self.cluster.wait_healthy()
        other = b if producer is a else a
        sent = time.monotonic_ns()
        took = sigterm_and_time(producer.monitor, self.stop_bound)
        self.ledger.wait_first_block(sent, other.name, 3,
                                     f"{other.name} to take over after SIGTERM")
        self.report("SIGTERM handover after the leader change", f"{took * 1000:.0f} ms")
        self.assert_no_overlap()

    def test_cluster_member_cut_off(self):
        """The etcd leader cut off from its peers; clients still reach it, and their requests
        to it hang. It is made the first endpoint of every monitor, so that both monitors
        talk to it when the cut begins and B, restarted during the cut, starts there too.
        Asserted during the cut, each within a bound derived from the TTL and etcd's
        election timeout (cut_settle()):

          - each monitor moves off the cut-off member to another endpoint and renews its
            lease through the rest of the cluster, which has elected a leader of its own;
          - then one node produces alone: A's producer went on producing, or was fenced (a
            renewal hung past the fence point) and replaced, by A again once it renewed or
            by B if A's lease ran out, within LIVENESS_SLACK;
          - SIGTERM to B exits 0 within its stop bound, and A is then the only producer;
          - B restarted meets the hang at its first request, moves on, and runs a validator
            while A goes on producing with the same nodeos for a TTL, neither monitor back
            on the cut-off member.

        No two producers at any instant, throughout; after the heal (the old leader rejoins
        and may force another election) one producer within two TTLs plus the slack."""
        first = self.cluster.members[0]  # the endpoint each monitor starts with
        leader = self.cluster.leader()
        if leader is not first:
            status = first.status()
            self.assertIsNotNone(status, f"etcd member {first.name} answers its status")
            leader.request("/v3/maintenance/transfer-leadership", {"targetID": status[0]})
            wait_until(lambda: self.cluster.leader() is first, 5,
                       f"the leadership to move to {first.name}, the first endpoint")
        a, (b,) = self.start_nodes()
        renew = self.ttl / 3
        settle = cut_settle(self.ttl)
        cut_port = {n.name: n.link.proxies[0].port for n in (a, b)}
        for n in (a, b):
            self.assertEqual(current_endpoint(n), cut_port[n.name],
                             f"{n.name} talks to the leader {first.name} before the cut (its first endpoint)\n"
                             + n.monitor.log_tail(15))
        pid = a.monitor.wait_producing(2)
        marks = {n.name: n.monitor.log_mark() for n in (a, b)}
        t0 = time.monotonic_ns()
        self.cluster.isolate(first)

        # Each monitor moves off the member whose requests hang, then renews elsewhere.
        moved, renewed = {}, {}

        def settled():
            now = time.monotonic()
            for n in (a, b):
                if n.name not in moved and moved_off(n, cut_port[n.name], marks[n.name]):
                    moved[n.name] = now
                elif n.name in moved and n.name not in renewed and renewed_since(n, moved[n.name], self.ttl):
                    renewed[n.name] = now
            return len(renewed) == 2
        try:
            wait_until(settled, settle, f"both monitors to move off the cut-off member {first.name} and renew "
                                        f"their leases through another member within {settle:.1f} s of the cut")
        except AssertionError as e:
            tails = "\n".join(n.monitor.log_tail(20) for n in (a, b))
            raise AssertionError(f"{e}; moved off: {sorted(moved) or 'none'}, renewed since: "
                                 f"{sorted(renewed) or 'none'}\n{tails}") from None
        self.assert_no_overlap()

        # The producer went on, or was fenced and replaced: one node produces alone.
        renewals_done = time.monotonic_ns()
        name = wait_stable_producer(self.ledger, self.producing_window_ms, LIVENESS_SLACK)
        producer = self.node_named(name)
        current = producer.monitor.latest_nodeos()
        self.assertIsNotNone(current, f"{name} produces with a nodeos of its own monitor")
        kept = producer is a and current["pid"] == pid
        if kept:
            self.assertEqual(self.ledger.events("sigterm", pid=pid, after=t0), [],
                             f"{a.name}'s producer {pid} got SIGTERM during the cut, yet produces on")
            outcome = f"{a.name}'s producer {pid} produced throughout"
        else:
            self.assertFalse(pid_alive(pid), f"{a.name}'s producer {pid} is still alive beside the new "
                             f"producer {current['pid']} of {name}")
            last = self.ledger.last_block_time(a.name, pid)
            new_first = self.ledger.events("block", pid=current["pid"])[0]["t"]
            self.assertGreater(new_first, last, f"{name}'s producer began before {a.name}'s last block")
            outcome = (f"{a.name}'s producer {pid} fenced {ms(last - t0):.0f} ms after the cut, replaced by "
                       f"{name} {ms(new_first - last):.0f} ms after its last block")
        self.assert_no_overlap()
        self.report("the cut: monitors off the cut-off member",
                    ", ".join(f"{n.name} moved {1000 * (moved[n.name] - t0 / NS):.0f} ms, renewed "
                              f"{1000 * (renewed[n.name] - t0 / NS):.0f} ms after the cut" for n in (a, b))
                    + f" (bound {settle * 1000:.0f} ms)")
        self.report("the cut: the producer", f"{outcome}; one producer alone "
                    f"{ms(time.monotonic_ns() - renewals_done):.0f} ms after both renewed")

        # SIGTERM to B during the cut: A is the only producer after it.
        sent = time.monotonic_ns()
        took = sigterm_and_time(b.monitor, self.stop_bound)
        after_stop, _ = self.assert_single_producer_after_heal(
            sent, took + self.ttl + LIVENESS_SLACK, f"after {b.name}'s SIGTERM during the cut")
        self.assertIs(after_stop, a, f"{a.name}, the only node left, produces after {b.name}'s SIGTERM")
        if producer is a:
            self.assertEqual(a.monitor.latest_nodeos()["pid"], current["pid"],
                             f"{a.name}'s producer was restarted by {b.name}'s SIGTERM")
        self.report("SIGTERM to exit of a monitor while the leader is cut off", f"{took * 1000:.0f} ms")

        # B restarted during the cut starts on the cut-off member: it must move on.
        b.restart()
        started = time.monotonic()
        bound = renew + 2.0  # its first request times out after TTL/3; 2 s for its start
        wait_until(lambda: moved_off(b, cut_port[b.name], 0), bound,
                   f"the restarted {b.name} to move off the cut-off member {first.name}, where its first "
                   f"request hangs, within {bound:.1f} s")
        left = time.monotonic() - started
        validator = b.monitor.wait_nodeos_mode("validator", self.ttl + 3)
        a_pid = a.monitor.wait_producing(2)

        def steady():
            return (self.producers() == [a.name] and pid_alive(a_pid) and pid_alive(validator)
                    and current_endpoint(a) != cut_port[a.name] and current_endpoint(b) != cut_port[b.name])
        hold(steady, self.ttl, f"{a.name} alone producing with nodeos {a_pid}, the restarted {b.name} "
                               f"validating with nodeos {validator}, neither back on {first.name}")
        self.report("the restarted monitor off the cut-off member", f"{left * 1000:.0f} ms after its start "
                    f"(bound {bound * 1000:.0f} ms)")
        self.assert_no_overlap()
        self.heal_and_check(self.cluster.heal, bound=2 * self.ttl + LIVENESS_SLACK,
                            why="a leader change extends leases by up to a TTL")

    def keepalives_by_member(self):
        """LeaseKeepAlive RPCs each member has served (the gateway's renewals; a renewal a
        follower passes on to the leader is counted by the follower alone)."""
        counts = {}
        for m in self.cluster.members:
            with urllib.request.urlopen(m.url + "/metrics", timeout=2) as r:
                samples = metric_samples(r.read().decode())
            counts[m.name] = sum(v for k, v in samples.items() if k.startswith("grpc_server_started_total{")
                                 and 'grpc_method="LeaseKeepAlive"' in k)
        return counts

    def wait_keepalives_only_to(self, member, bound, what):
        """Waits until, over a window of two renew intervals, every keepalive went to
        `member` (each monitor renews at least once in it); returns when that window began."""
        window = 2 * self.ttl / 3
        deadline = time.monotonic() + bound
        while True:
            began = time.monotonic_ns()
            before = self.keepalives_by_member()
            time.sleep(window)
            after = self.keepalives_by_member()
            served = {name: after[name] - before[name] for name in after}
            others = sum(n for name, n in served.items() if name != member.name)
            if served[member.name] >= 2 and others == 0:
                return began
            if time.monotonic() > deadline:
                self.fail(f"keepalives {what}: expected all of them at the leader {member.name} within "
                          f"{bound:.1f} s; the last {window:.1f} s served {served}")

    def test_cluster_keepalives_follow_the_leader(self):
        """Each monitor renews its lease at the etcd leader, where a renewal costs etcd least
        (a follower passes each one on): within a few renewals of its start, and within a
        few after the leadership moves to another member. The producer produces on."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 2)
        t0 = time.monotonic_ns()
        leader = self.cluster.leader()
        found = self.wait_keepalives_only_to(leader, 3 * self.ttl, "after the start")
        target = next(m for m in self.cluster.members if m is not leader)
        target_id, _ = target.status()
        leader.request("/v3/maintenance/transfer-leadership", {"targetID": target_id})
        moved = time.monotonic_ns()
        self.assertIs(self.cluster.leader(), target, "the leadership moved as asked")
        followed = self.wait_keepalives_only_to(target, 3 * self.ttl, "after the leadership moved")
        self.assertEqual(self.ledger.events("start", after=t0), [], "no nodeos started on the way")
        self.assertTrue(pid_alive(pid), f"{a.name}'s producer (pid {pid}) runs on")
        self.assert_no_overlap()
        self.report("every keepalive at the leader", f"from {ms(found - t0):.0f} ms after both produced and "
                    f"validated; at the new leader {ms(followed - moved):.0f} ms after it took over "
                    f"(windows of {2 * self.ttl / 3:.1f} s)")

    def test_cluster_leader_out_of_one_monitors_reach(self):
        """The producer's link to the etcd leader cut, the cluster whole: it renews through
        a follower and never moves its renewals to a leader it cannot reach (a renewal that
        hangs would cost a fence); it asks the leader's endpoint for its status now and
        then, off every deadline's path, and produces on, unfenced. Once the link heals, its
        renewals move to the leader within about ten renewals."""
        first = self.cluster.members[0]  # the endpoint each monitor starts with
        leader = self.cluster.leader()
        if leader is first:
            target_id, _ = self.cluster.members[1].status()
            first.request("/v3/maintenance/transfer-leadership", {"targetID": target_id})
            leader = self.cluster.leader()
            self.assertIsNot(leader, first, "the leadership moved off the first endpoint")
        a = self.node("node-a")
        leader_link = a.link.proxies[self.cluster.members.index(leader)]
        leader_link.set("blackhole")
        self.assertIs(self.wait_producer(self.ttl + 10), a)
        pid = a.monitor.wait_producing(5)
        self.node("node-b").monitor.wait_standby(self.ttl + 5)
        switch_to_leader = re.compile(r"leads \(term \d+\); switching to 127\.0\.0\.1:" + str(leader_link.port))
        mark = a.monitor.log_mark()
        renewals = 12  # past the ten after which the leader's endpoint is asked again
        hold(lambda: pid_alive(pid) and not switch_to_leader.search(a.monitor.log_text())
             and "keepalive failed" not in a.monitor.log_text(mark),
             renewals * self.ttl / 3, f"{a.name} producing, renewing through a follower, never moved to the "
                                      f"leader it cannot reach")
        question_failed = r"/v3/maintenance/status failed: .*127\.0\.0\.1:" + str(leader_link.port)
        wait_until(lambda: len(re.findall(question_failed, a.monitor.log_text())) >= 2, 11 * self.ttl / 3 + 3,
                   "the leader's endpoint asked at the start and again within ten renewals")
        asked = len(re.findall(question_failed, a.monitor.log_text()))
        healed = time.monotonic_ns()
        leader_link.heal()
        a.monitor.wait_for_log(switch_to_leader.pattern, 11 * self.ttl / 3 + 3, since=mark)
        self.assertTrue(pid_alive(pid), f"{a.name}'s producer (pid {pid}) runs on")
        self.assert_no_overlap()
        self.report("renewals at the leader after the link healed",
                    f"{ms(time.monotonic_ns() - healed):.0f} ms; status questions to it while cut: {asked}")

    def test_cluster_quorum_lost(self):
        """Two of three members SIGKILLed (the followers): requests to the leader left
        alone hang about 7 s, then fail. A fences before its deadline; nobody produces;
        SIGTERM to the standby is bounded; the two restart with their data; A produces again
        (its lease survives the outage: no needless swap)."""
        a, (b,) = self.start_nodes()
        pid = a.monitor.wait_nodeos_mode("producer", 1)
        # The two followers: the leader stays up, alone, which is the harder case: it goes on
        # acknowledging keepalives until it notices the lost quorum and steps down (etcd
        # 3.4 renews leases on the leader without a quorum round; check-quorum steps it
        # down within two election timeouts, 2 s here). So the latest possible lease
        # deadline is the fault + TTL + 2 s; etcd cannot let a peer take the lock before it,
        # as no leader can be elected without the quorum.
        leader = self.cluster.leader()
        victims = [m for m in self.cluster.members if m is not leader]
        t0 = time.monotonic_ns()
        for m in victims:
            m.kill()
        latest = t0 + (self.ttl + 2) * NS
        margin = self.assert_fenced_before(a, pid, latest, self.ttl + 3)
        last = self.ledger.last_block_time(a.name, pid)
        self.report("quorum lost: producer's last block after the fault",
                    f"{ms(last - t0):.0f} ms (TTL {self.ttl} s; margin to fault + TTL + 2 s: "
                    f"{margin * 1000:.0f} ms)")
        took = sigterm_and_time(b.monitor, self.stop_bound)
        self.report("SIGTERM to exit of the standby without quorum", f"{took * 1000:.0f} ms")
        self.assert_nobody_produces(last, latest, "without a quorum")
        for m in victims:
            m.start(wait=False)
        self.cluster.wait_healthy()
        healed = time.monotonic_ns()
        self.heal_and_check(lambda: None, expect=a, bound=2 * self.ttl + LIVENESS_SLACK,
                            why="the new leader extends leases")
        self.report("quorum back after", f"{ms(healed - t0):.0f} ms")


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""End-to-end tests of the nodeos that producers really run: hot standby through the
producer API (--standby-mode paused), health-gated candidacy (--nodeos-api), and the dirty
database after a SIGKILL (--dirty-db-args). Real etcd, real monitors, the nodeos simulator
(tests/nodeos_sim.py: its API, its pause that lets the block in progress through, its dirty
flag, its head that follows the chain), real signals; the shared ledger is the proof.

Run one with: python3 tests/e2e/test_standby.py Standby.test_one_producer_chain
(NM_MONITOR names the binary; default build/nodeos-monitor)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    SIM, MonitorTestCase, free_port, hold, metric_samples, ms, stop_pid, wait_until)

NS = 1_000_000_000


def http_get(addr, path, timeout=2.0):
    """(status, body) of a GET to the monitor's endpoint."""
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def status_of(monitor):
    return json.loads(http_get(monitor.metrics_addr, "/status")[1])


def metric(monitor, name):
    """The value of one sample of the monitor's /metrics (name with its labels but group and
    node), or None."""
    return metric_samples(http_get(monitor.metrics_addr, "/metrics")[1]).get(name)


class StandbyCase(MonitorTestCase):

    def control(self, name):
        """The simulator fault controls of node `name` (see nodeos_sim.py: lag-ms, stall,
        api, pause), passed to its nodeos as --sim-control."""
        path = os.path.join(self.workdir, f"control-{name}")
        os.makedirs(path, exist_ok=True)
        return path

    def fault(self, name, key, value=None):
        path = os.path.join(self.control(name), key)
        if value is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        staging = os.path.join(self.control(name), f".{key}")
        with open(staging, "w", encoding="utf-8") as f:
            f.write(str(value))
        os.replace(staging, path)

    def spawn(self, name, **kwargs):
        kwargs.setdefault("sim_args", [f"--sim-control={self.control(name)}"])
        return self.spawn_monitor(name, **kwargs)

    def restart(self, monitor, *extra_args):
        """The same node, started again (after it exited), with more flags."""
        fresh = monitor.clone()
        fresh.argv = fresh.argv + list(extra_args)
        self.monitors.append(fresh.start())
        return fresh


class HotStandby(StandbyCase):
    """Blocks every 500 ms, as on EOS."""

    block_ms = 500

    def test_graceful_handover_misses_at_most_one_slot(self):
        """SIGTERM to the producer: it pauses, waits out the block in progress, releases the
        lock; the paused standby resumes without a restart. No overlap, and at most one
        block slot without a block between the old producer's last and the new one's first."""
        active, standby = self.start_pair(standby_mode="paused")
        standby_pid = standby.wait_standby(1)
        old_pid = active.wait_producing(1)
        self.ledger.wait_first_block(time.monotonic_ns(), active.name, 3, f"{active.name} to produce")
        sent = time.monotonic_ns()
        active.signal(signal.SIGTERM)
        self.assertEqual(active.wait_exit(active.stop_timeout + 3), 0, active.log_tail())
        first = self.ledger.wait_first_block(sent, standby.name, self.ttl,
                                             f"{standby.name} to resume after {active.name} stopped")
        last = self.ledger.last_block_time(active.name, old_pid)
        self.assert_no_overlap()
        gap_ms = ms(first["t"] - last)
        self.assertEqual(standby.latest_nodeos()["pid"], standby_pid, "the standby's nodeos was restarted")
        self.assertTrue(self.ledger.events("stop", pid=old_pid), "the old producer was not stopped cleanly")
        self.assertLess(gap_ms, 2 * self.block_ms,
                        f"{gap_ms:.0f} ms between the last block and the next: more than one missed slot")
        self.report("hot standby handover: old producer's last block to the new one's first",
                    f"{gap_ms:.0f} ms (block interval {self.block_ms} ms)")


class Standby(StandbyCase):

    def test_one_producer_chain(self):
        """The group's producer is the chain's only one: when it dies every head stops, so the
        standby's head soon looks old by the wall clock. It still takes over, because its
        head stopped when the chain did (restart and paused modes)."""
        for mode in ("paused", "restart"):
            with self.subTest(mode=mode):
                group = f"one-producer-{mode}"
                a = self.spawn(f"a-{mode}", standby_mode=mode, api=True,
                               overrides={"--failover-group": group})
                a.wait_producing(self.ttl + 10)
                b = self.spawn(f"b-{mode}", standby_mode=mode, api=True,
                               overrides={"--failover-group": group})
                b.wait_standby(self.ttl + 5)
                wait_until(lambda: status_of(b)["candidate"], 5, f"{b.name} to be a healthy candidate")
                killed = time.monotonic_ns()
                a.signal(signal.SIGKILL)  # its nodeos dies with it
                a.wait_exit(2)
                first = self.ledger.wait_first_block(killed, b.name, 2 * self.ttl + 5,
                                                     f"{b.name} to take over the stopped chain")
                b.wait_for_log(r"has not moved since it was fresh .*\[chain_stalled", 1)
                self.assert_no_overlap()
                self.report(f"one-producer chain ({mode}): standby's first block after the producer died",
                            f"{ms(first['t'] - killed):.0f} ms (TTL {self.ttl} s)")
                b.stop()

    def start_other_producer(self):
        """Another producer of the chain, outside the group: it keeps the chain moving when
        the group's producer dies, as on a chain with many producers."""
        config = os.path.join(self.workdir, "otherbp")
        os.makedirs(config, exist_ok=True)
        with open(os.path.join(config, "config.ini"), "w", encoding="utf-8") as f:
            f.write("plugin = eosio::chain_api_plugin\nproducer-name = otherbp\n")
        self.ledger.outside_group.add("otherbp")
        log = open(os.path.join(self.workdir, "otherbp.log"), "ab")
        proc = subprocess.Popen(
            [sys.executable, SIM, f"--config-dir={config}", f"--data-dir={self.workdir}/data-otherbp",
             f"--http-server-address=127.0.0.1:{free_port()}", "--enable-stale-production",
             "--sim-node=otherbp", f"--sim-ledger={self.ledger.path}", f"--sim-block-ms={self.block_ms}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(log.close)
        self.addCleanup(stop_pid, proc)
        wait_until(lambda: self.ledger.events("block", node="otherbp"), 5, "the other producer's first block")
        return proc

    def test_lagging_standby_is_never_promoted(self):
        """A standby whose head lags stays out of the race even when the producer dies, says
        why, and takes over within a second of catching up."""
        self.start_other_producer()
        a = self.spawn("node-a", standby_mode="paused")
        a.wait_producing(self.ttl + 10)
        self.fault("node-b", "lag-ms", 3000)
        b = self.spawn("node-b", standby_mode="paused")
        b.wait_standby(self.ttl + 5)
        wait_until(lambda: status_of(b)["not_candidate_reason"] == "nodeos_lagging", 5,
                   f"{b.name} to report that it lags")
        self.assertEqual(metric(b, "nodeos_monitor_candidate"), 0)
        self.assertEqual(metric(b, 'nodeos_monitor_candidacy{reason="nodeos_lagging"}'), 1)
        self.assertGreater(metric(b, "nodeos_monitor_head_lag_seconds"), 1)
        b.wait_for_log(r"nodeos lags: head #\d+ is \d+ ms old .*\[nodeos_lagging", 1)
        killed = time.monotonic_ns()
        a.signal(signal.SIGKILL)
        a.wait_exit(2)
        hold(lambda: not self.ledger.events("block", node=b.name), 2 * self.ttl + 1,
             f"{b.name}, lagging, not producing after the producer died")
        self.fault("node-b", "lag-ms", None)
        caught_up = time.monotonic_ns()
        first = self.ledger.wait_first_block(caught_up, b.name, 3, f"{b.name} to take over once caught up")
        self.assert_no_overlap()
        self.report("lagging standby: first block after it caught up", f"{ms(first['t'] - caught_up):.0f} ms "
                    f"(producer died {ms(caught_up - killed):.0f} ms before)")

    def test_dirty_database_after_a_fence(self):
        """A producer killed with its monitor leaves a dirty database: the restarted monitor
        reports it (error log, /status, /healthz, metrics) and, without --dirty-db-args,
        waits for an operator; with them, it replays and is a candidate again."""
        a = self.spawn("node-a", api=True, dirty_db_args=())
        a.wait_producing(self.ttl + 10)
        b = self.spawn("node-b", api=True)
        b.wait_standby(self.ttl + 5)
        a.signal(signal.SIGKILL)  # nodeos dies with it (PR_SET_PDEATHSIG): dirty
        a.wait_exit(2)
        b.wait_producing(2 * self.ttl + 5)

        # Without --dirty-db-args: reported, and it waits.
        a = self.restart(a)
        a.wait_for_log(r"error nodeos refuses to start \(exit code 2\): its database is dirty .*set dirty-db-args"
                       r".*\[dirty_database, nodeos running -> down\]$", 5, flags=re.MULTILINE)
        status = status_of(a)
        self.assertTrue(status["nodeos"]["database_dirty"], status)
        self.assertEqual(status["not_candidate_reason"], "dirty_database", status)
        self.assertEqual(metric(a, "nodeos_monitor_database_dirty"), 1)
        self.assertEqual(metric(a, 'nodeos_monitor_nodeos_exits_total{reason="dirty_database"}'), 1)
        code, body = http_get(a.metrics_addr, "/healthz")
        self.assertEqual(code, 503)
        self.assertIn("nodeos's database is dirty: replay required", body)
        hold(lambda: len(self.ledger.pids("node-a", since=a.started_ns)) == 1, 2,
             "one refused start, and no restart in a loop of exit 2")
        a.stop()

        # With --dirty-db-args: replayed once, then a candidate again.
        a = self.restart(a, "--dirty-db-args=--replay-blockchain")
        a.wait_for_log(r"replay its dirty database with --dirty-db-args, as a validator \[dirty_database\]", 5)
        a.wait_standby(5)
        self.assertTrue(self.ledger.events("replay", node="node-a"), "no replay in the ledger")
        wait_until(lambda: status_of(a)["candidate"], 5, "node-a to be a candidate again after the replay")
        sent = time.monotonic_ns()
        b.signal(signal.SIGTERM)
        self.ledger.wait_first_block(sent, "node-a", self.ttl + 5, "node-a to take over after its replay")
        self.assert_no_overlap()


if __name__ == "__main__":
    unittest.main()

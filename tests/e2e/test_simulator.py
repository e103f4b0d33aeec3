#!/usr/bin/env python3
"""Tests of the test tools themselves: the nodeos simulator and the ledger that the
end-to-end tests trust as their proof. If the ledger could not see two producers at once,
every no-overlap assertion would pass for nothing; so here two simulators are made to
overlap on purpose, and the ledger must say so."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    SIM, Ledger, assert_no_overlap, make_config_dirs, pid_alive, stop_pid, wait_until)

BLOCK_MS = 50


class SimulatorTest(unittest.TestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="nm-sim-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.active, self.standby = make_config_dirs(self.workdir, producer="bptest")
        self.ledger = Ledger(os.path.join(self.workdir, "ledger.jsonl"))

    def start_sim(self, node, config_dir, *extra):
        """Starts the simulator as the monitor would (its output to a file); stopped by PID
        in the cleanups."""
        out = open(os.path.join(self.workdir, f"sim-{node}.out"), "wb")
        self.addCleanup(out.close)
        proc = subprocess.Popen([SIM, "--data-dir", self.workdir, "--plugin", "eosio::net_plugin",
                                 "--config-dir", config_dir, f"--sim-node={node}",
                                 "--sim-ledger", self.ledger.path, f"--sim-block-ms={BLOCK_MS}",
                                 *extra],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(stop_pid, proc, 0, signal.SIGKILL)
        return proc

    def wait_blocks(self, proc, count):
        wait_until(lambda: len(self.ledger.events("block", pid=proc.pid)) >= count, 5,
                   f"{count} blocks from simulator {proc.pid}")

    def output(self, node):
        with open(os.path.join(self.workdir, f"sim-{node}.out"), encoding="utf-8") as f:
            return f.read()

    def test_producer_and_validator(self):
        """The config decides the mode; a producer records every block it prints."""
        producer = self.start_sim("p", self.active)
        validator = self.start_sim("v", self.standby)
        self.wait_blocks(producer, 5)
        wait_until(lambda: "Received block" in self.output("v"), 5, "a Received block line")
        self.assertEqual(self.ledger.latest_start("p")["mode"], "producer")
        self.assertEqual(self.ledger.latest_start("v")["mode"], "validator")
        self.assertEqual(self.ledger.events("producing", node="v"), [])
        self.assertEqual(self.ledger.events("block", node="v"), [])
        self.assertEqual(stop_pid(producer, 5), 0)
        self.assertEqual(stop_pid(validator, 5), 0)
        produced = self.output("p").count("Produced block")
        self.assertEqual(produced, len(self.ledger.events("block", node="p")))
        self.assertRegex(self.output("p"),
                         r"Produced block [0-9a-f]+\.\.\. #1 @ \S+ signed by bptest \[trxs")
        run, = self.ledger.runs()
        self.assertTrue(run.closed, "a SIGTERMed producer ends its run with a stop record")
        assert_no_overlap(self.ledger)

    def test_missing_config(self):
        """Like nodeos, it refuses to run without its config.ini."""
        done = subprocess.run([SIM, "--config-dir", os.path.join(self.workdir, "none")],
                              capture_output=True, timeout=10)
        self.assertEqual(done.returncode, 1)
        self.assertIn("config.ini", done.stderr.decode())

    def test_stop_delay_keeps_producing(self):
        """The worst case for fencing: after SIGTERM it goes on producing for the delay."""
        proc = self.start_sim("p", self.active, "--sim-stop-delay-ms", "400")
        self.wait_blocks(proc, 2)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(5), 0)
        term, = self.ledger.events("sigterm", pid=proc.pid)
        stop, = self.ledger.events("stop", pid=proc.pid)
        self.assertGreaterEqual(stop["t"] - term["t"], 400_000_000)
        self.assertGreaterEqual(len(self.ledger.events("block", pid=proc.pid, after=term["t"])), 5)

    def test_ignore_sigterm_and_crash(self):
        """The two misbehaviours the monitor must survive: a nodeos deaf to SIGTERM, and one
        that aborts by itself."""
        stubborn = self.start_sim("s", self.active, "--sim-ignore-sigterm")
        crasher = self.start_sim("c", self.standby, "--sim-crash-after-ms=300")
        self.wait_blocks(stubborn, 2)
        stubborn.send_signal(signal.SIGTERM)
        wait_until(lambda: self.ledger.events("sigterm", pid=stubborn.pid), 5, "a sigterm record")
        self.wait_blocks(stubborn, len(self.ledger.events("block", pid=stubborn.pid)) + 3)
        self.assertTrue(pid_alive(stubborn.pid))
        self.assertEqual(crasher.wait(5), -signal.SIGABRT)
        self.assertEqual(len(self.ledger.events("crash", pid=crasher.pid)), 1)

    def test_ledger_sees_overlap(self):
        """Two producers at once must be reported, and a clean handover must not be."""
        first = self.start_sim("a", self.active)
        self.wait_blocks(first, 3)
        self.assertEqual(stop_pid(first, 5), 0)
        second = self.start_sim("b", self.active)
        self.wait_blocks(second, 3)
        assert_no_overlap(self.ledger)

        third = self.start_sim("c", self.active)
        self.wait_blocks(third, 3)
        found = self.ledger.overlaps()
        self.assertEqual([(a.node, b.node) for a, b, _ in found], [("b", "c")])
        self.assertGreater(found[0][2], 0.0)
        with self.assertRaisesRegex(AssertionError, r"b/pid .* and c/pid .* overlap"):
            assert_no_overlap(self.ledger)
        self.assertEqual(self.ledger.current_producers(), ["b", "c"])
        os.kill(third.pid, signal.SIGKILL)
        third.wait(5)
        last = self.ledger.last_block_time("c")
        self.assertEqual(self.ledger.runs()[-1].end, last, "a killed run ends at its last block")

    def test_ledger_partial_line(self):
        """A line still being written is left for the next read."""
        with open(self.ledger.path, "wb") as f:
            f.write(b'{"t": 1, "node": "a", "pid": 1, "event": "producing", "mode": "producer"}\n'
                    b'{"t": 2, "node": "a", "pid": 1, "ev')
        self.assertEqual(len(self.ledger.refresh()), 1)
        with open(self.ledger.path, "ab") as f:
            f.write(b'ent": "block", "mode": "producer"}\n')
        self.assertEqual(len(self.ledger.refresh()), 2)
        run, = self.ledger.runs()
        self.assertEqual((run.start, run.end, run.blocks), (1, 2, 1))

    def test_touching_runs_overlap(self):
        """Equal instants count as an overlap: closed intervals."""
        lines = [(1, "a", 1, "producing"), (5, "a", 1, "block"), (5, "b", 2, "producing"),
                 (6, "b", 2, "block")]
        with open(self.ledger.path, "w", encoding="utf-8") as f:
            for t, node, pid, event in lines:
                f.write(f'{{"t": {t}, "node": "{node}", "pid": {pid}, "event": "{event}", '
                        f'"mode": "producer"}}\n')
        (a, b, overlap), = self.ledger.overlaps()
        self.assertEqual((a.node, b.node, overlap), ("a", "b", 0.0))

    def test_ignore_sigterm_by_mode(self):
        """--sim-ignore-sigterm=producer leaves a validator that stops normally."""
        validator = self.start_sim("v", self.standby, "--sim-ignore-sigterm=producer")
        producer = self.start_sim("p", self.active, "--sim-ignore-sigterm=producer")
        self.wait_blocks(producer, 2)
        validator.send_signal(signal.SIGTERM)
        producer.send_signal(signal.SIGTERM)
        self.assertEqual(validator.wait(5), 0)
        wait_until(lambda: self.ledger.events("sigterm", pid=producer.pid), 5, "a sigterm record")
        self.wait_blocks(producer, len(self.ledger.events("block", pid=producer.pid)) + 3)
        self.assertTrue(pid_alive(producer.pid))
        self.assertEqual(self.ledger.events("stop", pid=producer.pid), [])

    def test_block_interval_is_kept(self):
        """Timing figures in the e2e tests assume blocks come at the requested interval."""
        proc = self.start_sim("p", self.active)
        self.wait_blocks(proc, 11)
        times = [r["t"] for r in self.ledger.events("block", pid=proc.pid)][:11]
        average_ms = (times[-1] - times[0]) / 10 / 1e6
        self.assertAlmostEqual(average_ms, BLOCK_MS, delta=BLOCK_MS * 0.3)

    def test_sigterm_does_not_wait_for_a_block(self):
        """A signal wakes the simulator at once, so stop timings measure the monitor."""
        proc = self.start_sim("p", self.active, "--sim-block-ms=5000")
        self.wait_blocks(proc, 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(5), 0)
        self.assertLess(time.monotonic() - started, 1.0, "SIGTERM waited for the next block")

if __name__ == "__main__":
    unittest.main()

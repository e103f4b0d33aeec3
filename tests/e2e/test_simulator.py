#!/usr/bin/env python3
"""Tests of the test tools themselves: the nodeos simulator and the ledger that the
end-to-end tests trust as their proof. If the ledger could not see two producers at once,
every no-overlap assertion would pass for nothing; so here two simulators are made to
overlap on purpose, and the ledger must say so. And if the simulator were kinder than
nodeos (a pause that stops at once, a dirty database that starts anyway, a stale chain
that produces), the monitor's tests would prove nothing about real use; so each of those
objections is checked here, with real processes, real HTTP and real signals."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

from harness import (  # noqa: E402
    SIM, Ledger, assert_no_overlap, free_port, hold, pid_alive, stop_pid, wait_until)
from nodeos_sim import database_state  # noqa: E402

SICK_NODEOS = os.path.join(TESTS, "faults", "sick_nodeos.py")
BLOCK_MS = 50
NS_PER_MS = 1_000_000
CHAIN_API = "eosio::chain_api_plugin"
PRODUCER_API = "eosio::producer_api_plugin"
DIRTY_MESSAGE = "database dirty flag set (likely due to unclean shutdown): replay required"
# AntelopeIO/spring get_info_db.hpp, get_info_results, in order.
GET_INFO_FIELDS = [
    "server_version", "chain_id", "head_block_num", "last_irreversible_block_num",
    "last_irreversible_block_id", "head_block_id", "head_block_time", "head_block_producer",
    "virtual_block_cpu_limit", "virtual_block_net_limit", "block_cpu_limit", "block_net_limit",
    "server_version_string", "fork_db_head_block_num", "fork_db_head_block_id",
    "server_full_version_string", "total_cpu_weight", "total_net_weight",
    "earliest_available_block_num", "last_irreversible_block_time"]
NODEOS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")


def write_config(directory, producer=None, plugins=(CHAIN_API, PRODUCER_API)):
    """A nodeos config dir as a block producer keeps it; a producer-name makes it sign."""
    os.makedirs(directory, exist_ok=True)
    lines = ["# nodeos configuration", "http-server-address = 127.0.0.1:8888",
             "plugin = eosio::chain_plugin", "plugin = eosio::net_plugin"]
    lines += [f"plugin = {plugin}" for plugin in plugins]
    if producer:
        lines += ["plugin = eosio::producer_plugin", f"producer-name = {producer}",
                  "signature-provider = EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
                  "=KEY:not-a-real-key"]
    with open(os.path.join(directory, "config.ini"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return directory


class Sim:
    """One simulator process started by a test, and how to talk to it."""

    def __init__(self, case, node, proc, port, data_dir, out_path):
        self.case, self.node, self.proc = case, node, proc
        self.port, self.data_dir, self.out_path = port, data_dir, out_path
        self.ledger = case.ledger

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def output(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def events(self, event, after=None):
        return self.ledger.events(event, pid=self.pid, after=after)

    def blocks(self, after=None):
        return self.events("block", after=after)

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"simulator {self.node} (pid {self.pid}) exited with "
                                 f"{self.proc.returncode}; its output:\n{self.output()[-3000:]}")
        return True

    def wait_ready(self, timeout=5.0):
        return wait_until(lambda: self.alive() and self.events("ready"), timeout,
                          f"a ready record from simulator {self.node}")[0]

    def wait_blocks(self, count, after=None, timeout=5.0):
        """Waits for `count` block records (after instant `after`); returns them."""
        return wait_until(lambda: self.alive() and len(self.blocks(after)) >= count
                          and self.blocks(after), timeout,
                          f"{count} blocks from simulator {self.node}")

    def wait_exit(self, timeout=5.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"simulator {self.node} still running after {timeout} s; "
                                 f"expected it to exit\n{self.output()[-3000:]}") from None

    def call(self, path, body=None, method=None, timeout=2.0):
        """(status, body bytes) of one HTTP request, errors included."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_info(self):
        status, body = self.call("/v1/chain/get_info")
        self.case.assertEqual(status, 200, body)
        return json.loads(body)

    def producer_call(self, action):
        status, body = self.call(f"/v1/producer/{action}", b"")
        self.case.assertEqual(status, 201, f"{action}: {body!r}")
        return json.loads(body)


class SimulatorCase(unittest.TestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="nm-sim-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.ledger = Ledger(os.path.join(self.workdir, "ledger.jsonl"))
        self.producer_config = write_config(os.path.join(self.workdir, "producer"), "bptest")
        self.validator_config = write_config(os.path.join(self.workdir, "validator"))

    def start_sim(self, node, *extra, config=None, data_dir=None, program=SIM, env=None):
        """Starts a simulator as the monitor would (its output to a file, its own data dir
        and HTTP port unless given); stopped by PID in the cleanups."""
        out_path = os.path.join(self.workdir, f"sim-{node}.out")
        out = open(out_path, "ab")
        self.addCleanup(out.close)
        data_dir = data_dir or os.path.join(self.workdir, f"data-{node}")
        port = free_port()
        argv = [sys.executable, program, "--config-dir", config or self.producer_config,
                "--data-dir", data_dir, "--plugin", "eosio::net_plugin", f"--sim-node={node}",
                "--sim-ledger", self.ledger.path, f"--sim-block-ms={BLOCK_MS}",
                "--http-server-address", f"127.0.0.1:{port}", *extra]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env)
        self.addCleanup(stop_pid, proc, 0, signal.SIGKILL)
        return Sim(self, node, proc, port, data_dir, out_path)

    def control_dir(self, name):
        path = os.path.join(self.workdir, f"control-{name}")
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def set_fault(control, name, value=None):
        path = os.path.join(control, name)
        if value is None:
            os.unlink(path)
        else:
            with open(path + ".new", "w", encoding="utf-8") as f:
                f.write(str(value))
            os.replace(path + ".new", path)

    def assert_no_block_for(self, sim, seconds, why):
        since = time.monotonic_ns()
        hold(lambda: sim.alive() and not sim.blocks(after=since), seconds, why)


class ProductionTest(SimulatorCase):
    """Blocks, modes, signals, and the ledger's view of them."""

    def test_producer_and_validator(self):
        """The config decides the mode; a producer records every block it prints; a
        validator prints the blocks it receives."""
        producer = self.start_sim("p", "-e")
        validator = self.start_sim("v", config=self.validator_config)
        producer.wait_blocks(5)
        wait_until(lambda: "Received block" in validator.output(), 5, "a Received block line")
        self.assertEqual(self.ledger.latest_start("p")["mode"], "producer")
        self.assertEqual(self.ledger.latest_start("v")["mode"], "validator")
        self.assertEqual(self.ledger.events("producing", node="v"), [])
        self.assertEqual(self.ledger.events("block", node="v"), [])
        self.assertEqual(stop_pid(producer.proc, 5), 0)
        self.assertEqual(stop_pid(validator.proc, 5), 0)
        self.assertEqual(producer.output().count("Produced block"), len(producer.blocks()))
        # Block 1 is genesis: the first block signed on an empty chain is #2.
        self.assertRegex(producer.output(),
                         r"Produced block [0-9a-f]{16}\.\.\. #2 @ \S+ signed by bptest \[trxs")
        self.assertRegex(validator.output(),
                         r"Received block [0-9a-f]{16}\.\.\. #\d+ @ \S+ signed by bptest \[trxs")
        run, = self.ledger.runs()
        self.assertEqual((run.closed, run.ended_by), (True, "stop"),
                         "a SIGTERMed producer ends its run with a stop record")
        assert_no_overlap(self.ledger)

    def test_missing_config(self):
        """It refuses to run without its config.ini (a real nodeos would write a default
        one; the monitor checks for it first)."""
        done = subprocess.run([sys.executable, SIM, "--config-dir",
                               os.path.join(self.workdir, "none")],
                              capture_output=True, timeout=10)
        self.assertEqual(done.returncode, 1)
        self.assertIn("config.ini", done.stderr.decode())

    def test_bad_command_line(self):
        """Like nodeos (INITIALIZE_FAIL), a command line it cannot parse exits 255, never 2,
        which would read as a dirty database."""
        done = subprocess.run([sys.executable, SIM, "--config-dir", self.producer_config,
                               "--sim-block-ms=0"], capture_output=True, timeout=10)
        self.assertEqual(done.returncode, 255, done.stderr)
        self.assertIn("--sim-block-ms must be positive", done.stderr.decode())

    def test_stop_delay_keeps_producing(self):
        """The worst case for fencing: after SIGTERM it goes on producing for the delay."""
        sim = self.start_sim("p", "-e", "--sim-stop-delay-ms", "400")
        sim.wait_blocks(2)
        sim.proc.send_signal(signal.SIGTERM)
        self.assertEqual(sim.wait_exit(), 0)
        term, = sim.events("sigterm")
        stop, = sim.events("stop")
        self.assertGreaterEqual(stop["t"] - term["t"], 400 * NS_PER_MS)
        self.assertGreaterEqual(len(sim.blocks(after=term["t"])), 5)

    def test_ignore_sigterm_and_crash(self):
        """The two misbehaviours the monitor must survive: a nodeos deaf to SIGTERM, and one
        that aborts by itself (leaving its database dirty)."""
        stubborn = self.start_sim("s", "-e", "--sim-ignore-sigterm")
        crasher = self.start_sim("c", "--sim-crash-after-ms=300", config=self.validator_config)
        stubborn.wait_blocks(2)
        stubborn.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: stubborn.events("sigterm"), 5, "a sigterm record")
        stubborn.wait_blocks(len(stubborn.blocks()) + 3)
        self.assertTrue(pid_alive(stubborn.pid))
        self.assertEqual(crasher.wait_exit(), -signal.SIGABRT)
        self.assertEqual(len(crasher.events("crash")), 1)
        self.assertEqual(database_state(crasher.data_dir), "dirty")

    def test_ignore_sigterm_by_mode(self):
        """--sim-ignore-sigterm=producer leaves a validator that stops normally."""
        validator = self.start_sim("v", "--sim-ignore-sigterm=producer",
                                   config=self.validator_config)
        producer = self.start_sim("p", "-e", "--sim-ignore-sigterm=producer")
        producer.wait_blocks(2)
        validator.wait_ready()
        validator.proc.send_signal(signal.SIGTERM)
        producer.proc.send_signal(signal.SIGTERM)
        self.assertEqual(validator.wait_exit(), 0)
        wait_until(lambda: producer.events("sigterm"), 5, "a sigterm record")
        producer.wait_blocks(len(producer.blocks()) + 3)
        self.assertTrue(pid_alive(producer.pid))
        self.assertEqual(producer.events("stop"), [])

    def test_block_interval_is_kept(self):
        """Timing figures in the e2e tests assume blocks come at the requested interval,
        numbered one after the other, each stamped with the end of its slot."""
        sim = self.start_sim("p", "-e")
        blocks = sim.wait_blocks(11)[:11]
        average_ms = (blocks[-1]["t"] - blocks[0]["t"]) / 10 / NS_PER_MS
        self.assertAlmostEqual(average_ms, BLOCK_MS, delta=BLOCK_MS * 0.3)
        numbers = [b["block"] for b in blocks]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 11)))
        for block in blocks:
            self.assertRegex(block["time"], NODEOS_TIME)
            self.assertEqual(int(block["time"][-3:]) % BLOCK_MS, 0, block)
            self.assertEqual(block["producer"], "bptest")

    def test_sigterm_does_not_wait_for_a_block(self):
        """A signal wakes the simulator at once, so stop timings measure the monitor."""
        sim = self.start_sim("p", "-e", "--sim-block-ms=5000")
        sim.wait_blocks(1, timeout=8)
        started = time.monotonic()
        sim.proc.send_signal(signal.SIGTERM)
        self.assertEqual(sim.wait_exit(), 0)
        self.assertLess(time.monotonic() - started, 1.0, "SIGTERM waited for the next block")

    def test_stale_production(self):
        """Without -e a producer signs only after it has seen a fresh block from another
        node: alone on a silent chain it never produces; a paused standby that watched the
        producer's blocks produces as soon as it is resumed, continuing the chain."""
        lone = self.start_sim("lone")
        lone.wait_ready()
        self.assert_no_block_for(lone, 0.6, "no block from a producer on a stale chain")
        wait_until(lambda: "Not producing block because stale production not enabled"
                   in lone.output(), 3, "the stale-production refusal in its log")
        self.assertEqual(lone.events("producing"), [])
        self.assertEqual(stop_pid(lone.proc, 5), 0)

        active = self.start_sim("a", "-e")
        standby = self.start_sim("b", "-x")
        active.wait_blocks(3)
        standby.wait_ready()
        active.wait_blocks(3, after=standby.events("ready")[0]["t"])
        active.producer_call("pause")
        paused = wait_until(lambda: active.events("paused"), 3, "the pause to take effect")[0]
        last = active.blocks()[-1]
        standby.producer_call("resume")
        first = standby.wait_blocks(1)[0]
        self.assertEqual(first["block"], last["block"] + 1,
                         "the standby's first block follows the chain's head")
        self.assertGreater(first["t"], paused["t"])
        assert_no_overlap(self.ledger)

    def test_stale_chain_after_the_producer_left(self):
        """A producer started after the last one stopped (here, 400 ms later with a 200 ms
        freshness window) finds only old blocks and does not produce, as nodeos on a
        one-producer chain."""
        active = self.start_sim("a", "-e")
        active.wait_blocks(2)
        self.assertEqual(stop_pid(active.proc, 5), 0)
        stopped = active.events("stop")[0]["t"]
        wait_until(lambda: time.monotonic_ns() - stopped > 400 * NS_PER_MS, 1,
                   "400 ms after the producer stopped")
        late = self.start_sim("late", "--sim-fresh-block-ms=200")
        late.wait_ready()
        self.assert_no_block_for(late, 0.6, "no block from a producer on a stale chain")
        info = late.get_info()
        self.assertEqual(info["head_block_num"], active.blocks()[-1]["block"],
                         "it still knows the chain's head")

    def test_startup_delay(self):
        """While it loads its state the port is not bound and nothing is produced."""
        sim = self.start_sim("slow", "-e", "--sim-startup-ms=700")
        start = wait_until(lambda: sim.events("start"), 3, "a start record")[0]
        refused = 0
        while not sim.events("ready"):
            sim.alive()
            try:
                socket.create_connection(("127.0.0.1", sim.port), timeout=0.5).close()
            except ConnectionRefusedError:
                refused += 1
            else:
                if not sim.events("ready"):
                    self.fail("the HTTP port accepted a connection before the ready record")
            self.assertLess(time.monotonic_ns() - start["t"], 5_000 * NS_PER_MS,
                            "no ready record within 5 s")
            time.sleep(0.05)
        ready = sim.events("ready")[0]
        self.assertGreater(refused, 3, "the port was tried while it loaded")
        self.assertGreaterEqual(ready["t"] - start["t"], 700 * NS_PER_MS)
        self.assertEqual(ready["http"], f"127.0.0.1:{sim.port}")
        self.assertEqual([b for b in sim.blocks() if b["t"] < ready["t"]], [])
        self.assertEqual(sim.get_info()["server_version_string"], "v1.2.2")
        self.assertTrue(sim.wait_blocks(1))


class PauseTest(SimulatorCase):
    """The producer API: pause lets the block under construction through, then none."""

    def test_pause_lets_the_block_under_construction_through(self):
        interval_ms = 300
        sim = self.start_sim("p", "-e", f"--sim-block-ms={interval_ms}")
        sim.wait_blocks(2)
        signed = sim.blocks()[-1]
        # The next block is under construction from this signing on; pause half-way.
        half_way = signed["t"] + interval_ms // 2 * NS_PER_MS
        time.sleep(max(0.0, (half_way - time.monotonic_ns()) / 1e9))
        before = time.monotonic_ns()
        self.assertEqual(sim.producer_call("pause"), {"result": "ok"})
        after = time.monotonic_ns()
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"true",
                         "the flag is set when pause has answered")
        answered = time.monotonic_ns()
        self.assertEqual(sim.blocks(after=before), [],
                         "pause was sent mid-construction: no block before its answers")
        paused = wait_until(lambda: sim.events("paused"), 2,
                            "the pause to take effect after one more block")[0]
        through = [b for b in sim.blocks(after=answered) if b["t"] < paused["t"]]
        self.assertEqual(len(through), 1, "exactly the block under construction is signed")
        self.assertEqual(through[0]["block"], signed["block"] + 1)
        self.assertLess(through[0]["t"] - after, interval_ms * NS_PER_MS,
                        "within one block interval of the 201")
        self.assert_no_block_for(sim, 3 * interval_ms / 1000, "no block once paused")
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"true")

        resumed = time.monotonic_ns()
        self.assertEqual(sim.producer_call("resume"), {"result": "ok"})
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"false")
        again = sim.wait_blocks(2, after=resumed)
        producing = sim.events("producing", after=resumed)
        self.assertEqual(len(producing), 1)
        self.assertLessEqual(producing[0]["t"], again[0]["t"])
        self.assertEqual(again[0]["block"], through[0]["block"] + 1)
        first, second = [r for r in self.ledger.runs() if r.pid == sim.pid]
        self.assertEqual((first.ended_by, first.end, first.blocks),
                         ("paused", paused["t"], len(sim.blocks()) - len(again)))
        self.assertEqual((second.start, second.closed), (producing[0]["t"], False))
        self.assertEqual(self.ledger.current_producers(3 * interval_ms), ["p"])

    def test_pause_on_startup(self):
        """-x: it starts paused, and only resume makes it produce."""
        sim = self.start_sim("x", "-e", "-x")
        sim.wait_ready()
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"true")
        self.assert_no_block_for(sim, 0.4, "no block while paused on startup")
        self.assertEqual(sim.events("producing"), [])
        self.assertEqual(sim.events("paused"), [], "no period to end: no paused record")
        sim.producer_call("resume")
        sim.wait_blocks(2)
        self.assertEqual(len(sim.events("producing")), 1)

    def test_handover_by_pause(self):
        """The hot-standby handover: pause the producer, wait for its pause to take effect,
        resume the standby; the ledger sees two producing periods that do not overlap and
        a chain that goes on without a gap in numbers."""
        a = self.start_sim("a", "-e")
        b = self.start_sim("b", "-e", "-x")
        a.wait_blocks(3)
        b.wait_ready()

        def hand_over(source, target):
            sent = time.monotonic_ns()
            source.producer_call("pause")
            paused = wait_until(lambda: source.events("paused", after=sent), 2,
                                f"{source.node}'s pause to take effect")[0]
            target.producer_call("resume")
            target.wait_blocks(2, after=paused["t"])
        for source, target in ((a, b), (b, a), (a, b), (b, a)):
            hand_over(source, target)
        assert_no_overlap(self.ledger)
        runs = self.ledger.runs()
        self.assertEqual([r.node for r in runs], ["a", "b", "a", "b", "a"])
        numbers = [r["block"] for r in self.ledger.events("block")]
        self.assertEqual(numbers, list(range(2, 2 + len(numbers))))


class HttpTest(SimulatorCase):
    """nodeos's HTTP API: shapes, status codes, and the protocol."""

    def test_get_info(self):
        """Every field of spring's get_info_results, in nodeos's formats, describing the
        head the ledger shows."""
        sim = self.start_sim("p", "-e")
        sim.wait_blocks(4)
        for method in ("GET", "POST"):
            status, body = sim.call("/v1/chain/get_info", b"" if method == "POST" else None,
                                    method=method)
            self.assertEqual(status, 200)
            info = json.loads(body)
            self.assertEqual(list(info), GET_INFO_FIELDS)
        head = next(b for b in sim.blocks() if b["block"] == info["head_block_num"])
        self.assertEqual(info["head_block_time"], head["time"])
        self.assertEqual(info["head_block_producer"], "bptest")
        self.assertEqual(info["fork_db_head_block_num"], info["head_block_num"])
        self.assertEqual(info["last_irreversible_block_num"], info["head_block_num"] - 2)
        lib = next(b for b in sim.blocks() if b["block"] == info["last_irreversible_block_num"])
        self.assertEqual(info["last_irreversible_block_time"], lib["time"])
        for field in ("head_block_time", "last_irreversible_block_time"):
            self.assertRegex(info[field], NODEOS_TIME)
        for field, num in (("head_block_id", info["head_block_num"]),
                           ("fork_db_head_block_id", info["head_block_num"]),
                           ("last_irreversible_block_id", info["last_irreversible_block_num"])):
            self.assertRegex(info[field], r"^[0-9a-f]{64}$")
            self.assertEqual(int(info[field][:8], 16), num, field)
        self.assertRegex(info["chain_id"], r"^[0-9a-f]{64}$")
        self.assertIsInstance(info["total_cpu_weight"], str, "above 2^32: a string, as fc")
        self.assertIsInstance(info["block_cpu_limit"], int)
        self.assertEqual(sim.call("/v1/chain/get_info?x=1")[0], 404)
        status, body = sim.call("/v1/chain/get_info", b'{"a": 1}')
        self.assertEqual((status, json.loads(body)["message"]), (400, "Invalid Request"))

    def test_producer_api(self):
        """201 with nodeos's bodies; a body other than empty or {} is 400; unknown paths
        are 404 with nodeos's error body."""
        sim = self.start_sim("p", "-e")
        sim.wait_ready()
        for path, expected in (("/v1/producer/paused", b"false"),
                               ("/v1/producer/pause", b'{"result":"ok"}'),
                               ("/v1/producer/paused", b"true"),
                               ("/v1/producer/resume", b'{"result":"ok"}')):
            for body in (b"", b"{}", b" { \t} "):
                self.assertEqual(sim.call(path, body), (201, expected), (path, body))
        self.assertEqual(sim.call("/v1/producer/paused", method="GET"), (201, b"false"))
        status, body = sim.call("/v1/producer/pause", b'{"x":1}')
        self.assertEqual(status, 400)
        error = json.loads(body)
        self.assertEqual((error["code"], error["message"], error["error"]["name"]),
                         (400, "Invalid Request", "invalid_http_request"))
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"false",
                         "a refused pause changes nothing")
        status, body = sim.call("/v1/chain/no_such_call", b"")
        self.assertEqual(status, 404)
        error = json.loads(body)
        self.assertEqual((error["code"], error["message"]), (404, "Not Found"))
        self.assertEqual(error["error"]["details"][0]["message"], "Unknown Endpoint")
        status, body = sim.call("/v1/node/get_supported_apis")
        self.assertEqual(json.loads(body)["apis"], [
            "/v1/chain/get_info", "/v1/producer/pause", "/v1/producer/paused",
            "/v1/producer/resume"])

    def test_plugins_decide_the_api(self):
        """Each path exists only with its plugin; without an API plugin there is no HTTP
        server at all."""
        configs = {name: write_config(os.path.join(self.workdir, name), "bptest", plugins)
                   for name, plugins in (("chain-only", (CHAIN_API,)),
                                         ("producer-only", (PRODUCER_API,)), ("none", ()))}
        sims = {name: self.start_sim(name, "-e", config=config)
                for name, config in configs.items()}
        chain_only, producer_only, none = sims["chain-only"], sims["producer-only"], sims["none"]
        for sim in sims.values():
            sim.wait_ready()
        for action in ("pause", "resume", "paused"):
            self.assertEqual(chain_only.call(f"/v1/producer/{action}", b"")[0], 404, action)
        self.assertEqual(chain_only.call("/v1/chain/get_info")[0], 200)
        self.assertEqual(producer_only.call("/v1/chain/get_info")[0], 404)
        self.assertEqual(producer_only.call("/v1/producer/paused"), (201, b"false"))
        self.assertIsNone(none.events("ready")[0]["http"])
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", none.port), timeout=1).close()

    def test_http_protocol(self):
        """Keep-alive, Connection: close, chunked bodies, 100-continue, OPTIONS; malformed
        or oversized requests get an error and never stop the simulator."""
        sim = self.start_sim("p", "-e")
        sim.wait_ready()
        keep = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=2)
        self.addCleanup(keep.close)
        for _ in range(3):
            keep.request("POST", "/v1/producer/paused", body=b"")
            response = keep.getresponse()
            self.assertEqual((response.status, response.read()), (201, b"false"))
            self.assertEqual(response.getheader("Connection"), "keep-alive")

        def exchange(raw, timeout=2.0):
            """Sends raw bytes; returns everything the server sent until it closed."""
            with socket.create_connection(("127.0.0.1", sim.port), timeout=timeout) as s:
                s.sendall(raw)
                received = b""
                while chunk := s.recv(65536):
                    received += chunk
                return received

        answer = exchange(b"GET /v1/producer/paused HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 201 Created\r\n"), answer)
        self.assertIn(b"Connection: close\r\n", answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nfalse"), answer)
        # Two pipelined requests, the second closing: both answered, in order.
        answer = exchange(b"POST /v1/producer/paused HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
                          b"POST /v1/producer/pause HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")
        self.assertEqual(answer.count(b"HTTP/1.1 201 Created"), 2, answer)
        self.assertTrue(answer.endswith(b'{"result":"ok"}'), answer)
        with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as s:
            s.sendall(b"GET /v1/producer/paused HTTP/1.1\r\n\r\n")
            s.shutdown(socket.SHUT_WR)  # a client that is done sending still gets its answer
            self.assertTrue(s.recv(1000).startswith(b"HTTP/1.1 201 Created"))
        answer = exchange(b"OPTIONS /v1/chain/get_info HTTP/1.0\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.0 200 OK\r\n"), answer)
        with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as s:
            s.sendall(b"POST /v1/producer/resume HTTP/1.1\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 2\r\nConnection: close\r\n\r\n")
            self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"{}")
            self.assertIn(b"201 Created", s.recv(1000))
        for raw, status in ((b"NONSENSE\r\n\r\n", b"400"),
                            (b"GET /x HTTP/1.1\r\nbad header\r\n\r\n", b"400"),
                            (b"GET /x HTTP/2.0\r\n\r\n", b"400"),
                            (b"GET x HTTP/1.1\r\nConnection: close\r\n\r\n", b"400"),
                            (b"GET /v1/../x HTTP/1.1\r\nConnection: close\r\n\r\n", b"400"),
                            (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
                            (b"POST /x HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", b"413"),
                            (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                             b"400"),
                            (b"GET /x HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431")):
            answer = exchange(raw)
            self.assertTrue(answer.startswith(b"HTTP/1.1 " + status), (raw[:40], answer))
        self.assertEqual(sim.call("/v1/producer/paused")[0], 201, "still serving")
        sim.wait_blocks(2, after=time.monotonic_ns())

    def test_port_in_use(self):
        """nodeos exits 254 (OTHER_FAIL) when its HTTP port is taken; its database is
        closed cleanly."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            sim = self.start_sim("p", "-e", "--http-server-address", f"127.0.0.1:{port}")
            self.assertEqual(sim.wait_exit(), 254)
        self.assertIn("http service failed to start", sim.output())
        self.assertEqual(sim.events("ready"), [])
        self.assertEqual(database_state(sim.data_dir), "clean")


class DatabaseTest(SimulatorCase):
    """The dirty flag: SIGKILL leaves it, a clean stop clears it, only a replay or a
    snapshot recovers from it."""

    def assert_refused_dirty(self, sim):
        self.assertEqual(sim.wait_exit(), 2)
        self.assertRegex(sim.output(), r"(?m)^error +\S+ nodeos +main\.cpp:\d+ +main +\] "
                         + re.escape(DIRTY_MESSAGE) + "$")
        self.assertEqual(len(sim.events("dirty")), 1)
        self.assertEqual(sim.events("ready"), [])

    def test_unclean_shutdown_and_replay(self):
        data = os.path.join(self.workdir, "data")
        first = self.start_sim("first", "-e", data_dir=data)
        first.wait_blocks(2)
        self.assertEqual(database_state(data), "dirty", "set while it runs")

        # A second nodeos on a data dir in use fails on the flag, before the lock.
        self.assert_refused_dirty(self.start_sim("second", "-e", data_dir=data))
        first.wait_blocks(2, after=time.monotonic_ns())

        os.kill(first.pid, signal.SIGKILL)
        first.wait_exit()
        self.assertEqual(database_state(data), "dirty")
        self.assert_refused_dirty(self.start_sim("again", "-e", data_dir=data))
        self.assert_refused_dirty(self.start_sim("and-again", "-e", data_dir=data))

        replay = self.start_sim("replay", "-e", "--replay-blockchain", "--sim-replay-ms=500",
                                data_dir=data)
        began = wait_until(lambda: replay.events("replay"), 3, "a replay record")[0]
        self.assertEqual((began["how"], began["ms"]), ("replay-blockchain", 500))
        ready = replay.wait_ready()
        self.assertGreaterEqual(ready["t"] - began["t"], 500 * NS_PER_MS)
        self.assertIn("Replay requested: deleting state database", replay.output())
        replay.wait_blocks(2)
        replay.proc.send_signal(signal.SIGTERM)
        self.assertEqual(replay.wait_exit(), 0)
        self.assertIn("nodeos successfully exiting", replay.output())
        self.assertEqual(database_state(data), "clean")

        for sig in (signal.SIGINT, signal.SIGQUIT):
            clean = self.start_sim(f"clean-{sig.name}", "-e", data_dir=data)
            clean.wait_blocks(1)
            clean.proc.send_signal(sig)
            self.assertEqual(clean.wait_exit(), 0, sig.name)
            self.assertEqual(clean.events("sigterm")[0]["signal"], sig.name)
            self.assertEqual(database_state(data), "clean", sig.name)

    def test_snapshot_and_hard_replay(self):
        """--snapshot needs an existing file and an empty state dir, as nodeos; a replay
        flag empties the state first."""
        data = os.path.join(self.workdir, "data")
        snapshot = os.path.join(self.workdir, "snapshot.bin")
        crashed = self.start_sim("crashed", "-e", "--sim-crash-after-ms=200", data_dir=data)
        self.assertEqual(crashed.wait_exit(), -signal.SIGABRT)
        self.assertEqual(database_state(data), "dirty")

        missing = self.start_sim("missing", "-e", f"--snapshot={snapshot}", data_dir=data)
        self.assertEqual(missing.wait_exit(), 255)
        self.assertIn(f"Cannot load snapshot, {snapshot} does not exist", missing.output())

        with open(snapshot, "wb") as f:
            f.write(b"a snapshot")
        occupied = self.start_sim("occupied", "-e", "--snapshot", snapshot, data_dir=data)
        self.assertEqual(occupied.wait_exit(), 255)
        self.assertIn("Snapshot can only be used to initialize an empty database",
                      occupied.output())
        self.assertEqual(database_state(data), "dirty", "a refused start changes nothing")

        shutil.rmtree(os.path.join(data, "state"))
        loaded = self.start_sim("loaded", "-e", "--snapshot", snapshot,
                                "--sim-replay-ms=200", data_dir=data)
        ready = loaded.wait_ready()
        began = loaded.events("replay")[0]
        self.assertEqual(began["how"], "snapshot")
        self.assertGreaterEqual(ready["t"] - began["t"], 200 * NS_PER_MS)
        loaded.wait_blocks(1)
        os.kill(loaded.pid, signal.SIGKILL)
        loaded.wait_exit()

        hard = self.start_sim("hard", "-e", "--hard-replay-blockchain", "--sim-replay-ms=200",
                              data_dir=data)
        hard.wait_blocks(1)
        self.assertEqual(hard.events("replay")[0]["how"], "hard-replay-blockchain")
        self.assertEqual(stop_pid(hard.proc, 5), 0)
        self.assertEqual(database_state(data), "clean")

    def test_default_data_dir(self):
        """Without --data-dir it uses nodeos's default, under the user's home."""
        home = os.path.join(self.workdir, "home")
        os.makedirs(home)
        argv = [sys.executable, SIM, "--config-dir", self.producer_config, "-e",
                "--sim-node=home", "--sim-ledger", self.ledger.path,
                "--http-server-address", f"127.0.0.1:{free_port()}"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "HOME": home})
        self.addCleanup(stop_pid, proc, 0, signal.SIGKILL)
        default = os.path.join(home, ".local", "share", "eosio", "nodeos", "data")
        wait_until(lambda: self.ledger.events("ready", pid=proc.pid), 5, "a ready record")
        self.assertEqual(database_state(default), "dirty")
        self.assertEqual(stop_pid(proc, 5), 0)
        self.assertEqual(database_state(default), "clean")


class ChainTest(SimulatorCase):
    """The head follows the chain, whoever signs; the run-time faults bend it."""

    def test_validator_follows_the_head(self):
        producer = self.start_sim("p", "-e")
        validator = self.start_sim("v", config=self.validator_config)
        validator.wait_ready()
        producer.wait_blocks(3)

        def caught_up():
            info = validator.get_info()
            return info if info["head_block_num"] >= producer.blocks()[-1]["block"] - 1 \
                else None
        info = wait_until(caught_up, 3, "the validator's head to reach the producer's")
        block = next(b for b in producer.blocks() if b["block"] == info["head_block_num"])
        self.assertEqual((info["head_block_time"], info["head_block_producer"]),
                         (block["time"], "bptest"))
        # Once the chain stops, both nodes name the same head and the same ids.
        producer.producer_call("pause")
        wait_until(lambda: producer.events("paused"), 2, "the pause to take effect")
        last = producer.blocks()[-1]["block"]
        wait_until(lambda: validator.get_info()["head_block_num"] == last, 2,
                   "the validator to apply the last block")
        self.assertEqual(validator.get_info(), producer.get_info())

    def test_lag_and_stall(self):
        """lag-ms: the head is the newest block at least that old; stall: the head freezes
        where it was, and catches up once the switch is gone."""
        control = self.control_dir("v")
        producer = self.start_sim("p", "-e")
        validator = self.start_sim("v", "--sim-control", control, config=self.validator_config)
        validator.wait_ready()
        producer.wait_blocks(3)

        before_lag = validator.get_info()["head_block_num"]
        self.set_fault(control, "lag-ms", 600)
        # Blocks already applied stay; the lagging ones flow once they are 600 ms old.
        wait_until(lambda: validator.get_info()["head_block_num"] > before_lag + 1, 3,
                   "the lagging head to move")
        heads = []
        for _ in range(2):
            asked = time.monotonic_ns()
            num = validator.get_info()["head_block_num"]
            record = next(b for b in producer.blocks() if b["block"] == num)
            self.assertLessEqual(record["t"], asked - 600 * NS_PER_MS, "the head lags 600 ms")
            self.assertGreater(record["t"], asked - 1600 * NS_PER_MS, "and not much more")
            heads.append(num)
            producer.wait_blocks(3, after=time.monotonic_ns())
        self.assertGreater(heads[1], heads[0], "a lagging head still moves")
        self.set_fault(control, "lag-ms")

        self.set_fault(control, "stall", "1")
        frozen = validator.get_info()
        producer.wait_blocks(6, after=time.monotonic_ns())
        self.assertEqual(validator.get_info(), frozen)
        self.set_fault(control, "stall")
        wait_until(lambda: validator.get_info()["head_block_num"]
                   >= producer.blocks()[-1]["block"] - 1, 3, "the head to catch up")

    def test_stalled_producer_stops_signing(self):
        control = self.control_dir("p")
        sim = self.start_sim("p", "-e", "--sim-control", control)
        sim.wait_blocks(2)
        self.set_fault(control, "stall", "1")
        frozen = sim.get_info()["head_block_num"]  # a request reads the switches first
        self.assertEqual(sim.blocks()[-1]["block"], frozen)
        self.assert_no_block_for(sim, 0.3, "no block while the head is stalled")
        self.set_fault(control, "stall")
        first = sim.wait_blocks(1, after=time.monotonic_ns())[0]
        self.assertEqual(first["block"], frozen + 1)

    def test_api_faults(self):
        """api = 500 or hang hits every call; production goes on meanwhile."""
        control = self.control_dir("p")
        sim = self.start_sim("p", "-e", "--sim-control", control)
        sim.wait_ready()
        self.set_fault(control, "api", "500")
        status, body = sim.call("/v1/chain/get_info")
        self.assertEqual((status, json.loads(body)["message"]), (500, "Internal Service Error"))
        self.assertEqual(sim.call("/v1/producer/pause", b"")[0], 500)
        self.set_fault(control, "api", "hang")
        hung = time.monotonic_ns()
        with self.assertRaises((TimeoutError, urllib.error.URLError)):
            sim.call("/v1/chain/get_info", timeout=0.4)
        sim.wait_blocks(3, after=hung)
        self.set_fault(control, "api")
        self.assertEqual(sim.call("/v1/chain/get_info")[0], 200)
        self.assertEqual(sim.call("/v1/producer/paused")[1], b"false")

    def test_pause_faults(self):
        """A pause refused (500), hung, or answered but ignored: production goes on."""
        control = self.control_dir("p")
        sim = self.start_sim("p", "-e", "--sim-control", control)
        sim.wait_ready()
        for fault in ("error", "hang", "ignore"):
            self.set_fault(control, "pause", fault)
            sent = time.monotonic_ns()
            if fault == "hang":
                with self.assertRaises((TimeoutError, urllib.error.URLError)):
                    sim.call("/v1/producer/pause", b"", timeout=0.4)
            else:
                status, body = sim.call("/v1/producer/pause", b"")
                expected = (500, "Internal Service Error") if fault == "error" \
                    else (201, "ok")
                self.assertEqual((status, json.loads(body).get("message")
                                  or json.loads(body).get("result")), expected)
            sim.wait_blocks(4, after=sent)
            self.assertEqual(sim.call("/v1/producer/paused")[1], b"false", fault)
        self.assertEqual(sim.events("paused"), [])
        self.set_fault(control, "pause")
        sim.producer_call("pause")
        wait_until(lambda: sim.events("paused"), 2, "a pause to take effect once allowed")

    def test_start_time_faults_through_the_fault_shim(self):
        """The fault harness's nodeos (sick_nodeos.py --fault-control=DIR) reads the same
        control directory: crash, SIGTERM ignored, slow stop, slow start."""
        controls = {name: self.control_dir(name) for name in ("crash", "deaf", "slow")}
        self.set_fault(controls["crash"], "crash-producer-ms", 250)
        self.set_fault(controls["crash"], "crash-validator-ms", 5000)
        self.set_fault(controls["deaf"], "ignore-sigterm", "producer")
        self.set_fault(controls["slow"], "stop-delay-ms", 300)
        self.set_fault(controls["slow"], "startup-ms", 400)
        sims = {name: self.start_sim(name, "-e", f"--fault-control={control}",
                                     program=SICK_NODEOS)
                for name, control in controls.items()}
        self.assertEqual(sims["crash"].wait_exit(), -signal.SIGABRT)
        self.assertEqual(len(sims["crash"].events("crash")), 1)
        deaf, slow = sims["deaf"], sims["slow"]
        deaf.wait_blocks(1)
        deaf.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: deaf.events("sigterm"), 3, "a sigterm record")
        deaf.wait_blocks(3, after=deaf.events("sigterm")[0]["t"])
        ready = slow.wait_ready()
        self.assertGreaterEqual(ready["t"] - slow.events("start")[0]["t"], 400 * NS_PER_MS)
        slow.proc.send_signal(signal.SIGTERM)
        self.assertEqual(slow.wait_exit(), 0)
        self.assertGreaterEqual(slow.events("stop")[0]["t"] - slow.events("sigterm")[0]["t"],
                                300 * NS_PER_MS)


class LedgerTest(unittest.TestCase):
    """The ledger's reading of records written by hand: every case of a producing period."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="nm-ledger-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.ledger = Ledger(os.path.join(self.workdir, "ledger.jsonl"))

    def write(self, *records):
        with open(self.ledger.path, "a", encoding="utf-8") as f:
            for t, node, pid, event in records:
                f.write(json.dumps({"t": t, "node": node, "pid": pid, "event": event,
                                    "mode": "producer"}) + "\n")

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
        self.write((1, "a", 1, "producing"), (5, "a", 1, "block"), (5, "b", 2, "producing"),
                   (6, "b", 2, "block"))
        (a, b, overlap), = self.ledger.overlaps()
        self.assertEqual((a.node, b.node, overlap), ("a", "b", 0.0))

    def test_pause_periods(self):
        """A paused record ends a period; one process has one period per resume; another
        process may produce in between, and touching the paused record is an overlap."""
        self.write((10, "a", 1, "producing"), (20, "a", 1, "block"), (21, "a", 1, "paused"),
                   (30, "b", 2, "producing"), (40, "b", 2, "block"), (41, "b", 2, "paused"),
                   (50, "a", 1, "producing"), (60, "a", 1, "block"), (70, "a", 1, "block"))
        runs = self.ledger.runs()
        self.assertEqual([(r.node, r.start, r.end, r.blocks, r.ended_by) for r in runs],
                         [("a", 10, 21, 1, "paused"), ("b", 30, 41, 1, "paused"),
                          ("a", 50, 70, 2, "")])
        self.assertEqual(self.ledger.overlaps(), [])
        self.assertIn("paused]", self.ledger.describe(runs[0]))
        self.write((70, "b", 2, "producing"))
        (first, second, overlap), = self.ledger.overlaps()
        self.assertEqual((first.start, second.start, overlap), (50, 70, 0.0))

    def test_paused_run_is_not_current(self):
        now = time.monotonic_ns()
        self.write((now - 3, "a", 1, "producing"), (now - 2, "a", 1, "block"),
                   (now - 1, "a", 1, "paused"), (now - 3, "b", 2, "producing"),
                   (now - 2, "b", 2, "block"))
        self.assertEqual(self.ledger.current_producers(1000), ["b"])

    def test_block_outside_a_period_still_counts(self):
        """A block with no producing record before it opens a period at its own instant."""
        self.write((1, "a", 1, "producing"), (9, "a", 1, "block"), (5, "b", 2, "block"))
        (a, b, overlap), = self.ledger.overlaps()
        self.assertEqual((b.node, b.start, b.end, overlap), ("b", 5, 5, 0.0))


class OverlapTest(SimulatorCase):

    def test_ledger_sees_overlap(self):
        """Two producers at once must be reported, and a clean handover must not be."""
        first = self.start_sim("a", "-e")
        first.wait_blocks(3)
        self.assertEqual(stop_pid(first.proc, 5), 0)
        second = self.start_sim("b", "-e")
        second.wait_blocks(3)
        assert_no_overlap(self.ledger)

        third = self.start_sim("c", "-e")
        third.wait_blocks(3)
        found = self.ledger.overlaps()
        self.assertEqual([(a.node, b.node) for a, b, _ in found], [("b", "c")])
        self.assertGreater(found[0][2], 0.0)
        with self.assertRaisesRegex(AssertionError, r"b/pid .* and c/pid .* overlap"):
            assert_no_overlap(self.ledger)
        self.assertEqual(self.ledger.current_producers(), ["b", "c"])
        os.kill(third.pid, signal.SIGKILL)
        third.wait_exit()
        last = self.ledger.last_block_time("c")
        self.assertEqual(self.ledger.runs()[-1].end, last, "a killed run ends at its last block")


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""End-to-end tests of operating a failover group: the member registry, `nodeos-monitor
status`, `switchover`, `pause` and `resume`, and the role-change hooks. Real etcd, real
monitors (paused mode: hot standby), the nodeos simulator, the shared ledger.

Run one with: python3 tests/e2e/test_group.py Group.test_status_of_a_three_node_group
(NM_MONITOR names the binary; default build/nodeos-monitor)."""

import base64
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import MONITOR, MonitorTestCase, hold, ms, wait_until  # noqa: E402

NS = 1_000_000_000


class Group(MonitorTestCase):
    group = "bp-ops"

    def command(self, *args, timeout=30):
        """Runs `nodeos-monitor COMMAND ...` against this test's etcd and group; returns
        (exit code, stdout, stderr)."""
        argv = [MONITOR, *args, "--etcd-endpoints", self.etcd.url, "--failover-group", self.group]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def status(self):
        code, out, err = self.command("status", "--json")
        self.assertEqual(err, "")
        return code, json.loads(out)

    def start_group(self, names=("node-a", "node-b", "node-c"), **kwargs):
        """Monitors in paused mode; waits for one producer and every other standing by, a
        candidate; returns (producer, [standbys])."""
        kwargs.setdefault("standby_mode", "paused")
        monitors = [self.spawn_monitor(name, **kwargs) for name in names]
        producer = self.wait_producer(self.ttl + 10)
        others = [m for m in monitors if m is not producer]
        for m in others:
            m.wait_standby(self.ttl + 5)

        def all_recorded():
            code, s = self.status()
            ready = [m for m in s["members"] if m["state"] == "standby" and m["candidate"]]
            return code == 0 and s["producer"] == producer.name and len(ready) == len(others)
        wait_until(all_recorded, 10, "every member recorded, the standbys candidates")
        return producer, others

    def test_status_of_a_three_node_group(self):
        """`status`: every member, its state, producing or not, candidate, head lag, lease,
        version; the lock's holder; as a table and as JSON; exit 1 once nobody produces."""
        producer, others = self.start_group()
        code, out, err = self.command("status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, rf"^group {self.group}: {producer.name} produces \(lock lease \d+ s left\)")
        for m in (producer, *others):
            self.assertRegex(out, rf"(?m)^{m.name}\s+(active|standby)\s+(yes|no)\s+")
        self.assertRegex(out, rf"(?m)^{producer.name}\s+active\s+yes\s+")
        print(f"\n{out}", flush=True)
        code, s = self.status()
        self.assertEqual(code, 0)
        self.assertEqual(s["producer"], producer.name)
        self.assertEqual(s["lock"]["holder"], producer.name)
        self.assertGreater(s["lock"]["lease_seconds_left"], 0)
        self.assertEqual(len(s["members"]), 3)
        for m in s["members"]:
            self.assertEqual(m["producing"], m["node"] == producer.name)
            self.assertEqual(m["standby_mode"], "paused")
            self.assertIsNotNone(m["head_lag_seconds"])
            self.assertGreater(m["lease_seconds_left"], 0)
            self.assertTrue(m["version"])
        for m in (producer, *others):
            m.stop()
        code, s = self.status()
        self.assertEqual(code, 1, "nobody produces: status must say so in its exit code")
        self.assertIsNone(s["producer"])
        self.assertEqual(s["members"], [], "the records go with the leases")

    def switch_to(self, *args):
        code, out, err = self.command("switchover", *args, "--wait", "15", timeout=30)
        self.assertEqual(code, 0, f"switchover {' '.join(args)} failed: {err}{out}")
        found = re.search(r"switchover to (\S+) done in \d+ ms: the lock passed in \d+ ms \(released -> taken\); "
                          r"\S+ reports producing (\d+) ms after the release", out)
        self.assertIsNotNone(found, out)
        return found.group(1), int(found.group(2))

    def test_switchover_to_a_named_node_and_to_the_best(self):
        """A planned handover: the producer pauses, waits out its last block, releases; the
        named node (then the best candidate) resumes; the others do not compete. No overlap;
        the gap between the old producer's last block and the new one's first is measured."""
        producer, (b, c) = self.start_group()
        sent = time.monotonic_ns()
        target, reported = self.switch_to("--to", c.name)
        self.assertEqual(target, c.name)
        first = self.ledger.wait_first_block(sent, c.name, 5, f"{c.name} to produce after the switchover")
        last = self.ledger.last_block_time(producer.name)
        self.assert_no_overlap()
        self.assertFalse(self.ledger.events("block", node=b.name), f"{b.name} competed")
        self.report("switchover to a named node: last block to first block", f"{ms(first['t'] - last):.0f} ms "
                    f"(the command measured {reported} ms from the release to the target producing)")
        # The old producer stands by, paused; the next switchover picks the best candidate.
        producer.wait_standby(5)
        wait_until(lambda: sum(m["candidate"] for m in self.status()[1]["members"] if m["state"] == "standby") == 2,
                   5, "both standbys candidates again")
        sent = time.monotonic_ns()
        target, _ = self.switch_to()
        self.assertIn(target, (producer.name, b.name))
        self.ledger.wait_first_block(sent, target, 5, f"{target} to produce after the second switchover")
        self.assert_no_overlap()

    def test_switchover_refused_with_its_reason(self):
        """Refusals say exactly why: not a member, already the producer, a lagging target, a
        paused target, a paused group; nothing changes."""
        producer, (b, c) = self.start_group()
        cases = [
            (["--to", "node-z"], "node-z is not a member of group"),
            (["--to", producer.name], f"{producer.name} is already the producer"),
        ]
        for args, reason in cases:
            code, out, err = self.command("switchover", *args)
            self.assertEqual(code, 1, out)
            self.assertIn(reason, err)
        self.assertEqual(self.command("pause", "--node", b.name, "--reason", "upgrade")[0], 0)
        wait_until(lambda: any(m["node"] == b.name and m["not_candidate_reason"] == "node_paused"
                               for m in self.status()[1]["members"]), 5, f"{b.name} recorded as paused")
        code, _, err = self.command("switchover", "--to", b.name)
        self.assertEqual(code, 1)
        self.assertIn(f"{b.name} is not ready: paused by an operator", err)
        self.assertEqual(self.command("pause")[0], 0)
        code, _, err = self.command("switchover", "--to", c.name)
        self.assertEqual(code, 1)
        self.assertIn("the group is paused: resume it first", err)
        self.assertEqual(self.command("resume")[0], 0)
        self.assertEqual(self.command("resume", "--node", b.name)[0], 0)
        hold(lambda: self.ledger.current_producers(self.producing_window_ms) == [producer.name], 1.0,
             f"{producer.name} producing on through every refusal")
        self.assert_no_overlap()

    def test_lagging_target_is_refused(self):
        """A target whose head lags is refused with how far behind it is."""
        producer = self.spawn_monitor("node-a", standby_mode="paused")
        producer.wait_producing(self.ttl + 10)
        control = os.path.join(self.workdir, "control-b")
        os.makedirs(control)
        with open(os.path.join(control, "lag-ms"), "w") as f:
            f.write("5000")
        lagging = self.spawn_monitor("node-b", standby_mode="paused", sim_args=[f"--sim-control={control}"])
        lagging.wait_standby(self.ttl + 5)
        wait_until(lambda: any(m["node"] == "node-b" and m["not_candidate_reason"] == "nodeos_lagging"
                               for m in self.status()[1]["members"]), 10, "node-b recorded as lagging")
        code, _, err = self.command("switchover", "--to", "node-b")
        self.assertEqual(code, 1)
        self.assertRegex(err, r"node-b is not ready: nodeos_lagging: its head is \d+\.\d s behind")
        code, _, err = self.command("switchover")
        self.assertEqual(code, 1)
        self.assertRegex(err, r"no candidate at all: node-b \(nodeos_lagging: its head is \d+\.\d s behind\)")

    def test_group_pause_stops_takeover_and_node_pause_skips_a_node(self):
        """Group paused: the producer's death is not followed by a takeover; resumed, a
        standby takes over. A paused node is never a candidate: another takes over."""
        producer, (b, c) = self.start_group()
        self.assertEqual(self.command("pause", "--reason", "maintenance")[0], 0)
        code, out, _ = self.command("status")
        self.assertRegex(out, r"paused: the group, by \S+ at \S+: maintenance \(no automatic takeover\)")
        killed = time.monotonic_ns()
        producer.signal(signal.SIGKILL)  # its nodeos dies with it
        producer.wait_exit(2)
        hold(lambda: not self.ledger.events("block", after=killed + 200_000_000), 2 * self.ttl + 1,
             "no takeover while the group is paused")
        self.assertEqual(self.command("pause", "--node", b.name)[0], 0)
        self.assertEqual(self.command("resume")[0], 0)
        resumed = time.monotonic_ns()
        first = self.ledger.wait_first_block(resumed, c.name, 5, f"{c.name} (not the paused {b.name}) to take over")
        self.assertFalse(self.ledger.events("block", node=b.name, after=killed), f"the paused {b.name} produced")
        self.assert_no_overlap()
        self.report("takeover after the group was resumed", f"{ms(first['t'] - resumed):.0f} ms")

    def test_hooks_run_beside_the_loop(self):
        """Every change of role runs the hooks with the new and old role, group and node; a
        slow hook is killed at its bound and never delays a fence."""
        out = os.path.join(self.workdir, "hook.out")
        extra = ["--on-role-change", f'echo "$NM_ROLE $NM_OLD_ROLE $NM_GROUP $NM_NODE | $1 $2 $3 $4" >> {out} #',
                 "--on-role-change", "sleep 30 #", "--hook-timeout", "1"]
        m = self.spawn_monitor("node-a", extra_args=extra)
        m.wait_producing(self.ttl + 10)
        def recorded():
            if not os.path.exists(out):
                return None
            with open(out, encoding="utf-8") as f:
                lines = f.read().splitlines()
            return lines if any(line.startswith("active standby") for line in lines) else None
        lines = wait_until(recorded, 5, "the hook to record the promotion")
        self.assertEqual(lines[0], f"standby starting {self.group} node-a | standby starting {self.group} node-a")
        self.assertIn(f"active standby {self.group} node-a | active standby {self.group} node-a", lines)
        # The lock taken from under the producer while a slow hook runs: the fence is at once.
        pid = m.wait_producing(1)
        self.ledger.wait_first_block(time.monotonic_ns(), "node-a", 2, "node-a to sign a block")
        deleted = time.monotonic_ns()
        self.etcd.request("/v3/kv/deleterange", {"key": base64.b64encode(self.group.encode()).decode()})
        m.wait_for_log(r"SIGKILL to nodeos pid \d+: .*\[fence_lost_lock\]", 2)
        last = self.ledger.last_block_time("node-a", pid)
        self.assertLess(last - deleted, 200_000_000, "the fence waited")
        m.wait_for_log(r"hook 2 \(sleep 30 #\) for .*: still running at the bound: killed after \d+ ms \[hook\]", 3)
        self.assertGreaterEqual(self.metric(m, 'nodeos_monitor_hook_runs_total{result="timed_out"}'), 1)
        self.assertGreaterEqual(self.metric(m, 'nodeos_monitor_hook_runs_total{result="ok"}'), 2)

    def metric(self, monitor, name):
        from harness import metric_samples
        with urllib.request.urlopen(f"http://{monitor.metrics_addr}/metrics", timeout=2) as r:
            return metric_samples(r.read().decode()).get(name, 0)

    def test_registry_beside_the_original_fleet(self):
        """The lock stays the exact key <group>: a watch on it (as the original Go monitor
        keeps) sees no member record, and a read of it returns the lock alone."""
        env = {**os.environ, "ETCDCTL_API": "3"}
        watcher = subprocess.Popen(
            ["etcdctl", f"--endpoints={self.etcd.url}", "watch", self.group, "-w", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.addCleanup(lambda: (watcher.kill(), watcher.wait()))
        # Its watch is open once it reports a write of the key, made before any monitor runs;
        # a write made before it opened is never reported, so write until one is.
        def watching():
            subprocess.run(["etcdctl", f"--endpoints={self.etcd.url}", "put", self.group, "sentinel"],
                           env=env, check=True, capture_output=True)
            return select.select([watcher.stdout], [], [], 0.2)[0] and watcher.stdout.readline().strip()
        wait_until(watching, 5, "etcdctl's watch of the exact key to report a write")
        subprocess.run(["etcdctl", f"--endpoints={self.etcd.url}", "del", self.group], env=env, check=True,
                       capture_output=True)
        producer, (b, c) = self.start_group()
        self.assertEqual(self.command("pause", "--node", b.name)[0], 0)
        self.assertEqual(self.command("resume", "--node", b.name)[0], 0)
        kvs = self.etcd.get(self.group)
        self.assertEqual(len(kvs), 1)
        holder = json.loads(base64.b64decode(kvs[0]["value"]))
        self.assertEqual(holder["node"], producer.name)
        watcher.terminate()
        seen, _ = watcher.communicate(timeout=5)
        keys = {base64.b64decode(ev["kv"]["key"]).decode() for line in seen.splitlines() if line.strip()
                for ev in json.loads(line).get("Events", [])}
        self.assertEqual(keys, {self.group}, "an exact-key watch must see the lock key only")


if __name__ == "__main__":
    unittest.main()

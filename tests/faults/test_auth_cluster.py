#!/usr/bin/env python3
"""A producer and a standby logged in to a three-member etcd with authentication on, while
the members are restarted one after another and the leadership moves: the same producer
nodeos all along, never fenced, no overlap.

etcd 3.4.42, 3.5.28, 3.6.9 and later check the token of lease keepalives (security
advisory GHSA-q8m4-xhhv-38mg). A simple token lives in each member's memory with its own
expiry there (--auth-token-ttl since its last use on that member) and is lost when the
member restarts: every restart, every move of the monitor to another member (its leader
finder follows the leader), and here every renewal (TTL 10: one every 3.3 s, against a
token that lasts 2 s unused, so that etcd's one-second sweep of its tokens has surely
dropped it) meets a token etcd refuses. The monitor authenticates and sends
the keepalive again within its deadline. A JWT (--auth-token jwt,...) is valid on every
member until it expires (here after 20 s): only its expiry meets a refusal.

NM_AUTH_SOAK_SECONDS sets how long the faults go on (default 45 s), NM_AUTH_TOKEN_TTL the
simple tokens' --auth-token-ttl (default 2); the long run: NM_AUTH_SOAK_SECONDS=600
NM_AUTH_TOKEN_TTL=3. Run one with (NM_MONITOR names the binary):
python3 tests/faults/test_auth_cluster.py AuthCluster.test_simple_tokens"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from etcd_security import Etcdctl, enable_auth, group_role, run  # noqa: E402
from faultlib import FaultCase, metric_samples, ms, pid_alive  # noqa: E402
from harness import etcd_checks_keepalive_tokens, etcd_version  # noqa: E402

ROOT_PASSWORD = "root's password"
USER, PASSWORD = "bp", "bp's password"
SOAK = float(os.environ.get("NM_AUTH_SOAK_SECONDS", "45"))
TOKEN_TTL = int(os.environ.get("NM_AUTH_TOKEN_TTL", "2"))
NS = 1_000_000_000


class AuthClusterCase(FaultCase):
    """Three members, authentication on, a user whose role holds the group's keys only;
    TTL 10 as in production."""

    ttl = 10
    stop_timeout = 4
    etcd_size = 3
    group = "bp-auth"
    token = "simple"
    fault_every = 5.0  # seconds between two faults of the cluster

    def etcd_args_for(self, workdir):
        if self.token == "simple":
            return ("--auth-token-ttl", str(TOKEN_TTL))
        private, public = os.path.join(workdir, "jwt.key"), os.path.join(workdir, "jwt.pub")
        run(["openssl", "genrsa", "-out", private, "2048"], "openssl genrsa")
        run(["openssl", "rsa", "-in", private, "-pubout", "-out", public], "openssl rsa -pubout")
        return ("--auth-token", f"jwt,pub-key={public},priv-key={private},sign-method=RS256,ttl=20s")

    def setUp(self):
        super().setUp()
        self.etcdctl = Etcdctl(",".join(m.url for m in self.cluster.members))
        enable_auth(self.etcdctl, ROOT_PASSWORD, users={USER: (PASSWORD, ["group-role"])},
                    roles={"group-role": group_role(self.group)})
        self.cluster.login("root", ROOT_PASSWORD)
        self.password_file = os.path.join(self.workdir, "bp.password")
        with open(self.password_file, "w", encoding="utf-8") as f:
            f.write(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)

    def login(self):
        return ["--etcd-user", USER, "--etcd-password-file", self.password_file]

    def member_id_hex(self, member):
        st = member.status()
        self.assertIsNotNone(st, f"etcd {member.name} does not answer its status")
        return format(int(st[0]), "x")

    def move_leader(self, leader):
        """Hands the leadership to the next member, as an operator would (etcdctl move-leader)."""
        others = [m for m in self.cluster.members if m is not leader and m.running]
        target = others[0]
        mover = Etcdctl(leader.url)  # the request must reach the current leader
        mover.user = self.etcdctl.user
        mover("move-leader", self.member_id_hex(target))
        return target

    def fault(self, n):
        """The n-th fault of the cycle: a follower SIGKILLed and restarted with its data; the
        leadership moved; the leader SIGKILLed and restarted; a follower stopped with SIGTERM
        and restarted. Returns what it did."""
        leader = self.cluster.leader()
        followers = [m for m in self.cluster.members if m is not leader]
        kind = n % 4
        if kind == 0:
            victim = followers[n // 4 % len(followers)]
            victim.kill()
            victim.start()
            what = f"follower {victim.name} SIGKILLed and restarted"
        elif kind == 1:
            target = self.move_leader(leader)
            what = f"leadership moved from {leader.name} to {target.name}"
        elif kind == 2:
            leader.kill()
            self.cluster.leader()
            leader.start()
            what = f"leader {leader.name} SIGKILLed and restarted"
        else:
            victim = followers[0]
            victim.kill(signal.SIGTERM)
            victim.start()
            what = f"follower {victim.name} stopped (SIGTERM) and restarted"
        self.cluster.wait_healthy()
        self.cluster.leader()
        return what

    def keepalive_figures(self, node):
        """(renewals, mean ms) of every acknowledged keepalive, from the monitor's metrics;
        and the whole-renewal times (ms) of those sent again after a refused token, from its
        debug log."""
        with urllib.request.urlopen(f"http://{node.monitor.metrics_addr}/metrics", timeout=2) as r:
            samples = metric_samples(r.read().decode())
        count = samples.get("nodeos_monitor_keepalive_duration_seconds_count", 0)
        total = samples.get("nodeos_monitor_keepalive_duration_seconds_sum", 0)
        resent = [int(v) for v in re.findall(r"keepalive answered after a new token, (\d+) ms after its first send",
                                             node.monitor.log_text())]
        return int(count), (1000 * total / count if count else 0.0), resent

    def soak(self):
        a, (b,) = self.start_nodes(extra_args=self.login())
        pid = a.monitor.wait_nodeos_mode("producer", 5)
        began = time.monotonic_ns()
        done = []
        n = 0
        while time.monotonic_ns() - began < SOAK * NS:
            done.append(self.fault(n))
            print(f"{(time.monotonic_ns() - began) / NS:6.1f} s: {done[-1]}", flush=True)
            n += 1
            time.sleep(self.fault_every)
            self.assertTrue(pid_alive(pid), f"the producer's nodeos {pid} is gone after: {done[-1]}\n"
                            + a.monitor.log_tail())
        minutes = (time.monotonic_ns() - began) / NS / 60

        # The same producer nodeos all along: never stopped, never fenced, nobody else producing.
        self.assertTrue(a.monitor.producing_now(pid), "the producer no longer produces")
        self.assertEqual(self.ledger.events("stop", pid=pid), [], "the producer was stopped")
        self.assertEqual([r.node for r in self.ledger.runs()], [a.name], "another node produced")
        # Line by line: a regex over a whole long log would hold the interpreter for seconds,
        # and with it the proxies between the members (threads of this process).
        for node in (a, b):
            for pattern, what in ((r"\[fence_|lease not renewed|deadline_passed|lease_gone", "was fenced or lost its lease"),
                                  (r"Z error ", "logged an error"),
                                  (r"failed: unauthenticated", "did not send a request refused for its token again")):
                found = next((line for line in node.monitor.log_text().splitlines() if re.search(pattern, line)), None)
                self.assertIsNone(found, f"{node.name} {what}: {found}")
        self.assert_no_overlap()

        self.report("etcd", ".".join(map(str, etcd_version()))
                    + (f", simple tokens, --auth-token-ttl {TOKEN_TTL}" if self.token == "simple" else ", JWT")
                    + (" (checks keepalive tokens)" if etcd_checks_keepalive_tokens() else " (does not check keepalive tokens)"))
        self.report("faults", f"{len(done)} in {minutes * 60:.0f} s: "
                    + ", ".join(f"{sum(k in d for d in done)} {k}" for k in ("SIGKILLed", "moved", "SIGTERM")))
        self.report("fences", "0; the producer's nodeos the same all along")
        for node in (a, b):
            auths = len(re.findall(r"Z info  authenticated to etcd", node.monitor.log_text()))
            count, mean, resent = self.keepalive_figures(node)
            resent_text = (f"{len(resent)} sent again after a refused token, whole renewal median "
                           f"{statistics.median(resent):.0f} ms, max {max(resent)} ms") if resent else "none sent again"
            self.report(f"{node.name}", f"{auths / minutes:.1f} authentications a minute; {count} keepalives, "
                        f"mean {mean:.1f} ms; {resent_text}")



class AuthCluster(AuthClusterCase):
    token = "simple"

    def test_simple_tokens(self):
        """Simple tokens that expire between renewals, members restarted and the leadership moved."""
        self.soak()


class AuthClusterJwt(AuthClusterCase):
    token = "jwt"

    def test_jwt_tokens(self):
        """JWT tokens (RS256, 20 s), members restarted and the leadership moved."""
        self.soak()


if __name__ == "__main__":
    unittest.main()

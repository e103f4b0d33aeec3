#!/usr/bin/env python3
"""etcd's security end to end: real etcd with users and roles (etcd's authentication) or
with TLS and client certificates, real monitors supervising the nodeos simulator.

- users: a root user and a role limited to the group's keys [GROUP, GROUP0) both produce;
  tokens that expire (--auth-token-ttl) and a restarted member make the monitor
  authenticate again while its node produces on, and a cut etcd still fences it on time;
  a wrong password, a role without the group's keys and no user at all never produce, say
  why at level error, and retry at a bounded rate; a bad password file exits 2.
- TLS: a CA and certificates made with openssl; the right setup produces; a wrong CA, a
  host name the certificate does not name, a certificate of another host, no client
  certificate, an expired one (the client's or the server's), one of another CA never
  produce and log why.

Run one with: python3 tests/e2e/test_security.py EtcdUsers.test_root_and_a_limited_role_both_produce
(NM_MONITOR names the binary; default build/nodeos-monitor)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from etcd_security import Certificates, Etcdctl, TlsEtcd, enable_auth, group_role  # noqa: E402
from harness import (  # noqa: E402
    Etcd, Monitor, MonitorTestCase, etcd_checks_keepalive_tokens, hold, ms, pid_alive, wait_until)

NS = 1_000_000_000


def thread_count(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))

def own_status(monitor):
    """The monitor's /status document, or None while its endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://{monitor.metrics_addr}/status", timeout=1) as r:
            return json.load(r)
    except OSError:
        return None


ROOT_PASSWORD = "root's password"
PASSWORDS = {"bp": "bp's password: 'long' and \"quoted\"", "stranger": "stranger's password"}


class UsersCase(MonitorTestCase):
    """One etcd with authentication on: root; bp, whose role may read and write the
    group's keys only; stranger, whose role may read and write another group's keys."""

    etcd_args = ()

    def setUp(self):
        self.make_workdir()
        self.monitors = []
        self.etcd = Etcd(self.workdir, extra_args=self.etcd_args)
        self.addCleanup(self.etcd.stop)
        self.addCleanup(self._stop_monitors)
        self.etcd.start()
        self.etcdctl = Etcdctl(self.etcd.url)
        enable_auth(self.etcdctl, ROOT_PASSWORD,
                    users={"bp": (PASSWORDS["bp"], ["group-role"]),
                           "stranger": (PASSWORDS["stranger"], ["other-role"])},
                    roles={"group-role": group_role(self.group), "other-role": group_role("other-group")})

    def password_file(self, name, password, mode=0o600):
        path = os.path.join(self.workdir, f"{name}.password")
        with open(path, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        os.chmod(path, mode)
        return path

    def login(self, user, password=None):
        """The flags of a monitor that logs in as `user` (with its own password unless
        another is given)."""
        if password is None:
            password = ROOT_PASSWORD if user == "root" else PASSWORDS[user]
        return ["--etcd-user", user, "--etcd-password-file", self.password_file(f"{user}-{len(self.monitors)}", password)]

    def etcd_leases(self):
        """The IDs of every lease etcd holds (as root: etcd checks this too)."""
        return self.etcdctl("lease", "list").split()[3:]

    def group_keys(self):
        return self.etcdctl("get", "--prefix", "--keys-only", self.group).split()

    def error_lines(self, monitor, since=0):
        """The monitor's own lines at level error (nodeos's relayed lines left out)."""
        return [line for line in monitor.log_text(since).splitlines()
                if re.search(r"Z error ", line) and "[nodeos " not in line]


class EtcdUsers(UsersCase):

    def test_root_and_a_limited_role_both_produce(self):
        """Two monitors, one logged in as root and one as bp (readwrite on [GROUP, GROUP0)
        only): one produces, the other stands by; the producer's SIGTERM hands over to the
        other within half a TTL (its watch saw the release). So each user has held the lock,
        and read, written, watched and revoked through its token; nothing is logged at
        level error."""
        a = self.spawn_monitor("node-a", extra_args=self.login("root"))
        b = self.spawn_monitor("node-b", extra_args=self.login("bp"))
        first = self.wait_producer(self.ttl + 10)
        second = b if first is a else a
        first.wait_producing(5)
        second.wait_standby(self.ttl + 5)
        a.wait_for_log(r"Z info  authenticated to etcd as user root$", 1, flags=re.MULTILINE)
        b.wait_for_log(r"Z info  authenticated to etcd as user bp$", 1, flags=re.MULTILINE)
        wait_until(lambda: {self.group, f"{self.group}/members/node-a", f"{self.group}/members/node-b"}
                   <= set(self.group_keys()), 5, "the lock and both member records in etcd")
        for monitor in (a, b):
            self.assertEqual(thread_count(monitor.pid), 1, f"{monitor.name} must run on exactly one thread")

        sent = time.monotonic_ns()
        first.signal(signal.SIGTERM)
        self.assertEqual(first.wait_exit(first.stop_timeout + 3), 0, first.log_tail())
        block = self.ledger.wait_first_block(sent, second.name, self.ttl,
                                             f"{second.name} to produce after {first.name} stopped")
        self.assertLess(block["t"] - sent, self.ttl * NS / 2,
                        "the lease was revoked and the standby watches the lock: it must not wait for the TTL")
        self.report("handover between the two users", f"{ms(block['t'] - sent):.0f} ms")
        for monitor in (a, b):
            self.assertEqual(self.error_lines(monitor), [], f"{monitor.name} logged errors")
        self.assertEqual(self.ledger.runs()[0].node, first.name)
        self.assertEqual({run.node for run in self.ledger.runs()}, {"node-a", "node-b"}, "both users produced")
        self.assert_no_overlap()

    def test_refused_users_never_produce(self):
        """A wrong password, a role without the group's keys, and no user at all for an
        etcd that wants one: each node runs its nodeos as a validator and never produces,
        says why at level error (once: it lasts less than the minute after which it is said
        again), reports itself out of the race (etcd_refused), and retries at a bounded rate;
        no lock key is ever written."""
        wrong = self.spawn_monitor("wrong-password", extra_args=self.login("bp", password="not bp's password"))
        stranger = self.spawn_monitor("stranger", extra_args=self.login("stranger"))
        nobody = self.spawn_monitor("no-user")
        reasons = {
            wrong: r"Z error etcd refuses user bp: wrong password \(or no such user\) "
                   r"\(etcdserver: authentication failed, invalid user ID or password\)$",
            stranger: r'Z error permission denied for (keys \["bp-group", "bp-group0"\) \(range\)|key "bp-group\S*" '
                      r'\((txn|put)\)) as etcd user stranger: etcdserver: permission denied$',
            nobody: r"Z error etcd has authentication enabled and no user is configured: ",
        }
        for monitor, reason in reasons.items():
            monitor.wait_nodeos_mode("validator", 10)
            monitor.wait_for_log(reason, 10, flags=re.MULTILINE)
            # Operators and a planned switchover see that it is out of the race, and why.
            wait_until(lambda: (own_status(monitor) or {}).get("not_candidate_reason") == "etcd_refused", 5,
                       f"{monitor.name}'s /status to say it is not a candidate: etcd_refused")
        marks = {monitor: monitor.log_mark() for monitor in reasons}
        window = 6.0
        hold(lambda: all(m.poll() is None for m in reasons) and not self.ledger.events("producing")
             and not self.ledger.events("block"), window, "no refused node producing, every monitor running")

        for monitor, reason in reasons.items():
            text = monitor.log_text(marks[monitor])
            # Every refusal the core saw in the window: it retries after 100 ms doubling to
            # 2 s, or once per keepalive (TTL/3) for reads; the client authenticates at most
            # once a second after a refused password.
            failures = len(re.findall(r" warn  .*(failed|refuses|refused|denied)", text))
            authentications = text.count("etcd: authenticating as user")
            self.report(f"{monitor.name}: refusals in {window:.0f} s", f"{failures} failed requests, "
                        f"{authentications} authentications")
            self.assertLessEqual(failures, 4 * window, f"{monitor.name} retries too often:\n{text[-3000:]}")
            self.assertLessEqual(authentications, window + 1, f"{monitor.name} authenticates too often")
            errors = self.error_lines(monitor)
            self.assertTrue(errors and all(re.search(reason, line) for line in errors),
                            f"{monitor.name}: expected only the reason at level error, got {errors}")
            texts = [line.split("Z error ", 1)[1] for line in errors]
            self.assertEqual(len(texts), len(set(texts)), f"{monitor.name} repeats its error: {errors}")
        self.assertEqual(self.ledger.events("producing"), [], "a refused node produced")
        self.assertNotIn(self.group, self.group_keys(), "a refused node wrote the lock")
        self.assertEqual(len(wrong.nodeos_pids()), 1, "the refused node runs exactly one nodeos")

    def test_bad_password_files_exit_2(self):
        """A password file that others may read, that is empty or missing, a user without a
        file or a file without a user, a password on the command line or in the config
        file: exit 2 with a one-line reason naming the file, before anything starts."""
        readable = self.password_file("readable", PASSWORDS["bp"], mode=0o644)
        empty = self.password_file("empty", "")
        good = self.password_file("good", PASSWORDS["bp"])
        missing = os.path.join(self.workdir, "missing.password")
        config = os.path.join(self.workdir, "with-password.conf")
        with open(config, "w", encoding="utf-8") as f:
            f.write("etcd-user = bp\netcd-password = hunter2\n")
        os.chmod(config, 0o600)
        cases = {
            "readable by others": (["--etcd-user", "bp", "--etcd-password-file", readable],
                                   f"--etcd-password-file {readable}: readable by other users"),
            "empty": (["--etcd-user", "bp", "--etcd-password-file", empty], f"--etcd-password-file {empty}: empty"),
            "missing": (["--etcd-user", "bp", "--etcd-password-file", missing],
                        f"--etcd-password-file {missing}: No such file"),
            "user without a file": (["--etcd-user", "bp"], "--etcd-user needs --etcd-password-file"),
            "file without a user": (["--etcd-password-file", good], "--etcd-password-file needs --etcd-user"),
            "password on the command line": (["--etcd-user", "bp", "--etcd-password", "hunter2"],
                                             "--etcd-password: a password is never given"),
            "password in the config file": (["--config", config], f"{config}:2: --etcd-password: a password is never"),
        }
        for name, (args, reason) in cases.items():
            with self.subTest(name):
                monitor = Monitor(self.workdir, "invalid", [self.etcd.url], self.group, ledger=self.ledger,
                                  start=False, extra_args=args)
                try:
                    done = subprocess.run(monitor.argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail(f"{name}: still running after 10 s; expected exit 2")
                stderr = done.stderr.decode(errors="replace").strip()
                self.assertEqual(done.returncode, 2, f"{name}: {stderr}")
                self.assertEqual(len(stderr.splitlines()), 1, f"{name}: expected a one-line reason, got:\n{stderr}")
                self.assertIn(reason, stderr, name)
                self.assertNotIn("hunter2", stderr, f"{name}: the password was echoed")
                self.assertEqual(self.ledger.starts("invalid"), [], f"{name}: nodeos started")
        self.assertEqual(self.etcd_leases(), [], "a lease was granted")


class ExpiringTokens(UsersCase):
    """Tokens that expire between uses; an etcd that snapshots its state after every
    entry or two, so that a restarted member has lost the tokens it gave (it replays only
    the log after its snapshot, and simple tokens live in memory), and that elects itself
    quickly after a restart. TTL 6 s: the restart (under a second without etcd) stays clear
    of the fence (2.4 s before the deadline).

    An etcd that checks the token of keepalives (3.4.42, 3.5.28 and later) sees one every
    2 s (TTL/3), which keeps a simple token alive: there the token lasts 1 s unused, so that
    every keepalive finds it expired and is sent again with a new one. Elsewhere it lasts
    2 s, and only the member record's refresh (every 10 s) and the reads meet it expired."""

    ttl = 6
    token_ttl = 1 if etcd_checks_keepalive_tokens() else 2
    etcd_args = ("--auth-token-ttl", str(token_ttl), "--snapshot-count", "1",
                 "--heartbeat-interval", "50", "--election-timeout", "300")

    def test_tokens_replaced_while_producing_and_fenced_on_time(self):
        """A node logged in as bp produces. Its token expires between uses: each use
        authenticates again, unseen by the core (a keepalive too, where etcd checks it:
        sent again within its own deadline, the lease deadline counted from the second
        send). Right after one of them, while the new token is fresh, etcd is SIGKILLed
        and restarted with its data: the monitor's next request finds the token gone with
        the old process, and authenticates again at once, well before the token could have
        expired. The same nodeos produces throughout, never fenced. Then etcd is frozen:
        the producer still signs its last block before the lease deadline (freeze + TTL),
        and once etcd thaws a node produces again."""
        monitor = self.spawn_monitor("node-a", extra_args=self.login("bp"))
        pid = monitor.wait_producing(self.ttl + 10)
        mark = monitor.log_mark()
        again = r"Z info  authenticated to etcd again as user bp: the last token was refused \(.*invalid auth token"
        monitor.wait_for_log(again, 14, since=mark)
        # etcd 3.4 hands out a simple token by a raft entry, and a restarted member replays the
        # entries after its latest snapshot: a few writes now put that snapshot past the
        # monitor's authentication, so that its token is surely gone with the process.
        for i in range(2):
            self.etcdctl("put", f"scratch/snapshot-{i}", "x")

        mark = monitor.log_mark()
        killed = time.monotonic_ns()
        self.etcd.stop(signal.SIGKILL)
        self.etcd.start()
        restarted = time.monotonic_ns()
        self.report("etcd restart (SIGKILL to healthy)", f"{ms(restarted - killed):.0f} ms")
        # Within the token's 2 s: the restart, not the expiry, made etcd refuse it. Where
        # keepalives are checked, each renewal meets an expired token anyway: the next one.
        window = self.token_ttl - ms(restarted - killed) / 1000 - 0.2
        if etcd_checks_keepalive_tokens():
            window = self.ttl / 3 + 1
        monitor.wait_for_log(again, window, since=mark)
        self.report("authenticated again after the restart", f"{ms(time.monotonic_ns() - restarted):.0f} ms")
        monitor.wait_for_log(r"watch from revision", 5, since=mark)

        def producing_on():
            return pid_alive(pid) and monitor.producing_now(pid) and not self.ledger.events("stop", pid=pid) \
                and self.ledger.current_producers(self.producing_window_ms) == [monitor.name]
        hold(producing_on, 2.0, "the same nodeos producing after the restart")
        self.assertEqual(self.ledger.latest_start(monitor.name)["pid"], pid, "nodeos was restarted")
        self.assertNotRegex(monitor.log_text(), r"\[fence_|lease grant failed|refuses",
                            "the node was fenced, or refused by etcd")
        refused = re.search(r".*keepalive failed: unauthenticated.*", monitor.log_text())
        self.assertIsNone(refused, "a keepalive refused for its token must be sent again with a new one")
        self.assertEqual(self.error_lines(monitor), [])

        frozen = time.monotonic_ns()
        self.etcd.pause()
        deadline = frozen + self.ttl * NS
        try:
            wait_until(lambda: not pid_alive(pid) or self.ledger.events("stop", pid=pid), self.ttl + 1,
                       f"the producer {pid} to stop while etcd is frozen")
            last = self.ledger.last_block_time(monitor.name, pid)
            self.report("fence margin (lease deadline bound minus last block)",
                        f"{ms(deadline - last):.0f} ms (TTL {self.ttl} s)")
            self.assertLess(last, deadline, "the producer signed a block past the lease deadline")
        finally:
            self.etcd.resume()
        thawed = time.monotonic_ns()
        self.wait_producer(self.ttl + 10)
        self.report("producing again after etcd thawed", f"{ms(time.monotonic_ns() - thawed):.0f} ms")
        self.assert_no_overlap()


class EtcdTls(MonitorTestCase):
    """etcd serving its clients over TLS only, asking for client certificates of the test
    CA (--client-cert-auth): one with the right certificate for 127.0.0.1, one with a
    certificate of another host, one with an expired certificate."""

    def setUp(self):
        self.make_workdir()
        self.monitors = []
        self.certs = Certificates(os.path.join(self.workdir, "certs"))
        self.addCleanup(self._stop_monitors)
        self.etcd = TlsEtcd(self.workdir, self.certs, name="right")
        self.other_host = TlsEtcd(self.workdir, self.certs, name="other-host", cert=self.certs.other_host,
                                  key=self.certs.other_host_key)
        self.expired = TlsEtcd(self.workdir, self.certs, name="expired", cert=self.certs.expired_server,
                               key=self.certs.expired_server_key)
        for etcd in (self.etcd, self.other_host, self.expired):
            self.addCleanup(etcd.stop)
            etcd.start(wait=False)
        for etcd in (self.etcd, self.other_host, self.expired):
            etcd.wait_healthy()

    def client_files(self, ca=None, cert=None, key=None):
        ca = ca or self.certs.ca
        args = ["--etcd-ca", ca]
        if cert:
            args += ["--etcd-cert", cert, "--etcd-key", key]
        return args

    def test_tls_setups(self):
        """Each setup that cannot work runs a validator, never produces, and logs why at
        level warning, at every attempt: the failed request and the reason OpenSSL or etcd
        gives. Then the right setup produces."""
        c = self.certs
        client = dict(cert=c.client, key=c.client_key)
        refused_client = r"right after its handshake: it may refuse the client certificate"
        cases = {
            "wrong-ca": (self.etcd.url, self.client_files(ca=c.other_ca, **client),
                         r"tls handshake 127\.0\.0\.1:\d+: certificate verify failed.*unable to get local issuer"),
            "name-not-in-cert": (self.etcd.url.replace("127.0.0.1", "localhost"), self.client_files(**client),
                                 r"tls handshake 127\.0\.0\.1:\d+: certificate verify failed.*hostname mismatch"),
            "cert-of-other-host": (self.other_host.url, self.client_files(**client),
                                   r"tls handshake 127\.0\.0\.1:\d+: certificate verify failed.*IP address mismatch"),
            "expired-server-cert": (self.expired.url, self.client_files(**client),
                                    r"tls handshake 127\.0\.0\.1:\d+: certificate verify failed.*certificate has expired"),
            "no-client-cert": (self.etcd.url, self.client_files(), refused_client),
            "expired-client-cert": (self.etcd.url, self.client_files(cert=c.expired, key=c.expired_key),
                                    refused_client),
            "client-cert-of-other-ca": (self.etcd.url, self.client_files(cert=c.other_client, key=c.other_client_key),
                                        refused_client),
        }
        # The monitor connects to the first address its host name resolves to.
        first = socket.getaddrinfo("localhost", self.etcd.client_port, socket.AF_UNSPEC, socket.SOCK_STREAM)[0]
        if first[4][0] != "127.0.0.1":
            print(f"\nlocalhost resolves to {first[4][0]} first: the name-not-in-cert case is left out", flush=True)
            del cases["name-not-in-cert"]
        monitors = {}
        for name, (url, args, reason) in cases.items():
            monitors[name] = Monitor(self.workdir, name, [url], f"group-{name}", ttl=self.ttl,
                                     stop_timeout=self.stop_timeout, ledger=self.ledger, block_ms=self.block_ms,
                                     extra_args=args)
            self.monitors.append(monitors[name])
        for name, (url, args, reason) in cases.items():
            with self.subTest(name):
                monitor = monitors[name]
                monitor.wait_nodeos_mode("validator", 10)
                monitor.wait_for_log(r"Z warn  lease grant failed: unavailable: transport error: .*" + reason, 10)
        hold(lambda: all(m.poll() is None for m in monitors.values()) and not self.ledger.events("producing"),
             3.0, "no node producing over a TLS setup that cannot work")

        right = self.spawn_monitor("right", extra_args=self.client_files(cert=c.client, key=c.client_key))
        right.wait_nodeos_mode("producer", self.ttl + 10)
        self.assertIs(self.wait_producer(5), right)
        self.assertEqual({run.node for run in self.ledger.runs()}, {"right"}, "only the right setup produced")
        self.assertNotRegex(right.log_text(), r"lease grant failed|tls handshake", "the right setup failed on the way")


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""The Debian package in a real systemd: a Debian container (12 or 13: NM_ROOTFS) booted
with systemd-nspawn, the .deb installed in it, the unit started against an etcd and the
nodeos simulator. scripts/container-test runs it in both, with the same .deb.

It checks that the package, built the standard way (packaging/debian as debian/,
dpkg-buildpackage), installs the unit, the Grafana dashboard and the Prometheus rules as
they are in the tree, creates the user and leaves the unit disabled, that
`systemd-analyze verify` is clean, that the unit is active only after READY=1 (nodeos
running), that `systemctl status` shows the STATUS line and `journalctl -p` filters by
priority, that stopping the unit stops nodeos and hands the lock to a peer, and that a
monitor frozen with SIGSTOP is killed by the watchdog together with its nodeos, that two
chains run beside the plain unit as instances of the template unit (each its config, state
directory, metrics address and failover group; one stops, the others go on), and that
purging the package takes the units, their enablement and the other files with it.

Run through scripts/container-test (it builds the package and the root file system).
The container shares the host's network: etcd and the peer monitor run on the host.
Environment: NM_DEB (the package), NM_ROOTFS (a debootstrap tree, not modified),
NM_WORK (a scratch directory), NM_RELEASE (the tree's name, for the messages)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import (  # noqa: E402
    SIM, Etcd, Ledger, Monitor, free_port, make_config_dirs, metric_samples, stop_monitors,
    wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GROUP = "ct-group"
NODE = "ct-node"
WATCHDOG_SEC = 3  # the unit's WatchdogSec
# Where the package puts what meson installs (meson.build, packaging/debian/rules).
INSTALLED = {
    "/lib/systemd/system/nodeos-monitor.service": "packaging/nodeos-monitor.service",
    "/lib/systemd/system/nodeos-monitor@.service": "packaging/nodeos-monitor@.service",
    "/usr/share/nodeos-monitor/grafana/nodeos-monitor.json": "packaging/grafana/nodeos-monitor.json",
    "/usr/share/nodeos-monitor/prometheus/nodeos-monitor-rules.yml":
        "packaging/prometheus/nodeos-monitor-rules.yml",
}


# The chains of the template unit's test, each an instance beside the plain unit.
CHAINS = ("chain-a", "chain-b")


def installed_text(source):
    """A file of the tree as meson installs it for the package: the units with the paths of
    prefix /usr (meson.build's configure_file())."""
    with open(os.path.join(ROOT, source), encoding="utf-8") as f:
        text = f.read()
    return text.replace("@bindir@", "/usr/bin").replace("@sysconfdir@", "/etc")


def find_container_init(nspawn_pid):
    """The host PID of the container's PID 1: a descendant of systemd-nspawn whose PID in
    its own namespace is 1."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            continue
        nspids = status.get("NSpid", "").split()
        if len(nspids) >= 2 and nspids[-1] == "1":
            pid = int(entry)
            parent = int(status.get("PPid", 0))
            while parent > 1:
                if parent == nspawn_pid:
                    return pid
                with open(f"/proc/{parent}/status") as f:
                    parent = int(next(l.split()[1] for l in f if l.startswith("PPid:")))
    return None


class Container:
    """A booted systemd-nspawn container, driven with nsenter."""

    def __init__(self, root, log_path):
        self.root = root
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", root, "-b", "--register=no", "--keep-unit", "--console=pipe",
             "--machine=nm-container-test"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.init_pid = wait_until(lambda: self._alive() and find_container_init(self.proc.pid), 30,
                                   "the container's systemd to start")

    def _alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.proc.returncode}")
        return True

    def run(self, *argv, check=True, timeout=60):
        done = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a", *argv],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def show(self, *props, unit="nodeos-monitor"):
        out = self.run("systemctl", "show", unit, *[f"-p{p}" for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, *args, unit="nodeos-monitor"):
        return self.run("journalctl", "--no-pager", "-u", unit, *args, check=False).stdout

    def pid_alive(self, pid):
        return self.run("test", "-d", f"/proc/{pid}", check=False).returncode == 0

    def children(self, pid):
        out = self.run("sh", "-c", f"cat /proc/{pid}/task/*/children 2>/dev/null || true", check=False).stdout
        return [int(p) for p in out.split()]

    def poweroff(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class ContainerTest(unittest.TestCase):

    def setUp(self):
        self.deb = os.environ["NM_DEB"]
        base = os.environ["NM_ROOTFS"]
        self.work = os.environ["NM_WORK"]
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        if not os.environ.get("NM_KEEP_WORKDIR"):
            self.addCleanup(shutil.rmtree, self.work, True)  # last: after the container is gone
        self.root = os.path.join(self.work, "root")
        subprocess.run(["cp", "-a", base, self.root], check=True)
        self.etcd = Etcd(self.work)
        self.etcd.start()
        self.addCleanup(self.etcd.stop)
        self.peers = []
        self.addCleanup(lambda: stop_monitors(self.peers))
        self.metrics_port = free_port()
        # The simulator's HTTP API, like nodeos's, binds 127.0.0.1:8888 by default; the
        # container shares the host's network, where that port may be taken.
        self.api_port = free_port()
        self.prepare_root()
        self.ct = Container(self.root, os.path.join(self.work, "container.log"))
        self.addCleanup(self.ct.poweroff)
        # "offline" until its manager answers on the bus, "starting" until the boot is done.
        states = []

        def booted():
            states.append(self.ct.run("systemctl", "is-system-running", check=False).stdout.strip())
            return states[-1] in ("running", "degraded")
        wait_until(booted, 90, "the container's systemd to finish booting")
        self.ledger = Ledger(os.path.join(self.root, "var/lib/nodeos/ledger.jsonl"))

    def prepare_root(self):
        """The simulator as nodeos, its two config dirs, and the package, inside the tree."""
        os.makedirs(os.path.join(self.root, "opt/nm-test"), exist_ok=True)
        shutil.copy(SIM, os.path.join(self.root, "opt/nm-test/nodeos_sim.py"))
        active, standby = make_config_dirs(os.path.join(self.work, "configs"))
        shutil.copytree(active, os.path.join(self.root, "etc/nodeos-active-configs"))
        shutil.copytree(standby, os.path.join(self.root, "etc/nodeos-standby-configs"))
        shutil.copy(self.deb, os.path.join(self.root, "root/nodeos-monitor.deb"))

    def write_config(self, path="/etc/nodeos-monitor/nodeos-monitor.conf", group=GROUP, node=NODE,
                     metrics_port=None, api_port=None, data_dir="/var/lib/nodeos"):
        text = "\n".join([
            "# written by the container test",
            "nodeos = /opt/nm-test/nodeos_sim.py",
            f"etcd-endpoints = {self.etcd.url}",
            f"failover-group = {group}",
            f"node-name = {node}",
            "stop-timeout = 5",
            f"metrics-addr = 127.0.0.1:{metrics_port or self.metrics_port}",
            f"nodeos-args = --data-dir={data_dir}",
            # A one-producer test chain: stale production on, as its nodeos would need.
            "nodeos-args = --enable-stale-production",
            f"nodeos-args = --http-server-address=127.0.0.1:{api_port or self.api_port}",
            # Health-gated, as a real node: the watchdog's SIGKILL below leaves nodeos's
            # database dirty, and the restarted unit replays it (which needs the API to tell
            # when the replay is over).
            f"nodeos-api = http://127.0.0.1:{api_port or self.api_port}",
            "dirty-db-args = --replay-blockchain",
            f"nodeos-args = --sim-node={node}",
            f"nodeos-args = --sim-ledger={data_dir}/ledger.jsonl",
            "nodeos-args = --sim-block-ms=100",
            ""])
        with open(os.path.join(self.root, path.lstrip("/")), "w") as f:
            f.write(text)
        # As the operator installs it: readable by the service's group, not by others.
        self.ct.run("chgrp", "nodeos-monitor", path)
        self.ct.run("chmod", "0640", path)

    def status_text(self, unit="nodeos-monitor"):
        return self.ct.show("StatusText", unit=unit)["StatusText"]

    def wait_status(self, prefix, timeout, unit="nodeos-monitor"):
        try:
            return wait_until(lambda: self.status_text(unit).startswith(prefix), timeout,
                              f"the status of {unit} to start with {prefix!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}; it is {self.status_text(unit)!r}") from None

    def producers(self, ledger, within_ms=500):
        return ledger.current_producers(within_ms)

    def test_package_in_systemd(self):
        timings = {}
        # --- install: the user, the files, a disabled unit ------------------------------
        release = self.ct.run("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME").stdout.strip()
        print(f"in {release}: {os.path.basename(self.deb)}", flush=True)
        self.ct.run("dpkg", "-i", "/root/nodeos-monitor.deb", timeout=120)
        # The binary finds its libraries on this release (no Boost among them).
        version = self.ct.run("nodeos-monitor", "--version").stdout.strip()
        with open(os.path.join(ROOT, "packaging/debian/changelog"), encoding="utf-8") as f:
            self.assertEqual(version, "nodeos-monitor " + re.search(r"\((.*?)\)", f.readline()).group(1))
        self.ct.run("getent", "passwd", "nodeos-monitor")
        self.assertEqual(self.ct.run("systemctl", "is-enabled", "nodeos-monitor", check=False).stdout.strip(),
                         "disabled")
        self.assertEqual(self.ct.run("systemctl", "is-active", "nodeos-monitor", check=False).stdout.strip(),
                         "inactive")
        conf = self.ct.run("stat", "-c", "%U:%G %a", "/etc/nodeos-monitor/nodeos-monitor.conf").stdout.split()
        self.assertEqual(conf, ["root:nodeos-monitor", "640"])
        # The unit, the dashboard and the rules: the package's files, as they are in the tree.
        listed = self.ct.run("dpkg", "-L", "nodeos-monitor").stdout.split()
        for path, source in INSTALLED.items():
            self.assertIn(path, listed, f"the package does not ship {path}")
            self.assertEqual(self.ct.run("cat", path).stdout, installed_text(source), f"{path} differs from {source}")
        self.ct.run("python3", "-c", "import json, sys; json.load(open(sys.argv[1]))",
                    "/usr/share/nodeos-monitor/grafana/nodeos-monitor.json")
        for unit in ("nodeos-monitor.service", f"nodeos-monitor@{CHAINS[0]}.service"):
            verify = self.ct.run("systemd-analyze", "verify", "--man=no", unit, check=False)
            self.assertEqual((verify.returncode, verify.stdout + verify.stderr), (0, ""),
                             f"systemd-analyze verify {unit}")
        self.write_config()

        # --- READY only once nodeos runs: with etcd frozen, the monitor waits for the
        # lock's verdict before it starts nodeos as a validator, and the unit activates
        # only then.
        self.etcd.pause()
        started = time.monotonic()
        self.ct.run("systemctl", "start", "--no-block", "nodeos-monitor")
        samples = []

        def active():
            p = self.ct.show("ActiveState", "SubState", "MainPID")
            has_nodeos = p["MainPID"] != "0" and bool(self.ct.children(int(p["MainPID"])))
            samples.append((p["ActiveState"], p["SubState"], has_nodeos))
            return p["ActiveState"] == "active"
        wait_until(active, 20, "the unit to become active")
        timings["start to active (etcd frozen)"] = time.monotonic() - started
        self.assertIn(("activating", "start", False), samples, f"never seen activating: {samples}")
        self.assertTrue(all(n for state, _, n in samples if state == "active"), samples)
        self.assertTrue(self.status_text().startswith("standby"), self.status_text())
        # The frozen etcd lets the grant time out: a warning, for journalctl -p below.
        wait_until(lambda: "lease grant failed" in self.ct.journal("-p", "warning", "-o", "cat"), 10,
                   "a warning in the journal")
        self.etcd.resume()
        self.wait_status("active since", 30)
        status = self.ct.run("systemctl", "status", "--no-pager", "nodeos-monitor", check=False).stdout
        self.assertRegex(status, r"Active: active \(running\)")
        self.assertRegex(status, r'Status: "active since \d{4}-')
        wait_until(lambda: self.producers(self.ledger) == [NODE], 10, "the unit's nodeos to produce")

        # journalctl -p works: warnings (etcd was frozen) without the info lines.
        warnings = self.ct.journal("-p", "warning", "-o", "cat")
        self.assertIn("lease grant failed", warnings)
        self.assertNotRegex(warnings, r"started (active|standby) nodeos")
        entries = [json.loads(l) for l in self.ct.journal("-o", "json").splitlines() if l.startswith("{")]
        priorities = {e.get("PRIORITY") for e in entries if e.get("SYSLOG_IDENTIFIER") == "nodeos-monitor"}
        self.assertTrue({"4", "6"} <= priorities, priorities)

        # --- stop: nodeos stops, the lease is released, the peer takes over at once -----
        # On the unit's chain (its ledger): a health-gated peer judges its head by the unit's
        # blocks.
        peer = Monitor(self.work, "host-peer", [self.etcd.url], GROUP, ttl=10, stop_timeout=5,
                       block_ms=100, ledger=self.ledger)
        self.peers.append(peer)
        peer.wait_nodeos_mode("validator", 15)
        unit_pid = self.ledger.latest_start(NODE)["pid"]
        sent = time.monotonic_ns()
        self.ct.run("systemctl", "stop", "nodeos-monitor", timeout=60)
        timings["systemctl stop"] = (time.monotonic_ns() - sent) / 1e9
        self.assertEqual(self.ct.show("ActiveState")["ActiveState"], "inactive")
        self.assertTrue(self.ledger.events("stop", node=NODE, pid=unit_pid), "nodeos stopped gracefully")
        first = peer.ledger.wait_first_block(sent, "host-peer", 5,
                                             "the peer to produce after the unit stopped")
        timings["stop to the peer's first block"] = (first["t"] - sent) / 1e9
        last_unit_block = self.ledger.last_block_time(NODE, pid=unit_pid)
        self.assertLess(last_unit_block, first["t"], "the unit's producer overlapped the peer's")
        peer.stop()

        # --- frozen monitor: the watchdog kills it and its nodeos -------------------------
        self.ct.run("systemctl", "start", "nodeos-monitor", timeout=60)
        self.wait_status("active since", 30)
        wait_until(lambda: self.producers(self.ledger) == [NODE], 10, "the unit to produce again")
        main_pid = int(self.ct.show("MainPID")["MainPID"])
        nodeos_pid = self.ct.children(main_pid)[0]
        frozen = time.monotonic_ns()
        self.ct.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "nodeos-monitor")
        wait_until(lambda: not self.ct.pid_alive(nodeos_pid), WATCHDOG_SEC + 5,
                   "the watchdog to kill the frozen monitor's nodeos")
        timings["SIGSTOP to nodeos gone"] = (time.monotonic_ns() - frozen) / 1e9
        wait_until(lambda: not self.ct.pid_alive(main_pid), 5,
                   f"the watchdog to kill the frozen monitor {main_pid}")
        self.assertRegex(self.ct.journal("-o", "cat"), r"[Ww]atchdog timeout")
        last = self.ledger.last_block_time(NODE, pid=nodeos_pid)
        self.assertLess((last - frozen) / 1e9, WATCHDOG_SEC + 1.5, "the producer outlived the watchdog")
        wait_until(lambda: int(self.ct.show("NRestarts")["NRestarts"]) >= 1, 10,
                   "Restart=on-failure to start the unit again")
        self.wait_status("active since", 30)

        # --- several chains: two instances of the template unit beside the plain unit ----
        self.chains_beside_the_plain_unit(timings)

        # --- purge: the package's maintainer scripts (dh_installsystemd's, for the unit that
        # meson installed) take the unit's enablement with it, and the files go.
        wants = "/etc/systemd/system/multi-user.target.wants/nodeos-monitor.service"
        self.ct.run("systemctl", "enable", "nodeos-monitor")
        self.ct.run("test", "-L", wants)
        self.ct.run("dpkg", "--purge", "nodeos-monitor", timeout=120)
        for path in [wants, *INSTALLED]:
            self.assertNotEqual(self.ct.run("test", "-e", path, check=False).returncode, 0,
                                f"{path} outlived the purge")
        self.assertNotEqual(self.ct.run("test", "-L", wants, check=False).returncode, 0,
                            f"{wants} outlived the purge")
        # An instance the operator enabled (chains_beside_the_plain_unit): its link goes too
        # (the package's postrm), rather than dangle without its template.
        instance_wants = f"/etc/systemd/system/multi-user.target.wants/nodeos-monitor@{CHAINS[1]}.service"
        self.assertNotEqual(self.ct.run("test", "-L", instance_wants, check=False).returncode, 0,
                            f"{instance_wants} outlived the purge")
        for what, seconds in timings.items():
            print(f"measured: {what}: {seconds:.2f} s", flush=True)

    def chains_beside_the_plain_unit(self, timings):
        """The plain unit runs (producing, in GROUP); two chains join it as instances of the
        template, each in its own failover group, with its own config, state directory and
        metrics address. Each produces on its own chain, each answers on its own address,
        and stopping one leaves the others as they are."""
        chains = {}
        for chain in CHAINS:
            chains[chain] = {
                "unit": f"nodeos-monitor@{chain}",
                "group": f"ct-{chain}",
                "metrics_port": free_port(),
                "api_port": free_port(),
                "data_dir": f"/var/lib/nodeos-{chain}",
            }
            c = chains[chain]
            self.write_config(f"/etc/nodeos-monitor/{chain}.conf", group=c["group"], node=NODE,
                              metrics_port=c["metrics_port"], api_port=c["api_port"], data_dir=c["data_dir"])
            c["ledger"] = Ledger(os.path.join(self.root, c["data_dir"].lstrip("/"), "ledger.jsonl"))
        started = time.monotonic()
        self.ct.run("systemctl", "start", *[c["unit"] for c in chains.values()], timeout=60)
        for c in chains.values():
            self.wait_status("active since", 30, unit=c["unit"])
            wait_until(lambda: self.producers(c["ledger"]) == [NODE], 10, f"{c['unit']}'s nodeos to produce")
        timings["two chains started to both producing"] = time.monotonic() - started
        self.assertEqual(self.producers(self.ledger), [NODE], "the plain unit produces on beside them")
        for c in chains.values():
            # Its own state directory, made by systemd for the service's user.
            owner = self.ct.run("stat", "-c", "%U:%G %a", c["data_dir"]).stdout.split()
            self.assertEqual(owner, ["nodeos-monitor:nodeos-monitor", "750"], c["data_dir"])
            # Its own metrics address, with its own group.
            with urllib.request.urlopen(f"http://127.0.0.1:{c['metrics_port']}/metrics", timeout=5) as r:
                samples = metric_samples(r.read().decode(), identity={"group": c["group"], "node": NODE})
            self.assertEqual(samples['nodeos_monitor_state{state="active"}'], 1.0, c["unit"])
        # One chain stops; the other and the plain unit do not notice.
        first, second = chains[CHAINS[0]], chains[CHAINS[1]]
        nodeos_pid = first["ledger"].latest_start(NODE)["pid"]
        self.ct.run("systemctl", "stop", first["unit"], timeout=60)
        self.assertEqual(self.ct.show("ActiveState", unit=first["unit"])["ActiveState"], "inactive")
        self.assertTrue(first["ledger"].events("stop", node=NODE, pid=nodeos_pid), f"{first['unit']}'s nodeos stopped")
        for unit in ("nodeos-monitor", second["unit"]):
            self.assertEqual(self.ct.show("ActiveState", unit=unit)["ActiveState"], "active", unit)
        wait_until(lambda: self.producers(second["ledger"]) == [NODE], 5, f"{second['unit']} to produce on")
        wait_until(lambda: self.producers(self.ledger) == [NODE], 5, "the plain unit to produce on")
        # Enabled, as an operator would; the purge below must not trip over it.
        self.ct.run("systemctl", "enable", second["unit"])
        self.ct.run("systemctl", "stop", "nodeos-monitor", second["unit"], timeout=60)


class UnitsTest(unittest.TestCase):
    """The template unit is the plain one but for the lines that name the instance."""

    def test_template_matches_the_plain_unit(self):
        def settings(source):
            text = installed_text(source)
            return [line for line in text.splitlines() if line and not line.startswith("#")]
        plain = settings("packaging/nodeos-monitor.service")
        template = settings("packaging/nodeos-monitor@.service")
        differ = {"Description", "ExecStart", "StateDirectory"}
        self.assertEqual([l for l in plain if l.split("=")[0] not in differ],
                         [l for l in template if l.split("=")[0] not in differ])
        self.assertIn("ExecStart=/usr/bin/nodeos-monitor --config /etc/nodeos-monitor/%i.conf", template)
        self.assertIn("StateDirectory=nodeos-%i", template)
        self.assertIn("%i", next(l for l in template if l.startswith("Description=")))


if __name__ == "__main__":
    unittest.main(verbosity=2)

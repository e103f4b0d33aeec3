#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules against live monitors: every metric name that
a panel, a template variable or a rule uses is a family that a real monitor's /metrics
prints, and every label name and value they match on is one it uses.

Two monitors with nodeos's API (health-gated candidacy, so that the head lag and API metrics
exist) against a real etcd; then etcd is frozen until the producer is fenced, so that the
families that appear only after events have samples: fences_total{cause}, etcd_errors_total
{kind}, nodeos_exits_total{reason}, nodeos_restarts_total{reason}. A family that still has
no sample (api_errors_total: nodeos's API never failed) is checked against its # TYPE line,
which every family prints, and the labels its # HELP line names ("by kind"); the test prints
which those were.

It also checks that src/ops/metrics.cpp, which tests/ops/test_dashboard_static.py reads
instead of a live monitor, names the same families as the live output.

LivePrometheus runs a real Prometheus (Debian's, unpacked as tests/ops/test_promtool.py does
for promtool) on loopback, scraping a monitor pair every second with the rules loaded: every
panel query runs on the server, the main panels show what the pair does (who produces, the
coded state and candidacy, the lease), no alert is pending while all is well, and a real
fence fires NodeosMonitorFenced.

Run: python3 tests/e2e/test_dashboard.py [DashboardNames|LivePrometheus] (NM_MONITOR names the
binary)."""

import json
import os
import re
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ops"))

from harness import MonitorTestCase, free_port, metric_samples, stop_pid, wait_until  # noqa: E402
import promql_names as pn  # noqa: E402
from test_promtool import find_tool  # noqa: E402


def scrape(monitor, timeout=2.0):
    with urllib.request.urlopen(f"http://{monitor.metrics_addr}/metrics", timeout=timeout) as r:
        return r.read().decode()


def merge(catalogues):
    """One (catalogue, values) from several monitors' (the union of their labels and values)."""
    merged, values = {}, {}
    for catalogue, seen in catalogues:
        for name, (family, labels) in catalogue.items():
            merged.setdefault(name, (family, set()))[1].update(labels)
            merged[name][0].sampled |= family.sampled
        for name, by_label in seen.items():
            for label, vals in by_label.items():
                values.setdefault(name, {}).setdefault(label, set()).update(vals)
    return merged, values


class DashboardNames(MonitorTestCase):
    ttl = 3

    def evidence(self):
        return super().evidence() + [f"--- /metrics of {m.name} ---\n{getattr(m, 'last_metrics', '')}"
                                     for m in self.monitors]

    def scrape_all(self):
        texts = []
        for m in self.monitors:
            m.assert_running()
            m.last_metrics = scrape(m)
            texts.append(m.last_metrics)
        return texts

    def test_names_used_exist_in_live_metrics(self):
        active, standby = self.start_pair(api=True)

        # Events: the producer fenced with etcd frozen; its last keepalive times out at the
        # lease deadline, after the fence, so etcd stays frozen until that is counted too.
        def has(monitor, key):
            """The sample is there and not 0 (counted, or a gauge that has a value)."""
            monitor.last_metrics = scrape(monitor)
            return metric_samples(monitor.last_metrics).get(key, 0) != 0
        wait_until(lambda: has(active, "nodeos_monitor_head_lag_seconds")
                   and has(standby, "nodeos_monitor_head_lag_seconds"), 10,
                   "both monitors to report nodeos's head (its API answers)")
        self.etcd.pause()
        try:
            wait_until(lambda: has(active, 'nodeos_monitor_fences_total{cause="deadline"}'), 2 * self.ttl,
                       f"{active.name} to fence its producer with etcd frozen")
            wait_until(lambda: has(active, 'nodeos_monitor_etcd_errors_total{kind="keepalive"}'), 2 * self.ttl,
                       f"{active.name} to count its failed keepalives")
        finally:
            self.etcd.resume()
        self.wait_producer(3 * self.ttl + 10)
        texts = self.scrape_all()

        live, seen = merge(pn.catalogue_from_exposition(t) for t in texts)
        documented = pn.documented_catalogue_values(live)
        for name, by_label in seen.items():
            for label, vals in by_label.items():
                documented.setdefault(name, {}).setdefault(label, set()).update(vals)

        # A family without samples: its labels from "by X" in its help text.
        without_samples = sorted(n for n, (family, _) in live.items() if n not in family.sampled)
        for name in without_samples:
            family = live[name][0]
            if name.startswith("nodeos_monitor_"):
                live[name][1].update({"group", "node"} | set(re.findall(r"\bby (\w+)", family.help)))

        problems = []
        used_families = set()
        for where, expr in pn.all_queries():
            problems += pn.check_names(where, expr, live, documented)
            used_families |= set(pn.uses(expr).metrics)
        for where, selector, label in pn.variable_queries(pn.load_dashboard()):
            metric = next(iter(pn.uses(selector).metrics))
            if label not in live.get(metric, (None, set()))[1] | pn.TARGET_LABELS:
                problems.append(f"{where}: {metric} has no label {label!r} live")
        self.assertEqual(problems, [], "\n".join(problems))

        by_type = sorted(n for n in without_samples if n in used_families)
        print(f"\nchecked against their # TYPE and # HELP lines only (no sample yet): "
              f"{', '.join(by_type) or 'none'}", flush=True)
        self.assertLessEqual(set(by_type), {"nodeos_monitor_api_errors_total"},
                             "families the test's events should have given samples")

        # The static test reads src/ops/metrics.cpp: it must describe this very output.
        source = pn.catalogue_from_source()
        self.assertEqual(sorted(source), sorted(live), "families in metrics.cpp vs live /metrics")
        for name, (_, labels) in source.items():
            seen_labels = {label for text in texts for label in seen_labels_of(text, name)}
            self.assertLessEqual(seen_labels, labels, f"{name}: labels live that metrics.cpp's parse missed")

        # Every reason the monitor reports for staying out of the race has an alert.
        reasons = seen["nodeos_monitor_candidacy"]["reason"] - {"candidate", "stopping"}
        covered = {"dirty_database"} if any("nodeos_monitor_database_dirty" in pn.uses(e).metrics
                                            for _, e in pn.rule_queries()) else set()
        for _, expr in pn.rule_queries():
            for metric, label, op, value in pn.uses(expr).values:
                if (metric, label) == ("nodeos_monitor_candidacy", "reason"):
                    covered |= set(value.split("|") if op == "=~" else [value])
        self.assertEqual(reasons - covered, set(), "candidacy reasons no alert names")


class Prometheus:
    """A Prometheus server on a free loopback port, scraping the monitors every second under
    the job the rules expect, with the rules loaded and evaluated every second."""

    def __init__(self, workdir, targets):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {pn.RULES}\n"
                    "scrape_configs:\n  - job_name: nodeos-monitor\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        self.log = open(os.path.join(workdir, "prometheus.log"), "ab")
        self.proc = subprocess.Popen(
            [find_tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, 'prometheus-data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(ready, 60, "prometheus to be ready")

    def stop(self):
        stop_pid(self.proc)
        self.log.close()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr):
        """[(labels, value)] of an instant query."""
        return [(r["metric"], float(r["value"][1])) for r in self.api("query", query=expr)["result"]]

    def alerts(self):
        return [(a["labels"], a["state"]) for a in self.api("alerts")["alerts"]]


class LivePrometheus(MonitorTestCase):
    """The rules and the dashboard's queries on a real Prometheus scraping real monitors: each
    query is accepted and the main ones show what the monitors are doing; no alert while all
    is well; NodeosMonitorFenced fires on a real fence."""
    # Long enough that a keepalive slowed by a busy machine stays clear of the half-TTL line
    # of NodeosMonitorLeaseRenewalLate (a renewal leaves 2/3 of the TTL minus its round trip).
    ttl = 5

    def test_rules_and_panels_on_live_data(self):
        active, standby = self.start_pair(api=True)
        prom = Prometheus(self.workdir, [active.metrics_addr, standby.metrics_addr])
        self.addCleanup(prom.stop)
        group_sel = f'group="{self.group}"'
        wait_until(lambda: len(prom.query(f'nodeos_monitor_build_info{{{group_sel}}}')) == 2
                   and len(prom.query('up{job="nodeos-monitor"} == 1')) == 2, 30,
                   "prometheus to scrape both monitors")
        # Rates need a few samples in their window (Grafana's $__rate_interval is at least
        # four scrape intervals).
        fill = {"$__rate_interval": "4s", "$__range": "5m", "$job": "nodeos-monitor",
                "$group": self.group, "$node": ".*"}

        def panel_query(title, ref="A"):
            for where, expr in pn.dashboard_queries(pn.load_dashboard()):
                if where == f"panel {title!r} target {ref}":
                    for var, value in fill.items():
                        expr = expr.replace(var, value)
                    return prom.query(expr)
            raise AssertionError(f"no panel {title!r} target {ref}")

        def by_node(results):
            return {labels.get("node"): value for labels, value in results}

        wait_until(lambda: len(panel_query("Keepalive latency")) == 2, 20,
                   "a keepalive of each monitor in the latency panel's window")
        # Every query is valid to the server and runs on this data.
        empty = []
        for where, expr in pn.dashboard_queries(pn.load_dashboard()):
            for var, value in fill.items():
                expr = expr.replace(var, value)
            if not prom.query(expr):
                empty.append(where)
        print(f"\npanel queries without data here (no such event yet): {', '.join(empty) or 'none'}", flush=True)
        # What the panels show of this pair: who produces, the coded state and candidacy
        # (the value mappings of the dashboard), the lease against its TTL.
        self.assertEqual(by_node(panel_query("Producer per group")), {active.name: 1, standby.name: 0})
        self.assertEqual([v for _, v in panel_query("Producing nodes per group")], [1])
        self.assertEqual(by_node(panel_query("State per node")), {active.name: 2, standby.name: 1})
        self.assertEqual(by_node(panel_query("Candidacy per node")), {active.name: 0, standby.name: 0})
        self.assertEqual({n: v for n, v in by_node(panel_query("Lease time left", "B")).items()},
                         {active.name: self.ttl, standby.name: self.ttl})
        left = by_node(panel_query("Lease time left"))
        self.assertTrue(0 < left[active.name] <= self.ttl, left)
        self.assertEqual(by_node(panel_query("nodeos running")), {active.name: 1, standby.name: 1})
        for where, selector, label in pn.variable_queries(pn.load_dashboard()):
            values = prom.api("label/" + label + "/values", **{"match[]": selector.replace("$job", "nodeos-monitor")
                                                                 .replace("$group", self.group)})
            self.assertTrue(values, f"{where}: no values")
        self.assertEqual(prom.alerts(), [], "alerts while all is well")

        # A real fence: etcd frozen until the producer is fenced and its keepalive failed.
        self.etcd.pause()
        try:
            wait_until(lambda: metric_samples(scrape(active)).get('nodeos_monitor_fences_total{cause="deadline"}', 0) >= 1,
                       2 * self.ttl, f"{active.name} to fence its producer with etcd frozen")
        finally:
            self.etcd.resume()
        fired = []

        def fenced_alert():
            fired[:] = prom.alerts()
            return any(labels.get("alertname") == "NodeosMonitorFenced" and labels.get("node") == active.name
                       and labels.get("cause") == "deadline" and state == "firing" for labels, state in fired)
        try:
            wait_until(fenced_alert, 15, "NodeosMonitorFenced to fire for the fence")
        except AssertionError as e:
            raise AssertionError(f"{e}; alerts: {fired}") from None
        fences = {labels.get("cause"): v for labels, v in panel_query("Fences in the time range")}
        self.assertGreaterEqual(fences.get("deadline", 0), 1, fences)


def seen_labels_of(text, name):
    for line in text.splitlines():
        if line.startswith(name + "{"):
            yield from (label for label, _ in pn.EXPOSITION_LABEL.findall(line[len(name):]))


if __name__ == "__main__":
    unittest.main(verbosity=2)

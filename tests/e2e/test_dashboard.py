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

Run: python3 tests/e2e/test_dashboard.py (NM_MONITOR names the binary)."""

import os
import re
import signal
import sys
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ops"))

from harness import MonitorTestCase, metric_samples, wait_until  # noqa: E402
import promql_names as pn  # noqa: E402


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
            monitor.last_metrics = scrape(monitor)
            return key in metric_samples(monitor.last_metrics)
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


def seen_labels_of(text, name):
    for line in text.splitlines():
        if line.startswith(name + "{"):
            yield from (label for label, _ in pn.EXPOSITION_LABEL.findall(line[len(name):]))


if __name__ == "__main__":
    unittest.main(verbosity=2)

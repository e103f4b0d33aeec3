#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules against the monitor's source, without
running anything: the dashboard is importable JSON with a Prometheus data source variable
and the group and node variables, every panel has a query and uses them, and every metric,
label and label value that a panel, a variable or a rule names is one that
src/ops/metrics.cpp writes (the values of the state and candidacy from src/core/actions.cpp,
the others from the families' help texts).

tests/e2e/test_dashboard.py checks the same names against a live monitor's /metrics.

Run: python3 tests/ops/test_dashboard_static.py"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import promql_names as pn  # noqa: E402

PANEL_TYPES_WITHOUT_QUERY = {"row", "text"}


class Dashboard(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dash = pn.load_dashboard()  # fails on JSON that does not parse
        cls.variables = {v["name"]: v for v in cls.dash["templating"]["list"]}

    def panels(self):
        out = []

        def walk(panels):
            for p in panels:
                out.append(p)
                walk(p.get("panels", []))
        walk(self.dash["panels"])
        return out

    def test_importable(self):
        """What Grafana's import needs: a title, a stable uid, no database id, a schema
        version, panels with unique ids inside the 24-column grid."""
        self.assertTrue(self.dash.get("title"))
        self.assertRegex(self.dash.get("uid", ""), r"^[a-zA-Z0-9_-]{1,40}$")
        self.assertIsNone(self.dash.get("id"))
        self.assertIsInstance(self.dash.get("schemaVersion"), int)
        ids = [p["id"] for p in self.panels()]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for p in self.panels():
            g = p["gridPos"]
            self.assertTrue(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{p['title']}: {g}")

    def test_variables(self):
        """A Prometheus data source variable that every panel and query variable uses, and
        the group and node variables."""
        ds = self.variables.get("datasource")
        self.assertIsNotNone(ds, "no datasource variable")
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        for name in ("group", "node"):
            self.assertIn(name, self.variables)
            self.assertEqual(self.variables[name]["type"], "query")
        want = {"type": "prometheus", "uid": "${datasource}"}
        for v in self.variables.values():
            if v["type"] == "query":
                self.assertEqual(v["datasource"], want, f"variable {v['name']}")
        for p in self.panels():
            if p["type"] in PANEL_TYPES_WITHOUT_QUERY:
                continue
            self.assertEqual(p.get("datasource"), want, f"panel {p['title']}")
            for t in p["targets"]:
                self.assertEqual(t.get("datasource"), want, f"panel {p['title']} target {t['refId']}")

    def test_the_candidacy_panel_names_every_reason(self):
        """The panel that shows why a node is out of the race turns each reason into a
        number and maps the number back to the reason's name: every reason, once."""
        reasons = pn.values_from_source()["nodeos_monitor_candidacy"]["reason"]
        for p in self.panels():
            exprs = [t.get("expr", "") for t in p.get("targets", [])]
            if not any("nodeos_monitor_candidacy" in e and " or " in e for e in exprs):
                continue
            numbers = dict((value, int(k)) for e in exprs for value, k in
                           re.findall(r'reason="(\w+)"\} \* (\d+)', e))
            numbers["candidate"] = 0
            names = {int(k): v["text"] for m in p["fieldConfig"]["defaults"]["mappings"]
                     for k, v in m["options"].items()}
            self.assertEqual(set(numbers), reasons, f"panel {p['title']}: the reasons it counts")
            self.assertEqual(len(set(numbers.values())), len(numbers), f"panel {p['title']}: a number used twice")
            self.assertEqual({names.get(n) for n in numbers.values()} - {None}, reasons,
                             f"panel {p['title']}: the names its numbers map to")
            self.assertEqual({v: names.get(n) for v, n in numbers.items() if names.get(n) != v}, {},
                             f"panel {p['title']}: numbers mapped to another reason's name")
            return
        self.fail("no panel counts nodeos_monitor_candidacy's reasons")

    def test_every_panel_has_a_query_filtered_by_group_and_node(self):
        """Every panel queries something, and every query of the monitor's own metrics
        follows the group and node variables (the scrape status, which has no such labels,
        follows the job)."""
        for p in self.panels():
            if p["type"] in PANEL_TYPES_WITHOUT_QUERY:
                continue
            self.assertTrue(p.get("targets"), f"panel {p['title']!r} has no query")
            for t in p["targets"]:
                expr = t.get("expr", "").strip()
                self.assertTrue(expr, f"panel {p['title']!r} target {t.get('refId')} has no expr")
                used = pn.uses(expr)
                for metric, labels in used.metrics.items():
                    if metric.startswith("nodeos_monitor_"):
                        self.assertTrue({"group", "node"} <= labels,
                                        f"panel {p['title']!r}: {metric} is not filtered by $group and $node")
                    else:
                        self.assertIn("job", labels, f"panel {p['title']!r}: {metric} is not filtered by $job")
                self.assertNotRegex(expr, r"\$(?!(group|node|job|__rate_interval|__range)\b)\w+",
                                    f"panel {p['title']!r}: an unknown variable")

    def test_names_exist_in_the_source(self):
        """Every metric, label and value the panels, the variables and the rules name is one
        the monitor writes (src/ops/metrics.cpp, src/core/actions.cpp)."""
        catalogue = pn.catalogue_from_source()
        values = pn.documented_catalogue_values(catalogue)
        for name, labels in pn.values_from_source().items():
            values.setdefault(name, {}).update(labels)
        problems = []
        queries = pn.all_queries()
        self.assertGreater(len(queries), 20)
        for where, expr in queries:
            problems += pn.check_names(where, expr, catalogue, values)
        for where, selector, label in pn.variable_queries(self.dash):
            metric = next(iter(pn.uses(selector).metrics))
            if label not in catalogue[metric][1] | pn.TARGET_LABELS:
                problems.append(f"{where}: {metric} has no label {label!r}")
        self.assertEqual(problems, [], "\n".join(problems))


class Rules(unittest.TestCase):

    def test_every_alert_has_for_severity_and_what_to_do(self):
        text = pn.read_text(pn.RULES)
        alerts = re.split(r"\n\s*- alert: ", text)[1:]
        self.assertGreaterEqual(len(alerts), 9)
        for block in alerts:
            name = block.split()[0]
            self.assertRegex(block, r"\n\s+for: \d+[smh]\n", f"{name}: no for: duration")
            self.assertRegex(block, r"\n\s+severity: (critical|warning)\n", f"{name}: no severity")
            self.assertRegex(block, r"\n\s+summary: ", f"{name}: no summary")
            self.assertRegex(block, r"\n\s+description: ", f"{name}: no description")

    def test_the_job_name_is_in_one_place(self):
        """The README tells how to change the scrape job's name: one selector."""
        text = pn.read_text(pn.RULES)
        self.assertEqual(re.findall(r'job\s*=~?\s*"[^"]*"', text), ['job="nodeos-monitor"'])

    def test_every_reason_out_of_the_race_alerts(self):
        """Each reason a running node is not a candidate is named by one alert (stopping is
        a shutdown; dirty_database is alerted on through its own gauge), so a reason added to
        the monitor needs a rule."""
        reasons = pn.values_from_source()["nodeos_monitor_candidacy"]["reason"] - {"candidate", "stopping"}
        named = []
        for _, expr in pn.rule_queries():
            used = pn.uses(expr)
            if "nodeos_monitor_database_dirty" in used.metrics:
                named.append("dirty_database")
            for metric, label, op, value in used.values:
                if metric == "nodeos_monitor_candidacy" and label == "reason":
                    named += value.split("|") if op == "=~" else [value]
        self.assertEqual(sorted(named), sorted(reasons))


class Reader(unittest.TestCase):
    """The PromQL reader the checks rely on: it must see what a wrong query gets wrong."""

    def test_finds_metrics_labels_and_grouping(self):
        u = pn.uses('sum by (group, le) (rate(m_bucket{a="1", b=~"x|y"}[5m])) / on (group) n offset 10m')
        self.assertEqual(u.metrics, {"m_bucket": {"a", "b"}, "n": set()})
        self.assertEqual(u.grouping, {"group", "le"})
        self.assertIn(("m_bucket", "b", "=~", "x|y"), u.values)

    def test_catches_wrong_names(self):
        catalogue = pn.catalogue_from_source()
        values = pn.values_from_source()
        for expr, wrong in [
                ('nodeos_monitor_fence_total{cause="deadline"}', "no metric"),
                ('nodeos_monitor_fences_total{reason="deadline"}', "no label 'reason'"),
                ('sum by (kind) (nodeos_monitor_state)', "by/on label 'kind'"),
                ('nodeos_monitor_state{state="producing"}', "no such value"),
                ('nodeos_monitor_candidacy{reason=~"nodeos_lagging|lagging"}', "no such value"),
                ('rates(nodeos_monitor_fences_total[5m])', "no metric rates")]:
            problems = pn.check_names("test", expr, catalogue, values)
            self.assertTrue(any(wrong in p for p in problems), f"{expr}: {problems}")


if __name__ == "__main__":
    unittest.main(verbosity=2)

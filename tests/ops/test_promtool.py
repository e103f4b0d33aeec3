#!/usr/bin/env python3
"""The alerting rules and the dashboard's queries through Prometheus's own tools:

- `promtool check rules` on packaging/prometheus/nodeos-monitor-rules.yml;
- `promtool test rules` on nodeos-monitor-rules.test.yml (each alert fires on its input and
  stays quiet on the cases it must not fire on);
- that those tests bite: each alert, made never to fire, and made to fire on every series of
  its metric, must fail them;
- every query of the dashboard, its variables given values, parsed by promtool as a
  recording rule.

promtool comes from Debian's `prometheus` package. Installing that package would start and
enable a Prometheus server on the machine, so the package is fetched with `apt-get download`
and only promtool is unpacked, into build/tools/ (NM_TOOLS_DIR), once (find_tool(), which
tests/e2e/test_dashboard.py uses for the prometheus server). A promtool on the PATH, or named
by NM_PROMTOOL, is used instead.

Run: python3 tests/ops/test_promtool.py"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import promql_names as pn  # noqa: E402

RULES_DIR = os.path.dirname(pn.RULES)
RULES_TEST = os.path.join(RULES_DIR, "nodeos-monitor-rules.test.yml")
TOOLS = os.environ.get("NM_TOOLS_DIR") or os.path.join(pn.ROOT, "build", "tools")


def run(argv, timeout=120, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def download(package):
    """Debian's `package` fetched into TOOLS (kept there), or None when the release has none."""
    debs = glob.glob(os.path.join(TOOLS, f"{package}_*.deb"))
    if debs:
        return debs[0]
    with tempfile.TemporaryDirectory(dir=TOOLS) as tmp:
        got = run(["apt-get", "download", package], timeout=600, cwd=tmp)
        if got.returncode != 0:
            # No package lists yet (a fresh machine): fetch them, as scripts/build does.
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            update = run(sudo + ["apt-get", "update", "-q"], timeout=600)
            if update.returncode != 0:
                raise AssertionError(f"apt-get update failed:\n{update.stdout}{update.stderr}")
            got = run(["apt-get", "download", package], timeout=600, cwd=tmp)
        fetched = glob.glob(os.path.join(tmp, f"{package}_*.deb"))
        if got.returncode != 0 or not fetched:
            return None
        kept = os.path.join(TOOLS, os.path.basename(fetched[0]))
        os.replace(fetched[0], kept)
        return kept


def find_tool(name):
    """A `name` (promtool or prometheus) to run: NM_PROMTOOL or NM_PROMETHEUS, the PATH's, or
    one unpacked from Debian's packages into TOOLS (kept there, so that each costs one
    download). Debian 12 ships promtool inside `prometheus`; Debian 13 in a package of its
    own, `promtool`."""
    given = os.environ.get("NM_" + name.upper()) or shutil.which(name)
    if given:
        return given
    cached = os.path.join(TOOLS, name)
    if os.access(cached, os.X_OK):
        return cached
    os.makedirs(TOOLS, exist_ok=True)
    debs = [d for d in ([download(name)] if name == "promtool" else []) + [download("prometheus")] if d]
    if not debs:
        raise AssertionError(f"apt-get download of {name} failed: neither package {name} nor prometheus")
    errors = []
    for deb in debs:
        with tempfile.TemporaryDirectory(dir=TOOLS) as tmp:
            unpacked = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -x -C '{tmp}' ./usr/bin/{name}",
                                      shell=True, capture_output=True, text=True, timeout=300)
            if unpacked.returncode == 0:
                os.replace(os.path.join(tmp, "usr", "bin", name), cached)
                return cached
            errors.append(f"{deb}: {unpacked.stderr.strip()}")
    raise AssertionError(f"unpacking {name} failed: " + "; ".join(errors))


def find_promtool():
    return find_tool("promtool")


def replace_expr(rules_text, alert, new_expr):
    """The rules file with the expression of `alert` replaced by `new_expr`."""
    lines = rules_text.split("\n")
    out, i, current, done = [], 0, None, False
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*- alert: (\S+)", line)
        if m:
            current = m.group(1)
        m = re.match(r"(\s*)expr: ?(.*)$", line)
        if m and current == alert:
            indent = len(m.group(1))
            out.append(f"{m.group(1)}expr: '{new_expr}'")
            done = True
            i += 1
            if m.group(2).strip() in ("|", ">", "|-", ">-"):
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    i += 1
            continue
        out.append(line)
        i += 1
    if not done:
        raise AssertionError(f"no alert {alert} in the rules")
    return "\n".join(out)


def split_test_groups(text):
    """A promtool test file as (everything up to its test groups, [each group's text])."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"  - interval:", line)]
    if not starts:
        raise AssertionError("no test groups in the rules' unit tests")
    bounds = starts + [len(lines)]
    return "".join(lines[:starts[0]]), ["".join(lines[a:b]) for a, b in zip(bounds, bounds[1:])]


class Promtool(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.promtool = find_promtool()
        version = run([cls.promtool, "--version"])
        print(f"\nusing {cls.promtool}: {(version.stdout + version.stderr).splitlines()[0]}", flush=True)

    def promtool_ok(self, *args, cwd=None):
        done = run([self.promtool, *args], cwd=cwd)
        self.assertEqual(done.returncode, 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done.stdout

    def test_check_rules(self):
        out = self.promtool_ok("check", "rules", pn.RULES)
        self.assertRegex(out, r"SUCCESS: \d+ rules found")

    def test_rules_unit_tests(self):
        out = self.promtool_ok("test", "rules", RULES_TEST)
        self.assertIn("SUCCESS", out)

    def test_the_unit_tests_bite(self):
        """Each alert has a case that must fire (it fails when the alert never fires) and a
        case that must not (it fails when the alert fires on every series of its metric).
        Each changed alert is run against the test groups that name it (the others cannot
        fail on it), a seventh of the whole file's time."""
        rules = pn.read_text(pn.RULES)
        head, groups = split_test_groups(pn.read_text(RULES_TEST))
        alerts = re.findall(r"- alert: (\S+)", rules)
        exprs = dict((where.split(" ", 1)[1], expr) for where, expr in pn.rule_queries())
        survivors = []
        with tempfile.TemporaryDirectory() as tmp:
            for alert in alerts:
                naming = [g for g in groups if re.search(rf"alertname: {re.escape(alert)}\s*$", g, re.M)]
                with open(os.path.join(tmp, "nodeos-monitor-rules.test.yml"), "w", encoding="utf-8") as f:
                    f.write(head + "".join(naming))
                first_metric = next(iter(pn.uses(exprs[alert]).metrics))
                for label, mutant in (("never fires", "vector(1) == 0"), ("always fires", first_metric)):
                    with open(os.path.join(tmp, "nodeos-monitor-rules.yml"), "w", encoding="utf-8") as f:
                        f.write(replace_expr(rules, alert, mutant))
                    done = run([self.promtool, "test", "rules", "nodeos-monitor-rules.test.yml"], cwd=tmp)
                    if done.returncode == 0:
                        survivors.append(f"{alert} {label} ({mutant})")
                    elif f"alertname: {alert}," not in done.stdout + done.stderr:
                        self.fail(f"{alert} {label}: promtool failed, but not on that alert:\n"
                                  f"{done.stdout}{done.stderr}")
        self.assertEqual(survivors, [], "the rules' unit tests still pass with these alerts changed")

    def test_dashboard_queries_parse(self):
        """Every query of the dashboard, as Grafana sends it (its variables filled in), is
        valid PromQL to Prometheus's parser."""
        dashboard = pn.load_dashboard()
        values = {"$__rate_interval": "1m", "$__range": "1h", "$job": ".*", "$group": ".*", "$node": ".*"}
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        queries = pn.dashboard_queries(dashboard)
        self.assertGreater(len(queries), 10)
        for n, (where, expr) in enumerate(queries):
            for var, value in values.items():
                expr = expr.replace(var, value)
            self.assertNotIn("$", expr, f"{where}: a variable left")
            lines += [f"      # {where}", f"      - record: dashboard:query_{n}", "        expr: |"]
            lines += ["          " + line for line in expr.split("\n")]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard-queries.yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            out = self.promtool_ok("check", "rules", path)
        self.assertIn(f"SUCCESS: {len(queries)} rules found", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)

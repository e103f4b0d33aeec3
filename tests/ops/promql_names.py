"""What the dashboard and the alerting rules ask of the monitor's metrics, and what the
monitor offers, so that the tests can compare the two.

- queries(): every PromQL expression of packaging/grafana/nodeos-monitor.json and
  packaging/prometheus/nodeos-monitor-rules.yml, with where it comes from.
- uses(expr): the metric names in an expression, the label names matched on each, the values
  those matchers compare with, and the label names of its by/without/on/ignoring/group_*
  clauses.
- catalogue_from_source(): the families src/ops/metrics.cpp writes, with their label names
  and help texts.
- catalogue_from_exposition(text): the same from a live /metrics answer: every family has
  its # HELP and # TYPE lines even before it has a sample.

The PromQL reader knows the language's functions and keywords and nothing else: an
identifier that is neither is taken for a metric name, so a misspelt function fails the
tests instead of passing unseen."""

import json
import os
import re
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "packaging", "grafana", "nodeos-monitor.json")
RULES = os.path.join(ROOT, "packaging", "prometheus", "nodeos-monitor-rules.yml")
METRICS_CPP = os.path.join(ROOT, "src", "ops", "metrics.cpp")

# Labels that Prometheus attaches to every scraped series (the target's), and the series it
# makes itself for each target.
TARGET_LABELS = {"job", "instance"}
SYNTHETIC = {"up": {"job", "instance"}}

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}
SET_AND_MODIFIERS = {"and", "or", "unless", "bool", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>(?<![\w.])\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![\w.]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+|(?:[Ii]nf|NaN)(?![\w:]))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},])
  | (?P<variable>\$\{?\w+\}?)
""", re.VERBOSE)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


@dataclass
class Uses:
    """What one expression reads."""
    metrics: dict = field(default_factory=dict)   # name -> set of label names matched on it
    values: list = field(default_factory=list)    # (metric, label, op, value) of each matcher
    grouping: set = field(default_factory=set)    # label names of by/without/on/... clauses


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        found = TOKEN.match(expr, pos)
        if not found:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 30]!r} in {expr!r}")
        pos = found.end()
        kind = found.lastgroup
        if kind != "space":
            out.append((kind, found.group()))
    return out


def unquote(s):
    return s[1:-1].encode().decode("unicode_escape") if s[0] in "\"'" else s[1:-1]


def uses(expr):
    """The metric names, matched labels, matcher values and grouping labels of `expr`."""
    toks = tokens(expr)
    result = Uses()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident" and text in GROUPING:
            if nxt[1] == "(":
                i += 2
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        result.grouping.add(toks[i][1])
                    elif toks[i][1] != ",":
                        raise ValueError(f"unexpected {toks[i][1]!r} in {text}(...) of {expr!r}")
                    i += 1
            i += 1
            continue
        if kind == "ident" and text == "offset":
            if nxt[0] not in ("duration", "variable"):
                raise ValueError(f"offset without a duration in {expr!r}")
            i += 2
            continue
        if kind == "ident" and (text in FUNCTIONS or text in AGGREGATIONS) and nxt[1] == "(":
            i += 1
            continue
        if kind == "ident" and text in AGGREGATIONS and nxt[1] in ("by", "without"):
            i += 1
            continue
        if kind == "ident" and text in SET_AND_MODIFIERS:
            i += 1
            continue
        if kind == "ident" or (kind == "op" and text == "{"):
            metric = text if kind == "ident" else None
            labels = result.metrics.setdefault(metric, set()) if metric else set()
            if kind == "ident":
                i += 1
            if i < len(toks) and toks[i][1] == "{":
                i += 1
                while toks[i][1] != "}":
                    if toks[i][1] == ",":
                        i += 1
                        continue
                    (lk, label), (_, op), (vk, value) = toks[i:i + 3]
                    if lk != "ident" or op not in ("=", "!=", "=~", "!~") or vk != "string":
                        raise ValueError(f"not a label matcher: {label} {op} {value} in {expr!r}")
                    labels.add(label)
                    result.values.append((metric, label, op, unquote(value)))
                    i += 3
                i += 1
            if metric is None:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            continue
        i += 1
    result.metrics.pop(None, None)
    return result


def dashboard_queries(dashboard):
    """(where, expr) of every target of every panel, rows' nested panels included."""
    found = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                found.append((f"panel {p.get('title')!r} target {t.get('refId')}", t.get("expr", "")))
            walk(p.get("panels", []))
    walk(dashboard.get("panels", []))
    return found


def variable_queries(dashboard):
    """(where, selector) of the template variables' label_values(SELECTOR, label) queries."""
    found = []
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
        if not m:
            raise ValueError(f"variable {v.get('name')}: not label_values(selector, label): {q!r}")
        found.append((f"variable {v['name']}", m.group(1), m.group(2)))
    return found


def rule_queries(path=RULES):
    """(where, expr) of every rule. The file is YAML; its expressions are read without a YAML
    library (Debian's python3 has none by default): each `expr:` is a one-line value or a
    `|` block."""
    found = []
    lines = read_text(path).split("\n")
    name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*- (alert|record): (\S+)", line)
        if m:
            name = m.group(2)
        m = re.match(r"(\s*)expr: ?(.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", ">", "|-", ">-"):
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                found.append((f"rule {name}", " ".join(b for b in body if b)))
                continue
            found.append((f"rule {name}", rest.strip("'\"") if rest[:1] in "'\"" else rest))
        i += 1
    return found


def load_dashboard(path=DASHBOARD):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --- what the monitor offers --------------------------------------------------------------

@dataclass
class Family:
    name: str
    type: str
    help: str = ""
    labels: set = field(default_factory=set)
    sampled: set = field(default_factory=set)  # its series names that had a sample (live)


def series_names(family):
    """The series names a family's samples carry (a histogram has three)."""
    if family.type == "histogram":
        return [family.name + s for s in ("_bucket", "_sum", "_count")]
    return [family.name]


def catalogue_from_source(path=METRICS_CPP):
    """{series name: (Family, label names)} of every family metrics.cpp writes. The label
    names of a family are those its code passes to label()/by_label() between its family()
    call and the next one, plus group and node on every nodeos_monitor_* family and le on a
    histogram's buckets."""
    text = read_text(path)
    calls = list(re.finditer(
        r'\bw\.(family|plain_family)\(\s*"(\w+)"\s*,\s*"(\w+)"\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)', text))
    rows = list(re.finditer(r'row\{\s*"(\w+)"\s*,\s*"(\w+)"\s*,\s*"((?:[^"\\]|\\.)*)"', text))
    if len(calls) < 10:
        raise AssertionError(f"{path}: found {len(calls)} w.family(...) calls; has the file changed shape?")
    catalogue = {}
    for n, call in enumerate(calls):
        kind, short, mtype, help_parts = call.groups()
        if kind == "plain_family":
            continue  # the process_* table below
        help_text = "".join(unquote(p) for p in re.findall(r'"(?:[^"\\]|\\.)*"', help_parts))
        # Up to the next family, or the end of the function that writes this one.
        end = min(calls[n + 1].start() if n + 1 < len(calls) else len(text),
                  text.find("\n}\n", call.end()) % (len(text) + 1))
        body = text[call.end():end]
        labels = set(re.findall(r'\blabel\(\s*"(\w+)"', body)) | set(re.findall(r'\bby_label\(\s*w\s*,\s*"(\w+)"', body))
        family = Family("nodeos_monitor_" + short, mtype, help_text, labels | {"group", "node"})
        for name in series_names(family):
            catalogue[name] = (family, family.labels | ({"le"} if name.endswith("_bucket") else set()))
    for row in rows:
        family = Family(row.group(1), row.group(2), unquote('"' + row.group(3) + '"'))
        catalogue[family.name] = (family, set())
    return catalogue


ACTIONS_CPP = os.path.join(ROOT, "src", "core", "actions.cpp")


def values_from_source(path=ACTIONS_CPP):
    """{series: {label: values}} for the gauges that print a sample for every value: the
    state (name_of(role)) and the candidacy (name_of(candidacy)), from the core's names."""
    text = read_text(path)
    roles = set(re.findall(r'case role::\w+: return "(\w+)";', text))
    reasons = set(re.findall(r'case candidacy::\w+: return "(\w+)";', text))
    if not roles or not reasons:
        raise AssertionError(f"{path}: no name_of(role) or name_of(candidacy) cases found")
    return {"nodeos_monitor_state": {"state": roles}, "nodeos_monitor_candidacy": {"reason": reasons}}


def documented_catalogue_values(catalogue):
    """{series: {label: values}} that the help texts list (see documented_values)."""
    found = {}
    for name, (family, labels) in catalogue.items():
        for label in labels - {"group", "node", "le"}:
            values = documented_values(family, label)
            if values:
                found.setdefault(name, {})[label] = values
    return found


EXPOSITION_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$')
EXPOSITION_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def catalogue_from_exposition(text):
    """({series name: (Family, label names seen on its samples)}, {series name: {label: values
    seen}}) of a /metrics answer."""
    families, catalogue, values = {}, {}, {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) ?(.*)$", line)
        if m:
            family = families.setdefault(m.group(2), Family(m.group(2), "untyped"))
            if m.group(1) == "HELP":
                family.help = m.group(3)
            else:
                family.type = m.group(3)
                for name in series_names(family):
                    catalogue[name] = (family, set())
                    values[name] = {}
            continue
        if not line or line.startswith("#"):
            continue
        m = EXPOSITION_SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        name = m.group(1)
        if name not in catalogue:
            raise AssertionError(f"a sample of {name} before its # TYPE line")
        catalogue[name][0].sampled.add(name)
        for label, value in EXPOSITION_LABEL.findall(m.group(2) or ""):
            catalogue[name][1].add(label)
            values[name].setdefault(label, set()).add(value)
    return catalogue, values


def documented_values(family, label):
    """The values that a family's help text lists for `label`: "by cause (deadline,
    lost_lock, frozen)" or "by reason (stopped: asked to; exited: ...)". Empty when it lists
    none."""
    m = re.search(r"\bby " + re.escape(label) + r"\b[^(]*\(([^)]*)\)", family.help) \
        or re.search(r"\(([^)]*)\)", family.help)
    if not m:
        return set()
    parts = re.split(r"[;,]", m.group(1))
    return {p.split(":")[0].strip() for p in parts if re.fullmatch(r"\s*\w+\s*(:.*)?", p)}


def check_names(where, expr, catalogue, known_values=None, strict_labels=True):
    """Problems (a list of sentences) with the names `expr` uses against `catalogue`
    ({series: (Family, labels)}). known_values: {series: {label: set of values}}; a matcher
    with = or =~ on such a label must name known values (a regex's alternatives are split
    on |). strict_labels=False skips the label check of series that have no label names in
    the catalogue (a live family without samples yet)."""
    problems = []
    used = uses(expr)
    all_labels = set(TARGET_LABELS)
    for metric, labels in used.metrics.items():
        if metric in SYNTHETIC:
            offered = SYNTHETIC[metric]
        elif metric in catalogue:
            offered = catalogue[metric][1] | TARGET_LABELS
        else:
            problems.append(f"{where}: no metric {metric}")
            continue
        all_labels |= offered
        if not strict_labels and metric not in SYNTHETIC and not catalogue[metric][1]:
            continue
        for label in sorted(labels - offered):
            problems.append(f"{where}: {metric} has no label {label!r} (it has {sorted(offered)})")
    for label in sorted(used.grouping - all_labels):
        problems.append(f"{where}: by/on label {label!r} is on none of {sorted(used.metrics)}")
    for metric, label, op, value in used.values:
        if op not in ("=", "=~") or "$" in value or not known_values:
            continue
        allowed = known_values.get(metric, {}).get(label)
        if not allowed:
            continue
        wanted = value.split("|") if op == "=~" else [value]
        for v in wanted:
            if v not in allowed:
                problems.append(f"{where}: {metric}{{{label}={v!r}}}: no such value (known: {sorted(allowed)})")
    return problems


def all_queries():
    """(where, expr) of the dashboard's panels and variables and of the rules."""
    dashboard = load_dashboard()
    found = dashboard_queries(dashboard)
    found += [(where, selector) for where, selector, _ in variable_queries(dashboard)]
    return found + rule_queries()

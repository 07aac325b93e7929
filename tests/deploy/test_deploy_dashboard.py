#!/usr/bin/env python3
"""test_deploy_dashboard.py: the Grafana dashboard (deploy/grafana/ferry.json) and the alert rules
(deploy/prometheus/ferry-rules.yml) query only what Ferry exposes, in PromQL that parses (issue 16).

1. Every panel query of the dashboard is written into a rule file as a recording rule and checked with
   `promtool check rules` (the PromQL parser of Prometheus 2.42, offline: no Prometheus server, no data). Grafana's
   variables are replaced first as Grafana would: $__rate_interval by 5m, $__interval by 1m, $__range by 1h, other
   $name / ${name} (used only inside label matchers) by .+ .
2. Metric names, label names and literal label values are taken from every dashboard query, its variable queries
   (label_values(metric, label)) and every rule expression, by a small PromQL tokenizer (strings, label matchers,
   by/on lists, ranges and function names are told apart), and compared with what a live build/ferry serves on
   /metrics: one single node made to show everything a user can meet (durable persistence, a push with X-Ferry-TTL
   and X-Ferry-Interval, a refused push, a push over --push.max-series-per-push, an oversized header, a DELETE, a
   bulk delete, `ferry run` of a failing command), and replica 0 of a 3-replica cluster for ferry_cluster_*.
   Allowed besides: up (made by Prometheus) and batch_job_max_age_seconds (recorded by ferry-thresholds.yml);
   job and instance (target labels) are not looked for in the exposition.
3. The dashboard's shape: JSON, unique panel ids, every query on the ${datasource} variable.

Usage: test_deploy_dashboard.py path/to/ferry [path/to/promtool]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
PROMTOOL = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "/usr/bin/promtool"
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "ferry.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "ferry-rules.yml")
check = pghttp.Checks()

SYNTHETIC = {"up"}  # made by Prometheus for every target
RECORDED = {"batch_job_max_age_seconds"}  # deploy/prometheus/ferry-thresholds.yml
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
            "atan2", "Inf", "NaN", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile"}
TOKEN = re.compile(r'\s+|(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)'
                   r'|(?P<num>[0-9][0-9.eE+]*[a-zA-Z]*|\.[0-9]+)|(?P<id>[a-zA-Z_:][a-zA-Z0-9_:]*)'
                   r'|(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],])')


def tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot tokenize %r at %d" % (expr, pos))
        pos = m.end()
        for kind in ("str", "num", "id", "op"):
            if m.group(kind) is not None:
                out.append((kind, m.group(kind)))
    return out


def analyse(expr):
    """(metric names, [(metric or None, label, op, value)], grouping label names) of a PromQL expression."""
    toks = tokens(expr)
    metrics, matchers, grouping = [], [], []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "op" and text == "[":  # a range or subquery: durations only
            while toks[i][1] != "]":
                i += 1
        elif kind == "id" and text in ("by", "without", "on", "ignoring", "group_left", "group_right") and nxt == "(":
            i += 2
            while toks[i][1] != ")":
                if toks[i][0] == "id" and text in ("by", "without", "on", "ignoring"):
                    grouping.append(toks[i][1])
                i += 1
        elif kind == "op" and text == "{":  # matchers of the metric before it (or of none)
            owner = toks[i - 1][1] if i > 0 and toks[i - 1][0] == "id" and toks[i - 1][1] in metrics else None
            i += 1
            while toks[i][1] != "}":
                if toks[i][0] == "id":
                    matchers.append((owner, toks[i][1], toks[i + 1][1], toks[i + 2][1][1:-1]))
                    i += 3
                else:
                    i += 1
        elif kind == "id" and nxt != "(" and text not in KEYWORDS and text not in AGGREGATIONS:
            metrics.append(text)
        i += 1
    return metrics, matchers, grouping


def grafana_to_promql(expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", ".+", expr)


def dashboard_queries(dash):
    """[(panel title, expr)] of every panel, rows' nested panels included, and [(variable, query)]."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    variables = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            variables.append((v["name"], q.get("query") if isinstance(q, dict) else q))
    return out, variables


def rule_exprs():
    """Every expr of ferry-rules.yml (folded and literal blocks joined), read without a YAML library."""
    exprs, cur = [], None
    for line in open(RULES).read().split("\n"):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m:
            if cur:
                exprs.append(cur)
            indent, rest = len(m.group(1)), m.group(2)
            cur = "" if rest in ("|", ">") else rest
            cur_indent = indent
            continue
        if cur is not None:
            if line.strip() and (len(line) - len(line.lstrip())) > cur_indent:
                cur += " " + line.strip()
            else:
                exprs.append(cur)
                cur = None
    if cur:
        exprs.append(cur)
    return [e.strip() for e in exprs]


def parse_exposition(text, into):
    """{metric name: [label dict]} from a text exposition, added to into."""
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        into.setdefault(m.group(1), []).append(labels)
    return into


def live_single(tmp):
    """/metrics of a single node after the scenario of the module doc."""
    port = pghttp.free_port()
    argv = [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-admin-api",
            "--persistence.file=" + os.path.join(tmp, "ferry.db"), "--persistence.durable",
            "--push.max-series-per-push=10"]
    with pghttp.Server(argv, port, "deploy-ferry", log_path=os.path.join(tmp, "ferry.log")):
        def req(method, path, body=None, headers=None):
            return pghttp.request(port, method, path, body=body, headers=headers)[0]
        steps = [
            ("PUT with TTL and interval", req("PUT", "/metrics/job/nightly/instance/db1", b"backup_bytes 1\n",
                                              {"X-Ferry-TTL": "1h", "X-Ferry-Interval": "1m"}), 200),
            ("refused push (type conflict)", req("POST", "/metrics/job/other",
                                                 b"# TYPE backup_bytes counter\nbackup_bytes 1\n"), 400),
            ("push over the series limit", req("POST", "/metrics/job/big",
                                               b"".join(b"s%d 1\n" % k for k in range(11))), 400),
            ("DELETE", req("DELETE", "/metrics/job/gone"), 202),
            ("bulk delete", req("DELETE", '/api/v1/admin/groups?match[]={job="gone"}'), 200),
            ("oversized header", req("GET", "/metrics", headers={"X-Big": "x" * 70000}), 431),
        ]
        for what, got, want in steps:
            check(got == want, "scenario: %s answered %d (expected %d)" % (what, got, want))
        run = subprocess.run([FERRY, "run", "--gateway=http://127.0.0.1:%d" % port, "--job=runjob", "--", "false"],
                             capture_output=True, text=True, timeout=60)
        check(run.returncode == 1, "scenario: ferry run -- false exits 1 (%d: %s)" % (run.returncode, run.stderr))
        st, _, body = pghttp.request(port, "GET", "/metrics")
        check(st == 200, "single node /metrics answers 200")
        return body.decode()


def live_cluster():
    if not fc.has_cluster(FERRY):
        print("no cluster mode in %s: ferry_cluster_* are not checked" % FERRY)
        return None
    with fc.Cluster(FERRY, 3, name="deploy-dash") as cl:
        st, _ = fc.push(cl.web[0], "PUT", "/metrics/job/replicated", b"r 1\n")
        check(st == 200, "cluster: a push answered 200")
        st, _, body = cl.get(0, "/metrics")
        check(st == 200, "cluster replica 0 /metrics answers 200")
        return body.decode()


def main():
    for tool in (PROMTOOL,):
        if not os.path.exists(tool):
            check(False, "%s is installed (package prometheus, scripts/install-deps.sh test)" % tool)
            return check.summary()
    dash = json.load(open(DASHBOARD))
    queries, variables = dashboard_queries(dash)
    check(len(queries) >= 30, "the dashboard has its queries (%d)" % len(queries))

    # 3. shape
    ids = []

    def collect(panels):
        for p in panels:
            ids.append(p.get("id"))
            for t in p.get("targets", []):
                check((t.get("datasource") or p.get("datasource") or {}).get("uid") == "${datasource}",
                      "panel %r queries the ${datasource} variable" % p.get("title"))
            collect(p.get("panels", []))
    collect(dash["panels"])
    check(len(ids) == len(set(ids)) and None not in ids, "panel ids are unique")
    check(any(v.get("type") == "datasource" for v in dash["templating"]["list"]), "a datasource variable exists")

    # 1. every query parses
    tmp = tempfile.mkdtemp(prefix="ferry-deploy-dash-")
    try:
        rules = os.path.join(tmp, "dashboard-rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for k, (_, expr) in enumerate(queries):
                f.write("      - record: dashboard_query_%d\n        expr: %s\n" % (
                    k, json.dumps(grafana_to_promql(expr))))
        r = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and ("SUCCESS: %d rules found" % len(queries)) in r.stdout,
              "promtool check rules parses the dashboard's %d queries: %s%s" % (len(queries), r.stdout[-600:],
                                                                               r.stderr[-600:]))

        # 2. names against live expositions
        live = parse_exposition(live_single(tmp), {})
        cluster = live_cluster()
        if cluster is not None:
            parse_exposition(cluster, live)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    used = [("dashboard: " + t, grafana_to_promql(e)) for t, e in queries]
    used += [("rule", e) for e in rule_exprs()]
    check(len(used) - len(queries) >= 10, "the rules' expressions were read (%d)" % (len(used) - len(queries)))
    names = set()
    for where, expr in used:
        metrics, matchers, grouping = analyse(expr)
        check(metrics, "%s: %r names a metric" % (where, expr))
        names.update(metrics)
        for m in metrics:
            if m in SYNTHETIC or m in RECORDED:
                continue
            if m.startswith("ferry_cluster_") and cluster is None:
                continue
            check(m in live, "%s: %s is on Ferry's /metrics" % (where, m))
        for owner, label, op, val in matchers:
            if owner is None or owner not in live or label in TARGET_LABELS or "$" in val or ".+" in val:
                continue
            seen = {s.get(label) for s in live[owner]}
            if op == "=":
                check(val in seen, "%s: %s{%s=%r} exists (values seen: %s)" % (where, owner, label, val, sorted(
                    v for v in seen if v is not None)))
            elif op == "=~" and re.fullmatch(r"[A-Za-z0-9_.|-]+", val):
                for alt in val.split("|"):
                    check(alt in seen, "%s: %s{%s=~...%r...} exists (values seen: %s)" % (where, owner, label, alt,
                                                                                        sorted(v for v in seen if v)))
        for label in grouping:
            if label in TARGET_LABELS:
                continue
            check(any(label in s for m in metrics if m in live for s in live[m]),
                  "%s: the grouping label %s is on one of %s" % (where, label, metrics))
    for name, q in variables:
        m = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]+)\s*\)", q or "")
        check(m is not None and m.group(1) in live and (m.group(2) in TARGET_LABELS or any(
            m.group(2) in s for s in live[m.group(1)])), "variable %s: %r is label_values of a live metric" % (name, q))
    print("%d queries and %d rule expressions use %d metric names, all served by Ferry: %s" % (
        len(queries), len(used) - len(queries), len(names), " ".join(sorted(names))))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

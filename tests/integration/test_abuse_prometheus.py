#!/usr/bin/env python3
"""test_abuse_prometheus.py: invalid UTF-8 and NUL in HELP texts and label values, checked against a real Prometheus.

Issue #13: one bad push must never make Prometheus fail to scrape the whole gateway. A real /usr/bin/prometheus
(Debian 12: 2.42) scrapes, every second, two build/ferry instances (text 0.0.4, and --web.enable-openmetrics, which
Prometheus asks for first) and, when installed, the reference Pushgateway 1.5.1. Then:

- invalid UTF-8 in a HELP text (text, protobuf, OpenMetrics pushes) and in a label value (text, protobuf, OpenMetrics,
  grouping key): Ferry answers 400 naming the family or label and stores none of it;
- NUL in a HELP text and in a label value (text and protobuf): Ferry stores and serves it as the reference does, and
  Prometheus ingests it as is (the NUL is in the label value and the metadata it returns);
- after all of these pushes both Ferry targets stay up with no scrape error and a good series pushed alongside is
  still there;
- control: the reference stores the bad HELP, and Prometheus then marks its target down with "help text is not a
  valid utf8 string" (the observation behind the decision in docs/compatibility.md).
Skips (exit 0, reason printed) only when /usr/bin/prometheus is absent. Bounded: about 15 s, processes stopped by PID.
Usage: test_abuse_prometheus.py path/to/ferry [path/to/prometheus] [path/to/reference-pushgateway]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402
from pghttp import GAUGE, PB_CONTENT_TYPE, pb_family, pb_metric  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
PROMETHEUS = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "/usr/bin/prometheus"
REFERENCE = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else "/usr/bin/prometheus-pushgateway"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
INVALID = "pushed metrics are invalid or inconsistent with existing metrics: "
check = pghttp.Checks()

# (note, path, body, content type, expected status, expected body or None)
REJECTED = [
    ("text HELP not UTF-8", "/metrics/job/t1", b"# HELP bad_help_text a\xffb\nbad_help_text 1\n", None, 400,
     INVALID + 'metric family "bad_help_text" has a HELP text that is not valid UTF-8: "a\\xffb"'),
    ("protobuf HELP not UTF-8", "/metrics/job/t2",
     pb_family("bad_help_pb", GAUGE, [pb_metric([], 1, GAUGE)], help=b"\xed\xa0\x80"), PB_CONTENT_TYPE, 400,
     INVALID + 'metric family "bad_help_pb" has a HELP text that is not valid UTF-8: "\\xed\\xa0\\x80"'),
    ("OpenMetrics HELP not UTF-8", "/metrics/job/t3", b"# HELP bad_help_om a\xc3\n# TYPE bad_help_om gauge\n"
     b"bad_help_om 1\n# EOF\n", OM, 400, 'openmetrics parsing error in line 1: HELP text "a\\xc3" is not valid UTF-8'),
    ("text label value not UTF-8", "/metrics/job/t4", b'bad_label_text{a="\xff"} 1\n', None, 400,
     'text format parsing error in line 1: invalid label value "\\xff"'),
    ("protobuf label value not UTF-8", "/metrics/job/t5",
     pb_family("bad_label_pb", GAUGE, [pb_metric([("a", b"\xfe")], 1, GAUGE)]), PB_CONTENT_TYPE, 400, None),
    ("OpenMetrics label value not UTF-8", "/metrics/job/t6", b'bad_label_om{a="\xff"} 1\n# EOF\n', OM, 400,
     'openmetrics parsing error in line 1: label value "\\xff" is not valid UTF-8'),
    ("grouping label value not UTF-8", "/metrics/job/t7/a/%FF", b"bad_group 1\n", None, 400,
     'grouping label a has a value that is not valid UTF-8: "\\xff"'),
]
# (note, path, body, content type, family, label value or None, HELP or None): stored, served, ingested as is
KEPT = [
    ("text HELP with NUL", "/metrics/job/k1", b"# HELP nul_help_text a\x00b\nnul_help_text 1\n", None,
     "nul_help_text", None, "a\x00b"),
    ("protobuf HELP with NUL", "/metrics/job/k2", pb_family("nul_help_pb", GAUGE, [pb_metric([], 1, GAUGE)],
                                                             help=b"\x00"), PB_CONTENT_TYPE, "nul_help_pb", None, "\x00"),
    ("text label value with NUL", "/metrics/job/k3", b'nul_label_text{a="x\x00y"} 1\n', None, "nul_label_text",
     "x\x00y", None),
    ("protobuf label value with NUL", "/metrics/job/k4",
     pb_family("nul_label_pb", GAUGE, [pb_metric([("a", b"\x00")], 1, GAUGE)]), PB_CONTENT_TYPE, "nul_label_pb", "\x00",
     None),
]


def api(port, path):
    st, _, body = pghttp.request(port, "GET", path, timeout=5)
    return json.loads(body)["data"] if st == 200 else None


def query(port, expr):
    return api(port, "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]


def targets(port):
    """{job: target} of Prometheus's active targets."""
    try:
        data = api(port, "/api/v1/targets")
    except (OSError, ValueError):
        return {}
    return {t["labels"]["job"]: t for t in (data or {}).get("activeTargets", [])}


def wait_scrapes(port, jobs, n=2, timeout=15):
    """Waits until each job's target has been scraped n times from now on: n + 1 distinct lastScrape values seen
    (the first may predate the call)."""
    seen = {j: set() for j in jobs}
    deadline = time.time() + timeout
    while time.time() < deadline:
        for j, t in targets(port).items():
            if j in seen and t.get("lastScrape"):
                seen[j].add(t["lastScrape"])
        if all(len(v) >= n + 1 for v in seen.values()):
            break
        time.sleep(0.2)
    return targets(port)


def push(port, path, body, ctype):
    return pghttp.request(port, "PUT", path, body=body, headers={"Content-Type": ctype} if ctype else None)


def groups(port):
    _, _, body = pghttp.request(port, "GET", "/api/v1/metrics")
    return {tuple(sorted(g["labels"].items())) for g in json.loads(body)["data"]}


def main():
    if not os.path.exists(PROMETHEUS):
        print("SKIP: %s is absent: nothing to check Ferry's output against" % PROMETHEUS)
        return 0
    out = subprocess.run([PROMETHEUS, "--version"], capture_output=True, timeout=10)
    print((out.stdout or out.stderr).decode().split("\n")[0])
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="ferry-abuse-prom-")
    servers, prom = {}, None
    try:
        fl = ["--web.threads=2", "--persistence.file="]
        for job, extra in (("ferry", []), ("ferry_om", ["--web.enable-openmetrics"])):
            port = pghttp.free_port()
            servers[job] = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port] + fl + extra, port,
                                         "ferry-abuse-prom").start()
        if os.path.exists(REFERENCE):
            port = pghttp.free_port()
            servers["reference"] = pghttp.Server([REFERENCE, "--web.listen-address=127.0.0.1:%d" % port,
                                                  "--persistence.file="], port, "reference-abuse-prom").start()
        else:
            print("reference Pushgateway %s absent: its control check is skipped" % REFERENCE)
        pport = pghttp.free_port()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
            for job, s in servers.items():
                f.write("  - job_name: %s\n    honor_labels: true\n    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n        labels: {gateway: %s}\n" % (job, s.port, job))
        prom = pghttp.Server([PROMETHEUS, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                              "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                              "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=debug"], pport, "prometheus",
                             log_path=os.path.join(tmp, "prometheus.log")).start(wait=False)  # wait_scrapes waits

        for job in ("ferry", "ferry_om"):
            p = servers[job].port
            check(push(p, "/metrics/job/good", b"good_series 1\n", None)[0] == 200, "%s: the good push" % job)
            before = groups(p)
            for note, path, body, ctype, want_st, want_body in REJECTED:
                st, _, got = push(p, path, body, ctype)
                check(st == want_st, "%s: %s: status %d (%r), want %d" % (job, note, st, got[:200], want_st))
                if want_body is not None:
                    check(got.decode("utf-8", "replace") == want_body + "\n",
                          "%s: %s: body %r, want %r" % (job, note, got[:300], want_body))
            # a refused push may leave its group's push_failure_time_seconds (as 1.5.1 does), never its data
            _, _, scrape = pghttp.request(p, "GET", "/metrics")
            check(not any(f in scrape for f in (b"bad_help_", b"bad_label_", b"bad_group")),
                  "%s: nothing of the refused pushes is served" % job)
            check(before <= groups(p), "%s: the groups stored before are still there" % job)
            for note, path, body, ctype, *_ in KEPT:
                st, _, got = push(p, path, body, ctype)
                check(st == 200, "%s: %s: status %d (%r), want 200" % (job, note, st, got[:200]))
        if "reference" in servers:
            p = servers["reference"].port
            push(p, "/metrics/job/good", b"good_series 1\n", None)
            st, _, _ = push(p, "/metrics/job/t1", REJECTED[0][2], None)
            check(st == 200, "reference: stores the HELP that is not UTF-8 (status %d)" % st)

        t = wait_scrapes(pport, list(servers))
        for job in ("ferry", "ferry_om"):
            tg = t.get(job, {})
            check(tg.get("health") == "up" and tg.get("lastError") == "",
                  "%s: Prometheus scrapes it without error: health %r, lastError %r" % (job, tg.get("health"),
                                                                                         tg.get("lastError")))
            sel = '{gateway="%s"}' % job
            up = query(pport, "up" + sel)
            check(len(up) == 1 and up[0]["value"][1] == "1", "%s: up == 1: %r" % (job, up))
            good = query(pport, "good_series" + sel)
            check(len(good) == 1, "%s: the good series is ingested: %r" % (job, good))
            for note, _, _, _, fam, value, help_text in KEPT:
                res = query(pport, fam + sel)
                check(len(res) == 1, "%s: %s: ingested: %r" % (job, note, res))
                if value is not None and res:
                    check(res[0]["metric"].get("a") == value, "%s: %s: label value as pushed: %r" % (job, note, res))
                if help_text is not None:
                    meta = api(pport, "/api/v1/metadata?metric=" + fam) or {}
                    helps = [m.get("help") for m in meta.get(fam, [])]
                    check(help_text in helps, "%s: %s: HELP as pushed in the metadata: %r" % (job, note, helps))
        if "reference" in servers:
            tg = t.get("reference", {})
            err = tg.get("lastError", "")
            print("reference Pushgateway with the bad HELP stored: health %r, lastError %r" % (tg.get("health"), err))
            check(tg.get("health") == "down" and "help text is not a valid utf8 string" in err,
                  "control: Prometheus fails the reference's whole scrape on the stored HELP")
            up = query(pport, 'up{gateway="reference"}')
            check(len(up) == 1 and up[0]["value"][1] == "0", "control: up == 0 for the reference: %r" % (up,))
            with open(os.path.join(tmp, "prometheus.log"), errors="replace") as f:
                lines = [ln for ln in f if "utf8" in ln]
            if lines:
                print("Prometheus logged (debug level only): " + lines[0].strip())
    finally:
        if prom is not None:
            prom.stop(timeout=15)
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("total %.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

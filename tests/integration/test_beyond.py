#!/usr/bin/env python3
"""test_beyond.py: expiry, liveness and bulk deletes end to end with build/ferry (issue 7, docs/beyond-pushgateway.md).

- X-Ferry-TTL: a group disappears from /metrics, /api/v1/metrics and the web UI within one second of its deadline
  (push time + TTL, bounded polling); the TTL sticks to the group across pushes without the header; --push.default-ttl
  applies to groups that declare none, and "X-Ferry-TTL: 0" opts a group out; ferry_groups_expired_total counts.
- X-Ferry-Interval: push_alive flips from 1 to 0 once the interval plus --push.interval-grace has passed, and back
  to 1 on the next push; push_interval_seconds and push_expiry_time_seconds carry the grouping labels.
- A bad header value is a 400 naming the header and the value, and stores nothing (no failure group either).
- DELETE /api/v1/admin/groups: refused exactly like the wipe endpoint without --web.enable-admin-api; with it, match[]
  selectors and older_than delete in one request and answer with the count; bad selectors are a JSON 400. The time
  of a bulk delete of many groups is printed (FERRY_BULK_GROUPS, default 5000), not asserted.
- Restart with --persistence.file (snapshot) and with --persistence.durable after SIGKILL (log replay): the TTL and
  interval survive; a group whose deadline passed while Ferry was down does not come back.
- Without any of the new flags or headers, the pushed part of /metrics and /api/v1/metrics are the same as on a
  server started with every new option at its "off" value (the Pushgateway's behaviour), timestamps masked; with
  FERRY_BASELINE=path/to/an/older/ferry also the same as on a build from before the feature.
Usage: test_beyond.py path/to/ferry
"""
import http.client
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()


def ferry(*extra, persistence="", binary=None):
    port = pghttp.free_port()
    return pghttp.Server([binary or FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                          "--persistence.file=" + persistence] + list(extra), port, "ferry-beyond",
                         health="/-/ready")


def push(s, job, body, method="PUT", headers=None, path=None):
    return pghttp.request(s.port, method, path or "/metrics/job/" + job, body.encode(), headers)


def metrics(s):
    return pghttp.request(s.port, "GET", "/metrics")[2].decode()


def value(text, series):
    """The value of one series line of a text scrape, or None."""
    for line in text.split("\n"):
        if line.startswith(series + " "):
            return float(line.split(" ")[1])
    return None


def api_jobs(s):
    data = json.loads(pghttp.request(s.port, "GET", "/api/v1/metrics")[2])["data"]
    return sorted(g["labels"].get("job", "") for g in data)


def wait_until(cond, timeout):
    """Polls cond every 20 ms until it holds or timeout seconds pass; returns the time it first held, or None."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return time.time()
        time.sleep(0.02)
    return None


def test_ttl():
    with ferry() as s:
        st, _, body = push(s, "short", "m 1\n", headers={"X-Ferry-TTL": "1s"})
        check(st == 200, "push with X-Ferry-TTL: %d %r" % (st, body))
        push(s, "keep", "m 2\n")
        t = metrics(s)
        pushed = value(t, 'push_time_seconds{instance="",job="short"}')
        expiry = value(t, 'push_expiry_time_seconds{instance="",job="short"}')
        check(pushed is not None and expiry is not None and abs(expiry - (pushed + 1.0)) < 1e-6,
              "deadline = push time + TTL: %r %r" % (pushed, expiry))
        check(value(t, 'push_expiry_time_seconds{instance="",job="keep"}') is None, "no expiry without a TTL")
        check(api_jobs(s) == ["keep", "short"], "both in the API before the deadline")
        ui = pghttp.request(s.port, "GET", "/")[2].decode()
        check("short" in ui and "expires: " in ui, "the UI shows the group and its expiry before its deadline")

        def gone():
            return ('job="short"' not in metrics(s) and "short" not in api_jobs(s)
                    and "short" not in pghttp.request(s.port, "GET", "/")[2].decode())
        at = wait_until(gone, 5)
        check(at is not None, "the expired group left /metrics, the API and the UI")
        if at is not None and pushed is not None:
            late = at - (pushed + 1.0)
            print("expiry: gone %.3f s after the deadline" % late)
            check(late < 1.0, "gone within 1 s of the deadline (%.3f s)" % late)
        check(api_jobs(s) == ["keep"], "the other group stays")
        check(value(metrics(s), "ferry_groups_expired_total") == 1, "ferry_groups_expired_total counts it")

        # the TTL sticks: a push without the header keeps it and moves the deadline
        push(s, "sticky", "m 1\n", headers={"X-Ferry-TTL": "1h"})
        time.sleep(0.05)
        push(s, "sticky", "m 2\n", method="POST")
        t = metrics(s)
        check(abs(value(t, 'push_expiry_time_seconds{instance="",job="sticky"}')
                  - value(t, 'push_time_seconds{instance="",job="sticky"}') - 3600) < 1e-6,
              "a push without the header keeps the TTL, deadline from the new push time")
        push(s, "sticky", "m 3\n", headers={"X-Ferry-TTL": "0"})
        check(value(metrics(s), 'push_expiry_time_seconds{instance="",job="sticky"}') is None,
              "X-Ferry-TTL: 0 removes the TTL")

    with ferry("--push.default-ttl=1s") as s:
        push(s, "default", "m 1\n")
        push(s, "optout", "m 1\n", headers={"X-Ferry-TTL": "0"})
        check(wait_until(lambda: api_jobs(s) == ["optout"], 3) is not None,
              "--push.default-ttl expires groups without a TTL; X-Ferry-TTL: 0 opts out")


def test_liveness():
    with ferry("--push.interval-grace=200ms") as s:
        push(s, "cron", "m 1\n", headers={"X-Ferry-Interval": "300ms"}, path="/metrics/job/cron/instance/h1")
        t = metrics(s)
        check(value(t, 'push_alive{instance="h1",job="cron"}') == 1, "alive right after the push")
        check(value(t, 'push_interval_seconds{instance="h1",job="cron"}') == 0.3, "push_interval_seconds")
        check("# TYPE push_alive gauge" in t, "push_alive is a gauge")
        check("pushes every 0.3s" in pghttp.request(s.port, "GET", "/")[2].decode(), "the UI shows the interval")
        flipped = wait_until(lambda: value(metrics(s), 'push_alive{instance="h1",job="cron"}') == 0, 3)
        check(flipped is not None, "push_alive flips to 0 after interval + grace")
        push(s, "cron", "m 2\n", path="/metrics/job/cron/instance/h1")
        check(value(metrics(s), 'push_alive{instance="h1",job="cron"}') == 1,
              "a push without the header keeps the interval and makes the group alive again")
        push(s, "plain", "m 1\n")
        check("plain" not in "".join(l for l in metrics(s).split("\n") if l.startswith("push_alive")),
              "no push_alive for a group without an interval")


def test_bad_headers():
    with ferry() as s:
        for header, val in (("X-Ferry-TTL", "soon"), ("X-Ferry-Interval", "-1m"), ("X-Ferry-TTL", "10")):
            st, _, body = push(s, "bad", "m 1\n", headers={header: val})
            check(st == 400 and header.encode() in body and val.encode() in body,
                  "bad %s %r: 400 naming both: %d %r" % (header, val, st, body))
        check(api_jobs(s) == [], "nothing stored after bad headers")
        check('job="bad"' not in metrics(s), "no failure group either")


def test_bulk():
    with ferry() as s:
        a = pghttp.request(s.port, "DELETE", "/api/v1/admin/groups?match[]=%7Bjob%3D%22x%22%7D")
        b = pghttp.request(s.port, "PUT", "/api/v1/admin/wipe")
        check(a[0] == b[0] == 404 and a[2] == b[2], "admin API off: the same answer as the wipe endpoint: %r %r"
              % (a[:1] + a[2:], b[:1] + b[2:]))
    with ferry("--web.enable-admin-api") as s:
        for i in range(6):
            push(s, "backup", "m %d\n" % i, path="/metrics/job/backup/instance/db%d" % i)
        for i in range(3):
            push(s, "web", "m %d\n" % i, path="/metrics/job/web/instance/w%d" % i)
        push(s, "web", "m 9\n", path="/metrics/job/web")

        def bulk(query):
            st, h, body = pghttp.request(s.port, "DELETE", "/api/v1/admin/groups?" + query)
            return st, h.get("content-type"), json.loads(body)
        st, ct, j = bulk("match[]=%7Bjob%3D%22backup%22%7D")
        check((st, ct, j) == (200, "application/json", {"status": "success", "data": {"deleted": 6}}),
              "match[] job=backup deletes every backup group: %r" % ((st, ct, j),))
        check(api_jobs(s) == ["web"] * 4, "the others stay")
        st, _, j = bulk("match[]=" + "{job=\"web\",instance=~\"w[01]\"}".replace('"', "%22").replace("{", "%7B")
                        .replace("}", "%7D").replace("[", "%5B").replace("]", "%5D"))
        check(j["data"]["deleted"] == 2, "regex matcher: %r" % j)
        st, _, j = bulk("older_than=1h")
        check(j["data"]["deleted"] == 0, "nothing is an hour old")
        time.sleep(1.1)
        push(s, "fresh", "m 1\n")
        st, _, j = bulk("older_than=1s")
        check(j["data"]["deleted"] == 2 and api_jobs(s) == ["fresh"], "older_than=1s: %r %r" % (j, api_jobs(s)))
        check(value(metrics(s), "ferry_groups_bulk_deleted_total") == 10, "ferry_groups_bulk_deleted_total")
        st, _, j = bulk("match[]=%7Bjob%3Dbackup%7D")
        check(st == 400 and j["status"] == "error" and "expected a quoted value" in j["error"], "bad selector: %r" % j)
        st, _, j = bulk("")
        check(st == 400 and "no match[] selector" in j["error"], "no selection: %r" % j)

        # timing: many groups over one keep-alive connection, then one bulk delete
        n = int(os.environ.get("FERRY_BULK_GROUPS", "5000"))
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        for i in range(n):
            c.request("PUT", "/metrics/job/many/instance/i%d" % i, body=b"m 1\nn 2\n")
            c.getresponse().read()
        c.close()
        t0 = time.time()
        st, _, j = bulk("match[]=%7Bjob%3D%22many%22%7D")
        took = time.time() - t0
        check(j["data"]["deleted"] == n, "bulk delete of %d groups: %r" % (n, j))
        log = open(s.log_path).read()
        server = re.findall(r'msg="bulk delete" query="match\[\]=%7Bjob%3D%22many%22%7D" deleted=\d+ seconds=([0-9.]+)',
                            log)
        print("bulk delete: %d groups in %.1f ms (request), %.1f ms in the store (server log)"
              % (n, took * 1000, float(server[0]) * 1000 if server else -1))


def test_restart():
    d = tempfile.mkdtemp(prefix="ferry-beyond-")
    path = os.path.join(d, "snap")
    with ferry(persistence=path) as s:
        push(s, "long", "m 1\n", headers={"X-Ferry-TTL": "1h", "X-Ferry-Interval": "1m"})
        push(s, "short", "m 1\n", headers={"X-Ferry-TTL": "1500ms"})
        push(s, "plain", "m 1\n")
        before = metrics(s)
    time.sleep(1.6)  # the short group's deadline passes while Ferry is down
    with ferry(persistence=path) as s:
        after = metrics(s)
        check(api_jobs(s) == ["long", "plain"], "snapshot: the expired group did not come back: %r" % api_jobs(s))
        for series in ('push_expiry_time_seconds{instance="",job="long"}',
                       'push_interval_seconds{instance="",job="long"}'):
            check(value(after, series) is not None and value(after, series) == value(before, series),
                  "snapshot keeps %s" % series)
        push(s, "long", "m 2\n")  # still sticks after the restart
        t = metrics(s)
        check(abs(value(t, 'push_expiry_time_seconds{instance="",job="long"}')
                  - value(t, 'push_time_seconds{instance="",job="long"}') - 3600) < 1e-6, "TTL sticks after restart")

    # durable mode: the log is replayed after a SIGKILL (no final snapshot)
    path = os.path.join(d, "durable")
    s = ferry("--persistence.durable", "--web.enable-admin-api", persistence=path).start()
    push(s, "long", "m 1\n", headers={"X-Ferry-TTL": "1h", "X-Ferry-Interval": "1m"})
    push(s, "short", "m 1\n", headers={"X-Ferry-TTL": "1s"})
    push(s, "merge", "a 1\n", headers={"X-Ferry-TTL": "1s"})
    push(s, "bulk", "m 1\n", path="/metrics/job/bulk/instance/x")
    st, _, body = pghttp.request(s.port, "DELETE", "/api/v1/admin/groups?match[]=%7Bjob%3D~%22bu.*%22%7D")
    check(st == 200 and json.loads(body)["data"]["deleted"] == 1, "durable bulk delete: %d %r" % (st, body))
    before = metrics(s)
    s.stop(sig=signal.SIGKILL)
    time.sleep(1.1)
    with ferry("--persistence.durable", "--web.enable-admin-api", persistence=path) as s:
        after = metrics(s)
        check(api_jobs(s) == ["long"],
              "log replay: the expired and bulk-deleted groups did not come back: %r" % api_jobs(s))
        check(value(after, 'push_expiry_time_seconds{instance="",job="long"}')
              == value(before, 'push_expiry_time_seconds{instance="",job="long"}'), "log replay keeps the TTL")
        check(value(after, 'push_interval_seconds{instance="",job="long"}') == 60, "log replay keeps the interval")
        # a POST after the deadline starts a new group, live and after a replay alike
        push(s, "merge", "b 1\n", method="POST")
        live = pghttp.pushed_part(metrics(s).encode())
        s.stop(sig=signal.SIGKILL)
    with ferry("--persistence.durable", "--web.enable-admin-api", persistence=path) as s:
        replayed = pghttp.pushed_part(metrics(s).encode())
        check(live == replayed and 'a{instance="",job="merge"}' not in replayed,
              "the same state after a replay (the expired group's families did not merge)")


TS = re.compile(r'^((push_time_seconds|push_failure_time_seconds)\{.*\}) [1-9]\S*$', re.M)


def masked_state(s):
    text = TS.sub(r"\1 T", pghttp.pushed_part(metrics(s).encode()))
    api = json.loads(pghttp.request(s.port, "GET", "/api/v1/metrics")[2])
    for g in api["data"]:
        for k in ("push_time_seconds", "push_failure_time_seconds"):
            for m in g.get(k, {}).get("metrics", []):
                m["value"] = "T" if m["value"] != "0" else "0"
            if k in g:
                g[k]["time_stamp"] = "T"
        for name, fam in g.items():
            if isinstance(fam, dict) and "time_stamp" in fam:
                fam["time_stamp"] = "T"
    return text, json.dumps(api, sort_keys=True)


def test_default_identical():
    off = ("--push.default-ttl=0s", "--push.default-interval=0s", "--push.interval-grace=30s")
    pushes = [
        ("PUT", "/metrics/job/a", "# TYPE c counter\nc 1\n# HELP g a gauge\n# TYPE g gauge\ng{x=\"1\"} 2\n"),
        ("POST", "/metrics/job/a", "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
        ("PUT", "/metrics/job/b/instance/i", "u 5\n"),
        ("PUT", "/metrics/job/c", "bad 1 1234\n"),
        ("PUT", "/metrics/job/d", "x 1\n"),
        ("DELETE", "/metrics/job/d", None),
    ]
    states = []
    runs = [((), None), (off, None)]
    if os.environ.get("FERRY_BASELINE"):  # a build from before the feature: the strongest comparison
        runs.append(((), os.environ["FERRY_BASELINE"]))
    for flags, binary in runs:
        with ferry(*flags, binary=binary) as s:
            for method, p, body in pushes:
                pghttp.request(s.port, method, p, body.encode() if body is not None else None)
            states.append(masked_state(s))
    check(states[0][0] == states[1][0], "default /metrics (pushed part) unchanged:\n%s\n---\n%s" % (states[0][0],
                                                                                                    states[1][0]))
    check(states[0][1] == states[1][1], "default /api/v1/metrics unchanged")
    if len(states) == 3:
        check(states[0] == states[2], "the same as the baseline build (FERRY_BASELINE)")
        print("compared with the baseline build %s" % os.environ["FERRY_BASELINE"])
    check("push_alive" not in states[0][0] and "push_expiry_time_seconds" not in states[0][0]
          and "push_interval_seconds" not in states[0][0], "no liveness family without a declaration")


def main():
    t0 = time.time()
    for t in (test_ttl, test_liveness, test_bad_headers, test_bulk, test_restart, test_default_identical):
        t1 = time.time()
        t()
        print("%s: %.1f s" % (t.__name__, time.time() - t1))
    print("total %.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_abuse_ui.py: the web UI and /api/v1/metrics stay bounded in memory however large the store (issue #13).

Fills a real build/ferry with many small groups and two huge ones (10,000 series whose label values are 4,000 bytes
of '<', six bytes each in JSON as \\u003c; and 300 grouping labels on 2,000 series, every series repeating them), then:
  - /api/v1/metrics (a body of about 250 MB): parsed and compared with what was pushed, group by group and series by
    series; the server's peak RSS while serving it (VmHWM, reset just before through /proc/PID/clear_refs, and VmRSS
    sampled every 5 ms as a cross-check) must grow by less than RSS_BOUND_MB;
  - / and /?page=&limit=: one page of groups with the total and links to the neighbouring pages; the page holding the
    huge groups is cut (a notice per cut family) and stays under PAGE_BOUND bytes; RSS growth under UI_RSS_BOUND_MB.
The figures are printed (docs/reliability.md records them). With --report-only, nothing is asserted about sizes and
memory (to measure an older build the same way). Every started process is stopped by PID with bounded waits.
Usage: test_abuse_ui.py path/to/ferry [--report-only]
"""
import http.client
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
REPORT_ONLY = "--report-only" in sys.argv[2:]

N_SMALL = 3000            # small groups: job=g<N>, instance=i<N % 7>, two families
N_LONG = 10000            # series of the group job=long
LONG_VALUE = "<" * 4000   # 4,000 bytes stored, 24,000 in JSON, 16,000 in HTML
N_WIDE_LABELS = 300       # grouping labels of the group job=wide (with job)
N_WIDE_SERIES = 2000
RSS_BOUND_MB = 64         # /api/v1/metrics: peak RSS growth while serving a body of ~250 MB
UI_RSS_BOUND_MB = 16      # a UI page
PAGE_BOUND = 2 << 20      # bytes of any UI page here

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """VmRSS every 5 ms until stopped: the peak, independent of VmHWM."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0, False

    def run(self):
        while not self.stop_flag:
            self.peak = max(self.peak, status_kb(self.pid, "VmRSS"))
            time.sleep(0.005)

    def stop(self):
        self.stop_flag = True
        self.join(5)
        return self.peak


def measured_get(port, pid, path):
    """GET path on a fresh connection; returns (status, headers, body, seconds, rss_before_kb, hwm_growth_kb,
    sampled_growth_kb)."""
    reset_peak(pid)
    before = status_kb(pid, "VmRSS")
    sampler = Sampler(pid)
    sampler.start()
    t0 = time.monotonic()
    st, h, body = pghttp.request(port, "GET", path, timeout=60)
    secs = time.monotonic() - t0
    peak_sampled = sampler.stop()
    hwm = status_kb(pid, "VmHWM")
    return st, h, body, secs, before, hwm - before, peak_sampled - before


class Pusher:
    """PUTs over one keep-alive connection (thousands of groups in a few seconds)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def put(self, path, body):
        self.conn.request("PUT", path, body=body)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("PUT %s: %d %s" % (path[:80], r.status, data[:200]))

    def close(self):
        self.conn.close()


def small_text(n):
    return ("# HELP req_total Requests <%d>.\n# TYPE req_total counter\nreq_total{code=\"200\"} %d\n"
            "# TYPE temp gauge\ntemp %d.5\n" % (n, n, n % 100))


def fill(port):
    p = Pusher(port)
    for n in range(N_SMALL):
        p.put("/metrics/job/g%05d/instance/i%d" % (n, n % 7), small_text(n).encode())
    long_body = "".join('big{i="%05d",v="%s"} %d\n' % (i, LONG_VALUE, i) for i in range(N_LONG))
    p.put("/metrics/job/long", long_body.encode())
    wide_path = "/metrics/job/wide" + "".join("/l%04d/value%04d" % (i, i) for i in range(1, N_WIDE_LABELS))
    wide_body = "".join('w{s="%d"} %d\n' % (i, i) for i in range(N_WIDE_SERIES))
    p.put(wide_path, wide_body.encode())
    p.close()
    return len(long_body) + len(wide_body)


def check_json(data):
    """The parsed /api/v1/metrics against what fill() pushed."""
    check(data.get("status") == "success", "json status")
    groups = data.get("data", [])
    check(len(groups) == N_SMALL + 2, "json: %d groups, want %d" % (len(groups), N_SMALL + 2))
    by_job = {g["labels"].get("job"): g for g in groups}
    for n in range(N_SMALL):
        g = by_job.get("g%05d" % n)
        if not check(g is not None, "json: group g%05d missing" % n):
            continue
        want_labels = {"job": "g%05d" % n, "instance": "i%d" % (n % 7)}
        ok = g["labels"] == want_labels and g["last_push_successful"] is True
        req = g.get("req_total", {})
        ok &= req.get("type") == "COUNTER" and req.get("help") == "Requests <%d>." % n
        ok &= req.get("metrics") == [{"labels": dict(want_labels, code="200"), "value": str(n)}]
        temp = g.get("temp", {})
        ok &= temp.get("type") == "GAUGE" and temp.get("metrics") == [{"labels": want_labels,
                                                                        "value": "%d.5" % (n % 100)}]
        ok &= set(g) == {"labels", "last_push_successful", "push_time_seconds", "push_failure_time_seconds",
                         "req_total", "temp"}
        if not check(ok, "json: group g%05d differs: %s" % (n, json.dumps(g)[:300])):
            break
    g = by_job.get("long")
    if check(g is not None, "json: group long missing"):
        ms = g["big"]["metrics"]
        check(len(ms) == N_LONG, "json: long has %d series" % len(ms))
        bad = [m for i, m in enumerate(ms) if m != {"labels": {"i": "%05d" % i, "v": LONG_VALUE, "instance": "",
                                                             "job": "long"}, "value": str(i)}]
        check(not bad, "json: %d series of long differ, first %s" % (len(bad), str(bad[:1])[:200]))
    g = by_job.get("wide")
    if check(g is not None, "json: group wide missing"):
        gl = {"job": "wide"}
        gl.update({"l%04d" % i: "value%04d" % i for i in range(1, N_WIDE_LABELS)})
        check(g["labels"] == gl, "json: wide's grouping labels differ")
        ms = g["w"]["metrics"]
        check(len(ms) == N_WIDE_SERIES, "json: wide has %d series" % len(ms))
        bad = [m for i, m in enumerate(ms) if m != {"labels": dict(gl, s=str(i), instance=""), "value": str(i)}]
        check(not bad, "json: %d series of wide differ" % len(bad))


def check_page(body, total, first, last, prev_link, next_link, what):
    html = body.decode("utf-8", "replace")
    ngroups = html.count('<details class="group" ')
    pager = re.search(r'<p class="muted pager">(.*?)</p>', html)
    check(pager is not None, what + ": no pager")
    if pager is None:
        return html
    p = pager.group(1)
    check(p.startswith("%d groups" % total), what + ": pager says " + p[:60])
    if first == 1 and last == total:  # one page: the count alone
        check("showing" not in p, what + ": a range on the only page, pager " + p)
    else:
        check(("showing %d&ndash;%d" % (first, last)) in p, what + ": range, pager " + p)
    check((prev_link in p) if prev_link else ("previous" not in p), what + ": previous link, pager " + p)
    check((next_link in p) if next_link else ("next" not in p), what + ": next link, pager " + p)
    check(ngroups == last - first + 1, what + ": %d groups on the page" % ngroups)
    check(html.endswith("</body></html>\n"), what + ": page not complete")
    if not REPORT_ONLY:
        check(len(body) < PAGE_BOUND, what + ": page of %d bytes" % len(body))
    return html


def main():
    t_start = time.monotonic()
    port = pghttp.free_port()
    # the grouping-key limits are switched off: the UI and the API must stay bounded even where an operator has
    # allowed groups with hundreds of grouping labels
    srv = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file=",
                         "--web.threads=2", "--push.max-grouping-labels=0", "--push.max-grouping-key-bytes=0"],
                        port, "ferry-abuse-ui")
    with srv:
        pid = srv.proc.pid
        pushed = fill(port)
        t_filled = time.monotonic()
        rss_filled = status_kb(pid, "VmRSS")
        print("filled: %d small groups, long (%d series of 4,000-byte values), wide (%d grouping labels x %d series);"
              " %.1f MB pushed in %.1f s; RSS %.1f MB" % (N_SMALL, N_LONG, N_WIDE_LABELS, N_WIDE_SERIES, pushed / 1e6,
                                                        t_filled - t_start, rss_filled / 1024))
        check(reset_peak(pid), "clear_refs refused: VmHWM cannot be reset (the sampled VmRSS still counts)")

        st, h, body, secs, before, hwm_growth, sampled_growth = measured_get(port, pid, "/api/v1/metrics")
        print("/api/v1/metrics: %d, %.1f MB in %.2f s (%s); RSS before %.1f MB, peak growth %.1f MB (VmHWM), "
              "%.1f MB (sampled)" % (st, len(body) / 1e6, secs, h.get("transfer-encoding", "content-length"),
                                     before / 1024, hwm_growth / 1024, sampled_growth / 1024))
        check(st == 200, "/api/v1/metrics: status %d" % st)
        check(len(body) > 200e6, "/api/v1/metrics: only %d bytes (the test needs a large body)" % len(body))
        if not REPORT_ONLY:
            check(hwm_growth < RSS_BOUND_MB * 1024, "/api/v1/metrics: peak RSS grew by %.1f MB" % (hwm_growth / 1024))
            check(sampled_growth < RSS_BOUND_MB * 1024,
                  "/api/v1/metrics: sampled RSS grew by %.1f MB" % (sampled_growth / 1024))
        t0 = time.monotonic()
        data = json.loads(body)
        del body
        check_json(data)
        del data
        print("  parsed and compared in %.1f s" % (time.monotonic() - t0))

        total = N_SMALL + 2
        pages = [
            ("/", 1, 100, None, '<a href="?page=1">next', "first page"),
            ("/?page=7", 701, 800, '<a href="?page=6">', '<a href="?page=8">', "a middle page"),
            ("/?page=1&limit=1000", 1001, 2000, '<a href="?page=0&amp;limit=1000">',
             '<a href="?page=2&amp;limit=1000">', "limit 1000"),
            ("/?page=0&limit=5000", 1, 1000, None, '<a href="?page=1&amp;limit=1000">', "limit capped at 1000"),
            ("/?page=30", 3001, 3002, '<a href="?page=29">', None, "last page: the two huge groups"),
        ]
        for path, first, last, prev_link, next_link, what in pages:
            st, h, body, secs, before, hwm_growth, sampled_growth = measured_get(port, pid, path)
            print("%s (%s): %d, %.2f MB in %.3f s; RSS growth %.1f MB (VmHWM), %.1f MB (sampled)" % (
                path, what, st, len(body) / 1e6, secs, hwm_growth / 1024, sampled_growth / 1024))
            check(st == 200, path + ": status %d" % st)
            html = check_page(body, total, first, last, prev_link, next_link, path)
            if not REPORT_ONLY:
                check(hwm_growth < UI_RSS_BOUND_MB * 1024, path + ": peak RSS grew by %.1f MB" % (hwm_growth / 1024))
            if first == 3001:
                check("more series not shown" in html, path + ": the huge groups are not cut")
                check(html.count('class="badge lbl cut"') > 0, path + ": long values are not cut")
        st, h, body = pghttp.request(port, "GET", "/?q=long", timeout=60)
        html = check_page(body, 1, 1, 1, None, None, "/?q=long")
        m = re.search(r"(\d+) more series not shown", html)
        check(m is not None and int(m.group(1)) > N_LONG - 200, "/?q=long: notice " + (m.group(0) if m else "none"))
    elapsed = time.monotonic() - t_start
    print("total %.1f s" % elapsed)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

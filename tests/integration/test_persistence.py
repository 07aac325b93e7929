#!/usr/bin/env python3
"""test_persistence.py: --persistence.file end to end with build/ferry (issue 5, first part).

- Round trip: every kind of family (counter, gauge, untyped, histogram, summary, a protobuf native histogram, an
  empty protobuf family), grouping keys with empty and base64 values, a group whose last push failed, POST-merged
  families with their own times: /metrics (pushed part) and /api/v1/metrics are byte-identical after a restart.
- The periodic snapshot is written within the interval after a change, and once more at SIGTERM.
- Leftover temp files of an interrupted write (ours and the Pushgateway's) are removed at start-up.
- A damaged file (truncated, a flipped byte) stops start-up with exit status 1 and a message naming the file and the
  offset; with --persistence.allow-bad-file Ferry starts empty and moves the file aside.
Usage: test_persistence.py path/to/ferry
"""
import datetime
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402
from pghttp import GAUGE, HISTOGRAM, PB_CONTENT_TYPE, pb_family, pb_metric  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()
pushed_part = pghttp.pushed_part


def server(path, *extra):
    port = pghttp.free_port()
    return pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                          "--persistence.file=" + path, "--persistence.interval=1s"] + list(extra), port, "ferry")


def wait_ready(s, timeout=10):
    return s.wait_ready(timeout, health="/-/ready", ready_status=(200,))


NATIVE = b"\x28\x00\x31" + b"\xfc\xa9\xf1\xd2\x4d\x62\x50\x3f" + b"\x38\x01"  # schema 0, zero_threshold, zero_count 1


def fill(port):
    req = pghttp.request
    H1 = (b'# HELP rq Request duration.\n# TYPE rq histogram\nrq_bucket{le="0.1",path="/a"} 1\n'
          b'rq_bucket{le="+Inf",path="/a"} 4\nrq_sum{path="/a"} 2.5\nrq_count{path="/a"} 4\n'
          b'# TYPE sm summary\nsm{quantile="0.5"} 1.5\nsm{quantile="0.9"} NaN\nsm_sum 10\nsm_count 7\n'
          b'# HELP c A counter.\n# TYPE c counter\nc{x="1"} 3\n# TYPE g gauge\ng -0\nu{v="a\\"b\\\\c\\nd"} 1e-7\n')
    check(req(port, "PUT", "/metrics/job/hist/instance/i1", H1)[0] == 200, "push text families")
    check(req(port, "PUT", "/metrics/job/e/x@base64/=/y@base64/L3Zhci90bXA", b"e 1\n")[0] == 200, "push odd key")
    pb = pb_family("nh", HISTOGRAM, [pb_metric([], histogram=(5, 12.5, [], NATIVE))], help="native") + \
        pb_family("empty", GAUGE, [])
    check(req(port, "PUT", "/metrics/job/pb", pb, {"Content-Type": PB_CONTENT_TYPE})[0] == 200, "push protobuf")
    check(req(port, "PUT", "/metrics/job/sem", b"a1 1\na2 2\n")[0] == 200, "put for merge")
    time.sleep(0.02)
    check(req(port, "POST", "/metrics/job/sem", b"a2 20\n")[0] == 200, "post merge (own family time)")
    check(req(port, "PUT", "/metrics/job/failed", b"m 1 5\n")[0] == 400, "failed push creates the group")
    check(req(port, "PUT", "/metrics/job/okfail", b"z 1\n")[0] == 200, "push then")
    check(req(port, "PUT", "/metrics/job/okfail", b"z 1 5\n")[0] == 400, "a failure after success")


def state(port):
    _, _, m = pghttp.request(port, "GET", "/metrics")
    _, _, j = pghttp.request(port, "GET", "/api/v1/metrics")
    return pushed_part(m), j


def norm_api(doc):
    """Groups sorted, time stamps as instants (seconds.nanoseconds since the epoch)."""
    for g in doc["data"]:
        for f in g.values():
            if isinstance(f, dict) and "time_stamp" in f:
                m = re.match(r"(.*T[0-9:]+)(\.\d+)?(Z|[+-]\d\d:\d\d)$", f["time_stamp"])
                frac = ((m.group(2) or ".")[1:] + "000000000")[:9]
                tz = "+00:00" if m.group(3) == "Z" else m.group(3)
                sec = int(datetime.datetime.fromisoformat(m.group(1) + tz).timestamp())
                f["time_stamp"] = "%d.%s" % (sec, frac)
    doc["data"].sort(key=lambda g: json.dumps(g["labels"], sort_keys=True))
    return json.dumps(doc, sort_keys=True)


def main():
    d = tempfile.mkdtemp(prefix="ferry-persist-")
    path = os.path.join(d, "ferry.data")

    # Leftovers of an interrupted write are removed at start-up.
    for leftover in ("ferry.data.tmp.12345", "ferry.data.in_progress.2551562526"):
        open(os.path.join(d, leftover), "w").write("partial")
    s = server(path)
    with s:
        check(wait_ready(s), "ready")
        check(sorted(os.listdir(d)) == [], "temp files removed (left %r)" % os.listdir(d))
        fill(s.port)
        before = state(s.port)
        deadline = time.time() + 5
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        check(os.path.exists(path), "periodic snapshot written within the interval")
        # A change right before SIGTERM is saved by the final snapshot.
        check(pghttp.request(s.port, "PUT", "/metrics/job/last", b"l 1\n")[0] == 200, "last push")
        before = state(s.port)
    check(s.proc.returncode == 0, "clean exit (rc %r)" % s.proc.returncode)

    s = server(path)
    with s:
        check(wait_ready(s), "ready after load")
        after = state(s.port)
        check(after[0] == before[0], "/metrics identical after restart")
        check(after[1] == before[1], "/api/v1/metrics identical after restart (times included)")
        _, _, m = pghttp.request(s.port, "GET", "/metrics")
        check(b"ferry_persistence_loaded_groups 7\n" in m, "loaded groups exposed")

    # Damage: truncation and a flipped byte stop start-up with the file and the offset in the message.
    good = open(path, "rb").read()
    for name, data in (("truncated", good[:len(good) // 2]), ("flipped", good[:40] + bytes([good[40] ^ 0x55]) + good[41:])):
        open(path, "wb").write(data)
        port = pghttp.free_port()
        p = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file=" + path], port,
                          "ferry-damaged", output="pipe").start(wait=False)
        rc = p.stop(sig=None, timeout=30)  # start-up must fail by itself
        check(rc == 1, "%s file: exit 1 (got %d)" % (name, rc))
        check(path in p.stderr and "offset" in p.stderr, "%s file: message names file and offset: %r" %
              (name, p.stderr[-300:]))
    s = server(path, "--persistence.allow-bad-file")
    with s:
        check(wait_ready(s), "ready with --persistence.allow-bad-file")
        _, _, j = pghttp.request(s.port, "GET", "/api/v1/metrics")
        check(j == b'{"status":"success","data":[]}', "starts empty")
        check(any(f.startswith("ferry.data.bad.") for f in os.listdir(d)), "bad file moved aside: %r" % os.listdir(d))

    # Migration: a file written by the real Pushgateway 1.5.1 is imported; the JSON API shows what the reference
    # showed before it stopped (times compared as instants: the reference keeps its zone, Ferry answers in UTC).
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gob")
    pg = os.path.join(d, "pg.data")
    open(pg, "wb").write(open(os.path.join(fixtures, "variety.data"), "rb").read())
    s = server(pg)
    with s:
        check(wait_ready(s), "ready after importing a Pushgateway file")
        _, _, j = pghttp.request(s.port, "GET", "/api/v1/metrics")
        want = json.load(open(os.path.join(fixtures, "variety.json")))
        check(norm_api(json.loads(j)) == norm_api(want), "imported groups equal the reference's /api/v1/metrics")
    check(os.path.exists(pg + ".pushgateway.bak"), "the Pushgateway file is kept beside")
    check(open(pg, "rb").read(8) == b"FERRYSNP", "the file is now Ferry's snapshot")

    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_cluster_quorum.py: with fewer than W replicas reachable a change gets 503 naming the quorum and changes
nothing (issue 15, guarantees; ha-design 8.2 "fail fast").

Three replicas, default --cluster.write-quorum=majority (2). Twice, once with two replicas killed (kill -9: their
ports refuse) and once with two replicas SIGSTOPped (silent; after --cluster.peer-timeout=2s they count as down):
  - PUT of a new group, POST and DELETE of an existing group, and a wipe on the survivor: each 503 within 1 s, the
    body naming the quorum;
  - the survivor's /api/v1/metrics, when it answers 200, is byte-identical to before; ferry_cluster_* quorum
    failures are counted on /metrics (printed);
  - after the two come back: identical everywhere, the new group on no replica, the existing group exactly as before
    (value, push_time_seconds, push_failure_time_seconds).
Skips (exit 0) when build/ferry has no --cluster.listen-address.
Usage: test_cluster_quorum.py path/to/ferry
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
check = pghttp.Checks()
KEEP = "/metrics/job/q/g/keep"


def group(body, labels):
    if body is None:
        return None
    for g in json.loads(body)["data"]:
        if g["labels"] == labels:
            return g
    return None


def round_(cl, how, tm):
    pghttp.request(cl.web[0], "PUT", "/api/v1/admin/wipe")
    st, data = fc.push(cl.web[0], "PUT", KEEP, b"# TYPE cl_q gauge\ncl_q 1\n")
    check(st == 200, "%s: baseline push: %s %r" % (how, st, data[:200]))
    took, bodies = cl.wait_converged(2.0)
    check(took is not None, "%s: baseline identical everywhere:\n%s" % (how, fc.explain_difference(bodies)))
    keep_before = group(bodies[0], {"job": "q", "g": "keep"})
    before = cl.metrics_json(0)
    m_before = cl.self_metrics(0)
    for i in (1, 2):
        cl.kill9(i) if how == "kill" else cl.stop(i)
    tm.mark("%s: replicas 1 and 2 down; waiting 3 s (> --cluster.peer-timeout)" % how)
    time.sleep(3.0)
    ready = cl.get(0, "/-/ready")
    print("%s: the survivor's /-/ready: %d %r" % (how, ready[0], ready[2][:200]))
    for method, path, body in (("PUT", "/metrics/job/q/g/new", b"# TYPE cl_q gauge\ncl_q 2\n"),
                               ("POST", KEEP, b"# TYPE cl_q gauge\ncl_q 3\n"),
                               ("DELETE", KEEP, None), ("PUT", "/api/v1/admin/wipe", None)):
        t0 = time.time()
        st, data = fc.push(cl.web[0], method, path, body)
        took = time.time() - t0
        check(st == 503 and b"quorum" in data.lower() and took < 1.0,
              "%s: %s %s on the survivor: 503 naming the quorum within 1 s; got %s %r after %.3f s" % (
                  how, method, path, st, data[:300], took))
    after = cl.metrics_json(0)
    if after is None:
        print("%s: the survivor's /api/v1/metrics does not answer 200 without quorum (not compared)" % how)
    else:
        check(after == before, "%s: the survivor's /api/v1/metrics unchanged by the refused changes:\n%s" % (
            how, fc.explain_difference([before, after])))
    m_after = cl.self_metrics(0)
    q = {k: (m_before.get(k), v) for k, v in m_after.items() if "quorum" in k}
    print("%s: survivor's quorum metrics (before, after): %s" % (how, q or "none exported"))
    check(any(a is not None and b > (a or 0) for a, b in q.values()) or any(a is None and b > 0 for a, b in q.values()),
          "%s: a ferry_cluster_* quorum failure counter rose: %s" % (how, q))
    for i in (1, 2):
        if how == "kill":
            cl.restart(i)
        else:
            cl.cont(i)
    cl.wait_all_ready(30)
    took, bodies = cl.wait_converged(2.0)
    tm.mark("%s: replicas back; identical %s" % (how, "after %.3f s" % took if took is not None else "NOT in 2 s"))
    check(took is not None, "%s: identical everywhere after the two come back:\n%s" % (
        how, fc.explain_difference(bodies)))
    for i, b in enumerate(bodies):
        if b is None:
            continue
        check(group(b, {"job": "q", "g": "new"}) is None, "%s: replica %d: the refused group is absent" % (how, i))
        check(group(b, {"job": "q", "g": "keep"}) == keep_before,
              "%s: replica %d: the existing group as before: %r, want %r" % (
                  how, i, group(b, {"job": "q", "g": "keep"}), keep_before))


def main():
    fc.skip_without_cluster(FERRY)
    tm = fc.Timer()
    with fc.Cluster(FERRY, 3, name="quorum") as cl:
        tm.mark("3 replicas ready")
        round_(cl, "kill", tm)
        round_(cl, "sigstop", tm)
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

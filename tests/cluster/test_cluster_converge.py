#!/usr/bin/env python3
"""test_cluster_converge.py: three replicas behind nginx converge (issue 15, tests 3; ha-design T3).

- 2,000 mixed PUT/POST/DELETE over 100 groups through nginx (round robin, retry on error/timeout/503, POST too) from
  4 client threads; then /api/v1/metrics is byte-identical on all replicas within 2 s, and so is the pushed part of
  /metrics; every request was answered 2xx.
- A PUT of family a on replica 0, then a POST of family b to the same group on replica 1 (20 groups): a and b on every
  replica, push_time_seconds identical everywhere (times travel with the change).
- A conflict that only looks concurrent (5 groups): cl_x<k> is a counter in a group on every replica; replica 0's links
  to replica 2 are delayed 800 ms by the fault proxy; replica 0 deletes the group, replica 1 (once it applied that)
  takes cl_x<k> as a gauge in another group. Replica 2 gets the gauge before the DELETE; it must wait for replica 0's
  frontier instead of killing the gauge on every replica: the gauge is everywhere, no conflict counted.
Skips (exit 0) when build/ferry has no --cluster.listen-address.
Usage: test_cluster_converge.py path/to/ferry
"""
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
check = pghttp.Checks()
OPS, GROUPS, THREADS = 2000, 100, 4


def body_for(method, rnd):
    if method == "PUT":
        return (b"# TYPE cl_a gauge\ncl_a{x=\"%d\"} %d\n# TYPE cl_c counter\ncl_c %d\n" %
                (rnd.randrange(3), rnd.randrange(1000), rnd.randrange(1000)))
    return b"# TYPE cl_b gauge\ncl_b %d\n" % rnd.randrange(1000)


def mixed_load(port, seed):
    rnd = random.Random(seed)
    statuses = {}
    samples = []
    for _ in range(OPS // THREADS):
        method = rnd.choices(("PUT", "POST", "DELETE"), (45, 35, 20))[0]
        path = "/metrics/job/mixed/g/%d" % rnd.randrange(GROUPS)
        st, data = fc.push(port, method, path, body_for(method, rnd) if method != "DELETE" else None)
        statuses[st] = statuses.get(st, 0) + 1
        if not 200 <= st < 300 and len(samples) < 5:
            samples.append((method, path, st, data[:200]))
    return statuses, samples


def push_times(body):
    out = {}
    for g in json.loads(body)["data"]:
        fam = g.get("push_time_seconds")
        out[json.dumps(g["labels"], sort_keys=True)] = fam["metrics"][0]["value"] if fam else None
    return out


def has_group(cl, i, job):
    b = cl.metrics_json(i)
    return b is not None and any(g["labels"].get("job") == job for g in json.loads(b)["data"])


def causal_conflicts(cl, tm):
    for k in range(5):
        old, new, fam = "causal_old_%d" % k, "causal_new_%d" % k, b"cl_x%d" % k
        st, d = fc.push(cl.web[0], "PUT", "/metrics/job/" + old, b"# TYPE %s counter\n%s 1\n" % (fam, fam))
        check(st == 200, "causal %d: the counter's push answered 200 (%d %r)" % (k, st, d[:100]))
        took, _ = cl.wait_converged(2.0)
        check(took is not None, "causal %d: the counter on every replica" % k)
        cl.links[(0, 2)].delay(800)  # replica 0's changes and heartbeats reach replica 2 800 ms late
        try:
            st, d = fc.push(cl.web[0], "DELETE", "/metrics/job/" + old)
            check(st == 202, "causal %d: DELETE on replica 0 answered 202 (%d %r)" % (k, st, d[:100]))
            deadline = time.time() + 2
            while time.time() < deadline and has_group(cl, 1, old):
                time.sleep(0.01)
            check(not has_group(cl, 1, old) and has_group(cl, 2, old),
                  "causal %d: replica 1 applied the DELETE, replica 2 not yet" % k)
            st, d = fc.push(cl.web[1], "PUT", "/metrics/job/" + new, b"# TYPE %s gauge\n%s 2\n" % (fam, fam))
            check(st == 200, "causal %d: the gauge's push on replica 1 answered 200 (%d %r)" % (k, st, d[:100]))
        finally:
            cl.links[(0, 2)].set_pass()
        took, bodies = cl.wait_converged(5.0)
        check(took is not None, "causal %d: identical within 5 s:\n%s" % (
            k, fc.explain_difference(bodies) if took is None else ""))
        for i, b in enumerate(bodies):
            groups = {g["labels"].get("job"): g for g in json.loads(b)["data"]} if b else {}
            g = groups.get(new, {})
            check(old not in groups and fam.decode() in g and g[fam.decode()].get("type") == "GAUGE",
                  "causal %d: replica %d holds the gauge and not the deleted counter (%r)" % (k, i, sorted(g)))
    for i in range(3):
        m = cl.self_metrics(i)
        dropped = sum(v for name, v in m.items() if name.startswith("ferry_cluster_conflicts_dropped_total"))
        check(dropped == 0, "replica %d dropped no family as a conflict (%r)" % (i, dropped))
    tm.mark("5 conflicts that only looked concurrent: kept on every replica")


def main():
    fc.skip_without_cluster(FERRY)
    tm = fc.Timer()
    with fc.Cluster(FERRY, 3, name="converge") as cl, fc.Nginx(cl.web) as lb:
        tm.mark("3 replicas ready, nginx on %d" % lb.port)
        results = [None] * THREADS

        def run(t):
            results[t] = mixed_load(lb.port, 1000 + t)
        threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        statuses, samples = {}, []
        for r in results:
            for k, v in (r or ({}, []))[0].items():
                statuses[k] = statuses.get(k, 0) + v
            samples += (r or ({}, []))[1]
        tm.mark("%d requests through nginx: statuses %s" % (OPS, statuses))
        check(sum(v for k, v in statuses.items() if 200 <= k < 300) == OPS,
              "every request through nginx answered 2xx: %s; first failures %r" % (statuses, samples))

        took, bodies = cl.wait_converged(2.0)
        check(took is not None, "/api/v1/metrics identical on all replicas within 2 s of the last request:\n%s" %
              (fc.explain_difference(bodies) if took is None else ""))
        tm.mark("converged in %s" % ("%.3f s" % took if took is not None else "NOT within 2 s"))
        if took is not None:
            n = len(json.loads(bodies[0])["data"])
            check(n > 0, "the converged state holds groups (%d)" % n)
            print("converged state: %d groups, %d bytes" % (n, len(bodies[0])))
            scrapes = [cl.pushed_scrape(i) for i in range(3)]
            check(scrapes[0] is not None and scrapes[0] == scrapes[1] == scrapes[2],
                  "the pushed part of /metrics is identical on all replicas")

        # PUT a on replica 0, then POST b to the same group on replica 1
        bad = []
        for k in range(20):
            path = "/metrics/job/ab/k/%d" % k
            s1, d1 = fc.push(cl.web[0], "PUT", path, b"# TYPE cl_fa gauge\ncl_fa %d\n" % k)
            s2, d2 = fc.push(cl.web[1], "POST", path, b"# TYPE cl_fb gauge\ncl_fb %d\n" % k)
            if s1 != 200 or s2 != 200:
                bad.append((k, s1, d1[:100], s2, d2[:100]))
        check(not bad, "PUT on replica 0 and POST on replica 1 answered 200: %r" % bad[:3])
        took, bodies = cl.wait_converged(2.0)
        check(took is not None, "after the PUT/POST pairs, identical within 2 s:\n%s" %
              (fc.explain_difference(bodies) if took is None else ""))
        tm.mark("PUT a on r0 / POST b on r1: converged in %s" % ("%.3f s" % took if took is not None else "NO"))
        for i, b in enumerate(bodies):
            if b is None:
                check(False, "replica %d answers /api/v1/metrics" % i)
                continue
            missing = []
            for g in json.loads(b)["data"]:
                if g["labels"].get("job") != "ab":
                    continue
                fams = set(g) - {"labels", "last_push_successful"}
                if not {"cl_fa", "cl_fb", "push_time_seconds"} <= fams:
                    missing.append((g["labels"], sorted(fams)))
            n_ab = sum(1 for g in json.loads(b)["data"] if g["labels"].get("job") == "ab")
            check(n_ab == 20 and not missing, "replica %d: all 20 groups hold a and b (%d groups; lacking: %r)" % (
                i, n_ab, missing[:3]))
        pts = [push_times(b) for b in bodies if b is not None]
        check(len(pts) == 3 and pts[0] == pts[1] == pts[2],
              "push_time_seconds identical on every replica for every group")
        causal_conflicts(cl, tm)
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

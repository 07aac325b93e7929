#!/usr/bin/env python3
"""test_cluster_catchup.py: a restarted replica is not ready until it holds everything (issue 15, "catch-up before
ready"; ha-design 8.3, T4 in small).

Three replicas. 2,000 groups (5 series each) pushed directly to the replicas in turn; identical everywhere. Then:
  1. kill -9 replica 2; while it is down 500 new groups, 100 POSTs to old groups and 200 DELETEs on replicas 0 and
     1; restart replica 2 (in memory: empty; with --durable: from its own log, which misses what happened while it
     was down). Polled every few ms until /-/ready answers 200 (at most 15 s): until then /api/v1/metrics and /metrics
     answer 503 (never a partial store), and the first /api/v1/metrics after the first 200 is byte-identical to
     replica 0's. The time to ready is printed.
  2. kill -9 replica 2, isolate it (every peer link blackholed), 50 more changes on replicas 0 and 1, restart it:
     it stays not ready (and refuses pushes) for 3 s; after the heal it is ready within 10 s and identical.
Skips (exit 0) when build/ferry has no --cluster.listen-address.
Usage: test_cluster_catchup.py path/to/ferry [--durable]
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
DURABLE = "--durable" in sys.argv[2:]
check = pghttp.Checks()


def body(k, v=1):
    return b"# TYPE cu_metric gauge\n" + b"".join(b'cu_metric{s="%d"} %d\n' % (s, k * 10 + s + v) for s in range(5))


def run_parallel(jobs, threads=4):
    """jobs: [(port, method, path, body)] spread over threads; returns the failures."""
    fails = []
    lock = threading.Lock()

    def worker(part):
        for port, method, path, b in part:
            st, data = fc.push(port, method, path, b)
            if not 200 <= st < 300:
                with lock:
                    fails.append((method, path, st, data[:200]))
    ts = [threading.Thread(target=worker, args=(jobs[t::threads],)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return fails


def watch_until_ready(cl, i, timeout):
    """Polls replica i until /-/ready is 200. Returns (seconds, violations, first body after ready, polls)."""
    t0 = time.time()
    violations = []
    polls = 0
    while time.time() - t0 < timeout:
        polls += 1
        try:
            st = cl.get(i, "/-/ready", timeout=2)[0]
        except OSError:
            time.sleep(0.01)
            continue
        if st == 200:
            return time.time() - t0, violations, cl.metrics_json(i), polls
        for path in ("/api/v1/metrics", "/metrics"):
            try:
                s2 = cl.get(i, path, timeout=2)[0]
            except OSError:
                continue
            if s2 == 503:
                continue
            # Readiness may have come between the two requests (it does not go back while catching up): a
            # violation is a store endpoint answering while a /-/ready asked after that answer still says 503.
            try:
                st_after = cl.get(i, "/-/ready", timeout=2)[0]
            except OSError:
                continue
            if st_after != 200 and len(violations) < 5:
                violations.append("%s answered %d at %.3f s while /-/ready said %d before and %d after" % (
                    path, s2, time.time() - t0, st, st_after))
        time.sleep(0.005)
    return None, violations, None, polls


def main():
    fc.skip_without_cluster(FERRY)
    tm = fc.Timer()
    print("mode: %s" % ("durable" if DURABLE else "in memory"))
    with fc.Cluster(FERRY, 3, durable=DURABLE, name="catchup") as cl:
        tm.mark("3 replicas ready")
        jobs = [(cl.web[k % 3], "PUT", "/metrics/job/cu/g/%d" % k, body(k)) for k in range(2000)]
        fails = run_parallel(jobs)
        check(not fails, "2,000 initial pushes answered 2xx: %d failed, e.g. %r" % (len(fails), fails[:3]))
        took, bodies = cl.wait_converged(5.0)
        check(took is not None, "identical after the initial pushes:\n%s" % fc.explain_difference(bodies))
        tm.mark("2,000 groups pushed, identical after %s s" % took)

        # 1: down while others change, restarted
        cl.kill9(2)
        jobs = [(cl.web[k % 2], "PUT", "/metrics/job/cu/g/%d" % k, body(k)) for k in range(2000, 2500)]
        jobs += [(cl.web[k % 2], "POST", "/metrics/job/cu/g/%d" % k, body(k, 7)) for k in range(0, 1000, 10)]
        jobs += [(cl.web[k % 2], "DELETE", "/metrics/job/cu/g/%d" % k, None) for k in range(5, 2000, 10)]
        fails = run_parallel(jobs)
        check(not fails, "changes while replica 2 is down answered 2xx: %d failed, e.g. %r" % (len(fails), fails[:3]))
        tm.mark("replica 2 killed; 800 changes on replicas 0 and 1")
        cl.restart(2, empty=not DURABLE)
        secs, violations, first, polls = watch_until_ready(cl, 2, 15.0)
        tm.mark("replica 2 restarted %s: ready after %s s (%d polls)" % (
            "from its log" if DURABLE else "empty", "%.3f" % secs if secs is not None else "NOT within 15", polls))
        check(secs is not None, "replica 2 ready within 15 s of its restart:\n%s" % cl.log_tail(2))
        check(not violations, "store endpoints answer 503 until ready: %r" % violations)
        ref = cl.metrics_json(0)
        check(first is not None and first == ref, "replica 2's first /api/v1/metrics after ready equals replica 0's:"
              "\n%s" % fc.explain_difference([ref, first], ["replica 0", "replica 2"]))
        took, bodies = cl.wait_converged(2.0)
        check(took is not None, "identical on all three after the catch-up:\n%s" % fc.explain_difference(bodies))

        # 2: restarted while its peers are unreachable: not ready until the heal
        cl.kill9(2)
        cl.isolate(2)
        jobs = [(cl.web[k % 2], "PUT", "/metrics/job/cu/g/%d" % k, body(k, 9)) for k in range(3000, 3050)]
        fails = run_parallel(jobs)
        check(not fails, "changes while replica 2 is down and isolated: %d failed, e.g. %r" % (len(fails), fails[:3]))
        cl.restart(2, empty=not DURABLE)
        t0 = time.time()
        early = []
        while time.time() - t0 < 3.0:
            try:
                st = cl.get(2, "/-/ready", timeout=1)[0]
            except OSError:
                st = None
            if st == 200:
                early.append(round(time.time() - t0, 3))
                break
            time.sleep(0.05)
        check(not early, "isolated restarted replica stays not ready for 3 s (ready at %s)" % early)
        st, data = fc.push(cl.web[2], "PUT", "/metrics/job/cu/g/isolated", body(1))
        check(st == 503, "isolated restarted replica refuses a push with 503: %s %r" % (st, data[:200]))
        cl.heal()
        t_heal = time.time()
        ok = cl.wait_ready(2, 10.0)
        tm.mark("isolated restart: not ready for 3 s; after heal ready %s" % (
            "after %.3f s" % (time.time() - t_heal) if ok else "NOT within 10 s"))
        check(ok, "after the heal, replica 2 ready within 10 s:\n%s" % cl.log_tail(2))
        took, bodies = cl.wait_converged(2.0)
        check(took is not None, "identical on all three after the heal:\n%s" % fc.explain_difference(bodies))
        check(not any(b'"isolated"' in (b or b"") for b in bodies), "the refused push is nowhere")
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

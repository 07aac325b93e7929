#!/usr/bin/env python3
"""test_cluster_faults.py: acknowledged pushes survive kill -9, isolation and SIGSTOP (issue 15, tests 3; T3).

Three replicas behind HAProxy (active checks on /-/ready, retry-on conn-failure empty-response 503, redispatch).
4 writer threads PUT strictly increasing values of a counter to 50 groups through HAProxy, recording every push
answered 2xx, while a nemesis (seeded; FERRY_CLUSTER_SEED replays) runs:
  - 5 cycles: kill -9 a random replica, restart it (in memory: empty; with --durable: from its own log), wait for
    /-/ready; its first /api/v1/metrics after ready shows every push acknowledged before its kill (or a later one);
  - isolation of one replica for 3 s (every peer link to and from it blackholed, silently), then heal;
  - SIGSTOP of one replica for 2 s; the writers stop; SIGCONT is the last heal.
Then: /api/v1/metrics byte-identical on all replicas within 2 s of the last heal (the time it took is printed), and
every group's value on every replica is >= its last acknowledged value (and <= the last value sent: a later push
whose answer was an error may have won). Client-visible errors through HAProxy are counted (at most 0.1%).
Skips (exit 0) when build/ferry has no --cluster.listen-address.
Usage: test_cluster_faults.py path/to/ferry [--durable]
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
DURABLE = "--durable" in sys.argv[2:]
check = pghttp.Checks()
KILL_CYCLES = 5


def main():
    fc.skip_without_cluster(FERRY)
    seed = int(os.environ.get("FERRY_CLUSTER_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    print("mode %s, seed %d (FERRY_CLUSTER_SEED=%d replays the nemesis)" % (
        "durable" if DURABLE else "in memory", seed, seed))
    tm = fc.Timer()
    with fc.Cluster(FERRY, 3, durable=DURABLE, name="faults") as cl, fc.HAProxy(cl.web) as lb:
        lb.wait_servers_up()
        tm.mark("3 replicas ready, HAProxy on %d" % lb.port)
        w = fc.CounterWriter(lb.port, groups=50, threads=4, pause=0.002).start()
        try:
            time.sleep(1.0)
            for cycle in range(KILL_CYCLES):
                i = rnd.randrange(3)
                with w.lock:
                    acked_before = dict(w.acked)
                cl.kill9(i)
                t_kill = time.time()
                time.sleep(0.5)
                cl.restart(i)
                ready = cl.wait_ready(i, 20)
                t_ready = time.time() - t_kill
                body = cl.metrics_json(i) if ready else None
                check(ready, "cycle %d: replica %d ready within 20 s of its restart:\n%s" % (cycle, i, cl.log_tail(i)))
                if body is not None:
                    vals = fc.group_values(body, w.family)
                    lost = [(g, vals.get((("group", g), ("job", w.job))), v) for g, v in acked_before.items()
                            if v and (vals.get((("group", g), ("job", w.job))) or 0) < v]
                    check(not lost, "cycle %d: replica %d's first state after ready holds every push acknowledged "
                          "before its kill: %d groups behind, e.g. (group, has, acked) %r" % (cycle, i, len(lost),
                                                                                              lost[:5]))
                tm.mark("cycle %d: kill -9 replica %d, restarted, ready after %.2f s; writer: %s" % (
                    cycle, i, t_ready, w.summary()))
                time.sleep(1.0)
            j = rnd.randrange(3)
            cl.isolate(j)
            tm.mark("replica %d isolated" % j)
            time.sleep(3.0)
            cl.heal()
            tm.mark("healed; writer: %s" % w.summary())
            time.sleep(1.0)
            k = rnd.randrange(3)
            cl.stop(k)
            tm.mark("replica %d SIGSTOPped" % k)
            time.sleep(2.0)
        finally:
            w.stopping.set()  # no new pushes; those parked on the stopped replica are answered after SIGCONT
            time.sleep(0.2)
        cl.cont(k)
        t_heal = time.time()
        w.stop()
        tm.mark("writer stopped; replica %d continued (the last heal); writer: %s" % (k, w.summary()))

        took, bodies = cl.wait_converged(10.0)
        since_heal = time.time() - t_heal if took is not None else None
        tm.mark("identical on all replicas %s" % ("%.3f s after the last heal" % since_heal if since_heal is not None
                                                  else "NOT within 10 s"))
        check(since_heal is not None and since_heal <= 2.0,
              "/api/v1/metrics identical on all replicas within 2 s of the last heal (took %s):\n%s" % (
                  since_heal, fc.explain_difference(bodies) if took is None else ""))
        for i in range(3):
            body = cl.metrics_json(i)
            if body is None:
                check(False, "replica %d answers /api/v1/metrics after healing" % i)
                continue
            bad = w.verify(body)
            check(not bad, "replica %d: every group at or above its last acknowledged value: %d groups off, e.g. "
                  "(group, value, acked, sent) %r" % (i, len(bad), bad[:5]))
        total = w.total()
        errs = sum(w.errors.values())
        print("client-visible errors through HAProxy: %d of %d (%.3f%%) %s; first: %r" % (
            errs, total, 100.0 * errs / max(1, total), w.errors, w.error_samples[:3]))
        check(total > 0 and errs <= total * 0.001, "client-visible errors through HAProxy <= 0.1%% (%d of %d)" % (
            errs, total))
        for i in range(3):
            m = cl.self_metrics(i)
            print("replica %d: %s" % (i, ", ".join("%s %g" % kv for kv in sorted(m.items()) if
                                                   "resync" in kv[0] or "quorum" in kv[0] or "peers" in kv[0])))
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

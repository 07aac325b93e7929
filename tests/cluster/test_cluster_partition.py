#!/usr/bin/env python3
"""test_cluster_partition.py: a deleted group does not come back after a partition longer than the tombstone
retention (issue 15, "a deleted group never comes back"; docs/ha.md, "A replica away longer than
--cluster.tombstone-retention").

Three replicas with --cluster.tombstone-retention=5s (tombstones are collected every 10 s, so a DELETE's is gone
5-15 s after it). Replica 2 is restarted once first, so that its start-time age check is behind it, as in a cluster
that has run for a while. Then:
  1. g1 and g2 pushed, identical everywhere; replica 2 isolated (every peer link blackholed) until it reports not
     ready; replica 0 deletes g1, replica 1 pushes g3; the partition lasts 22 s (past every collection of g1's
     tombstone).
  2. Heal: replica 2 is ready again within 15 s, logs that it dropped its state, and all three are identical.
  3. Replica 0 restarts empty (its state transfers ask replica 2 too): all three identical again.
On every replica at the end: g2 and g3, and no g1. Before the fix, replica 2 kept g1 through the heal (the three
differed) and handed it back to replica 0 on its restart.
--durable: every replica runs with --persistence.durable, and between 2 and 3 replica 1 takes g4 and replica 2 is
killed (-9) and restarted from its log (expected at the end: g4 too). Before the drop was written to the log, replica
2's replay brought g1 back (with g4, its state was not old) and it stayed there.
First, a retention below --cluster.ack-timeout + 2 x --cluster.peer-timeout is refused at start (the run itself sets
--cluster.ack-timeout=1s).
Skips (exit 0) when build/ferry has no --cluster.listen-address.
Usage: test_cluster_partition.py path/to/ferry [--durable]
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
DURABLE = "--durable" in sys.argv[2:]
check = pghttp.Checks()
RETENTION_S = 5
AWAY_S = 22  # retention + the 10 s collection period + margin
DROPPED = "cut off from a write quorum for longer than --cluster.tombstone-retention"


def body(v):
    return b"# TYPE lp_metric gauge\nlp_metric %d\n" % v


def groups_on(cl, i):
    """The g<N> instances replica i holds (from /api/v1/metrics), or None when it does not answer 200."""
    b = cl.metrics_json(i)
    if b is None:
        return None
    return {g for g in ("g1", "g2", "g3", "g4") if b'"instance":"%s"' % g.encode() in b}


def wait_not_ready(cl, i, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not cl.is_ready(i):
            return True
        time.sleep(0.05)
    return False


def check_retention_floor():
    """--cluster.tombstone-retention below --cluster.ack-timeout + 2 x --cluster.peer-timeout is refused at start (a
    replica back from a partition drops its state, and must not hold changes still waiting for their answer then)."""
    cases = [  # (extra flags, refused, note)
        (["--cluster.tombstone-retention=5s"], True, "5 s < 5 s ack timeout + 2 x 2 s peer timeout"),
        (["--cluster.tombstone-retention=8s", "--cluster.peer-timeout=2s"], True, "8 s < 9 s"),
    ]
    for extra, refused, note in cases:
        port, peer = pghttp.free_port(), pghttp.free_port()
        argv = [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address=127.0.0.1:%d" % peer,
                "--cluster.peer=127.0.0.1:%d" % peer, "--persistence.file="] + extra
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = p.stdout.decode(errors="replace")
        check(p.returncode == 1 and "--cluster.tombstone-retention (" in out and "must be at least" in out
              and "out of memory" not in out,
              "%s: refused at start naming the flag (exit %s):\n%s" % (note, p.returncode, out[-600:]))


def main():
    fc.skip_without_cluster(FERRY)
    check_retention_floor()
    tm = fc.Timer()
    # the retention's floor is --cluster.ack-timeout + 2 x --cluster.peer-timeout (2 s here)
    flags = ["--cluster.tombstone-retention=%ds" % RETENTION_S, "--cluster.ack-timeout=1s"]
    with fc.Cluster(FERRY, 3, flags=flags, durable=DURABLE, name="partition") as cl:
        cl.kill9(2)
        cl.restart(2, empty=True, wait=True)
        tm.mark("3 replicas ready; replica 2 restarted once")
        if DURABLE:
            # past the restart's last state transfers (lost_node, a second after the crash), so that g1 reaches replica
            # 2 as a change, which its log records, rather than in a transfer, which it does not
            time.sleep(1.5)
        for i, g in ((0, "g1"), (1, "g2")):
            st, data = fc.push(cl.web[i], "PUT", "/metrics/job/lp/instance/" + g, body(1))
            check(st == 200, "PUT %s on replica %d: %s %r" % (g, i, st, data[:200]))
        took, bodies = cl.wait_converged(2.0)
        check(took is not None, "g1 and g2 identical everywhere:\n%s" % fc.explain_difference(bodies))

        cl.isolate(2)
        t_iso = time.time()
        check(wait_not_ready(cl, 2, 10.0), "isolated replica 2 reports not ready within 10 s")
        tm.mark("replica 2 isolated and not ready")
        st, data = fc.push(cl.web[0], "DELETE", "/metrics/job/lp/instance/g1")
        check(st == 202, "DELETE g1 on replica 0 during the partition: %s %r" % (st, data[:200]))
        st, data = fc.push(cl.web[1], "PUT", "/metrics/job/lp/instance/g3", body(3))
        check(st == 200, "PUT g3 on replica 1 during the partition: %s %r" % (st, data[:200]))
        time.sleep(max(0.0, t_iso + AWAY_S - time.time()))
        cl.heal()
        t_heal = time.time()
        tm.mark("healed after %.1f s" % (t_heal - t_iso))

        ok = cl.wait_ready(2, 15.0)
        check(ok, "replica 2 ready within 15 s of the heal:\n%s" % cl.log_tail(2))
        tm.mark("replica 2 ready %.2f s after the heal" % (time.time() - t_heal))
        check(DROPPED in cl.replicas[2].log(),
              "replica 2 logged that it dropped its state:\n%s" % cl.log_tail(2))
        took, bodies = cl.wait_converged(5.0)
        check(took is not None, "identical on all three after the heal:\n%s" % fc.explain_difference(bodies))
        want = {"g2", "g3"}
        if DURABLE:
            time.sleep(1.5)  # past the heal's state transfers, so that g4 reaches replica 2's log as a change
            st, data = fc.push(cl.web[1], "PUT", "/metrics/job/lp/instance/g4", body(4))
            check(st == 200, "PUT g4 on replica 1 after the heal: %s %r" % (st, data[:200]))
            took, bodies = cl.wait_converged(2.0)
            check(took is not None, "g4 identical everywhere:\n%s" % fc.explain_difference(bodies))
            time.sleep(0.5)  # replica 2's log syncs g4 within milliseconds of applying it
            cl.kill9(2)
            cl.restart(2, wait=True)
            tm.mark("replica 2 killed (-9) and restarted from its log")
            want.add("g4")

        cl.restart(0, empty=True, wait=True)
        tm.mark("replica 0 restarted empty and ready")
        took, bodies = cl.wait_converged(5.0)
        check(took is not None, "identical on all three after replica 0's restart:\n%s" % fc.explain_difference(bodies))
        for i in range(3):
            have = groups_on(cl, i)
            check(have == want, "replica %d holds %s and no g1: %s" % (i, " and ".join(sorted(want)), sorted(have or [])))
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

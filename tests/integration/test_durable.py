#!/usr/bin/env python3
"""test_durable.py: --persistence.durable end to end with build/ferry (issue 5, durable mode).

- Round trip with SIGKILL: every acknowledged change (PUT, POST, a rejected push, DELETE, wipe, before and after a
  snapshot that truncated the log) is there after a restart; /metrics (pushed part) and /api/v1/metrics identical.
- Crash test: 4 threads push (keep-alive connections, one group each, increasing values) while the server is killed
  with SIGKILL at a random moment, 20 times, snapshots every 200ms; after each restart /-/ready reaches 200 and every
  group shows its last acknowledged value or a later one that was sent but not acknowledged.
- A log whose tail is cut mid-record starts and reports the dropped tail; a flipped byte in a record followed by
  valid ones stops start-up with exit status 1, naming the segment file and the offset.
Usage: test_durable.py path/to/ferry
"""
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()
pushed_part = pghttp.pushed_part


class Ferry:
    """A durable-mode server on a free port, stopped with SIGKILL (a crash) unless told otherwise."""

    def __init__(self, path, interval="1h", extra=(), durable=True):
        self.port = pghttp.free_port()
        self.log_path = path + ".log.%d" % self.port
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([FERRY, "--web.listen-address=127.0.0.1:%d" % self.port, "--web.threads=2",
                                      "--web.enable-admin-api", "--persistence.file=" + path,
                                      "--persistence.interval=" + interval] + (["--persistence.durable"] if durable else []) +
                                     list(extra),
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            try:
                if pghttp.request(self.port, "GET", "/-/ready", timeout=1.0)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self):
        return open(self.log_path, "rb").read().decode(errors="replace")


def state(port):
    _, _, m = pghttp.request(port, "GET", "/metrics")
    _, _, j = pghttp.request(port, "GET", "/api/v1/metrics")
    return pushed_part(m), j


def round_trip(d):
    path = os.path.join(d, "rt.data")
    req = pghttp.request
    s = Ferry(path, interval="500ms")
    check(s.ready(), "round trip: ready")
    p = s.port
    check(req(p, "PUT", "/metrics/job/gone/instance/x", b"gone 1\n")[0] == 200, "push a group that is wiped")
    check(req(p, "PUT", "/api/v1/admin/wipe")[0] == 202, "wipe")
    H = (b"# HELP rq Request duration.\n# TYPE rq histogram\nrq_bucket{le=\"0.1\"} 1\nrq_bucket{le=\"+Inf\"} 4\n"
         b"rq_sum 2.5\nrq_count 4\n# TYPE c counter\nc{x=\"1\"} 3\n")
    check(req(p, "PUT", "/metrics/job/hist/instance/i1", H)[0] == 200, "put histogram and counter")
    check(req(p, "PUT", "/metrics/job/sem", b"a1 1\na2 2\n")[0] == 200, "put for merge")
    time.sleep(1.2)  # a snapshot covers the above and truncates the log
    check(os.path.exists(path), "snapshot written in durable mode")
    check(req(p, "POST", "/metrics/job/sem", b"a2 20\n")[0] == 200, "post merge after the snapshot")
    check(req(p, "PUT", "/metrics/job/failed", b"m 1 5\n")[0] == 400, "rejected push (sets the failure time)")
    check(req(p, "PUT", "/metrics/job/del", b"d 1\n")[0] == 200, "push a group that is deleted")
    check(req(p, "DELETE", "/metrics/job/del")[0] == 202, "delete")
    check(req(p, "PUT", "/metrics/job/e/x@base64/=", b"e 1\n")[0] == 200, "group with an empty label value")
    before = state(p)
    s.kill()
    s = Ferry(path, interval="500ms")
    check(s.ready(), "round trip: ready after SIGKILL")
    after = state(s.port)
    check(after[0] == before[0], "/metrics identical after SIGKILL and restart:\n%s\n---\n%s" % (before[0], after[0]))
    check(after[1] == before[1], "/api/v1/metrics identical after SIGKILL and restart (times included)")
    check("replayed the write-ahead log" in s.log(), "replay logged")
    s.kill()


VALUE = re.compile(rb'^cv\{instance="t(\d)",job="crash"\} (\d+)$', re.M)


def pusher(port, t, acked, sent, stop):
    """Pushes increasing values of group t on one keep-alive connection until the server goes away."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        while not stop.is_set():
            v = sent[t] + 1
            sent[t] = v
            body = b"cv %d\n" % v
            conn.request("PUT", "/metrics/job/crash/instance/t%d" % t, body, {"Content-Length": str(len(body))})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                acked[t] = v
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


def crash_test(d):
    path = os.path.join(d, "crash.data")
    threads = 4
    acked, sent = [0] * threads, [0] * threads
    rounds, bad = 20, 0
    rng = random.Random(int(os.environ.get("FY_CRASH_SEED", "0")) or None)
    t0 = time.time()
    for rnd in range(rounds):
        s = Ferry(path, interval="200ms")
        if not s.ready():
            check(False, "crash round %d: /-/ready never reached 200; log:\n%s" % (rnd, s.log()[-2000:]))
            s.kill()
            return
        _, _, m = pghttp.request(s.port, "GET", "/metrics")
        seen = {int(a): int(b) for a, b in VALUE.findall(m)}
        for t in range(threads):
            v = seen.get(t, 0)
            if not acked[t] <= v <= sent[t]:
                bad += 1
                print("crash round %d: group t%d shows %d, acknowledged %d, sent %d" % (rnd, t, v, acked[t], sent[t]))
            # the next pushes continue from what the server holds
            sent[t] = max(sent[t], v)
            acked[t] = v
        stop = threading.Event()
        ws = [threading.Thread(target=pusher, args=(s.port, t, acked, sent, stop)) for t in range(threads)]
        for w in ws:
            w.start()
        time.sleep(rng.uniform(0.05, 0.6))
        s.kill()
        stop.set()
        for w in ws:
            w.join(timeout=10)
    s = Ferry(path, interval="200ms")
    check(s.ready(), "crash test: ready after the last crash")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    seen = {int(a): int(b) for a, b in VALUE.findall(m)}
    for t in range(threads):
        if not acked[t] <= seen.get(t, 0) <= sent[t]:
            bad += 1
    s.kill()
    check(bad == 0, "crash test: every acknowledged push present after each of %d SIGKILLs (%d violations)" %
          (rounds, bad))
    check(sum(acked) > rounds, "crash test: pushes were acknowledged (%d)" % sum(acked))
    print("crash test: %d rounds, %d pushes acknowledged, %.1fs" % (rounds, sum(acked), time.time() - t0))


def segments(path):
    wal = path + ".wal"
    return sorted(os.path.join(wal, f) for f in os.listdir(wal) if f.endswith(".wal"))


def damaged_log(d):
    path = os.path.join(d, "torn.data")
    s = Ferry(path)
    check(s.ready(), "torn: ready")
    for v in range(1, 6):
        check(pghttp.request(s.port, "PUT", "/metrics/job/t", b"tv %d\n" % v)[0] == 200, "torn: push %d" % v)
    s.kill()
    seg = [f for f in segments(path) if os.path.getsize(f) > 28]
    check(len(seg) == 1, "torn: one segment with records (%r)" % seg)
    good = open(seg[-1], "rb").read()

    open(seg[-1], "wb").write(good[:-5])  # the last push's record cut mid-way
    s = Ferry(path)
    check(s.ready(), "torn tail: starts")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    check(b"\ntv{instance=\"\",job=\"t\"} 4\n" in m, "torn tail: the records before it are replayed, the torn one is dropped: %r" % m[-300:])
    check("torn write" in s.log() and os.path.basename(seg[-1]) in s.log(), "torn tail reported with the segment: %s"
          % s.log()[-600:])
    s.kill()

    # A flipped byte in the first record's payload, valid records after it: damage, not a torn tail.
    for f in segments(path):
        os.unlink(f)
    open(seg[-1], "wb").write(good[:50] + bytes([good[50] ^ 0x55]) + good[51:])
    port = pghttp.free_port()
    p = subprocess.run([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file=" + path,
                        "--persistence.durable"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 1, "flipped byte: exit 1 (got %d)" % p.returncode)
    check(os.path.basename(seg[-1]) in p.stderr and "offset" in p.stderr,
          "flipped byte: message names the segment and the offset: %r" % p.stderr[-400:])
    s = Ferry(path, extra=["--persistence.allow-bad-file"])
    check(s.ready(), "flipped byte: starts with --persistence.allow-bad-file")
    s.kill()


def leaving_durable_mode(d):
    """A log left by a killed durable run is folded into the snapshot by a run without the flag, then removed, so a
    later durable run does not replay it over newer state."""
    path = os.path.join(d, "switch.data")
    s = Ferry(path)
    check(s.ready(), "switch: ready")
    check(pghttp.request(s.port, "PUT", "/metrics/job/sw", b"sw 1\n")[0] == 200, "switch: durable push")
    s.kill()
    s = Ferry(path, durable=False)
    check(s.ready(), "switch: ready without --persistence.durable")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    check(b'\nsw{instance="",job="sw"} 1\n' in m, "switch: the logged push is there without the flag")
    check(not os.path.exists(path + ".wal"), "switch: the log was folded into the snapshot and removed")
    check(pghttp.request(s.port, "PUT", "/metrics/job/sw", b"sw 2\n")[0] == 200, "switch: in-memory push")
    s.proc.send_signal(signal.SIGTERM)  # the final snapshot keeps it
    s.proc.wait(timeout=10)
    s = Ferry(path)
    check(s.ready(), "switch: durable again")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    check(b'\nsw{instance="",job="sw"} 2\n' in m, "switch: the newer value, not the old log's")
    s.kill()


def main():
    d = tempfile.mkdtemp(prefix="ferry-durable-")
    round_trip(d)
    crash_test(d)
    damaged_log(d)
    leaving_durable_mode(d)
    if not check.failed:
        shutil.rmtree(d)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

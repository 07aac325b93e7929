#!/usr/bin/env python3
"""test_durable.py: --persistence.durable end to end with build/ferry (issue 5, durable mode).

- Round trip with SIGKILL: every acknowledged change (PUT, POST, a rejected push, DELETE, wipe, before and after a
  snapshot that truncated the log) is there after a restart; /metrics (pushed part) and /api/v1/metrics identical.
- Crash test: 4 threads push (keep-alive connections, one group each, increasing values) while the server is killed
  with SIGKILL at a random moment, 20 times, snapshots every 200ms; after each restart /-/ready reaches 200 and every
  group shows its last acknowledged value or a later one that was sent but not acknowledged.
- A log whose tail is cut mid-record starts and reports the dropped tail; a flipped byte in a record followed by
  valid ones stops start-up with exit status 1, naming the segment file and the offset.
- Deferred answers (the loop parks a request until the log's writer has synced its record):
  * disconnects: rounds of 160 concurrent HTTP/1.1 pushes on separate connections, every other socket closed before
    its answer; the server keeps serving, every push is counted once (requests_total and the push-duration
    histogram, answered or not), every answered one survives SIGKILL;
  * h2c (prior knowledge, a minimal HTTP/2 client below): 100 PUTs as concurrent streams on one connection, all
    answered 200; 100 more on a connection closed right after sending (HTTP/2 disposes of the parked streams);
  * SIGTERM with 64 pushes in flight: each is answered 200 before the process exits 0, and survives the restart;
  * every server of these sections stops with SIGTERM and exit status 0: under the ASan build (LSAN_OPTIONS with
    tests/lsan.supp for h2o's recycled buffers) a leaked or misused parked entry fails here.
Usage: test_durable.py path/to/ferry
"""
import http.client
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()
pushed_part = pghttp.pushed_part
LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp")


class Ferry(pghttp.Server):
    """A durable-mode server on a free port, started without waiting, stopped with SIGKILL (a crash) unless told
    otherwise."""

    def __init__(self, path, interval="1h", extra=(), durable=True):
        port = pghttp.free_port()
        env = dict(os.environ)
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.abspath(LSAN_SUPP))
        super().__init__([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                          "--web.enable-admin-api", "--persistence.file=" + path,
                          "--persistence.interval=" + interval] + (["--persistence.durable"] if durable else []) +
                         list(extra), port, "ferry-durable", log_path=path + ".log.%d" % port, health="/-/ready",
                         ready_status=(200,), env=env, poll=0.02)
        self.start(wait=False)

    def ready(self, timeout=15):
        return self.wait_ready(timeout)

    def kill(self):
        self.stop(sig=signal.SIGKILL)

    def term(self, what):
        """SIGTERM; checks exit status 0 and no sanitizer report in the log."""
        rc = self.stop(timeout=60)
        if self.forced:
            rc = "timeout"
        log = self.log()
        check(rc == 0 and "Sanitizer" not in log, "%s: SIGTERM exits 0 cleanly (rc %s); log:\n%s" % (what, rc, log[-3000:]))


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
    p = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file=" + path,
                       "--persistence.durable"], port, "ferry-flipped", output="pipe").start(wait=False)
    rc = p.stop(sig=None, timeout=30)  # start-up must fail by itself
    check(rc == 1, "flipped byte: exit 1 (got %d)" % rc)
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
    s.stop(timeout=10)  # SIGTERM: the final snapshot keeps it
    s = Ferry(path)
    check(s.ready(), "switch: durable again")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    check(b'\nsw{instance="",job="sw"} 2\n' in m, "switch: the newer value, not the old log's")
    s.kill()


# --- deferred answers -----------------------------------------------------------------------------------------

def put_request(path, body):
    return (b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(body))) + body


def status_of(data):
    m = re.match(rb"HTTP/1\.1 (\d+) ", data)
    return int(m.group(1)) if m else None


def metric(body, name, labels):
    m = re.search(rb"^" + re.escape(name.encode()) + re.escape(labels.encode()) + rb" (\S+)$", body, re.M)
    return float(m.group(1)) if m else 0.0


def storm(port, n, tag, close_every=2, timeout=20):
    """n concurrent PUTs of group <tag>/i<k> (value k), one connection each, all sent before any answer is read;
    every close_every-th socket is closed right after sending. Returns {k: status} for the sockets that were read."""
    socks = {}
    for k in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        socks[k] = s
    for k, s in socks.items():
        s.sendall(put_request("/metrics/job/%s/instance/i%d" % (tag, k), b"dv %d\n" % k))
    sel = selectors.DefaultSelector()
    bufs = {}
    for k, s in socks.items():
        if close_every and k % close_every == 0:
            s.close()
        else:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, k)
            bufs[k] = b""
    deadline = time.time() + timeout
    pending = set(bufs)
    while pending and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            k = key.data
            try:
                d = key.fileobj.recv(4096)
            except OSError:
                d = b""
            bufs[k] += d
            if not d or b"\r\n\r\n" in bufs[k]:
                pending.discard(k)
                sel.unregister(key.fileobj)
    for k in bufs:
        socks[k].close()
    return {k: status_of(b) for k, b in bufs.items()}


def disconnects(d):
    path = os.path.join(d, "disc.data")
    s = Ferry(path)
    check(s.ready(), "disconnects: ready")
    answered, sent = {}, 0
    for rnd in range(4):
        res = storm(s.port, 160, "disc%d" % rnd)
        sent += 160
        check(all(v == 200 for v in res.values()) and len(res) == 80,
              "disconnects round %d: every socket still open got 200 (%r)" % (rnd, sorted(set(res.values()), key=str)))
        for k, v in res.items():
            if v == 200:
                answered[(rnd, k)] = True
        check(pghttp.request(s.port, "GET", "/-/ready")[0] == 200, "disconnects round %d: server still serves" % rnd)
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    total = metric(m, "pushgateway_http_requests_total", '{code="200",handler="push",method="put"}')
    hist = metric(m, "pushgateway_http_push_duration_seconds_count", '{method="put"}')
    check(total == sent and hist == sent, "disconnects: every push counted once, answered or not: requests_total %g, "
          "push_duration count %g, sent %d" % (total, hist, sent))
    s.kill()
    s = Ferry(path)
    check(s.ready(), "disconnects: ready after SIGKILL")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    missing = [(r, k) for (r, k) in answered if metric(m, "dv", '{instance="i%d",job="disc%d"}' % (k, r)) != k]
    check(not missing, "disconnects: every answered push survives SIGKILL (%d missing of %d)" % (len(missing), len(answered)))
    s.term("disconnects")


# A minimal HTTP/2 client over cleartext with prior knowledge (RFC 9113 section 3.3): enough to send PUTs as
# concurrent streams and read the :status of each answer. Requests use HPACK literals without indexing, so the
# encoder needs no table; answers are only checked for the one-byte "indexed :status 200" (0x88) that h2o sends.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_lit(index, value):
    """Literal header field without indexing, name from the static table (index < 15), short raw value."""
    assert index < 15 and len(value) < 127
    return bytes([index, len(value)]) + value


def h2_put(stream, path, body):
    block = (hpack_lit(2, b"PUT") + b"\x86" +  # :method PUT, :scheme http (static 6)
             hpack_lit(4, path.encode()) + hpack_lit(1, b"x"))  # :path, :authority
    return h2_frame(1, 0x4, stream, block) + h2_frame(0, 0x1, stream, body)  # HEADERS END_HEADERS, DATA END_STREAM


def h2_answers(sock, streams, timeout=20):
    """Reads frames until every stream in streams has ended; returns {stream: first byte of its header block}."""
    buf, first, ended = b"", {}, set()
    sock.settimeout(timeout)
    while not streams <= ended:
        while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
            d = sock.recv(65536)
            if not d:
                return first
            buf += d
        n = int.from_bytes(buf[:3], "big")
        ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff
        payload, buf = buf[9:9 + n], buf[9 + n:]
        if ftype == 4 and not flags & 1:  # SETTINGS: acknowledge
            sock.sendall(h2_frame(4, 1, 0, b""))
        if ftype == 1:
            off = (1 if flags & 0x8 else 0) + (5 if flags & 0x20 else 0)
            first[stream] = payload[off]
        if ftype in (0, 1) and flags & 1:
            ended.add(stream)
        if ftype == 7:  # GOAWAY
            return first
    return first


def h2c(d):
    path = os.path.join(d, "h2c.data")
    s = Ferry(path)
    check(s.ready(), "h2c: ready")
    n = 100
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    out = H2_PREFACE + h2_frame(4, 0, 0, b"")
    for k in range(n):
        out += h2_put(1 + 2 * k, "/metrics/job/h2/instance/i%d" % k, b"hv %d\n" % k)
    sock.sendall(out)
    first = h2_answers(sock, {1 + 2 * k for k in range(n)})
    sock.close()
    check(len(first) == n and all(v == 0x88 for v in first.values()),
          "h2c: %d concurrent streams on one connection all answered 200 (%d answered, first bytes %r)" %
          (n, len(first), sorted(set(first.values()))))
    # streams parked when the connection goes: h2o disposes of their requests while the records are being synced
    for rnd in range(5):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
        out = H2_PREFACE + h2_frame(4, 0, 0, b"")
        for k in range(n):
            out += h2_put(1 + 2 * k, "/metrics/job/h2gone%d/instance/i%d" % (rnd, k), b"hv %d\n" % k)
        sock.sendall(out)
        sock.close()
    time.sleep(0.5)
    check(pghttp.request(s.port, "GET", "/-/ready")[0] == 200, "h2c: server serves after connections closed mid-answer")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    got = sum(1 for k in range(n) if metric(m, "hv", '{instance="i%d",job="h2"}' % k) == k)
    check(got == n, "h2c: all %d pushes stored (%d)" % (n, got))
    s.kill()
    s = Ferry(path)
    check(s.ready(), "h2c: ready after SIGKILL")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    got = sum(1 for k in range(n) if metric(m, "hv", '{instance="i%d",job="h2"}' % k) == k)
    check(got == n, "h2c: all %d answered pushes survive SIGKILL (%d)" % (n, got))
    s.term("h2c")


def sigterm_in_flight(d):
    path = os.path.join(d, "term.data")
    s = Ferry(path)
    check(s.ready(), "sigterm: ready")
    n = 64
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=20) for _ in range(n)]
    for k, c in enumerate(socks):  # every connection accepted and in keep-alive before the burst
        c.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        check(status_of(c.recv(4096)) == 200, "sigterm: warm-up %d" % k)
    for k, c in enumerate(socks):
        c.sendall(put_request("/metrics/job/term/instance/i%d" % k, b"tv %d\n" % k))
    s.send_signal(signal.SIGTERM)
    statuses = []
    for c in socks:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                d2 = c.recv(4096)
                if not d2:
                    break
                data += d2
        except OSError:
            pass
        statuses.append(status_of(data))
        c.close()
    rc = s.stop(sig=None, timeout=60)
    check(rc == 0 and "Sanitizer" not in s.log(), "sigterm: exit 0 (rc %s)" % rc)
    check(statuses.count(200) == n, "sigterm: every push in flight answered 200 before exit (%r)" % statuses)
    s = Ferry(path)
    check(s.ready(), "sigterm: ready after restart")
    _, _, m = pghttp.request(s.port, "GET", "/metrics")
    got = sum(1 for k in range(n) if metric(m, "tv", '{instance="i%d",job="term"}' % k) == k)
    check(got == statuses.count(200), "sigterm: every answered push is there after the restart (%d of %d)" %
          (got, statuses.count(200)))
    s.term("sigterm restart")


def main():
    d = tempfile.mkdtemp(prefix="ferry-durable-")
    round_trip(d)
    crash_test(d)
    damaged_log(d)
    leaving_durable_mode(d)
    disconnects(d)
    h2c(d)
    sigterm_in_flight(d)
    if not check.failed:
        shutil.rmtree(d)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

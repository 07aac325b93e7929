#!/usr/bin/env python3
"""test_http_pause.py: what a client may send or do while its request waits for an answer.

h2o stops reading a socket while a request is handled. When the answer waits (a cluster's push until the write quorum
holds it, a durable push until the log has synced), that stop and the restart after the answer cost two epoll_ctl,
so Ferry pauses the socket instead: it stays polled but unread, and the first input (or end of input) that arrives
turns the pause into h2o's stop (src/http/conn_guard.c, "Pauses"). This suite holds answers back for a while (a
two-replica cluster with --cluster.write-quorum=all whose second replica is stopped with SIGSTOP) and checks that the
client sees what it saw before pauses existed: pipelined requests answered in order, a large pipelined request left
in the kernel (nothing read while the answer waits), a half-closed connection still answered, a closed one costing
no CPU (a pause that saw the end of input does not wake the loop over and over).

Usage: test_http_pause.py path/to/ferry
"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()
HOLD = 0.6  # seconds the second replica stays stopped in each case: the answers wait at least this long


def put(group, body):
    return ("PUT /metrics/job/pause/g/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (group, len(body))).encode() + body


def series(n, name):
    return ("# TYPE %s gauge\n" % name + "".join('%s{i="%d"} %d\n' % (name, i, i) for i in range(n))).encode()


SMALL = b"# TYPE p gauge\np 1\n"
BIG_N = 60000
BIG = series(BIG_N, "big")  # about 1.2 MB, sent while the first answer waits
INFLIGHT_MAX = 64 * 1024  # what the connection may buffer while its answer waits: its request, not what follows

# (name, what is written first, what is written 0.1 s later (while the first answer waits), then: "keep" | "shut_wr" |
#  "close", expected statuses in order,
#  groups that must exist afterwards on both replicas with their series count, note)
CASES = [
    ("three pipelined", put("a1", SMALL), put("a2", SMALL) + put("a3", SMALL), "keep", [200, 200, 200],
     {"a1": 1, "a2": 1, "a3": 1}, "the second and third arrive while the first waits; answered in order"),
    ("a large one pipelined", put("b1", SMALL), put("b2", BIG), "keep", [200, 200],
     {"b1": 1, "b2": BIG_N}, "the second stays in the kernel until the first is answered"),
    ("half closed", put("c1", SMALL), b"", "shut_wr", [200],
     {"c1": 1}, "the end of the client's stream is seen during the pause; the answer still goes out"),
    ("closed", put("d1", SMALL), b"", "close", [],
     {"d1": 1}, "the push was taken before the client left; its answer has nowhere to go"),
]


def read_answers(sock, n, timeout):
    """Reads n HTTP/1.1 answers (Content-Length framed) from sock; returns their statuses."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            rest += chunk
        buf = rest[length:]
        out.append(status)
    return out


def inflight_bytes(port):
    st, _, body = pghttp.request(port, "GET", "/metrics")
    for ln in body.decode().split("\n"):
        if ln.startswith("ferry_http_inflight_bytes "):
            return float(ln.split()[1])
    return -1


def group_series(port, group):
    st, _, body = pghttp.request(port, "GET", "/metrics")
    if st != 200:
        return -1
    return sum(1 for ln in body.decode().split("\n") if 'g="%s"' % group in ln and not ln.startswith("#")
               and "push_time_seconds" not in ln and "push_failure_time_seconds" not in ln)


def main():
    tmp = tempfile.mkdtemp(prefix="ferry-pause-")
    ports = [pghttp.free_port(), pghttp.free_port()]
    peers = [pghttp.free_port(), pghttp.free_port()]
    servers = [pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % ports[i], "--web.threads=1",
                              "--persistence.file=" + os.path.join(tmp, "snap-%d" % i),
                              "--cluster.listen-address=127.0.0.1:%d" % peers[i],
                              "--cluster.write-quorum=all", "--cluster.peer-timeout=10s", "--cluster.ack-timeout=10s"]
                             + ["--cluster.peer=127.0.0.1:%d" % p for p in peers], ports[i], "ferry-pause",
                             log_path=os.path.join(tmp, "ferry-%d.log" % i), health="/-/ready", ready_status=(200,))
               for i in range(2)]
    try:
        servers[1].start(wait=False)
        servers[0].start(timeout=30)
        check(servers[1].wait_ready(30), "the second replica is ready")
        for name, first, rest, then, expect, groups, note in CASES:
            servers[1].send_signal(signal.SIGSTOP)
            check(pghttp.wait_stopped(servers[1].proc.pid), "%s: the second replica stopped within 10 s" % name)
            try:
                sock = socket.create_connection(("127.0.0.1", ports[0]), timeout=10)
                # from a thread: what the server does not read fills the kernel's buffers and blocks the writer
                sock.sendall(first)
                time.sleep(0.1)
                writer = threading.Thread(target=sock.sendall, args=(rest,), daemon=True)
                writer.start()
                time.sleep(0.1)
                if then == "shut_wr":
                    writer.join(10)
                    sock.shutdown(socket.SHUT_WR)
                if then == "close":
                    writer.join(10)
                    sock.close()
                cpu0 = pghttp.cpu_seconds(servers[0].proc.pid)
                t0 = time.time()
                if then != "close":  # nothing may be answered while the quorum cannot hold the push
                    sock.settimeout(HOLD - 0.1)
                    try:
                        early = sock.recv(1, socket.MSG_PEEK)
                    except socket.timeout:
                        early = None
                    check(early is None, "%s: answered before the quorum held the push (%r)" % (name, early))
                time.sleep(max(0.0, HOLD - (time.time() - t0)))
                spent = pghttp.cpu_seconds(servers[0].proc.pid) - cpu0
                held = inflight_bytes(ports[0])
                check(0 <= held <= INFLIGHT_MAX, "%s: %d request bytes buffered while the answer waited, expected at most "
                      "%d (a pause reads nothing)" % (name, held, INFLIGHT_MAX))
                check(spent < HOLD / 2, "%s (%s): %.2f s of CPU in %.1f s while the answer waited" %
                      (name, note, spent, HOLD))
            finally:
                servers[1].send_signal(signal.SIGCONT)
            if then != "close":
                got = read_answers(sock, len(expect), 15)
                writer.join(15)
                check(got == expect, "%s (%s): answers %s, expected %s" % (name, note, got, expect))
                if then == "keep":  # the connection goes on: one more request on it
                    sock.sendall(put(name.split()[0] + "-next", SMALL))
                    got = read_answers(sock, 1, 15)
                    check(got == [200], "%s: the next request on the connection: %s, expected [200]" % (name, got))
                    groups = dict(groups, **{name.split()[0] + "-next": 1})
                sock.close()
            for g, n in groups.items():
                deadline, seen = time.time() + 10, None
                while time.time() < deadline:
                    seen = [group_series(p, g) for p in ports]
                    if seen == [n, n]:
                        break
                    time.sleep(0.1)
                check(seen == [n, n], "%s: group %s has %s series on the two replicas, expected %d on each" %
                      (name, g, seen, n))
            print("%-34s ok so far: %d passed, %d failed" % (name, check.passed, check.failed))
        st = pghttp.request(ports[0], "GET", "/-/healthy")[0]
        check(st == 200, "the first replica still answers after every case (%d)" % st)
    finally:
        for s in servers:
            s.send_signal(signal.SIGCONT)
            s.stop()
        if check.failed:
            for s in servers:
                print("--- %s (last 30 lines)\n%s" % (s.log_path, "\n".join(s.log().splitlines()[-30:])))
        shutil.rmtree(tmp, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_http_writes.py: one write per answer, and no epoll_ctl. The system calls behind the answers to pushes, counted
with strace.

h2o 2.2.5's event loop, handed an answer whose last buffer is empty, writes the headers, then polls the socket for
writability to write the empty buffer: a second writev of zero bytes, two epoll_ctl and a loop turn more per answer,
and every push's 200 has an empty body (fixed in fy_server_respond, src/http/server.c: 19% more pushes/s). The table
below sends N requests over one keep-alive connection to a server traced with `strace -f -p` (every thread) and counts
the writev calls that write nothing and those that send an answer (the log and the snapshots use write(2), the peer
links of a cluster send(2)).

A parked answer (durable, or in a cluster) also took the socket out of epoll while it waited and put it back after
(h2o stops reading during a request): two epoll_ctl per request, a fifth of such a push's system time. The socket is
now paused instead (src/http/conn_guard.c), so none of these requests may cost an epoll_ctl.

Usage: test_http_writes.py path/to/ferry
"""
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
check = pghttp.Checks()
N = 200
BODY = b"# TYPE w gauge\nw 1\n"

# (name, replicas, flags, method, path, note): every answer below is a 2xx with an empty body.
CASES = [
    ("push, in memory", 1, [], "PUT", "/metrics/job/w", "answered inside the handler"),
    ("push, durable", 1, ["--persistence.durable"], "PUT", "/metrics/job/w",
     "parked until the log's writer has synced, answered from the loop's message (server.c answer_parked)"),
    ("post, durable", 1, ["--persistence.durable"], "POST", "/metrics/job/w/i/{i}", "a new group each time"),
    ("delete, durable", 1, ["--persistence.durable"], "DELETE", "/metrics/job/w/i/{i}", "parked as well"),
    ("push, 3 replicas", 3, [], "PUT", "/metrics/job/w",
     "parked until a peer holds it (write quorum 2 of 3), answered from the loop's message"),
]


def traced_run(tmp, replicas, flags, method, path):
    """Starts ferry (with replicas > 1, a cluster of that many: the first is traced, the others only acknowledge),
    attaches strace to all of its threads, sends N requests on one connection; returns (statuses, trace lines)."""
    def server(port, extra):
        return pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=1",
                              "--persistence.file=" + os.path.join(tmp, "snap-%d" % port)] + extra, port,
                             "ferry-writes", log_path=os.path.join(tmp, "ferry-%d.log" % port), health="/-/ready",
                             ready_status=(200,))

    port = pghttp.free_port()
    others = []
    if replicas > 1:
        ports = [port] + [pghttp.free_port() for _ in range(replicas - 1)]
        peers = [pghttp.free_port() for _ in ports]
        cl = [["--cluster.listen-address=127.0.0.1:%d" % peers[i]] + ["--cluster.peer=127.0.0.1:%d" % p for p in peers]
              for i in range(replicas)]
        others = [server(ports[i], flags + cl[i]) for i in range(1, replicas)]
        for o in others:
            o.start(wait=False)
        flags = flags + cl[0]
    srv = server(port, flags)
    try:
        srv.start(timeout=30)
    except RuntimeError:
        for o in others:
            o.stop()
        raise
    out = os.path.join(tmp, "trace-%d" % port)
    st = subprocess.Popen(["strace", "-f", "-qq", "-tt", "-e", "trace=writev,epoll_ctl", "-s", "12", "-o", out,
                           "-p", str(srv.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    statuses = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # attached once a request's answer shows in the trace (bounded: 10 s)
        deadline = time.time() + 10
        while time.time() < deadline:
            conn.request("GET", "/-/healthy")
            conn.getresponse().read()
            time.sleep(0.05)
            if os.path.exists(out) and "HTTP/1.1 200" in open(out, errors="replace").read():
                break
        mark = len(open(out, errors="replace").read().splitlines()) if os.path.exists(out) else 0
        for i in range(N):
            body = BODY if method != "DELETE" else None
            conn.request(method, path.replace("{i}", str(i)), body=body)
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
        conn.close()
        time.sleep(0.2)  # the last answers' writes reach the trace
    finally:
        pghttp.stop_process(st, signal.SIGINT)  # detaches; ferry keeps running
        srv.stop()
        for o in others:
            o.stop()
    lines = open(out, errors="replace").read().splitlines()[mark:]
    return statuses, lines


def main():
    if shutil.which("strace") is None:
        print("SKIP: strace is not installed (scripts/install-deps.sh test installs it)")
        return 77
    tmp = tempfile.mkdtemp(prefix="ferry-writes-")
    try:
        for name, replicas, flags, method, path, note in CASES:
            statuses, lines = traced_run(tmp, replicas, flags, method, path)
            ok = sum(1 for s in statuses if 200 <= s < 300)
            writev = [ln for ln in lines if " writev(" in ln]
            empty = [ln for ln in writev if re.search(r"\) = 0$", ln)]
            answers = [ln for ln in writev if '"HTTP/1.1 ' in ln]
            check(ok == N, "%s: %d of %d answered 2xx (%s)" % (name, ok, N, sorted(set(statuses))))
            check(len(answers) >= N, "%s: %d answers seen in the trace, expected %d" % (name, len(answers), N))
            check(len(empty) == 0, "%s (%s): %d writev calls of zero bytes for %d answers, expected none; e.g. %s"
                  % (name, note, len(empty), N, empty[:2]))
            check(len(writev) <= N + 5, "%s: %d writev calls for %d answers, expected at most one each"
                  % (name, len(writev), N))
            ctl = [ln for ln in lines if " epoll_ctl(" in ln]
            check(len(ctl) <= 5, "%s (%s): %d epoll_ctl calls for %d answers on one connection, expected none; e.g. %s"
                  % (name, note, len(ctl), N, ctl[:2]))
            print("%-18s %d answers, %d writev, %d of zero bytes, %d epoll_ctl" % (name, len(answers), len(writev),
                                                                                  len(empty), len(ctl)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

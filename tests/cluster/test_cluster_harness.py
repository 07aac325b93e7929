#!/usr/bin/env python3
"""test_cluster_harness.py: the cluster suites' own tools, checked against single-node Ferry (no cluster needed).

- FaultProxy in front of a plain build/ferry: pass; delay 300 ms (a request/response round trip takes >= 600 ms);
  blackhole (a request sent on an open connection and on a new one gets no answer, silently: no FIN, no RST); heal
  (the blackholed connection is reset, a new one works); reset (an open keep-alive connection gets an RST); refuse
  (connect() is refused) and back.
- nginx and HAProxy (tests/cluster/ferrycluster.py, configs of ha-design 8.6) over three plain replicas, one of which
  always answers 503 and one of which is killed: every push through the balancer is answered 200 by another replica
  (POST included: non_idempotent / retry-on 503), and round robin spreads the groups over the live replicas.
Usage: test_cluster_harness.py path/to/ferry
"""
import http.client
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
check = pghttp.Checks()


def ferry(port):
    return pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                          "--web.enable-admin-api", "--persistence.file="], port, "ferry-harness")


def keepalive_get(conn, path="/-/healthy"):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status


def test_proxy(hub, port):
    p = hub.add(port, "test")
    st, _, _ = pghttp.request(p.port, "GET", "/-/healthy", timeout=2)
    check(st == 200, "proxy pass: GET /-/healthy through the proxy: %s" % st)

    p.delay(300)
    t0 = time.time()
    st, _, _ = pghttp.request(p.port, "GET", "/-/healthy", timeout=5)
    took = time.time() - t0
    check(st == 200 and 0.6 <= took < 2.0, "proxy delay 300 ms: status %s in %.3f s (want 0.6..2)" % (st, took))
    p.set_pass()

    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=1.0)
    check(keepalive_get(conn) == 200, "proxy: keep-alive connection answered before the blackhole")
    p.blackhole()
    try:
        keepalive_get(conn)
        check(False, "proxy blackhole: an open connection got an answer")
    except socket.timeout:
        check(True, "")
    except (OSError, http.client.HTTPException) as e:
        check(False, "proxy blackhole: open connection failed loudly (%r), want silence" % e)
    s = socket.create_connection(("127.0.0.1", p.port), timeout=1.0)
    s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = s.recv(100)
        check(False, "proxy blackhole: a new connection got %r, want silence" % data)
    except socket.timeout:
        check(True, "")
    p.set_pass()
    s.settimeout(2.0)
    try:
        data = s.recv(100)
        check(data == b"", "proxy heal: the blackholed connection is closed, got %r" % data)
    except ConnectionResetError:
        check(True, "")
    s.close()
    conn.close()
    st, _, _ = pghttp.request(p.port, "GET", "/-/healthy", timeout=2)
    check(st == 200, "proxy heal: a new connection works: %s" % st)

    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=2.0)
    keepalive_get(conn)
    p.reset()
    try:
        keepalive_get(conn)
        check(False, "proxy reset: the open connection still answered")
    except (OSError, http.client.HTTPException):
        check(True, "")
    conn.close()

    p.refuse()
    try:
        socket.create_connection(("127.0.0.1", p.port), timeout=1.0).close()
        check(False, "proxy refuse: connect() succeeded")
    except ConnectionRefusedError:
        check(True, "")
    p.set_pass()
    st, _, _ = pghttp.request(p.port, "GET", "/-/healthy", timeout=2)
    check(st == 200, "proxy: back to pass after refuse: %s" % st)
    print("proxy: %d connections accepted, %d bytes forwarded" % (p.accepted, p.bytes))


class Always503(BaseHTTPRequestHandler):
    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"not ready\n"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *a):
        pass


def test_lb(kind, ports):
    """ports: [ferry, ferry, 503-server, dead]; every push through the LB must be answered 200 by a live ferry."""
    lb = fc.Nginx(ports) if kind == "nginx" else fc.HAProxy(ports)
    with lb:
        if kind == "haproxy":
            lb.wait_servers_up()
        bad = []
        for k in range(40):
            method = "PUT" if k % 2 else "POST"
            st, body = fc.push(lb.port, method, "/metrics/job/%s/k/%d" % (kind, k), b"lb_metric %d\n" % k)
            if st != 200:
                bad.append((method, k, st, body[:200]))
        check(not bad, "%s: every push answered 200 through the balancer: %d failed, first %r" % (kind, len(bad),
                                                                                             bad[:3]))
        counts = []
        for p in ports[:2]:
            st, _, body = pghttp.request(p, "GET", "/api/v1/metrics")
            counts.append(sum(1 for g in json.loads(body)["data"] if g["labels"].get("job") == kind))
        print("%s: groups per live replica %s (no replication: round robin spreads them)" % (kind, counts))
        check(sum(counts) == 40 and all(c > 0 for c in counts), "%s: round robin over both live replicas: %s" % (
            kind, counts))
        if kind == "nginx":
            err = lb.error_log()
            check("upstream" in err, "nginx: its error log records the failed upstreams")


def main():
    t0 = time.time()
    for tool in ("/usr/sbin/nginx", "/usr/sbin/haproxy"):
        if not os.path.exists(tool):
            print("FAIL: %s is absent (scripts/install-deps.sh test installs nginx-light and haproxy)" % tool)
            return 1
    hub = fc.ProxyHub()
    p0, p1, p503, pdead = (pghttp.free_port() for _ in range(4))
    srv503 = ThreadingHTTPServer(("127.0.0.1", p503), Always503)
    threading.Thread(target=srv503.serve_forever, daemon=True).start()
    try:
        with ferry(p0), ferry(p1):
            test_proxy(hub, p0)
            print("proxy: %.1f s" % (time.time() - t0))
            for kind in ("nginx", "haproxy"):
                t1 = time.time()
                test_lb(kind, [p0, p1, p503, pdead])
                print("%s: %.1f s" % (kind, time.time() - t1))
    finally:
        srv503.shutdown()
        hub.close()
    print("cluster harness: has --cluster.listen-address: %s" % fc.has_cluster(FERRY))
    print("total %.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

"""pghttp: small stdlib helpers shared by Ferry's process-level test suites.

Starting and stopping servers by PID on 127.0.0.1, raw HTTP/1.1 requests (http.client keeps the exact path we give
it: no normalisation of // or dot segments), and a minimal protobuf encoder for io.prometheus.client.MetricFamily
bodies (the shape client_golang pushes).
"""
import http.client
import os
import signal
import socket
import struct
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A server process on 127.0.0.1:port, stopped by PID (SIGTERM, then SIGKILL after a bounded wait)."""

    def __init__(self, argv, port, name, log_path=None, health="/-/healthy"):
        self.argv, self.port, self.name, self.health = argv, port, name, health
        self.log_path = log_path or "/tmp/%s-%d.log" % (name, port)
        self.proc = None

    def start(self, timeout=15.0):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log %s" % (self.name, self.proc.returncode, self.log_path))
            try:
                st, _, _ = request(self.port, "GET", self.health, timeout=1.0)
                if st in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not come up on port %d within %.0fs" % (self.name, self.port, timeout))

    def stop(self, timeout=10.0):
        if self.proc is None:
            return None
        return stop_process(self.proc, timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends sig to a running process (by its PID), waits up to timeout, SIGKILLs it if still there; its exit code."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=timeout)


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection. Returns (status, {lower-case header: value}, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        h = {}
        for k, v in resp.getheaders():
            k = k.lower()
            h[k] = h[k] + ", " + v if k in h else v
        return resp.status, h, data
    finally:
        conn.close()


# --- checks shared by the process-level suites ----------------------------------------------------------------

OWN_FAMILY_PREFIXES = ("process_", "ferry_", "pushgateway_")


class Checks:
    """Counts passed and failed checks; prints each failure; summary() prints the closing 'N passed, N failed'."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what)

    def summary(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def pushed_part(body):
    """The lines of a text scrape that are not the gateway's own families."""
    out = []
    for line in body.decode().split("\n"):
        name = line[7:] if line.startswith("# ") else line
        if not name.startswith(OWN_FAMILY_PREFIXES):
            out.append(line)
    return "\n".join(out)


# --- protobuf encoding of io.prometheus.client.MetricFamily (only what the tests need) ---------------------------

COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)


def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wt):
    return _varint(field << 3 | wt)


def _ld(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return _key(field, 2) + _varint(len(payload)) + payload


def _dbl(field, v):
    return _key(field, 1) + struct.pack("<d", v)


def _uv(field, v):
    return _key(field, 0) + _varint(v)


def pb_metric(labels=(), value=None, kind=None, timestamp_ms=None, summary=None, histogram=None):
    """labels: [(name, value)]; kind: which value sub-message (defaults to the family type at pb_family)."""
    out = b"".join(_ld(1, _ld(1, n) + _ld(2, v)) for n, v in labels)
    if summary is not None:  # (count, sum, [(q, v)])
        cnt, sm, qs = summary
        sub = _uv(1, cnt) + _dbl(2, sm) + b"".join(_ld(3, _dbl(1, q) + _dbl(2, v)) for q, v in qs)
        out += _ld(4, sub)
    elif histogram is not None:  # (count, sum, [(ub, cumulative)], extra_bytes)
        cnt, sm, bs = histogram[:3]
        extra = histogram[3] if len(histogram) > 3 else b""
        sub = _uv(1, cnt) + _dbl(2, sm) + b"".join(_ld(3, _uv(1, c) + _dbl(2, ub)) for ub, c in bs) + extra
        out += _ld(7, sub)
    elif value is not None:
        field = {GAUGE: 2, COUNTER: 3, UNTYPED: 5}[kind]
        out += _ld(field, _dbl(1, value))
    if timestamp_ms is not None:
        out += _key(6, 0) + _varint(timestamp_ms)
    return out


def pb_family(name, mtype, metrics, help=None):
    body = _ld(1, name)
    if help is not None:
        body += _ld(2, help)
    body += _uv(3, mtype)
    for m in metrics:
        body += _ld(4, m)
    return _varint(len(body)) + body


PB_CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

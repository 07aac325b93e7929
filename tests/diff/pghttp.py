"""pghttp: small stdlib helpers shared by Ferry's process-level test suites.

Starting, waiting for and stopping servers by PID on 127.0.0.1 (Server: the one process harness of the suites), raw
HTTP/1.1 requests (http.client keeps the exact path we give it: no normalisation of // or dot segments), and a minimal
protobuf encoder for io.prometheus.client.MetricFamily bodies (the shape client_golang pushes).
"""
import http.client
import os
import random
import signal
import socket
import struct
import subprocess
import time


# Ports come from below the kernel's ephemeral range (32768-60999 on Debian), never twice in one process. Asking the
# kernel for port 0 and closing it handed the same port to two replicas of one cluster (CI, cluster_pgdiff_nginx:
# "bind: address already in use"), and a port from the ephemeral range can be taken by any process's outgoing
# connection (nginx's to its upstreams, a replica's to its peers) between the pick and the server's bind.
_PORT_LO, _PORT_HI = 20000, 32000
_handed_out = set()
_port_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port():
    for _ in range(2000):
        port = _port_rng.randrange(_PORT_LO, _PORT_HI)
        if port in _handed_out:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port in %d-%d after 2000 tries" % (_PORT_LO, _PORT_HI))


class Server:
    """A server process on 127.0.0.1:port, stopped by PID (SIGTERM, then SIGKILL after a bounded wait).

    The one process harness of the process-level suites: every wait has a deadline, every stop is by PID. Options
    (the defaults are the original behaviour):
      log_path      where output goes with output="log" (default /tmp/<name>-<port>.log)
      output        "log": stdout and stderr into log_path; "pipe": both to text pipes, read on exit into .stdout
                    and .stderr (for suites that check what a process wrote)
      health        the path probed for readiness; ready_status: the statuses that count as ready
      ready_check   a callable(server) -> bool used instead of the HTTP probe (e.g. Server.listening)
      poll          seconds between readiness probes
      env, preexec_fn, popen_kwargs: passed to subprocess.Popen (popen_kwargs: anything else it takes)
    start(wait=False) starts without waiting for readiness (then wait_ready() -> bool, wait_exit(), stop(sig=None)).
    """

    def __init__(self, argv, port, name, log_path=None, health="/-/healthy", ready_status=(200, 401), ready_check=None,
                 output="log", env=None, preexec_fn=None, popen_kwargs=None, poll=0.05):
        if output not in ("log", "pipe"):
            raise ValueError("output must be 'log' or 'pipe', not %r" % (output,))
        self.argv, self.port, self.name, self.health = argv, port, name, health
        self.log_path = log_path or "/tmp/%s-%d.log" % (name, port)
        self.ready_status, self.ready_check = tuple(ready_status), ready_check
        self.output, self.poll = output, poll
        self.popen_kwargs = dict(popen_kwargs or {})
        if env is not None:
            self.popen_kwargs["env"] = env
        if preexec_fn is not None:
            self.popen_kwargs["preexec_fn"] = preexec_fn
        self.proc = None
        self.stdout = self.stderr = None  # output="pipe": what the process wrote, once it has exited
        self.forced = False  # the last stop() had to SIGKILL the process after its bounded wait

    def start(self, timeout=15.0, wait=True):
        """Starts the process; with wait, waits up to timeout for readiness (raises if it exits or never gets ready)."""
        self.stdout = self.stderr = None
        self.forced = False
        if self.output == "pipe":
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, text=True, **self.popen_kwargs)
        else:
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             **self.popen_kwargs)
        if not wait or self.wait_ready(timeout):
            return self
        if self.proc.poll() is not None:
            if self.output == "pipe":
                self.stop()
                raise RuntimeError("%s exited with %s; stderr %r" % (self.name, self.proc.returncode,
                                                                     (self.stderr or "")[-2000:]))
            raise RuntimeError("%s exited with %s; log %s" % (self.name, self.proc.returncode, self.log_path))
        self.stop()
        raise RuntimeError("%s did not come up on port %d within %.0fs" % (self.name, self.port, timeout))

    def is_ready(self, health=None, ready_status=None):
        """One readiness probe: ready_check, else GET health answered with one of ready_status (both overridable)."""
        if self.ready_check is not None and health is None:
            return bool(self.ready_check(self))
        try:
            st = request(self.port, "GET", health or self.health, timeout=1.0)[0]
        except OSError:
            return False
        return st in (ready_status or self.ready_status)

    def wait_ready(self, timeout=15.0, health=None, ready_status=None):
        """Probes every poll seconds until ready (True), the process exits or timeout passes (False). health and
        ready_status: another probe than the one start() waits for (say /-/ready after start() saw /-/healthy)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.is_ready(health, ready_status):
                return True
            time.sleep(self.poll)
        return False

    @staticmethod
    def listening(server):
        """A ready_check: the port accepts TCP connections (for servers that speak only TLS, say)."""
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def send_signal(self, sig):
        """Sends sig to the process by its PID if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        """Waits up to timeout for the process to exit by itself: its exit status, or None if it still runs."""
        try:
            return self._reap(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig by PID (None: none, only wait), waits up to timeout, SIGKILLs it if still there; its exit code."""
        if self.proc is None:
            return None
        self.forced = False
        if sig is not None:
            self.send_signal(sig)
        try:
            return self._reap(timeout)
        except subprocess.TimeoutExpired:
            self.forced = True
            self.proc.kill()
            return self._reap(timeout)

    def log(self):
        """The log file's text (output="log")."""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def _reap(self, timeout):
        if self.output == "pipe" and self.stderr is None:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)  # retried after a timeout, nothing lost
            return self.proc.returncode
        return self.proc.wait(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends sig to a running process (by its PID), waits up to timeout, SIGKILLs it if still there; its exit code.
    For processes the Server harness does not start (run.sh, a `ferry run` job, a simulator)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=timeout)


def cpu_seconds(pid):
    """utime + stime of process pid (every thread) so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_stopped(pid, timeout=10.0):
    """After a SIGSTOP: waits (bounded) until every thread of pid is stopped; True if they are. On a loaded machine a
    thread may run on for a while after the signal (0.4 s seen beside two busy loops), long enough to answer a peer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = []
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass  # a thread that just exited
        if states and all(st in ("T", "t") for st in states):
            return True
        time.sleep(0.01)
    return False


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

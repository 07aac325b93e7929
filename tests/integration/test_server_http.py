#!/usr/bin/env python3
"""test_server_http.py: build/ferry's HTTP frontend over HTTP/1.1, without the store.

Starts ferry on free 127.0.0.1 ports and checks routing (ServeMux cleaning, httprouter redirects, 404, 405, automatic
OPTIONS), the store-free endpoints, /api/v1/status, gzip header errors, the body size limit over HTTP/1.1, h2c and
TLS (HTTP/1.1 and h2 by ALPN), the lifecycle, signals (SIGHUP keeps the process and its store), listen
failures, and the web UI's Help pages under the route prefix (docs/ui.md, "Help").
Expected values were taken from the Pushgateway 1.5.1 binary. Every started process is stopped by PID with bounded
waits. Usage: test_server_http.py path/to/ferry [html|text]: what the build embedded as the Help's pages (html when
configure found cmark-gfm, the default; text without it).
"""
import gzip
import html
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
DOCS = sys.argv[2] if len(sys.argv) > 2 else "html"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PLAIN = "text/plain; charset=utf-8"
failures = []


free_port = pghttp.free_port


class Ferry(pghttp.Server):
    def __init__(self, *args, threads=2, cpus=None):
        """threads=None: no --web.threads flag; cpus: the CPU affinity mask to start it with (as taskset)."""
        port = free_port()
        self.args = [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file="]
        self.args += ["--web.threads=%d" % threads] if threads is not None else []
        self.args += list(args)
        super().__init__(self.args, port, "ferry-server-http", output="pipe", ready_check=pghttp.Server.listening,
                         preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        try:
            self.start(timeout=10)
        except RuntimeError:
            raise RuntimeError("ferry did not start: %s" % " ".join(self.args))

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def stop(self, sig=signal.SIGTERM):
        """Signals the process by PID; returns (exit code, stderr)."""
        rc = super().stop(sig, timeout=10)
        return rc, self.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


# (method, path, headers, expected status, expected headers subset, expected body or None, note)
GO_404 = ({"content-type": PLAIN, "x-content-type-options": "nosniff"}, b"404 page not found\n")
ROUTER_CASES = [
    ("GET", "/-/healthy", {}, 200, {"content-type": PLAIN, "content-length": "2"}, b"OK", "healthy"),
    ("GET", "/-/ready", {}, 200, {"content-type": PLAIN}, b"OK", "ready"),
    ("POST", "/-/healthy", {}, 405, {"allow": "GET, OPTIONS", "x-content-type-options": "nosniff"},
     b"Method Not Allowed\n", "405 on healthy"),
    ("OPTIONS", "/-/healthy", {}, 200, {"allow": "GET, OPTIONS", "content-length": "0"}, b"", "automatic OPTIONS"),
    ("HEAD", "/metrics", {}, 405, {"allow": "GET, OPTIONS"}, b"", "HEAD is never routed"),
    ("GET", "/metrics/job/foo", {}, 405, {"allow": "DELETE, OPTIONS, POST, PUT"}, b"Method Not Allowed\n", "E22"),
    ("OPTIONS", "/metrics/job/foo/a/b", {}, 200, {"allow": "DELETE, OPTIONS, POST, PUT"}, b"", "E22 OPTIONS"),
    ("GET", "/nonexistent", {}, 404, GO_404[0], GO_404[1], "404"),
    ("OPTIONS", "/nonexistent", {}, 404, GO_404[0], GO_404[1], "OPTIONS on nothing"),
    ("GET", "/-/reload", {}, 404, GO_404[0], GO_404[1], "no reload"),
    ("GET", "/METRICS", {}, 301, {"location": "/metrics", "content-type": "text/html; charset=utf-8",
                                  "content-length": "43"}, b'<a href="/metrics">Moved Permanently</a>.\n\n', "E22"),
    ("PUT", "/Metrics/job/CaseJob", {}, 307, {"location": "/metrics/job/CaseJob", "content-length": "0"}, b"", "E22"),
    ("GET", "/metrics/", {}, 301, {"location": "/metrics"}, None, "trailing slash"),
    ("PUT", "/metrics/job/", {}, 307, {"location": "/metrics/job"}, b"", "httprouter TSR quirk"),
    ("PUT", "/metrics/job", {}, 404, GO_404[0], GO_404[1], "no job"),
    ("PUT", "/metrics/job@base64/", {}, 404, GO_404[0], GO_404[1], "no TSR here"),
    ("PUT", "/metrics/job/e2/x//y/z", {}, 301, {"location": "/metrics/job/e2/x/y/z", "content-length": "0"}, b"",
     "ServeMux cleaning, any method"),
    ("PUT", "/metrics/job/x/a/%2E%2E", {}, 301, {"location": "/metrics/job/x"}, b"", "encoded dots"),
    ("GET", "/metrics/job/e2/x//y/z?q=1", {}, 301, {"location": "/metrics/job/e2/x/y/z?q=1"},
     b'<a href="/metrics/job/e2/x/y/z?q=1">Moved Permanently</a>.\n\n', "query kept"),
    ("GET", "/api/v1", {}, 301, {"location": "/api/v1/"}, None, "ServeMux subtree"),
    ("GET", "/api/v1/", {}, 404, GO_404[0], GO_404[1], "no API root"),
    ("GET", "/api/v1/status/", {}, 301, {"location": "/status"}, None, "StripPrefix loses the prefix (1.5.1)"),
    ("POST", "/api/v1/status", {}, 405, {"allow": "GET, OPTIONS"}, b"Method Not Allowed\n", "API 405"),
    ("PUT", "/api/v1/admin/wipe", {}, 404, GO_404[0], GO_404[1], "admin API off"),
    ("OPTIONS", "/api/v1/anything", {}, 200, {"access-control-allow-origin": "*", "content-length": "0",
                                             "access-control-allow-methods": "GET, POST, DELETE, OPTIONS"}, b"", "CORS"),
    ("GET", "/-/quit", {}, 405, {"content-type": PLAIN}, b"Only POST or PUT requests allowed.", "GET quit"),
    ("PUT", "/-/quit", {}, 403, {"content-type": PLAIN}, b"Lifecycle API is not enabled.", "lifecycle off"),
    ("DELETE", "/-/quit", {}, 405, {"allow": "GET, OPTIONS, POST, PUT"}, b"Method Not Allowed\n", "E23"),
    ("GET", "/-/healthy", {"Content-Encoding": "gzip"}, 200, {}, b"OK", "B10: no body, header ignored (1.5.1: 400 EOF)"),
    ("POST", "/-/healthy", {"Content-Encoding": "gzip"}, 400, {}, b"EOF\n", "gzip header on an empty non-GET body: 400 EOF as 1.5.1"),
    ("GET", "/api/v1/status", {"Content-Encoding": "gzip"}, 200, {}, None, "API not decoded"),
    ("GET", "/a%zz", {}, 400, {"connection": "close"}, b"400 Bad Request", "malformed escape"),
    ("PUT", "/metrics/job/e4/x", {}, 400, {"x-content-type-options": "nosniff"},
     b'odd number of components in label string "/x"\n', "grouping key error"),
    ("PUT", "/metrics/job/a%2Fb", {}, 400, {}, b'odd number of components in label string "/b"\n', "E05 %2F"),
    ("DELETE", "/metrics/job/ord/bad-name/x", {}, 400, {}, b'improper label name "bad-name"\n', "E30 DELETE"),
    ("PUT", "/metrics/job@base64/a+b", {}, 400, {},
     b'invalid base64 encoding in job name "": illegal base64 data at input byte 1\n', "E29, no deadlock"),
    ("PUT", "/metrics/job@base64/a+b", {}, 400, {},
     b'invalid base64 encoding in job name "": illegal base64 data at input byte 1\n', "E29 again: still answers"),
    ("PUT", "/metrics/job/inv/a/%FF", {}, 400, {},
     b'grouping label a has a value that is not valid UTF-8: "\\xff"\n', "B4 rejected up front"),
]


def run_router_cases(f):
    for method, path, headers, status, want_headers, body, note in ROUTER_CASES:
        s, h, b = f.request(method, path, headers=headers, body=b"" if method in ("PUT", "POST") else None)
        check(s == status, "%s %s: status %d, want %d (%s)" % (method, path, s, status, note))
        for k, v in want_headers.items():
            check(h.get(k) == v, "%s %s: header %s=%r, want %r (%s)" % (method, path, k, h.get(k), v, note))
        if body is not None:
            check(b == body, "%s %s: body %r, want %r (%s)" % (method, path, b, body, note))
        check("server" not in h, "%s %s: no Server header" % (method, path))


def run_status(f):
    s, h, b = f.request("GET", "/api/v1/status")
    check(s == 200 and h.get("content-type") == "application/json", "status: 200 application/json")
    check(h.get("cache-control") == "no-cache, no-store, must-revalidate", "status: CORS headers")
    check(not b.endswith(b"\n"), "status: no trailing newline")
    d = json.loads(b)
    check(d["status"] == "success", "status: envelope")
    check(sorted(d["data"]) == ["build_information", "flags", "start_time"], "status: data keys")
    check(sorted(d["data"]["build_information"]) == ["branch", "buildDate", "buildUser", "goVersion", "revision",
                                                      "version"], "status: build_information keys")
    fl = d["data"]["flags"]
    check(fl["web.listen-address"] == "127.0.0.1:%d" % f.port, "status: listen address")
    check(fl["persistence.interval"] == "5m0s" and fl["web.enable-lifecycle"] == "false", "status: rendering")
    check(list(fl) == sorted(fl), "status: flags sorted")
    check("help" not in fl and "version" not in fl, "status: no help/version")
    check(d["data"]["start_time"][:2] == "20", "status: start_time")


def run_push_seam(f):
    body = gzip.compress(b"gz_metric 7\n")
    s, _, b = f.request("PUT", "/metrics/job/gz", body=body, headers={"Content-Encoding": "gzip"})
    check(s == 200 and b == b"", "a gzip push is decoded and stored")
    s, _, b = f.request("GET", "/metrics")
    check(s == 200 and b'gz_metric{instance="",job="gz"} 7\n' in b, "the decoded push is scraped")
    bad = bytearray(body)
    bad[-8] ^= 1
    s, _, b = f.request("PUT", "/metrics/job/crc", body=bytes(bad), headers={"Content-Encoding": "gzip"})
    check(s == 400 and b == b"gzip: invalid checksum\n", "bad gzip CRC is a 400 in Ferry")
    s, _, b = f.request("PUT", "/metrics/job/gz3", body=b"some_metric 3.14\n", headers={"Content-Encoding": "gzip"})
    check(s == 400 and b == b"gzip: invalid header\n", "E21 invalid header")
    s, _, b = f.request("GET", "/nonexistent", body=b"garbage", headers={"Content-Encoding": "gzip"})
    check(s == 400 and b == b"unexpected EOF\n", "gzip header checked before routing (E21)")
    s, _, b = f.request("DELETE", "/metrics/job/ord", body=b"garbage", headers={"Content-Encoding": "gzip"})
    check(s == 400 and b == b"unexpected EOF\n", "E21 DELETE with a gzip header and garbage")
    s, _, b = f.request("PUT", "/metrics/job/gz5", body=b"", headers={"Content-Encoding": "gzip"})
    check(s == 400 and b == b"EOF\n", "an empty push body with a gzip header is 400 EOF, as 1.5.1")
    s, _, b = f.request("PUT", "/metrics/job/big", body=gzip.compress(b"#" * 200000), headers={"Content-Encoding": "gzip"})
    check(s == 413 and b == b"decoded request body exceeds --push.max-body-bytes=100000\n", "decoded size cap")


def run_h2c(f):
    """HTTP/2 over cleartext, prior knowledge and upgrade; only where a curl with HTTP/2 is installed."""
    curl = shutil.which("curl")
    if curl is None:
        print("skip: no curl for the h2c checks")
        return
    url = "http://127.0.0.1:%d" % f.port
    for mode in ("--http2-prior-knowledge", "--http2"):
        p = subprocess.run([curl, "-s", "-m", "5", mode, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                            "-X", "POST", "--data-binary", "x 1\n", url + "/-/healthy"],
                           capture_output=True, text=True, timeout=10)
        check(p.stdout == "2 405", "h2c %s: POST with a body gets the 405 over HTTP/2 (got %r)" % (mode, p.stdout))


LIMIT = 100000
TOO_LARGE = b"request body exceeds --push.max-body-bytes=%d\n" % LIMIT
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "webconfig")


def text_body(n):
    """A valid text push of exactly n bytes: a comment that pads, then one sample."""
    return b"# " + b"x" * (n - 7) + b"\nm 1\n"


def read_http1(sock):
    """Reads one response; returns (status, headers, body, closed): closed when EOF follows the response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise OSError("EOF before the response head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            break
        rest += d
    closed = False
    if "close" in hdrs.get("connection", "").lower():
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    return int(lines[0].split()[1]), hdrs, rest[:n], closed


def http1_limit_case(connect, framing, size):
    """Sends a push of size bytes as framing ("length" or "chunked") and, when the connection stays open, a second
    request on it. A Content-Length over the limit goes without its body: h2o answers from the header alone, and
    bytes it never reads would turn its close into a reset. Returns (status, body, closed, second status)."""
    sock = connect()
    try:
        head = b"PUT /metrics/job/limit HTTP/1.1\r\nHost: x\r\n"
        body = text_body(size)
        if framing == "length":
            msg = head + b"Content-Length: %d\r\n\r\n" % size + (body if size <= LIMIT + 1 else b"")
        else:
            # one chunk, no terminator yet: h2o answers once it has decoded limit + 1 bytes, having read them all
            msg = head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % size + body
            if size <= LIMIT:
                msg += b"\r\n0\r\n\r\n"
        sock.sendall(msg)
        status, _, data, closed = read_http1(sock)
        second = None
        if not closed:
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            second = read_http1(sock)[0]
        return status, data, closed, second
    except OSError as e:
        return "error", str(e).encode(), None, None
    finally:
        sock.close()


def curl_limit_case(url, mode, size, extra=()):
    """HTTP/2 with curl; returns (curl exit code, "version status", body)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as tf:
        tf.write(text_body(size))
        tf.flush()
        p = subprocess.run(["curl", "-s", "-m", "10", mode, *extra, "-X", "PUT", "--data-binary", "@" + tf.name,
                            "-w", "\n%{http_version} %{http_code}", url + "/metrics/job/limit"],
                           capture_output=True, timeout=30)
    body, _, vs = p.stdout.rpartition(b"\n")
    return p.returncode, vs.decode(), body


# (framing, size, expected status, expected body or None, connection closed after it, note). h2o refuses a
# Content-Length over the limit from the header and a chunked body once its decoded size passes the limit, closing
# the connection; a body of exactly limit + 1 bytes reaches Ferry, which answers the same 413 and keeps the
# connection. Every 413 names the limit.
HTTP1_LIMIT_CASES = [
    ("length", LIMIT, 200, b"", False, "Content-Length at the limit is accepted"),
    ("length", LIMIT + 1, 413, TOO_LARGE, False, "limit + 1: Ferry's check, connection kept"),
    ("length", 10 * LIMIT, 413, TOO_LARGE, True, "over the limit: h2o's 413 from the header, renamed, closed"),
    ("chunked", LIMIT, 200, b"", False, "chunked at the limit is accepted (h2o alone refuses it)"),
    ("chunked", LIMIT + 1, 413, TOO_LARGE, True, "chunked past the limit: h2o's 413, renamed, closed"),
]


def run_body_limits(f, tls_port=None):
    """The wire body limit over HTTP/1.1 (cleartext and, with tls_port, TLS) and HTTP/2 (h2c and TLS+ALPN)."""
    transports = [("http/1.1", lambda: socket.create_connection(("127.0.0.1", f.port), timeout=10))]
    if tls_port is not None:
        ctx = ssl.create_default_context(cafile=os.path.join(FIXTURES, "cert.pem"))
        ctx.check_hostname = False
        ctx.set_alpn_protocols(["http/1.1"])
        transports = [("http/1.1+tls", lambda: ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port),
                                                                                         timeout=10)))]
    for tname, connect in transports:
        for framing, size, status, body, closed, note in HTTP1_LIMIT_CASES:
            got = http1_limit_case(connect, framing, size)
            want = (status, body, closed, None if closed else 200)
            check(got == want, "%s %s %d: %s (got %r)" % (tname, framing, size, note, got[:1] + got[2:]))
            if got[1] != body:
                print("   body %r" % got[1][:120])
    if shutil.which("curl") is None:
        print("skip: no curl for the HTTP/2 body limit")
        return
    if tls_port is None:
        url, mode, extra, tname = "http://127.0.0.1:%d" % f.port, "--http2-prior-knowledge", (), "h2c"
    else:
        url, mode, extra, tname = "https://127.0.0.1:%d" % tls_port, "--http2", ("-k",), "h2+tls"
    # h2o 2.2.5 never hands an HTTP/2 body over its limit to a handler: it resets the stream (REFUSED_STREAM, which
    # curl retries on fresh connections before giving up with "0 000"); limit + 1 bytes still reach Ferry's 413
    for size, want, note in ((LIMIT, (0, "2 200", b""), "at the limit"),
                             (LIMIT + 1, (0, "2 413", TOO_LARGE), "limit + 1: Ferry's 413 names the limit"),
                             (2 * LIMIT, (None, "0 000", b""), "over: stream reset by h2o, no response")):
        rc, vs, body = curl_limit_case(url, mode, size, extra)
        got = (rc if want[0] is not None else None, vs, body)
        check(got == want, "%s %d: %s (got %r)" % (tname, size, note, got))
    s, _, _ = f.request("GET", "/-/healthy")
    check(s == 200, "the server still answers after the limit cases")


def run_tls_body_limits():
    """The same limits behind --web.config.file TLS (ALPN picks http/1.1 or h2)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tf:
        tf.write("tls_server_config:\n  cert_file: %s\n  key_file: %s\n" % (os.path.join(FIXTURES, "cert.pem"),
                                                                             os.path.join(FIXTURES, "key.pem")))
        cfg = tf.name
    f = Ferry("--push.max-body-bytes=%d" % LIMIT, "--web.config.file=" + cfg)
    try:
        f.request = lambda *a, **k: tls_request(f.port, *a, **k)
        run_body_limits(f, tls_port=f.port)
    finally:
        f.stop()
        os.unlink(cfg)


def tls_request(port, method, path):
    ctx = ssl.create_default_context(cafile=os.path.join(FIXTURES, "cert.pem"))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    c.request(method, path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def loop_threads(pid):
    names = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as fh:
            names.append(fh.read().strip())
    return sum(1 for n in names if n.startswith("ferry-loop"))


def run_default_threads():
    """--web.threads defaults to the CPUs the process may run on: one loop under `taskset -c N`."""
    cpus = sorted(os.sched_getaffinity(0))
    for mask, want in (({cpus[0]}, 1), (set(cpus), len(cpus))):
        f = Ferry(threads=None, cpus=mask)
        try:
            f.request("GET", "/-/healthy")  # answered by a loop, so every loop is up (they start behind a barrier)
            n = loop_threads(f.proc.pid)
        finally:
            f.stop()
        check(n == want, "default --web.threads with affinity %s: %d loop threads, want %d" % (sorted(mask), n, want))


def run_sighup(f):
    """SIGHUP must not end the process (its default action): the store and a keep-alive connection outlive it."""
    s, _, _ = f.request("PUT", "/metrics/job/before_hup", body=b"hup_metric 1\n")
    check(s == 200, "SIGHUP: push before (got %d)" % s)
    kept = http.client.HTTPConnection("127.0.0.1", f.port, timeout=5)
    kept.request("GET", "/-/healthy")
    r = kept.getresponse()
    r.read()
    f.send_signal(signal.SIGHUP)
    time.sleep(0.3)  # the default action would have ended the process within this
    check(f.proc.poll() is None, "SIGHUP: the process still runs (exit %s)" % f.proc.poll())
    try:
        kept.request("GET", "/-/healthy")
        r = kept.getresponse()
        check(r.status == 200 and r.read() == b"OK", "SIGHUP: a keep-alive connection opened before still works")
        s, _, body = f.request("GET", "/metrics")
        check(s == 200 and b'hup_metric{instance="",job="before_hup"} 1' in body, "SIGHUP: the pushed group is kept")
    except OSError as e:
        check(False, "SIGHUP: the server went away (%s)" % e)
    finally:
        kept.close()


DOCS_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def run_help_docs(f, p):
    """The Help (docs/ui.md): docs/ compiled in, under the route prefix p. Rendered to HTML at build time (html) or the
    Markdown itself (text); either way by fixed name, with nosniff and a CSP that allows no script."""
    s, h, idx = f.request("GET", p + "/static/docs/")
    check(s == 200 and h.get("content-type") == "text/html; charset=utf-8" and
          h.get("x-content-type-options") == "nosniff" and h.get("content-security-policy") == DOCS_CSP,
          "docs index: %d %r" % (s, h))
    names = [n.decode() for n in re.findall(rb'<li><a href="([a-z-]+\.md)">', idx)]
    check(len(names) == 12 and names[0] == "ui.md", "docs index lists the 12 docs, ui.md first: %r" % names)
    check((b"as plain text (Markdown)" in idx) == (DOCS == "text") and (b"rendered to HTML" in idx) == (DOCS == "html"),
          "docs index: says how the pages are served (%s)" % DOCS)
    pages = {}
    for n in names:
        s, h, b = f.request("GET", p + "/static/docs/" + n)
        want = "text/html; charset=utf-8" if DOCS == "html" else PLAIN
        check(s == 200 and h.get("content-type") == want and h.get("x-content-type-options") == "nosniff" and
              h.get("content-security-policy") == DOCS_CSP, "docs %s: %d %r" % (n, s, h))
        with open(os.path.join(ROOT, "docs", n), "rb") as fh:
            md = fh.read()
        if DOCS == "text":
            check(b == md, "docs %s: the Markdown as it is" % n)
            continue
        pages[n] = b
        # <title>: the first heading, as cmark-gfm escapes it, without the backticks of its code spans
        first = md.split(b"\n", 1)[0].decode().lstrip("# ").replace("`", "")
        title = html.escape(first, quote=False).replace('"', "&quot;")
        check(b.startswith(b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">') and
              ("<title>%s - Ferry documentation</title>" % title).encode() in b and b.endswith(b"</html>\n"),
              "docs %s: a complete page, titled %r" % (n, title))
        nav = b'<nav><a href="../../">&larr; back to the groups</a><a href="./">all docs</a></nav>'
        check(b.count(nav) == 2, "docs %s: back to the groups and all docs, above and below" % n)
        check(b"<script" not in b.lower() and b'href="javascript:' not in b.lower(), "docs %s: no script" % n)
        check(b"<h1" in b and b"| ---" not in b and b"|---|" not in b, "docs %s: rendered, no pipe table left" % n)
    if DOCS == "html":
        # a doc with pipe tables has them as <table>; the doc's own words are there, not Markdown syntax
        c = pages["compatibility.md"]
        check(c.count(b"<table>") >= 3 and b"<th>" in c and b"<td>" in c,
              "compatibility.md: its pipe tables as <table>")
        # every link is relative and resolves: to a heading of its page, to a listed doc (and its heading), or to an
        # image served beside them; absolute ones leave Ferry (http, https, mailto)
        ids = {n: set(re.findall(rb' id="([^"]+)"', b)) for n, b in pages.items()}
        crossed = 0
        for n, b in pages.items():
            for href in re.findall(rb'<a href="([^"]*)"', b):
                href = href.decode()
                if re.match(r"^(https?|mailto):", href) or href in ("../../", "./"):
                    continue
                check(not href.startswith("/") and ".." not in href, "docs %s: %r is relative" % (n, href))
                doc, _, frag = href.partition("#")
                target = doc or n
                check(target in pages, "docs %s: link %r to a doc of the Help" % (n, href))
                if target in pages and frag:
                    check(frag.encode() in ids[target], "docs %s: link %r to a heading of %s" % (n, href, target))
                crossed += doc != "" and doc != n
        check(crossed >= 20, "the docs link to one another: %d links" % crossed)
        check(b'<a href="#flags">' in pages["ha.md"] and b'<h2 id="flags">Flags</h2>' in pages["ha.md"],
              "ha.md: its contents link to GitHub's heading ids")
        check(b'<a href="beyond-pushgateway.md"><code>docs/beyond-pushgateway.md</code></a>' in pages["ui.md"],
              "ui.md: a doc's name in a code span is a link to it")
        s, h, b = f.request("GET", p + "/static/docs/ha.md")
        s2, _, b2 = f.request("GET", p + "/static/docs/ha.md#flags")  # a client sends no fragment; this one does
        check(s == 200 and s2 in (200, 404), "ha.md#flags: %d" % s2)
        # the screenshot docs/ui.md shows, beside it
        check(b'<img src="img/ui.png"' in pages["ui.md"], "ui.md shows img/ui.png")
        s, h, b = f.request("GET", p + "/static/docs/img/ui.png")
        with open(os.path.join(ROOT, "docs", "img", "ui.png"), "rb") as fh:
            png = fh.read()
        check(s == 200 and h.get("content-type") == "image/png" and h.get("x-content-type-options") == "nosniff" and
              b == png, "img/ui.png: %d %r, %d bytes" % (s, h.get("content-type"), len(b)))
    for path, note in (("/static/docs/design.md", "a doc that is not in the list"),
                       ("/static/docs/README.md", "not a doc"),
                       ("/static/docs/UI.MD", "names are exact"),
                       ("/static/docs/ui.md/", "no trailing slash"),
                       ("/static/docs/img/compare-memory.png", "an image no page of the list shows"),
                       ("/static/docs/img/", "no index of the images"),
                       ("/static/docs/img/ui.png" if DOCS == "text" else "/static/docs/img/UI.png",
                        "no images without HTML pages" if DOCS == "text" else "image names are exact"),
                       ("/static/docs/docs_embed.c", "nothing of the build")):
        s, _, _ = f.request("GET", p + path)
        check(s == 404, "docs: GET %s%s -> %d, want 404 (%s)" % (p, path, s, note))
    for path in ("/static/docs/%2e%2e%2fCMakeLists.txt", "/static/docs/..%2F..%2F..%2Fetc%2Fpasswd"):
        s, h, _ = f.request("GET", p + path)
        loc = h.get("location", "")
        s2 = f.request("GET", loc)[0] if s == 301 and loc.startswith("/") and ".." not in loc else None
        check(s == 404 or s2 == 404, "docs: no encoded way out: GET %s -> %d %r -> %s" % (path, s, loc, s2))
    s, h, _ = f.request("GET", p + "/static/docs/img/../ui.md")
    check(s == 301 and h.get("location") == p + "/static/docs/ui.md", "docs: dots cleaned by the router, as any path")
    s, _, _ = f.request("GET", "/static/docs/ui.md")
    check(s == 404, "docs: only under the prefix")


def main():
    # the shared, dup()ed listening socket (--no-web.reuseport); the second instance below uses the default
    f = Ferry("--push.max-body-bytes=100000", "--no-web.reuseport")
    try:
        run_router_cases(f)
        run_status(f)
        run_push_seam(f)
        run_h2c(f)
        run_body_limits(f)
        run_sighup(f)
    finally:
        rc, err = f.stop(signal.SIGTERM)
    check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
    check('msg="received SIGHUP' in err, "SIGHUP: log line")
    check('msg="received SIGINT/SIGTERM; exiting gracefully..."' in err, "SIGTERM: log line")
    check('msg="HTTP server stopped"' in err, "SIGTERM: stopped line")
    run_tls_body_limits()

    # route prefix, admin API, lifecycle, two listeners, SO_REUSEPORT (the default)
    second = free_port()
    f = Ferry("--web.route-prefix=/pg/", "--web.enable-admin-api", "--web.enable-lifecycle",
              "--web.listen-address=127.0.0.1:%d" % second, "--log.format=json")
    try:
        for path, status in (("/pg/-/healthy", 200), ("/-/healthy", 404), ("/pg/api/v1/status", 200),
                             ("/api/v1/status", 404)):
            s, _, _ = f.request("GET", path)
            check(s == status, "prefix: GET %s -> %d, want %d" % (path, s, status))
        s, h, _ = f.request("GET", "/pg")
        check(s == 301 and h.get("location") == "/pg/", "prefix: /pg -> /pg/ (relative, Corrections 2)")
        run_help_docs(f, "/pg")
        s, h, _ = f.request("POST", "/pg/api/v1/admin/wipe")
        check(s == 405 and h.get("allow") == "OPTIONS, PUT", "admin: POST wipe 405")
        s, h, _ = f.request("GET", "/pg/-/quit")
        check(s == 405 and h.get("allow") == "OPTIONS, POST, PUT", "prefix: GET /pg/-/quit is the router's 405")
        # /-/reload with the lifecycle API (Ferry's; test_reload.py has the web config's side)
        for method, path, status, note in (("POST", "/pg/-/reload", 200, "no --web.config.file: nothing to re-read"),
                                           ("PUT", "/pg/-/reload", 200, "PUT as POST"),
                                           ("GET", "/pg/-/reload", 405, "the router's 405"),
                                           ("POST", "/-/reload", 404, "prefixed like /-/quit")):
            s, h, b = f.request(method, path)
            check(s == status, "lifecycle: %s %s -> %d, want %d (%s)" % (method, path, s, status, note))
            if s == 200:
                check(b == b"" and h.get("content-length") == "0", "lifecycle: reload's 200 is empty")
        c = http.client.HTTPConnection("127.0.0.1", second, timeout=5)
        c.request("GET", "/pg/api/v1/status")
        r = c.getresponse()
        fl = json.loads(r.read())["data"]["flags"]
        c.close()
        check(fl["web.route-prefix"] == "/pg" and fl["web.reuseport"] == "true", "status shows the normalised prefix")
        check(fl["web.listen-address"] == "127.0.0.1:%d,127.0.0.1:%d" % (f.port, second), "listen addresses joined")
        # a second Ferry on a running one's port (both SO_REUSEPORT) must not share it and split the store
        p = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % f.port], f.port, "ferry-same-port",
                          output="pipe").start(wait=False)
        rc = p.stop(sig=None, timeout=10)
        check(rc == 1 and "bind: address already in use" in p.stderr,
              "a second Ferry on the same port (reuseport) is refused")
        s, h, b = f.request("PUT", "/pg/-/quit")
        check(s == 200 and b == b"Requesting termination... Goodbye!", "lifecycle: quit")
        if f.wait_exit(timeout=10) is None:
            check(False, "lifecycle: process did not exit")
    finally:
        rc, err = f.stop()
    check(rc == 0, "quit: exit 0")
    check('"msg":"received termination request via web service, exiting gracefully..."' in err, "quit: JSON log")

    # listen failure: non-zero (1.5.1 exits 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port], port, "ferry-busy-port",
                          output="pipe").start(wait=False)
        rc = p.stop(sig=None, timeout=10)
    check(rc != 0 and "address already in use" in p.stderr, "listen failure: logged, exit non-zero")

    p = subprocess.run([FERRY, "--bogus"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 1 and p.stderr == "ferry: error: unknown long flag '--bogus', try --help\n", "--bogus")
    p = subprocess.run([FERRY, "--version"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and p.stderr.startswith("ferry, version ") and p.stdout == "", "--version on stderr")
    p = subprocess.run([FERRY, "--help"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "--web.listen-address" in p.stderr, "--help on stderr")

    run_default_threads()

    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()

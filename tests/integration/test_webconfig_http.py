#!/usr/bin/env python3
"""test_webconfig_http.py: --web.config.file end to end (spec section 10, transcript E28).

Starts build/ferry with the E28 set-up (TLS with a test certificate, X-Frame-Options, one bcrypt user) on a free
127.0.0.1 port and checks: 401 without or with wrong credentials (status, WWW-Authenticate, body), 200 with the
right ones, the configured header on every response, pushes and scrapes over TLS, HTTP/2 via ALPN (with curl, when
it is installed), that an invalid config file stops start-up with the reference's message, inline PEM (a handshake with the inline
certificate), client_allowed_sans (a listed client certificate passes, an unlisted one fails the handshake) and
rate_limit (429 past the burst, a token back after an interval, a new bucket after SIGHUP).
Usage: test_webconfig_http.py path/to/ferry path/to/tests/fixtures/webconfig
"""
import base64
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY, FIXTURES = sys.argv[1], sys.argv[2]
results = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL: " + what)


free_port = pghttp.free_port


def start(config):
    port = free_port()
    args = [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2", "--web.config.file=" + config]
    srv = pghttp.Server(args, port, "ferry-webconfig", output="pipe", ready_check=pghttp.Server.listening)
    try:
        return srv.start(timeout=10), port
    except RuntimeError:
        raise RuntimeError("ferry did not start with " + config)


def stop(srv):
    srv.stop(timeout=10)


def request(port, method, path, body=None, auth=None):
    ctx = ssl.create_default_context(cafile=os.path.join(FIXTURES, "cert.pem"))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    if body is not None:
        headers["Content-Length"] = str(len(body))
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_client_cert(d, name, san):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=clientAuth\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)


def client_get(port, d, name):
    """GET /-/healthy presenting certificate name (None: none); the status, or None when the handshake fails."""
    ctx = ssl.create_default_context(cafile=os.path.join(FIXTURES, "cert.pem"))
    ctx.check_hostname = False
    if name is not None:
        ctx.load_cert_chain(os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        c.request("GET", "/-/healthy")
        return c.getresponse().status
    except (ssl.SSLError, ConnectionError, OSError):
        return None  # TLS 1.3 reports the server's refusal of the certificate on the first read
    finally:
        c.close()


def check_allowed_sans():
    d = tempfile.mkdtemp(prefix="ferry-sans-")
    try:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sans-test-ca", cwd=d)
        make_client_cert(d, "listed", "DNS:pusher.example,URI:spiffe://example.org/pusher")
        make_client_cert(d, "unlisted", "DNS:intruder.example")
        base = ("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n"
                "  client_ca_file: ca.crt\n" % (os.path.join(FIXTURES, "cert.pem"), os.path.join(FIXTURES, "key.pem")))
        table = (  # (extra config, client certificate, expected status or None for a failed handshake, note)
            ("  client_allowed_sans: [\"spiffe://example.org/pusher\"]\n", "listed", 200, "listed SAN passes"),
            ("  client_allowed_sans: [\"spiffe://example.org/pusher\"]\n", "unlisted", None, "unlisted SAN fails"),
            ("", "listed", 200, "without the key: listed passes"),
            ("", "unlisted", 200, "without the key: unlisted passes"),
        )
        for extra, cert, want, note in table:
            cfg = os.path.join(d, "web.yml")
            with open(cfg, "w") as f:
                f.write(base + extra)
            srv, port = start(cfg)
            try:
                got = client_get(port, d, cert)
                check(got == want, "client_allowed_sans, %s (got %r, want %r)" % (note, got, want))
            finally:
                stop(srv)
    finally:
        shutil.rmtree(d)


def check_rate_limit():
    """rate_limit over plain HTTP: a burst beyond the limit gets 429 (with the configured header), the next interval
    lets one through again, and a SIGHUP with a new rate_limit starts a new, full bucket of the new size."""
    tmpdir = tempfile.mkdtemp(prefix="ferry-rate-")
    cfg = os.path.join(tmpdir, "web.yml")

    def write(interval, burst, frame):
        with open(cfg + ".tmp", "w") as f:
            f.write("rate_limit:\n  interval: %s\n  burst: %d\nhttp_server_config:\n  headers:\n"
                    "    X-Frame-Options: %s\n" % (interval, burst, frame))
        os.replace(cfg + ".tmp", cfg)

    def get():
        return pghttp.request(port, "GET", "/-/healthy")

    try:
        write("2s", 3, "deny")
        port = free_port()
        srv = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                             "--persistence.file=", "--web.config.file=" + cfg], port, "ferry-rate", output="pipe",
                            ready_check=pghttp.Server.listening)
        srv.start(timeout=10)
        try:
            t0 = time.monotonic()
            got = [get() for _ in range(5)]
            fast = time.monotonic() - t0 < 1.5  # all five inside one interval, or the counts below mean nothing
            check([g[0] for g in got] == [200, 200, 200, 429, 429] or not fast,
                  "rate_limit: burst 3 passes, the rest get 429 (got %s)" % [g[0] for g in got])
            st, h, body = got[3]
            check(body == b"Too Many Requests\n" and h.get("content-type") == "text/plain; charset=utf-8"
                  and h.get("x-content-type-options") == "nosniff", "rate_limit: the 429 is http.Error's (%r %r)"
                  % (body, h))
            check(h.get("x-frame-options") == "deny", "rate_limit: the configured header on the 429")
            time.sleep(2.1)
            st1, st2 = get()[0], get()[0]
            check((st1, st2) == (200, 429), "rate_limit: one interval later one more passes (got %d, %d)" % (st1, st2))

            # SIGHUP with burst 6: the new generation's bucket is full, whatever the old one held
            write("1m", 6, "sameorigin")
            srv.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            first = None
            while time.monotonic() < deadline:
                r = get()
                if r[1].get("x-frame-options") == "sameorigin":
                    first = r
                    break
                time.sleep(0.1)
            check(first is not None and first[0] == 200, "rate_limit: the reload is in force, its first request passes")
            rest = [get()[0] for _ in range(6)]
            check(rest == [200] * 5 + [429], "rate_limit after reload: burst 6 in all (got %s)" % rest)
        finally:
            stop(srv)
    finally:
        shutil.rmtree(tmpdir)


def main():
    srv, port = start(os.path.join(FIXTURES, "web-tls.yml"))
    try:
        for auth, note in ((None, "no credentials"), ("alice:wrong", "wrong password"), ("bob:secret", "unknown user")):
            st, h, body = request(port, "GET", "/-/healthy", auth=auth)
            check(st == 401, "401 with %s (got %d)" % (note, st))
            check(h.get("www-authenticate") == "Basic", "WWW-Authenticate: Basic with " + note)
            check(h.get("x-content-type-options") == "nosniff", "nosniff with " + note)
            check(body == b"Unauthorized\n", "401 body with " + note)
            check(h.get("x-frame-options") == "deny", "configured header on the 401 with " + note)
        st, h, body = request(port, "GET", "/-/healthy", auth="alice:secret")
        check(st == 200 and body == b"OK", "200 OK with the right credentials (got %d %r)" % (st, body))
        check(h.get("x-frame-options") == "deny", "configured header on a 200")
        st, _, _ = request(port, "PUT", "/metrics/job/tls", body=b"tls_metric 1\n", auth="alice:secret")
        check(st == 200, "push over TLS with credentials (got %d)" % st)
        st, _, body = request(port, "GET", "/metrics", auth="alice:secret")
        check(st == 200 and b'tls_metric{instance="",job="tls"} 1\n' in body, "scrape over TLS shows the push")
        st, _, _ = request(port, "PUT", "/metrics/job/tls2", body=b"x 1\n")
        check(st == 401, "push without credentials is refused (got %d)" % st)
        curl = shutil.which("curl")
        if curl:
            out = subprocess.run([curl, "-s", "--http2", "--cacert", os.path.join(FIXTURES, "cert.pem"), "-k", "-u",
                                  "alice:secret", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                  "https://127.0.0.1:%d/-/healthy" % port], capture_output=True, text=True, timeout=20)
            check(out.stdout == "2 200", "HTTP/2 negotiated by ALPN (curl said %r)" % out.stdout)
    finally:
        stop(srv)

    # Inline PEM (cert/key in the YAML, exporter-toolkit v0.16): a real handshake serves that certificate.
    tmpdir = tempfile.mkdtemp(prefix="ferry-inline-")
    try:
        def block(name):
            with open(os.path.join(FIXTURES, name)) as f:
                return "|\n" + "".join("    " + line for line in f.read().splitlines(True))
        cfg = os.path.join(tmpdir, "web-inline.yml")
        with open(cfg, "w") as f:
            f.write("tls_server_config:\n  cert: " + block("cert.pem") + "  key: " + block("key.pem"))
        srv, port = start(cfg)
        try:
            st, _, body = request(port, "GET", "/-/healthy")  # verifies against cert.pem: the inline one is served
            check(st == 200 and body == b"OK", "inline PEM: TLS handshake and 200 (got %d %r)" % (st, body))
        finally:
            stop(srv)
    finally:
        shutil.rmtree(tmpdir)

    # client_allowed_sans: client certificates from one CA, one with a listed SAN and one without, made with the
    # openssl CLI (as tests/cluster/test_cluster_tls.py does); skipped without it.
    if shutil.which("openssl"):
        check_allowed_sans()

    check_rate_limit()

    # An invalid web config stops start-up with the reference's message.
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("tls_server_config:\n  cert_file: cert.pem\n  unknown_key: 1\n")
        bad = f.name
    try:
        port = free_port()
        p = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.config.file=" + bad], port,
                          "ferry-bad-webconfig", output="pipe").start(wait=False)
        rc = p.stop(sig=None, timeout=20)  # start-up must fail by itself
        check(rc != 0, "invalid web config: non-zero exit (got %d)" % rc)
        check("field unknown_key not found in type web.TLSConfig" in p.stderr,
              "invalid web config: the reference's message (stderr %r)" % p.stderr[-300:])
    finally:
        os.unlink(bad)

    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

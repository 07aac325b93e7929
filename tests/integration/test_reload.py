#!/usr/bin/env python3
"""test_reload.py: re-reading --web.config.file without a restart (SIGHUP, PUT/POST /-/reload; docs/operations.md).

Starts build/ferry on a free 127.0.0.1 port with TLS, one user, one header and --web.enable-lifecycle, pushes a group
and opens a keep-alive connection, then plays RELOADS in order: each step rewrites the config file, triggers a
reload (SIGHUP by PID, or the HTTP request), and checks who gets in (200/401), the configured header, the
certificate new connections see (its serial) and the one the old connection keeps, the reload metrics, the log line
of a refused file, and that the store and the keep-alive connection outlive every step. Last, a password check that
is being hashed when a reload removes its user ends in 401.
Usage: test_reload.py path/to/ferry path/to/tests/fixtures/webconfig
"""
import base64
import http.client
import os
import re
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: deprecated in 3.11, present in Debian 12's python3; only to make a slow bcrypt hash

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY, FIXTURES = sys.argv[1], sys.argv[2]
check = pghttp.Checks()

# bcrypt hashes of the unit tests (tests/test_http_webconfig.c), cost 4 and 5 so that checks stay fast
SECRET = "$2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr."  # "secret"
HUNTER = "$2a$05$IsKhaMlObPLdGxbVHx6AMexc2KcDLCERHFZ5A7by37Ef8i5vzMBWe"  # "hunter2"
ALICE, BOB = "alice:secret", "bob:hunter2"
PUSHED = b'kept_metric{instance="",job="before_reloads"} 42\n'


def config(users, frame="deny", cert="cert.pem", key="key.pem", extra=""):
    """A web config file's text: TLS with cert/key, X-Frame-Options, the users."""
    text = "tls_server_config:\n  cert_file: %s\n  key_file: %s\n" % (cert, key)
    text += "http_server_config:\n  headers:\n    X-Frame-Options: %s\n" % frame
    text += "basic_auth_users:\n" + "".join("  %s: %s\n" % u for u in users)
    return text + extra


# Each step: (trigger, new file text, expected reload outcome, then who gets 200 and who 401 on a new connection,
# the X-Frame-Options value, the certificate file new connections get, note). trigger: "SIGHUP", or the method of a
# /-/reload request (sent with the credentials valid before the step). ok=False: refused, nothing of the file applies.
RELOADS = [
    ("SIGHUP", config([("bob", HUNTER)]), True, [BOB], [ALICE], "deny", "cert.pem",
     "users changed by SIGHUP: the old password is refused, the new one admitted"),
    ("POST", config([("alice", SECRET)], frame="sameorigin"), True, [ALICE], [BOB], "sameorigin", "cert.pem",
     "users and a header changed by POST /-/reload"),
    ("PUT", config([("alice", SECRET)], frame="sameorigin", cert="cert2.pem", key="key2.pem"), True, [ALICE], [BOB],
     "sameorigin", "cert2.pem", "certificate rotated by PUT /-/reload: new connections get the new one"),
    ("POST", config([("bob", HUNTER)], extra="unknown_key: 1\n"), False, [ALICE], [BOB], "sameorigin", "cert2.pem",
     "unknown key: refused with the reference's message, the old users stay"),
    ("SIGHUP", "basic_auth_users:\n  bob: [\n", False, [ALICE], [BOB], "sameorigin", "cert2.pem",
     "bad YAML by SIGHUP: refused"),
    ("POST", config([("bob", HUNTER)], cert="absent.pem"), False, [ALICE], [BOB], "sameorigin", "cert2.pem",
     "unreadable certificate: refused, the old certificate keeps serving"),
    ("POST", "basic_auth_users:\n  bob: %s\n" % HUNTER, False, [ALICE], [BOB], "sameorigin", "cert2.pem",
     "TLS cannot be switched off by a reload"),
    ("SIGHUP", config([("alice", SECRET), ("bob", HUNTER)]), True, [ALICE, BOB], [], "deny", "cert.pem",
     "fixed file: both users, the first certificate again"),
]

# What a refused step must log and answer (the first line of the error, which the 500 body and the log carry).
REFUSALS = {
    3: "field unknown_key not found in type web.Config",
    4: "yaml: line",
    5: "absent.pem: no such file or directory",
    6: "a reload cannot turn TLS off",
}


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the certificate changes on purpose; it is compared by serial instead
    return ctx


def auth_header(cred):
    return {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()} if cred else {}


def send(conn, method, path, cred=None, body=None):
    """One request on conn (kept open). Returns (status, lower-case headers, body)."""
    headers = auth_header(cred)
    if body is not None:
        headers["Content-Length"] = str(len(body))
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def request(port, method, path, cred=None, body=None):
    """One request on a new connection; also the serial of the certificate it was served with."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls_context())
    try:
        st, h, b = send(c, method, path, cred, body)
        return st, h, b, serial_of_der(c.sock.getpeercert(binary_form=True))
    finally:
        c.close()


def serial_of_pem(path):
    return ssl._ssl._test_decode_cert(path)["serialNumber"]


def serial_of_der(der):
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
    try:
        return serial_of_pem(f.name)
    finally:
        os.unlink(f.name)


def metric(port, cred, name):
    st, _, body, _ = request(port, "GET", "/metrics", cred)
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M) if st == 200 else None
    return float(m.group(1)) if m else None


def log_lines(srv, text):
    return [line for line in srv.log().splitlines() if text in line]


def wait_reload_logged(srv, before, timeout=5.0):
    """Waits until the log has one more outcome line (reloaded / could not reload) than before; True if it came."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(log_lines(srv, "the web configuration")) > before:
            return True
        time.sleep(0.05)
    return False


def write_config(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)  # as a config manager writes it: never half a file


def check_hash_in_flight(srv, port, path):
    """A password check that is hashing when a reload removes its user: the request gets 401, not the old users' 200.
    carol's hash has cost 13 (about 0.4 s), so the reload lands while the auth pool hashes her password."""
    slow = crypt.crypt("slow", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 13))
    with_carol, without = config([("alice", SECRET), ("carol", slow)]), config([("alice", SECRET)])
    write_config(path, with_carol)
    st = request(port, "POST", "/-/reload", ALICE)[0]
    t = time.time()
    control = request(port, "GET", "/-/healthy", "carol:slow")[0]
    hash_s = time.time() - t
    check(st == 200 and control == 200 and hash_s > 0.1,
          "hash in flight: carol gets in before (reload %d, %d in %.2f s)" % (st, control, hash_s))
    st = request(port, "POST", "/-/reload", ALICE)[0]  # the same file again: a new generation, empty caches
    got = {}

    def carol():
        t = time.time()
        got["status"] = request(port, "GET", "/-/healthy", "carol:slow")[0]
        got["seconds"] = time.time() - t

    th = threading.Thread(target=carol)
    th.start()
    time.sleep(hash_s / 4)  # her check is in the auth pool now
    write_config(path, without)
    # by SIGHUP: a /-/reload would need a password check of its own, queued behind hers in the one auth thread
    before = len(log_lines(srv, "the web configuration"))
    srv.send_signal(signal.SIGHUP)
    reloaded = wait_reload_logged(srv, before)
    th.join(timeout=20)
    check(st == 200 and reloaded, "hash in flight: both reloads done (%d, %s)" % (st, reloaded))
    check(got.get("status") == 401, "hash in flight: the reload that removed carol wins: 401 (got %r)" % got)
    check(got.get("seconds", 0) > hash_s / 2,
          "hash in flight: her check was hashing when the reload came (%.2f s of %.2f)" % (got.get("seconds", 0), hash_s))
    write_config(path, with_carol)
    st = request(port, "POST", "/-/reload", ALICE)[0]
    control = request(port, "GET", "/-/healthy", "carol:slow")[0]
    check(st == 200 and control == 200, "hash in flight: with carol back she gets in again (%d, %d)" % (st, control))


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="ferry-reload-")
    for f in ("cert.pem", "key.pem", "cert2.pem", "key2.pem"):
        shutil.copy(os.path.join(FIXTURES, f), tmp)
    serials = {f: serial_of_pem(os.path.join(tmp, f)) for f in ("cert.pem", "cert2.pem")}
    path = os.path.join(tmp, "web.yml")
    with open(path, "w") as f:
        f.write(config([("alice", SECRET)]))
    port = pghttp.free_port()
    srv = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2", "--persistence.file=",
                         "--web.enable-lifecycle", "--web.config.file=" + path], port, "ferry-reload",
                        log_path=os.path.join(tmp, "ferry.log"), ready_check=pghttp.Server.listening)
    srv.start(timeout=10)
    kept = None
    try:
        st, _, _, serial = request(port, "PUT", "/metrics/job/before_reloads", ALICE, b"kept_metric 42\n")
        check(st == 200 and serial == serials["cert.pem"], "push before the reloads (got %d)" % st)
        check(metric(port, ALICE, "ferry_config_last_reload_successful") == 1, "start-up load counts as successful")
        last_ok = metric(port, ALICE, "ferry_config_last_reload_success_timestamp_seconds")
        check(last_ok is not None and abs(last_ok - time.time()) < 60, "start-up load time (%r)" % last_ok)
        kept = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls_context())
        st, _, _ = send(kept, "GET", "/-/healthy", ALICE)
        kept_serial = serial_of_der(kept.sock.getpeercert(binary_form=True))
        kept_port = kept.sock.getsockname()[1]
        check(st == 200, "keep-alive connection opened")

        valid = ALICE  # credentials in force before each step
        for i, (trigger, text, ok, admitted, refused, frame, cert, note) in enumerate(RELOADS):
            what = "step %d (%s)" % (i, note)
            write_config(path, text)
            before = len(log_lines(srv, "the web configuration"))
            if trigger == "SIGHUP":
                srv.send_signal(signal.SIGHUP)
            else:
                st, h, body, _ = request(port, trigger, "/-/reload", valid)
                want = 200 if ok else 500
                check(st == want, "%s: %s /-/reload answers %d (got %d %r)" % (what, trigger, want, st, body))
                if not ok:
                    check(body.startswith(b"failed to reload config: ") and REFUSALS[i].encode() in body
                          and h.get("x-content-type-options") == "nosniff", "%s: the 500 names the error (%r)" % (what, body))
            check(wait_reload_logged(srv, before), "%s: the reload's outcome is logged" % what)
            if not ok:
                lines = log_lines(srv, "could not reload the web configuration")
                check(lines and "file=" + path in lines[-1] and REFUSALS[i] in lines[-1],
                      "%s: the log line names the file and the error (%r)" % (what, lines[-1:]))
            for cred in admitted:
                st, h, _, serial = request(port, "GET", "/-/healthy", cred)
                check(st == 200, "%s: %s admitted (got %d)" % (what, cred.split(":")[0], st))
                check(h.get("x-frame-options") == frame, "%s: X-Frame-Options %s (got %r)" % (what, frame,
                                                                                             h.get("x-frame-options")))
                check(serial == serials[cert], "%s: new connections get %s's serial (got %s)" % (what, cert, serial))
            for cred in refused:
                st, h, body, _ = request(port, "GET", "/-/healthy", cred)
                check(st == 401 and body == b"Unauthorized\n" and h.get("x-frame-options") == frame,
                      "%s: %s refused with 401 (got %d)" % (what, cred.split(":")[0], st))
            valid = admitted[0]
            okm = metric(port, valid, "ferry_config_last_reload_successful")
            check(okm == (1 if ok else 0), "%s: ferry_config_last_reload_successful %s (got %r)" % (what, int(ok), okm))
            at = metric(port, valid, "ferry_config_last_reload_success_timestamp_seconds")
            check((at > last_ok) if ok else (at == last_ok),
                  "%s: the success time %s (was %r, now %r)" % (what, "moves" if ok else "stays", last_ok, at))
            last_ok = at
            # what every reload keeps: the store, and the connection opened before the first one, with its certificate
            st, _, body, _ = request(port, "GET", "/metrics", valid)
            check(st == 200 and PUSHED in body, "%s: the group pushed before is still there" % what)
            st, _, _ = send(kept, "GET", "/-/healthy", valid)
            check(st == 200 and kept.sock.getsockname()[1] == kept_port, "%s: the keep-alive connection still serves"
                  % what)
            check(serial_of_der(kept.sock.getpeercert(binary_form=True)) == kept_serial,
                  "%s: the keep-alive connection keeps its certificate" % what)
        check_hash_in_flight(srv, port, path)
    finally:
        if kept is not None:
            kept.close()
        rc = srv.stop(timeout=10)
    check(rc == 0, "exit 0 after the reloads (got %s)" % rc)
    check(len(log_lines(srv, "reloaded the web configuration")) == 8, "eight reloads logged as done")
    check(len(log_lines(srv, "could not reload the web configuration")) == 4, "four refusals logged")
    if check.failed:
        print("kept %s (the server's log is ferry.log there)" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_cli.py: `ferry push` and `ferry run` end to end (issue #6) against build/ferry on a free 127.0.0.1 port, and
the same scenarios against the reference Pushgateway 1.5.1 when its path is given (the requests must be accepted
identically).

push: PUT, POST (--add), DELETE, stdin, grouping labels with '/' and empty values (checked in /api/v1/metrics), a
bad body (exit 2 with the gateway's message), no gateway (retries with backoff, exit 3), a silent gateway
(--timeout per attempt), 5xx retried and 4xx not (a scripted stub gateway), TLS with a CA file and basic auth (password file, URL credentials, wrong password).
run: success (outcome and last-success pushed), failure (exit code kept, last success of the earlier run survives),
command not found (127), killed by a signal, SIGTERM forwarded, gateway down (job's exit code unchanged, stderr says
so), metrics written to $FERRY_METRICS_FILE (pushed, file removed) and a malformed one (outcome still pushed).
Usage: test_cli.py path/to/ferry [path/to/prometheus-pushgateway] [path/to/tests/fixtures/webconfig]
"""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
REFERENCE = sys.argv[2] if len(sys.argv) > 2 and os.path.exists(sys.argv[2]) else None
WEBCONFIG = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                                  "fixtures", "webconfig")
check = pghttp.Checks()
# No proxy from the environment may stand between the client and 127.0.0.1.
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
TMP = tempfile.mkdtemp(prefix="ferry-cli-test-")


def ferry(*args, stdin=None, env=None, timeout=30):
    p = subprocess.run([FERRY] + list(args), input=stdin, capture_output=True, timeout=timeout, env=env or ENV)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def groups(port):
    _, _, body = pghttp.request(port, "GET", "/api/v1/metrics")
    return json.loads(body)["data"]


def group(port, labels):
    for g in groups(port):
        if g["labels"] == labels:
            return g
    return None


def value(g, family):
    if g is None or family not in g:
        return None
    return float(g[family]["metrics"][0]["value"])


def families(g):
    return sorted(k for k in g if k not in ("labels", "last_push_successful")) if g else None


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def closed_port():
    return pghttp.free_port()  # nothing listens there once the probe socket is closed


def push_suite(name, gw, port):
    key = ["--gateway", gw, "--job", "my/job", "--label", "path=/var/tmp", "--label", "e=", "--label", "plain=x.y"]
    labels = {"job": "my/job", "path": "/var/tmp", "e": "", "plain": "x.y"}
    f1 = write("m1.prom", b"# TYPE a counter\na 1\nb 2\n")
    rc, _, err = ferry("push", *key, f1)
    check(rc == 0, "%s: PUT from a file exits 0 (got %d: %s)" % (name, rc, err))
    g = group(port, labels)
    check(families(g) == ["a", "b", "push_failure_time_seconds", "push_time_seconds"],
          "%s: group with '/', empty and plain values holds a, b: %r" % (name, families(g)))
    check(g is not None and g["a"]["type"] == "COUNTER" and value(g, "a") == 1, "%s: a is the pushed counter" % name)

    rc, _, err = ferry("push", *key, "--add", "-", stdin=b"c 3\nb 20\n")
    check(rc == 0, "%s: POST from stdin exits 0 (got %d: %s)" % (name, rc, err))
    g = group(port, labels)
    check(value(g, "a") == 1 and value(g, "b") == 20 and value(g, "c") == 3, "%s: POST kept a, replaced b, added c" % name)

    rc, _, err = ferry("push", *key, stdin=b"d 4\n")
    check(rc == 0, "%s: PUT from stdin (no FILE) exits 0 (got %d: %s)" % (name, rc, err))
    g = group(port, labels)
    check(families(g) == ["d", "push_failure_time_seconds", "push_time_seconds"], "%s: PUT replaced the group: %r" %
          (name, families(g)))

    rc, _, err = ferry("push", *key, "--delete")
    check(rc == 0, "%s: DELETE exits 0 (got %d: %s)" % (name, rc, err))
    # a DELETE is answered once queued; a checked push behind it in the same queue orders the read
    ferry("push", "--gateway", gw, "--job", "fence", stdin=b"")
    check(group(port, labels) is None, "%s: DELETE removed the group" % name)

    rc, _, err = ferry("push", "--gateway", gw, "--job", "bad", write("bad.prom", b"bad bad bad\n"))
    check(rc == 2, "%s: a body the gateway refuses exits 2 (got %d)" % (name, rc))
    check("HTTP 400" in err and "text format parsing error in line 1" in err,
          "%s: the gateway's message is on stderr: %r" % (name, err))
    check(err.count("\n") == 1, "%s: a 4xx is not retried: %r" % (name, err))

    rc, _, err = ferry("push", "--gateway", gw, "--job", "j", "--label", "job=x", f1)
    check(rc == 1 and "the job label comes from --job" in err, "%s: job via --label is a usage error (%d)" % (name, rc))


def run_suite(name, gw, port):
    key = ["--gateway", gw, "--job", "nightly", "--label", "db=main"]
    labels = {"job": "nightly", "db": "main"}
    seen = write("seen-path", b"")
    t0 = time.time()
    rc, _, err = ferry("run", *key, "--", "sh", "-c",
                       'printf "# TYPE rows_total counter\\nrows_total 42\\n" > "$FERRY_METRICS_FILE"; '
                       'echo "$FERRY_METRICS_FILE" > %s; exit 0' % seen)
    t1 = time.time()
    check(rc == 0, "%s: run success exits 0 (got %d: %s)" % (name, rc, err))
    check(err == "", "%s: a successful run says nothing: %r" % (name, err))
    g = group(port, labels)
    check(families(g) == ["job_duration_seconds", "job_exit_code", "job_killed_by_signal",
                          "job_last_success_timestamp_seconds", "job_start_time_seconds", "push_failure_time_seconds",
                          "push_time_seconds", "rows_total"], "%s: outcome and job metrics pushed: %r" % (name, families(g)))
    last_ok = value(g, "job_last_success_timestamp_seconds")
    check(last_ok is not None and t0 - 1 <= last_ok <= t1 + 1, "%s: last success is now: %r" % (name, last_ok))
    check(value(g, "job_exit_code") == 0 and value(g, "rows_total") == 42, "%s: exit code 0, rows_total 42" % name)
    check(g is not None and g["rows_total"]["type"] == "COUNTER", "%s: the job's TYPE line kept" % name)
    mpath = open(seen).read().strip()
    check(mpath != "" and not os.path.exists(mpath), "%s: the metrics file %r was removed" % (name, mpath))

    time.sleep(0.01)
    rc, _, err = ferry("run", *key, "--", "sh", "-c", "sleep 0.2; exit 3")
    check(rc == 3, "%s: run failure keeps the exit code 3 (got %d)" % (name, rc))
    g = group(port, labels)
    check(value(g, "job_exit_code") == 3, "%s: job_exit_code 3 pushed" % name)
    check(value(g, "job_last_success_timestamp_seconds") == last_ok,
          "%s: last success of the earlier run survives a failure: %r vs %r" %
          (name, value(g, "job_last_success_timestamp_seconds"), last_ok))
    dur = value(g, "job_duration_seconds")
    check(dur is not None and 0.15 <= dur < 5, "%s: duration measured: %r" % (name, dur))
    check(value(g, "job_start_time_seconds") > last_ok - 1, "%s: start time of the failed run" % name)

    rc, _, err = ferry("run", *key, "--", "/nonexistent/cmd", "x")
    check(rc == 127, "%s: command not found exits 127 (got %d)" % (name, rc))
    check("cannot run /nonexistent/cmd" in err, "%s: says why: %r" % (name, err))
    check(value(group(port, labels), "job_exit_code") == 127, "%s: 127 pushed" % name)

    rc, _, err = ferry("run", *key, "--", write("noexec.sh", b"#!/bin/sh\n"))
    check(rc == 126, "%s: a file that is not executable exits 126 (got %d)" % (name, rc))

    rc, _, err = ferry("run", *key, "--", "sh", "-c", "kill -KILL $$")
    g = group(port, labels)
    check(rc == 137, "%s: killed by SIGKILL exits 137 (got %d)" % (name, rc))
    check(value(g, "job_exit_code") == 137 and value(g, "job_killed_by_signal") == 9, "%s: signal 9 pushed" % name)

    proc = subprocess.Popen([FERRY, "run"] + key + ["--", "sleep", "30"], env=ENV, stderr=subprocess.PIPE)
    time.sleep(0.3)
    rc = pghttp.stop_process(proc)
    check(rc == 143, "%s: SIGTERM forwarded to the job, exit 143 (got %d)" % (name, rc))
    check(value(group(port, labels), "job_killed_by_signal") == 15, "%s: signal 15 pushed" % name)
    check(value(group(port, labels), "job_last_success_timestamp_seconds") == last_ok,
          "%s: last success still from the first run" % name)

    rc, _, err = ferry("run", *key, "--", "sh", "-c", 'echo "not a metric line" > "$FERRY_METRICS_FILE"; exit 0')
    g = group(port, labels)
    check(rc == 0, "%s: a malformed metrics file does not change the exit status (got %d)" % (name, rc))
    check("refused the metrics from $FERRY_METRICS_FILE" in err and "text format parsing error" in err,
          "%s: the gateway's complaint about the file is on stderr: %r" % (name, err))
    check(value(g, "job_exit_code") == 0 and value(g, "job_last_success_timestamp_seconds") > last_ok,
          "%s: the outcome was pushed alone" % name)
    check("rows_total" not in g, "%s: the success PUT replaced the earlier job metrics" % name)

    rc, _, err = ferry("run", *key, "--", "sh", "-c", 'echo "job_exit_code 7" > "$FERRY_METRICS_FILE"; exit 0')
    check(rc == 0 and "refused" in err and value(group(port, labels), "job_exit_code") == 0,
          "%s: a job metric clashing with the outcome is refused, the outcome still pushed (%d, %r)" % (name, rc, err))


def unreachable_suite():
    port = closed_port()
    gw = "http://127.0.0.1:%d" % port
    t0 = time.time()
    rc, _, err = ferry("push", "--gateway", gw, "--job", "j", "--retries", "2", "--timeout", "2s", stdin=b"a 1\n")
    elapsed = time.time() - t0
    check(rc == 3, "unreachable gateway exits 3 (got %d)" % rc)
    check(err.count("retrying in") == 2 and "retrying in 250 ms" in err and "retrying in 500 ms" in err,
          "two retries with backoff 250 then 500 ms: %r" % err)
    check("failed after 3 attempts" in err, "final message counts the attempts: %r" % err)
    check(0.7 <= elapsed < 10, "backoff waited about 0.75 s (took %.2f s)" % elapsed)

    # a gateway that accepts the connection and never answers: each attempt ends at --timeout
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    try:
        t0 = time.time()
        rc, _, err = ferry("push", "--gateway", "http://127.0.0.1:%d" % mute.getsockname()[1], "--job", "j",
                           "--timeout", "300ms", "--retries", "1", stdin=b"a 1\n")
        elapsed = time.time() - t0
    finally:
        mute.close()
    check(rc == 3 and "timed out" in err.lower(), "a silent gateway times out, exit 3 (got %d: %r)" % (rc, err))
    check(0.8 <= elapsed < 5, "two attempts of 300 ms and a 250 ms backoff (took %.2f s)" % elapsed)

    rc, _, err = ferry("run", "--gateway", gw, "--job", "j", "--retries", "1", "--", "sh", "-c", "exit 4")
    check(rc == 4, "gateway down: the job's exit code 4 is kept (got %d)" % rc)
    check("was not pushed; exit status 4 is the command's" in err, "gateway down: stderr says the push failed: %r" % err)
    rc, _, err = ferry("run", "--gateway", gw, "--job", "j", "--retries", "0", "--", "true")
    check(rc == 0 and "was not pushed" in err, "gateway down: a successful job still exits 0 (%d)" % rc)

    rc, _, err = ferry("run", "--job", "j", "--", "true")
    check(rc == 125 and "--gateway is required" in err, "ferry run usage error exits 125 (%d: %r)" % (rc, err))
    rc, _, err = ferry("push", "--gateway", gw, "--job", "j", os.path.join(TMP, "missing.prom"))
    check(rc == 1 and "cannot read" in err, "missing file is a usage error, nothing sent (%d: %r)" % (rc, err))


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers with the scripted statuses in order and records what it got."""
    script, got = [], []

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        Stub.got.append((self.command, self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
        status = Stub.script.pop(0) if Stub.script else 200
        body = b"stub says %d\n" % status
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_DELETE = do_PUT

    def log_message(self, *a):
        pass


def retry_suite():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    gw = "http://127.0.0.1:%d/prefix/" % srv.server_address[1]
    try:
        Stub.script, Stub.got = [503, 500], []
        rc, _, err = ferry("push", "--gateway", gw, "--job", "j", stdin=b"a 1\n")
        check(rc == 0 and len(Stub.got) == 3, "5xx retried until a 200 (%d, %d requests)" % (rc, len(Stub.got)))
        check("HTTP 503: stub says 503" in err, "the 5xx answer is shown while retrying: %r" % err)
        m, path, ctype, body = Stub.got[-1]
        check((m, path, body) == ("PUT", "/prefix/metrics/job/j", b"a 1\n"), "route prefix kept: %r" % (Stub.got[-1],))
        check(ctype == "text/plain; version=0.0.4; charset=utf-8", "content type of the text format: %r" % ctype)
        Stub.script, Stub.got = [503, 503], []
        rc, _, err = ferry("push", "--gateway", gw, "--job", "j", "--retries", "1", stdin=b"a 1\n")
        check(rc == 3 and len(Stub.got) == 2, "5xx on every attempt exits 3 (%d, %d requests)" % (rc, len(Stub.got)))
        Stub.script, Stub.got = [404], []
        rc, _, err = ferry("push", "--gateway", gw, "--job", "j", stdin=b"a 1\n")
        check(rc == 2 and len(Stub.got) == 1, "4xx not retried, exit 2 (%d, %d requests)" % (rc, len(Stub.got)))
        Stub.script, Stub.got = [], []
        rc, _, err = ferry("push", "--gateway", gw, "--job", "j", "--delete")
        check(rc == 0 and Stub.got and Stub.got[0][0] == "DELETE" and Stub.got[0][3] == b"",
              "DELETE sends no body: %r" % (Stub.got,))
    finally:
        srv.shutdown()
        srv.server_close()


def tls_suite():
    if not os.path.exists(os.path.join(WEBCONFIG, "web-tls.yml")):
        print("SKIP: no webconfig fixtures")
        return
    port = pghttp.free_port()
    s = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                       "--web.config.file=" + os.path.join(WEBCONFIG, "web-tls.yml")], port, "ferry-tls",
                      log_path=os.path.join(TMP, "ferry-tls.log"), ready_check=pghttp.Server.listening)
    s.start(timeout=10)
    try:
        ca = os.path.join(WEBCONFIG, "cert.pem")
        pw = write("pw", b"secret\n")
        gw = "https://127.0.0.1:%d" % port
        deadline = time.time() + 10
        rc = -1
        while time.time() < deadline and rc != 0:
            rc, _, err = ferry("push", "--gateway", gw, "--job", "tls", "--ca-file", ca, "--username", "alice",
                               "--password-file", pw, "--retries", "0", stdin=b"t 1\n")
            time.sleep(0.05 if rc else 0)
        check(rc == 0, "TLS with --ca-file, basic auth from --password-file (got %d: %s)" % (rc, err))
        rc, _, err = ferry("push", "--gateway", "https://alice:secret@127.0.0.1:%d/" % port, "--job", "tls", "--insecure",
                           stdin=b"t 2\n")
        check(rc == 0, "credentials in the URL, --insecure (got %d: %s)" % (rc, err))
        rc, _, err = ferry("push", "--gateway", "https://alice:wrong@127.0.0.1:%d" % port, "--job", "tls", "--ca-file", ca,
                           stdin=b"t 3\n")
        check(rc == 2 and "HTTP 401" in err, "wrong password: 401, exit 2 (got %d: %r)" % (rc, err))
        check("wrong" not in err and "alice:xxxxx@" in err, "the password is not printed: %r" % err)
        rc, _, err = ferry("run", "--gateway", "https://alice:wrong@127.0.0.1:%d" % port, "--job", "tls", "--ca-file", ca,
                           "--", "sh", "-c", 'echo "m 1" > "$FERRY_METRICS_FILE"; exit 5')
        check(rc == 5 and "HTTP 401" in err and "outcome alone" not in err and "was not pushed" in err,
              "run with a 401: no second push without the file, exit status kept (got %d: %r)" % (rc, err))
        t0 = time.time()
        rc, _, err = ferry("push", "--gateway", gw, "--job", "tls", "--retries", "3", stdin=b"t 4\n")
        check(rc == 3 and "retrying" not in err and time.time() - t0 < 5,
              "an untrusted certificate fails at once, exit 3 (got %d: %r)" % (rc, err))
    finally:
        s.stop()


def gateway_suites(name, argv, port):
    s = pghttp.Server(argv, port, name, log_path=os.path.join(TMP, name + ".log"))
    with s:
        gw = "http://127.0.0.1:%d" % port
        push_suite(name, gw, port)
        run_suite(name, gw, port)


def main():
    rc, _, err = ferry("--help")
    check("ferry push" in err and "ferry run" in err, "ferry --help mentions push and run")
    rc, out, _ = ferry("push", "--help")
    check(rc == 0 and "Exit status: 0 pushed, 1 usage error, 2 rejected" in out, "ferry push --help")
    rc, out, _ = ferry("run", "--help")
    check(rc == 0 and "FERRY_METRICS_FILE" in out, "ferry run --help")

    port = pghttp.free_port()
    gateway_suites("ferry", [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2"], port)
    if REFERENCE:
        port = pghttp.free_port()
        gateway_suites("pushgateway", [REFERENCE, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file="],
                       port)
    else:
        print("SKIP: no reference Pushgateway, ran against Ferry only")
    unreachable_suite()
    retry_suite()
    tls_suite()
    return check.summary()


if __name__ == "__main__":
    t = time.time()
    rc = main()
    print("took %.1f s" % (time.time() - t))
    sys.exit(rc)

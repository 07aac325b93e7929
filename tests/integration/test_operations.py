#!/usr/bin/env python3
"""test_operations.py: running Ferry as an operator does (docs/operations.md, "Running"; issue 16).

Real build/ferry processes on free 127.0.0.1 ports, each stopped by PID with bounded waits:
  - socket activation: `systemd-socket-activate -l ADDR -l ADDR build/ferry --web.systemd-socket`: push through one
    activated socket, scrape through the other, every loop holds both; without LISTEN_FDS a clear error, exit 1;
  - the default thread count under `taskset -c 0` (1, from the affinity mask, in /api/v1/status and the log);
  - --web.probes-without-auth: with basic_auth_users the probes answer 401 by default, 200 with the flag, and every
    other endpoint still 401;
  - --web.config.file headers appear exactly once on 200, 400, 401, 404, 405 and 503 answers (X-Content-Type-Options
    was sent twice on errors);
  - the rejected-push log line carries source=<client address:port>, as 1.5.1's;
  - the persistence health metrics: a snapshot that cannot be written counts a failure and keeps the last success
    time, the next good one sets it; durable mode's last log sync time;
  - Pushgateway 1.11's --push.enable-utf8-names: quoted UTF-8 names in a text push, a UTF-8 name in a protobuf push
    and a U__ grouping-key label name are taken; scrapes escape them with underscores by default and quote them with
    `escaping=allow-utf-8` (Content-Type says which); bad names are a 400 that changes nothing; DELETE decodes U__
    too; a restart with the flag restores the group (and the durable log replays it after SIGKILL), one without it
    refuses the group with a log line. Without the flag the same push is today's 400 and the scrape's Content-Type
    has no escaping parameter.
Usage: test_operations.py path/to/ferry
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
check = pghttp.Checks()
free_port = pghttp.free_port
# alice / secret, bcrypt cost 4 (tests/fixtures/webconfig/web-tls.yml's user)
ALICE = "alice: $2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.\n"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}


def start(args, name, output="pipe", **kw):
    """build/ferry on a free port, with args; kw to pghttp.Server (health="/-/ready" waits for loading)."""
    port = free_port()
    argv = [FERRY, "--web.listen-address=127.0.0.1:%d" % port] + args
    return pghttp.Server(argv, port, name, output=output, **kw).start(timeout=15)


def metric(port, name, headers=None):
    """The value of an unlabelled series on /metrics, or None."""
    st, _, body = pghttp.request(port, "GET", "/metrics", headers=headers)
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M) if st == 200 else None
    return float(m.group(1)) if m else None


def wait_for(cond, timeout, poll=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(poll)
    return cond()


def raw_headers(port, method, path, auth=True, body=b""):
    """One HTTP/1.1 request on a raw socket: (status, [(lower-case name, value)] in wire order, repeats kept)."""
    req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: %d\r\n" % (method, path, len(body))
    if auth:
        req += "Authorization: %s\r\n" % AUTH["Authorization"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    status = int(head[0].split()[1])
    return status, [(k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in head[1:])]


def socket_activation(tmp):
    ports = [free_port(), free_port()]
    argv = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % ports[0], "-l", "127.0.0.1:%d" % ports[1]]
    # the tool gives the child a clean environment: the sanitizers' options must be passed on by name
    argv += ["-E" + k for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ]
    argv += [FERRY, "--web.systemd-socket", "--web.threads=2", "--web.listen-address=127.0.0.1:1"]
    # systemd-socket-activate execs ferry (same PID) on the first connection, which the readiness probe makes
    srv = pghttp.Server(argv, ports[1], "ferry-activated", output="pipe").start(timeout=15)
    try:
        st, _, _ = pghttp.request(ports[0], "PUT", "/metrics/job/activated", body=b"activated_metric 7\n")
        check(st == 200, "a push through the first activated socket answers 200 (got %d)" % st)
        st, _, body = pghttp.request(ports[1], "GET", "/metrics")
        check(st == 200 and b'activated_metric{instance="",job="activated"} 7' in body,
              "the scrape through the second activated socket has it")
        # every loop accepts on every activated socket: 2 loops x 2 sockets = 4 descriptors of 2 socket inodes
        inodes = {}
        fd_dir = "/proc/%d/fd" % srv.proc.pid
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if int(fd) in (3, 4):
                inodes.setdefault(target, 0)
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target in inodes:
                inodes[target] += 1
        check(len(inodes) == 2 and all(n == 2 for n in inodes.values()),
              "each of the 2 loops holds each activated socket (got %r)" % inodes)
        st, _, body = pghttp.request(ports[1], "GET", "/api/v1/status")
        check(b'"web.systemd-socket":"true"' in body, "/api/v1/status shows web.systemd-socket=true")
    finally:
        code = srv.stop(timeout=10)
    check(code == 0 and not srv.forced, "the activated ferry stops on SIGTERM with 0 (got %r)" % code)
    err = srv.stderr or ""
    check("Listening on systemd activated listeners instead of port listeners." in err,
          "exporter-toolkit's log line for activated listeners")
    check(("address=127.0.0.1:%d" % ports[0]) in err and ("address=127.0.0.1:%d" % ports[1]) in err,
          "each activated socket's address is logged")
    check(re.search(r"\"Listening on\" address=127\.0\.0\.1:1\b", err) is None, "--web.listen-address is ignored, as exporter-toolkit does")

    # not activated: a clear error naming what is missing, exit 1
    rows = [
        ({}, "LISTEN_FDS is not set", "no LISTEN_FDS"),
        ({"LISTEN_FDS": "1", "LISTEN_PID": "1"}, "LISTEN_PID=1 is another process", "another process's variables"),
        ({"LISTEN_FDS": "two", "LISTEN_PID": "$$"}, "LISTEN_FDS=two is not a number", "a malformed count"),
    ]
    for env, want, note in rows:
        e = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        e.update(env)
        # $$: the PID the variables are for is the shell's, which execs ferry
        cmd = "exec %s --web.systemd-socket" % FERRY
        if e.get("LISTEN_PID") == "$$":
            del e["LISTEN_PID"]
            cmd = "LISTEN_PID=$$ " + cmd
        p = subprocess.run(["sh", "-c", cmd], env=e, capture_output=True, text=True, timeout=20)
        check(p.returncode == 1, "%s: exit 1 (got %d)" % (note, p.returncode))
        check('msg="HTTP server stopped" err="no socket activation file descriptors found' in p.stderr
              and want in p.stderr, "%s: the error says %r: %s" % (note, want, p.stderr[-300:]))


def threads_under_taskset():
    port = free_port()
    argv = ["taskset", "-c", "0", FERRY, "--web.listen-address=127.0.0.1:%d" % port]
    srv = pghttp.Server(argv, port, "ferry-taskset", output="pipe").start(timeout=15)
    try:
        st, _, body = pghttp.request(port, "GET", "/api/v1/status")
        check(b'"web.threads":"1"' in body, "taskset -c 0: web.threads is 1 in /api/v1/status")
    finally:
        srv.stop(timeout=10)
    check('msg="HTTP worker threads" threads=1 from="affinity mask"' in (srv.stderr or ""),
          "taskset -c 0: the start-up log says 1 thread, from the affinity mask")


# path, method, status with credentials; every one is 401 without them unless it is a probe with the flag
ENDPOINTS = [
    ("/-/healthy", "GET", 200, True),
    ("/-/ready", "GET", 200, True),
    ("/-/healthy", "HEAD", 405, False),  # 1.5.1's probes are GET only
    ("/metrics", "GET", 200, False),
    ("/api/v1/status", "GET", 200, False),
    ("/api/v1/metrics", "GET", 200, False),
    ("/", "GET", 200, False),
    ("/metrics/job/x", "PUT", 200, False),
    ("/-/healthy/", "GET", 301, False),  # a redirect to the probe is not the probe: it needs credentials
    ("/-/healthy/x", "GET", 404, False),  # nor is a look-alike
    ("/-/healthy", "DELETE", 405, False),
    ("/-/ready?x=1", "GET", 200, True),
]


def probes(tmp):
    cfg = os.path.join(tmp, "auth.yml")
    with open(cfg, "w") as f:
        f.write("basic_auth_users:\n  " + ALICE)
    for flag in (False, True):
        args = ["--web.threads=2", "--web.config.file=" + cfg] + (["--web.probes-without-auth"] if flag else [])
        srv = start(args, "ferry-probes")
        try:
            for path, method, with_auth, probe in ENDPOINTS:
                body = b"m 1\n" if method == "PUT" else None
                st, _, _ = pghttp.request(srv.port, method, path, body=body)
                want = with_auth if (flag and probe) else 401
                check(st == want, "%s %s without credentials, flag %s: %d (got %d)" % (method, path, flag, want, st))
                st, _, _ = pghttp.request(srv.port, method, path, body=body, headers=AUTH)
                check(st == with_auth, "%s %s with credentials, flag %s: %d (got %d)" % (method, path, flag, with_auth, st))
        finally:
            srv.stop(timeout=10)


def headers_once(tmp):
    cfg = os.path.join(tmp, "headers.yml")
    with open(cfg, "w") as f:
        f.write("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n"
                "basic_auth_users:\n  " + ALICE)
    # a replica whose only peer never answers stays unready: its /-/ready and scrapes answer 503
    peer, me = free_port(), free_port()
    srv = start(["--web.threads=2", "--web.config.file=" + cfg, "--cluster.listen-address=127.0.0.1:%d" % me,
                 "--cluster.peer=127.0.0.1:%d" % me, "--cluster.peer=127.0.0.1:%d" % peer], "ferry-headers")
    rows = [
        ("GET", "/-/healthy", True, b"", 200, "a normal answer"),
        ("GET", "/-/healthy", False, b"", 401, "no credentials"),
        ("GET", "/nope", True, b"", 404, "no such route"),
        ("DELETE", "/-/healthy", True, b"", 405, "wrong method"),
        ("GET", "/-/ready", True, b"", 503, "an unready replica"),
        ("PUT", "/metrics/job/a/b", True, b"", 400, "odd grouping key"),
    ]
    try:
        for method, path, auth, body, want, note in rows:
            st, hs = raw_headers(srv.port, method, path, auth, body)
            check(st == want, "%s: %d (got %d)" % (note, want, st))
            for name in ("x-content-type-options", "x-frame-options"):
                got = [v for k, v in hs if k == name]
                check(len(got) == 1, "%s (%d): %s once, got %r" % (note, st, name, got))
    finally:
        srv.stop(timeout=10)


def source_in_log():
    srv = start(["--web.threads=2"], "ferry-source")
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        local = "%s:%d" % s.getsockname()[:2]
        body = b"ts_metric 1 1234\n"
        s.sendall(b"PUT /metrics/job/src HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        check(data.startswith(b"HTTP/1.1 400"), "a push with a timestamp is refused")
    finally:
        srv.stop(timeout=10)
    want = ('level=error msg="pushed metrics are invalid or inconsistent with existing metrics" method=PUT source=%s '
            'err="pushed metrics must not have timestamps"' % local)
    check(want in (srv.stderr or ""), "the log line names the client, as 1.5.1: %s" % want)


def persistence_health(tmp):
    path = os.path.join(tmp, "p.snap")
    # ready, not just up: pushes answer 503 while the persistence file loads
    srv = start(["--web.threads=2", "--persistence.file=" + path, "--persistence.interval=100ms"], "ferry-persist",
                health="/-/ready", ready_status=(200,))
    try:
        port = srv.port
        t0 = time.time()
        check(metric(port, "ferry_persistence_snapshot_failures_total") == 0, "no snapshot failure at start")
        pghttp.request(port, "PUT", "/metrics/job/p", body=b"p 1\n")
        ok = wait_for(lambda: (metric(port, "ferry_persistence_last_snapshot_success_timestamp_seconds") or 0) >= t0, 10)
        check(ok, "a written snapshot sets the success time")
        check(os.path.isfile(path), "the snapshot file exists")
        # the file's place taken by a directory: the rename of the next snapshot fails (as root too)
        os.remove(path)
        os.mkdir(path)
        before = metric(port, "ferry_persistence_last_snapshot_success_timestamp_seconds")
        pghttp.request(port, "PUT", "/metrics/job/p", body=b"p 2\n")
        failed = wait_for(lambda: (metric(port, "ferry_persistence_snapshot_failures_total") or 0) >= 1, 10)
        check(failed, "a snapshot that cannot be written counts a failure")
        check(metric(port, "ferry_persistence_last_snapshot_success_timestamp_seconds") == before,
              "and leaves the success time as it was")
        os.rmdir(path)
        t1 = time.time()
        ok = wait_for(lambda: (metric(port, "ferry_persistence_last_snapshot_success_timestamp_seconds") or 0) >= t1, 10)
        check(ok, "the next good snapshot sets the success time again")
        check(os.path.isfile(path), "and writes the file")
        check(metric(port, "ferry_persistence_last_log_sync_timestamp_seconds") is None,
              "no log metrics without --persistence.durable")
    finally:
        srv.stop(timeout=10)

    dpath = os.path.join(tmp, "d.snap")
    srv = start(["--web.threads=2", "--persistence.file=" + dpath, "--persistence.durable"], "ferry-durable",
                health="/-/ready", ready_status=(200,))
    try:
        t0 = time.time()
        st, _, _ = pghttp.request(srv.port, "PUT", "/metrics/job/d", body=b"d 1\n")
        check(st == 200, "a durable push answers 200")
        synced = metric(srv.port, "ferry_persistence_last_log_sync_timestamp_seconds") or 0
        check(synced >= t0 - 0.01 and synced <= time.time() + 0.01,
              "an acknowledged durable push has set the last log sync time (%r, pushed at %r)" % (synced, t0))
        check(metric(srv.port, "ferry_persistence_log_sync_failures_total") == 0, "no log sync failure")
    finally:
        srv.stop(timeout=10)


UTF8_TEXT = ('# HELP "my.metric" A dotted counter.\n# TYPE "my.metric" counter\n'
             '{"my.metric","label.name"="v",plain="p"} 1\n').encode()
ALLOW_UTF8 = {"Accept": "text/plain;version=0.0.4;escaping=allow-utf-8"}


def utf8_names(tmp):
    path = os.path.join(tmp, "utf8.db")
    args = ["--web.threads=2", "--push.enable-utf8-names", "--persistence.file=" + path, "--persistence.interval=100ms"]
    srv = start(args, "ferry-utf8", health="/-/ready", ready_status=(200,))
    try:
        st, _, body = pghttp.request(srv.port, "PUT", "/metrics/job/j/U__dotted_2e_key/kv", body=UTF8_TEXT)
        check(st == 200, "a text push with quoted names and a U__ grouping label answers 200: %r" % body)
        pb = pghttp.pb_family("pb.metric", pghttp.GAUGE, [pghttp.pb_metric([("lbl.x", "1")], 2.0, pghttp.GAUGE)])
        st, _, body = pghttp.request(srv.port, "PUT", "/metrics/job/j2", body=pb,
                                     headers={"Content-Type": pghttp.PB_CONTENT_TYPE})
        check(st == 200, "a protobuf push with UTF-8 names answers 200: %r" % body)
        for path_, text, want in (
                ("/metrics/job/bad", b'{"a\xff"} 1\n', 'metric name "a\\xff" is not valid UTF-8'),
                ("/metrics/job/bad", b'{"a\nb"} 1\n', 'metric name "a" contains unescaped new-line'),
                ("/metrics/job/bad/U______x/1", b"a 1\n", 'improper label name "U______x"')):
            st, _, body = pghttp.request(srv.port, "PUT", path_, body=text)
            check(st == 400 and want in body.decode("utf-8", "replace"), "bad names are a 400 naming them: %r" % body)

        st, h, body = pghttp.request(srv.port, "GET", "/metrics")
        text = body.decode()
        check(h.get("content-type") == "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
              "the default scrape says escaping=underscores: %r" % h.get("content-type"))
        check('my_metric{dotted_key="kv",instance="",job="j",label_name="v",plain="p"} 1\n' in text
              and "# HELP my_metric A dotted counter.\n# TYPE my_metric counter\n" in text
              and 'pb_metric{instance="",job="j2",lbl_x="1"} 2\n' in text,
              "the default scrape escapes names with underscores:\n%s" % text)
        check("job=\"bad\"" not in text, "refused pushes stored nothing")

        st, h, body = pghttp.request(srv.port, "GET", "/metrics", headers=ALLOW_UTF8)
        text = body.decode()
        check(h.get("content-type") == "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8",
              "escaping=allow-utf-8 is echoed: %r" % h.get("content-type"))
        check('{"my.metric","dotted.key"="kv",instance="",job="j","label.name"="v",plain="p"} 1\n' in text
              and '# HELP "my.metric" A dotted counter.\n# TYPE "my.metric" counter\n' in text
              and '{"pb.metric",instance="",job="j2","lbl.x"="1"} 2\n' in text,
              "escaping=allow-utf-8 quotes the names:\n%s" % text)

        st, _, body = pghttp.request(srv.port, "GET", "/api/v1/metrics")
        check(st == 200 and '"dotted.key":"kv"' in body.decode() and '"my.metric"' in body.decode(),
              "/api/v1/metrics shows the names as pushed")
        st, _, _ = pghttp.request(srv.port, "DELETE", "/metrics/job/j2")
        check(st == 202, "DELETE answers 202")
    finally:
        srv.stop(timeout=10)
    srv = start(args, "ferry-utf8-again", health="/-/ready", ready_status=(200,))
    try:
        st, _, body = pghttp.request(srv.port, "GET", "/metrics", headers=ALLOW_UTF8)
        text = body.decode()
        check('{"my.metric","dotted.key"="kv",instance="",job="j","label.name"="v",plain="p"} 1\n' in text
              and "pb.metric" not in text, "a restart with the flag restores the UTF-8 group (and not the deleted one)")
        st, _, _ = pghttp.request(srv.port, "DELETE", "/metrics/job/j/U__dotted_2e_key/kv")
        st2, _, body = pghttp.request(srv.port, "GET", "/metrics", headers=ALLOW_UTF8)
        check(st == 202 and "my.metric" not in body.decode(), "DELETE decodes the U__ name and removes the group")
        st, _, _ = pghttp.request(srv.port, "PUT", "/metrics/job/j/U__dotted_2e_key/kv", body=UTF8_TEXT)
        check(st == 200, "pushed again for the restart without the flag")
    finally:
        srv.stop(timeout=10)
    srv = start(args[:1] + args[2:], "ferry-utf8-off", output="log", health="/-/ready", ready_status=(200,))
    try:
        st, h, body = pghttp.request(srv.port, "GET", "/metrics", headers=ALLOW_UTF8)
        text = body.decode()
        check("my.metric" not in text and "my_metric" not in text
              and h.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
              "without the flag the UTF-8 group is not restored, the Content-Type is 1.5.1's: %r" % h.get("content-type"))
        check("could not restore a persisted group" in srv.log(), "the refused group is logged")
        st, _, body = pghttp.request(srv.port, "PUT", "/metrics/job/k", body=UTF8_TEXT)
        check(st == 400 and "invalid metric name" in body.decode(),
              "without the flag quoted names are today's 400: %r" % body)
    finally:
        srv.stop(timeout=10)


def utf8_durable(tmp):
    """--persistence.durable: a UTF-8 push acknowledged before a SIGKILL is replayed from the log."""
    args = ["--web.threads=2", "--push.enable-utf8-names", "--persistence.file=" + os.path.join(tmp, "utf8-durable.db"),
            "--persistence.durable"]
    srv = start(args, "ferry-utf8-durable", health="/-/ready", ready_status=(200,))
    try:
        st, _, _ = pghttp.request(srv.port, "PUT", "/metrics/job/j/U__dotted_2e_key/kv", body=UTF8_TEXT)
        check(st == 200, "a durable UTF-8 push answers 200")
    finally:
        srv.stop(sig=signal.SIGKILL, timeout=10)
    srv = start(args, "ferry-utf8-durable-again", health="/-/ready", ready_status=(200,))
    try:
        st, _, body = pghttp.request(srv.port, "GET", "/metrics", headers=ALLOW_UTF8)
        check('{"my.metric","dotted.key"="kv",instance="",job="j","label.name"="v",plain="p"} 1\n' in body.decode(),
              "the log replays the UTF-8 names after SIGKILL")
    finally:
        srv.stop(timeout=10)


def main():
    if shutil.which("systemd-socket-activate") is None or shutil.which("taskset") is None:
        print("FAIL: systemd-socket-activate (Debian systemd) and taskset (util-linux) are needed: "
              "scripts/install-deps.sh test installs them")
        return 1
    tmp = tempfile.mkdtemp(prefix="fy-ops-")
    try:
        for name, fn in (("socket activation", lambda: socket_activation(tmp)), ("threads", threads_under_taskset),
                         ("probes", lambda: probes(tmp)), ("headers", lambda: headers_once(tmp)),
                         ("source", source_in_log), ("persistence health", lambda: persistence_health(tmp)),
                         ("utf8 names", lambda: utf8_names(tmp)), ("utf8 durable", lambda: utf8_durable(tmp))):
            t = time.monotonic()
            fn()
            print("%s: %.1fs" % (name, time.monotonic() - t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

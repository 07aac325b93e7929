#!/usr/bin/env python3
"""test_cli.py: `ferry push` and `ferry run` end to end (issues #6 and #17) against build/ferry on a free 127.0.0.1
port, and the same scenarios against the reference Pushgateway 1.5.1 when its path is given (the requests must be
accepted identically).

push: PUT, POST (--add), DELETE, stdin, grouping labels with '/' and empty values (checked in /api/v1/metrics), a
bad body (exit 2 with the gateway's message), no gateway (retries with backoff, exit 3), a silent gateway
(--timeout per attempt), 5xx retried and 4xx not (a scripted stub gateway), TLS with a CA file and basic auth (password file, URL credentials, wrong password).
run: success (outcome and last-success pushed), failure (exit code kept, last success of the earlier run survives),
command not found (127), killed by a signal, SIGTERM forwarded, gateway down (job's exit code unchanged, stderr says
so), metrics written to $FERRY_METRICS_FILE (pushed, file removed) and a malformed one (outcome still pushed).
#17: the start push (job_running 1 while a job hangs, the last success kept), --interval/--ttl (push_alive 0 for a hung
job, Ferry only: the Pushgateway ignores the headers), --timeout (job and grandchild killed, SIGTERM then SIGKILL, exit
124, pushed as timed out), --lock (an overlapping run skipped, exit 75, pushed), the stderr tail, FERRY_* variables
and flags overriding them, --instance-hostname, --textfile-dir when the gateway is down (bounded retries, atomic
rename, the file parses; removed after a successful push), client certificates and FERRY_* credentials against a
gateway that requires them (Ferry and the Pushgateway).
Usage: test_cli.py path/to/ferry [path/to/prometheus-pushgateway] [path/to/tests/fixtures/webconfig]
"""
import base64
import http.client
import http.server
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
                          "job_last_success_timestamp_seconds", "job_running", "job_start_time_seconds", "job_timed_out",
                          "push_failure_time_seconds", "push_time_seconds", "rows_total"],
          "%s: outcome and job metrics pushed: %r" % (name, families(g)))
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
    tail = label_of(group(port, labels), "job_stderr_tail_info", "stderr")
    check(tail == "ferry run: cannot run /nonexistent/cmd: No such file or directory",
          "%s: the reason is the stderr tail: %r" % (name, tail))

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


# A job that waits (at most 20 s) until the test creates the file %s: the test decides when it ends.
GATE = 'i=0; while [ ! -e "%s" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'


def wait_file(path, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.02)
    return False


def touch(path, data=b"x"):
    with open(path, "wb") as f:
        f.write(data)


def release(proc, go):
    """Lets a job that waits for the file go end: its exit code (stopped by PID after 25 s)."""
    touch(go)
    try:
        return proc.wait(timeout=25)
    finally:
        if proc.poll() is None:
            pghttp.stop_process(proc)


def pid_gone(pid):
    """True when pid has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def scraped(port, family, job):
    """The value of family's series for job= in /metrics (Ferry's computed push_* families), or None."""
    _, _, body = pghttp.request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(family + "{") and ('job="%s"' % job) in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def label_of(g, family, label):
    if g is None or family not in g:
        return None
    return g[family]["metrics"][0]["labels"].get(label, "")


def start_suite(name, gw, port, is_ferry):
    """The start push makes a running (or hung) job visible, keeps the last success; --interval and --ttl."""
    key = ["--gateway", gw, "--job", "hang", "--label", "db=main"]
    labels = {"job": "hang", "db": "main"}
    rc, _, err = ferry("run", *key, "--", "true")
    last_ok = value(group(port, labels), "job_last_success_timestamp_seconds")
    check(rc == 0 and last_ok is not None, "%s: a first success (%d: %r)" % (name, rc, err))
    started, go = os.path.join(TMP, name + "-started"), os.path.join(TMP, name + "-go")
    proc = subprocess.Popen([FERRY, "run"] + key + ["--interval", "1s", "--ttl", "1h", "--", "sh", "-c",
                                                     "echo x > %s; %s; exit 0" % (started, GATE % go)],
                            env=ENV, stderr=subprocess.PIPE)
    try:
        check(wait_file(started), "%s: the job started" % name)
        g = group(port, labels)
        check(value(g, "job_running") == 1, "%s: start push: job_running 1 while the job runs (%r)" % (name, g))
        check(abs(value(g, "job_start_time_seconds") - time.time()) < 5, "%s: start time of this run pushed" % name)
        check(value(g, "job_last_success_timestamp_seconds") == last_ok and value(g, "job_exit_code") == 0,
              "%s: the start push (a POST) keeps the previous run's last success and outcome" % name)
        if is_ferry:
            check(scraped(port, "push_interval_seconds", "hang") == 1, "%s: X-Ferry-Interval: 1s declared" % name)
            exp = scraped(port, "push_expiry_time_seconds", "hang")
            check(exp is not None and 3500 < exp - time.time() < 3700, "%s: X-Ferry-TTL: 1h declared (%r)" % (name, exp))
            check(scraped(port, "push_alive", "hang") == 1, "%s: push_alive 1 right after the start push" % name)
            deadline, alive = time.time() + 5, 1
            while time.time() < deadline and alive != 0:
                time.sleep(0.1)
                alive = scraped(port, "push_alive", "hang")
            check(alive == 0, "%s: a job hung past its interval (grace 0s) shows push_alive 0" % name)
    finally:
        rc = release(proc, go)
    g = group(port, labels)
    check(rc == 0 and value(g, "job_running") == 0, "%s: the end push sets job_running 0 (%d)" % (name, rc))
    check(value(g, "job_last_success_timestamp_seconds") > last_ok, "%s: and a new last success" % name)
    if is_ferry:
        check(scraped(port, "push_alive", "hang") == 1, "%s: the end push makes the group alive again" % name)


# The job of the timeout tests: writes its pid and its grandchild's, says so on stderr, then sleeps. $3 = "ignore"
# makes the job itself ignore SIGTERM; the grandchild always does, so only the SIGKILL stops it.
TIMEOUT_JOB = b"""#!/bin/sh
[ "$3" = ignore ] && trap "" TERM
echo $$ > "$1"
sh -c 'trap "" TERM; echo $$ > "$0"; exec sleep 30' "$2" &
echo "working on it" >&2
sleep 30
"""


def timeout_suite(name, gw, port):
    """--timeout: the whole process group stopped, exit 124, pushed as timed out; the last success survives."""
    job = write("timeout-job.sh", TIMEOUT_JOB)
    os.chmod(job, 0o755)
    key = ["--gateway", gw, "--job", "slow"]
    rc, _, _ = ferry("run", *key, "--", "true")
    last_ok = value(group(port, {"job": "slow"}), "job_last_success_timestamp_seconds")
    cases = [  # (job ignores SIGTERM, expected signal, minimum and maximum seconds, note)
        (False, 15, 1.4, 6, "the job dies of SIGTERM; its grandchild ignores it and gets the SIGKILL 1 s later"),
        (True, 9, 1.4, 6, "the job ignores SIGTERM too: SIGKILL after --kill-after"),
    ]
    for ignore, sig, lo, hi, note in cases:
        ch, gc = os.path.join(TMP, "child.pid"), os.path.join(TMP, "grandchild.pid")
        for f in (ch, gc):
            if os.path.exists(f):
                os.unlink(f)
        t0 = time.time()
        rc, _, err = ferry("run", *key, "--timeout", "400ms", "--kill-after", "1s", "--", job, ch, gc,
                           "ignore" if ignore else "no")
        took = time.time() - t0
        g = group(port, {"job": "slow"})
        check(rc == 124, "%s: %s: exit 124 (got %d: %r)" % (name, note, rc, err))
        check(lo <= took < hi, "%s: %s: took %.2f s" % (name, note, took))
        pids = [int(open(f).read()) for f in (ch, gc) if os.path.exists(f)]
        check(len(pids) == 2 and all(pid_gone(p) for p in pids), "%s: %s: job and grandchild are gone %r" % (name, note, pids))
        check(value(g, "job_timed_out") == 1 and value(g, "job_exit_code") == 124 and value(g, "job_killed_by_signal") == sig,
              "%s: %s: timed out, 124, signal %d pushed (%r)" % (name, note, sig, g and {k: value(g, k) for k in families(g)}))
        check(label_of(g, "job_stderr_tail_info", "stderr") == "working on it", "%s: the stderr tail kept" % name)
        check(value(g, "job_last_success_timestamp_seconds") == last_ok, "%s: the last success survives" % name)
        check("ran past --timeout" in err and "working on it" in err, "%s: stderr says so: %r" % (name, err))

    # SIGTERM to ferry run (systemd stopping the unit): forwarded to the group; the grandchild that ignores it is
    # killed once the job has ended and --kill-after has passed, not left behind.
    ch, gc = os.path.join(TMP, "child2.pid"), os.path.join(TMP, "grandchild2.pid")
    for f in (ch, gc):
        if os.path.exists(f):
            os.unlink(f)
    proc = subprocess.Popen([FERRY, "run"] + key + ["--kill-after", "500ms", "--", job, ch, gc, "no"], env=ENV,
                            stderr=subprocess.PIPE)
    check(wait_file(ch) and wait_file(gc), "%s: the job and its grandchild started" % name)
    t0 = time.time()
    rc = pghttp.stop_process(proc)
    took = time.time() - t0
    pids = [int(open(f).read()) for f in (ch, gc) if os.path.exists(f)]
    check(rc == 143 and 0.4 <= took < 5, "%s: SIGTERM forwarded, exit 143 after the 0.5 s grace (%d, %.2f s)" % (name, rc, took))
    check(len(pids) == 2 and all(pid_gone(p) for p in pids), "%s: job and grandchild are gone after SIGTERM %r" % (name, pids))
    check(value(group(port, {"job": "slow"}), "job_timed_out") == 0, "%s: a stop is not a timeout" % name)


def lock_suite(name, gw, port):
    """--lock: a second run while the first holds the lock does not start, is pushed as skipped, exits 75."""
    key = ["--gateway", gw, "--job", "locked"]
    lock = os.path.join(TMP, name + ".lock")
    started, go, ran = (os.path.join(TMP, name + x) for x in ("-lstarted", "-lgo", "-lran"))
    proc = subprocess.Popen([FERRY, "run"] + key + ["--lock", lock, "--", "sh", "-c",
                                                     "echo x > %s; %s" % (started, GATE % go)], env=ENV, stderr=subprocess.PIPE)
    try:
        check(wait_file(started), "%s: the first run started" % name)
        t0 = time.time()
        rc, _, err = ferry("run", *key, "--lock", lock, "--", "sh", "-c", "echo x > %s" % ran)
        g = group(port, {"job": "locked"})
        check(rc == 75 and not os.path.exists(ran), "%s: the overlapping run is skipped, exit 75 (%d: %r)" % (name, rc, err))
        check(time.time() - t0 < 5 and "still holds --lock" in err, "%s: at once, and says why: %r" % (name, err))
        skipped = value(g, "job_last_skipped_timestamp_seconds")
        check(skipped is not None and abs(skipped - time.time()) < 5, "%s: the skip is pushed: %r" % (name, skipped))
        check(value(g, "job_running") == 1, "%s: the first run still shows as running" % name)
    finally:
        rc = release(proc, go)
    check(rc == 0, "%s: the first run ends normally (%d)" % (name, rc))
    rc, _, err = ferry("run", *key, "--lock", lock, "--", "sh", "-c", "echo x > %s" % ran)
    check(rc == 0 and os.path.exists(ran), "%s: once released, the lock is taken again (%d: %r)" % (name, rc, err))


def stderr_env_suite(name, gw, port):
    """The stderr tail after a failure; configuration from FERRY_* variables, flags overriding them; --instance."""
    key = ["--gateway", gw, "--job", "noisy"]
    rc, _, err = ferry("run", *key, "--stderr-lines", "3", "--", "sh", "-c",
                       r"""for i in 1 2 3 4 5 6 7; do echo "line $i" >&2; done; printf '%s\n' 'say "hi" \ bye' >&2; exit 1""")
    g = group(port, {"job": "noisy"})
    tail = label_of(g, "job_stderr_tail_info", "stderr")
    check(rc == 1 and tail == 'line 6\nline 7\nsay "hi" \\ bye', "%s: the last 3 stderr lines pushed: %r" % (name, tail))
    check(all("line %d" % i in err for i in range(1, 8)), "%s: the job's whole stderr still reaches ours: %r" % (name, err))
    rc, _, err = ferry("run", *key, "--", "sh", "-c", "echo fine >&2")
    g = group(port, {"job": "noisy"})
    check(rc == 0 and "job_stderr_tail_info" not in g, "%s: a success (PUT) clears the tail: %r" % (name, families(g)))
    rc, _, err = ferry("run", *key, "--stderr-lines", "0", "--", "sh", "-c", "echo gone >&2; exit 2")
    g = group(port, {"job": "noisy"})
    check(rc == 2 and "job_stderr_tail_info" not in g and "gone" in err, "%s: --stderr-lines 0 captures nothing" % name)

    env = dict(ENV, FERRY_URL=gw, FERRY_JOB="envjob", FERRY_LABEL_db="main", FERRY_INSTANCE="h1")
    rc, _, err = ferry("run", "--", "true", env=env)
    check(rc == 0 and group(port, {"job": "envjob", "db": "main", "instance": "h1"}) is not None,
          "%s: URL, job, labels and instance from the environment (%d: %r)" % (name, rc, err))
    rc, _, err = ferry("run", "--job", "flagjob", "--label", "db=other", "--", "true", env=env)
    check(rc == 0 and group(port, {"job": "flagjob", "db": "other", "instance": "h1"}) is not None,
          "%s: flags override the environment (%d: %r)" % (name, rc, err))
    rc, _, err = ferry("push", stdin=b"pushed_from_env 1\n", env=env)
    g = group(port, {"job": "envjob", "db": "main", "instance": "h1"})
    check(rc == 0 and value(g, "pushed_from_env") == 1, "%s: ferry push reads them too (%d: %r)" % (name, rc, err))
    rc, _, err = ferry("run", "--", "true", env=dict(env, FERRY_LABEL_db="", FERRY_INTERVAL="soon"))
    check(rc == 125 and "$FERRY_INTERVAL \"soon\" is not a duration" in err, "%s: a bad variable is named (%r)" % (name, err))
    rc, _, err = ferry("run", *key, "--instance-hostname", "--", "true")
    check(rc == 0 and group(port, {"job": "noisy", "instance": socket.gethostname()}) is not None,
          "%s: --instance-hostname (%d: %r)" % (name, rc, err))


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


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+)$')
PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_textfile(text):
    """{(name, frozenset(labels.items())): value} of a text exposition as the textfile collector reads it, or the
    first line that is not valid. promtool, when installed, checks it as well."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        if m is None:
            return line
        labels = {k: v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\') for k, v in PAIR.findall(m.group(2))}
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def textfile_suite():
    """Gateway down: bounded retries with backoff, then the outcome in --textfile-dir, written by rename; a later
    successful push removes it."""
    gw = "http://127.0.0.1:%d" % closed_port()
    tdir = os.path.join(TMP, "textfile")
    os.mkdir(tdir)
    key = ["--job", "tf/job", "--label", "db=main", "--textfile-dir", tdir]
    t0 = time.time()
    rc, _, err = ferry("run", "--gateway", gw, *key, "--retries", "2", "--push-timeout", "1s", "--", "sh", "-c",
                       "echo boom >&2; exit 3")
    took = time.time() - t0
    check(rc == 3, "textfile: the job's exit code 3 is kept (got %d)" % rc)
    check("the start of sh was not pushed; running it anyway" in err, "textfile: a failed start push does not stop the job")
    check(err.count("retrying in") == 2 and "failed after 3 attempts" in err,
          "textfile: the outcome push is retried --retries times, the start push is not: %r" % err)
    check(0.7 <= took < 5, "textfile: bounded: one start attempt, three end attempts, 0.75 s of backoff (%.2f s)" % took)
    files = os.listdir(tdir)
    check(len(files) == 1 and re.match(r"^ferry_run_tf_job_[0-9a-f]{16}\.prom$", files[0]) is not None,
          "textfile: one ferry_run_<job>_<hash>.prom file, no temporary left: %r" % files)
    if len(files) != 1:
        return
    path = os.path.join(tdir, files[0])
    check("for the textfile collector" in err and path in err, "textfile: stderr names the file: %r" % err)
    parsed = parse_textfile(open(path).read())
    check(isinstance(parsed, dict), "textfile: parses as the text format: %r" % (parsed,))
    if not isinstance(parsed, dict):
        return
    key_labels = {"job": "tf/job", "db": "main"}
    got = {n: v for (n, ls), v in parsed.items() if dict(ls) == key_labels}
    check(got.get("job_exit_code") == 3 and got.get("job_running") == 0 and got.get("job_timed_out") == 0,
          "textfile: the outcome, with the grouping key as labels: %r" % got)
    tails = [dict(ls).get("stderr") for (n, ls), _ in parsed.items() if n == "job_stderr_tail_info"]
    check(tails == ["boom"], "textfile: the stderr tail too: %r" % tails)
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=open(path, "rb").read(), capture_output=True, timeout=20)
        check(p.returncode == 0, "textfile: promtool check metrics accepts it: %r" % p.stderr)
    ino = os.stat(path).st_ino
    rc, _, err = ferry("run", "--gateway", gw, *key, "--retries", "0", "--", "true")
    parsed = parse_textfile(open(path).read())
    check(rc == 0 and os.stat(path).st_ino != ino and sorted(os.listdir(tdir)) == files,
          "textfile: rewritten through a new file and rename(2), not in place (%d)" % rc)
    check(isinstance(parsed, dict) and parsed.get(("job_exit_code", frozenset(key_labels.items()))) == 0 and
          ("job_last_success_timestamp_seconds", frozenset(key_labels.items())) in parsed,
          "textfile: a success's outcome, with its last-success time")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        Stub.script, Stub.got = [], []
        rc, _, err = ferry("run", "--gateway", "http://127.0.0.1:%d" % srv.server_address[1], *key, "--", "true")
        check(rc == 0 and os.listdir(tdir) == [], "textfile: a successful push removes the stale file (%d: %r)" %
              (rc, os.listdir(tdir)))
        check([g[0] for g in Stub.got] == ["POST", "PUT"], "start POST, end PUT: %r" % [g[0] for g in Stub.got])
    finally:
        srv.shutdown()
        srv.server_close()


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers with the scripted statuses in order and records what it got."""
    script, got, headers, delays = [], [], [], []

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        Stub.got.append((self.command, self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
        Stub.headers.append({k: self.headers.get(k) for k in ("X-Ferry-Interval", "X-Ferry-TTL")})
        if Stub.delays:
            time.sleep(Stub.delays.pop(0))
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
        cases = [  # (flags, X-Ferry-Interval and X-Ferry-TTL sent, note)
            ([], {"X-Ferry-Interval": None, "X-Ferry-TTL": None}, "no headers unless asked"),
            (["--interval", "90s", "--ttl", "1.5s"], {"X-Ferry-Interval": "90s", "X-Ferry-TTL": "1500ms"},
             "flags, as Go durations"),
            (["--interval", "25h", "--ttl", "0"], {"X-Ferry-Interval": "90000s", "X-Ferry-TTL": "0s"}, "hours; TTL 0"),
        ]
        for flags, want, note in cases:
            Stub.script, Stub.got, Stub.headers = [], [], []
            rc, _, err = ferry("push", "--gateway", gw, "--job", "j", *flags, stdin=b"a 1\n")
            check(rc == 0 and Stub.headers == [want], "push: %s: %r" % (note, Stub.headers))
            Stub.script, Stub.got, Stub.headers = [], [], []
            rc, _, err = ferry("run", "--gateway", gw, "--job", "j", *flags, "--", "true")
            check(rc == 0 and Stub.headers == [want, want], "run: %s, on both pushes: %r" % (note, Stub.headers))
        Stub.script, Stub.got, Stub.headers = [], [], []
        rc, _, err = ferry("run", "--", "true", env=dict(ENV, FERRY_URL=gw, FERRY_JOB="j", FERRY_INTERVAL="1m",
                                                          FERRY_TTL="2h"))
        want = {"X-Ferry-Interval": "60s", "X-Ferry-TTL": "7200s"}
        check(rc == 0 and Stub.headers == [want, want], "run: $FERRY_INTERVAL, $FERRY_TTL: %r" % Stub.headers)
        # SIGTERM while the start push is under way (a slow gateway): the job is not started, the stop is pushed
        Stub.script, Stub.got, Stub.delays = [], [], [1.0]
        ran = os.path.join(TMP, "ran-after-stop")
        proc = subprocess.Popen([FERRY, "run", "--gateway", gw, "--job", "j", "--", "sh", "-c", "echo x > " + ran],
                                env=ENV, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline and not Stub.got:
            time.sleep(0.02)
        rc = pghttp.stop_process(proc)
        err = proc.stderr.read().decode()
        check(rc == 143 and not os.path.exists(ran) and "not started: got signal 15" in err,
              "SIGTERM during the start push: the job does not start, exit 143 (%d: %r)" % (rc, err))
        check([g[0] for g in Stub.got] == ["POST", "POST"] and b"job_exit_code 143" in Stub.got[1][3] and
              b"job_running 0" in Stub.got[1][3], "and the stop is pushed: %r" % [g[0] for g in Stub.got])
        Stub.script, Stub.got, Stub.delays = [], [], []
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


def https_groups(port, cert, key, ca):
    """/api/v1/metrics over TLS with a client certificate and alice's password."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/api/v1/metrics", headers={"Authorization": "Basic " +
                                                        base64.b64encode(b"alice:secret").decode()})
        return json.loads(conn.getresponse().read())["data"]
    finally:
        conn.close()


def client_cert_suite():
    """A gateway that requires a client certificate (client_auth_type RequireAndVerifyClientCert), against Ferry and
    the Pushgateway: --cert-file/--key-file, and the same plus credentials from the environment."""
    if not os.path.exists(os.path.join(WEBCONFIG, "web-tls.yml")):
        print("SKIP: no webconfig fixtures")
        return
    cert, key, ca = (os.path.abspath(os.path.join(WEBCONFIG, f)) for f in ("cert.pem", "key.pem", "cert.pem"))
    other_cert, other_key = (os.path.abspath(os.path.join(WEBCONFIG, f)) for f in ("cert2.pem", "key2.pem"))
    users = open(os.path.join(WEBCONFIG, "web-tls.yml")).read().split("basic_auth_users:", 1)[1]
    conf = write("web-mtls.yml", ("tls_server_config:\n  cert_file: %s\n  key_file: %s\n"
                                  "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n"
                                  "basic_auth_users:%s" % (cert, key, ca, users)).encode())
    servers = [("ferry", [FERRY, "--web.threads=2"])]
    if REFERENCE:
        servers.append(("pushgateway", [REFERENCE, "--persistence.file="]))
    for name, argv in servers:
        port = pghttp.free_port()
        s = pghttp.Server(argv + ["--web.listen-address=127.0.0.1:%d" % port, "--web.config.file=" + conf], port,
                          name + "-mtls", log_path=os.path.join(TMP, name + "-mtls.log"), ready_check=pghttp.Server.listening)
        s.start(timeout=10)
        try:
            gw = "https://127.0.0.1:%d" % port
            pw = write("pw", b"secret\n")
            auth = ["--ca-file", ca, "--username", "alice", "--password-file", pw, "--retries", "0"]
            deadline, rc = time.time() + 10, -1
            while time.time() < deadline and rc != 0:
                rc, _, err = ferry("push", "--gateway", gw, "--job", "mtls", *auth, "--cert-file", cert, "--key-file", key,
                                   stdin=b"m 1\n")
                time.sleep(0.05 if rc else 0)
            check(rc == 0, "%s: push with --cert-file and --key-file (got %d: %s)" % (name, rc, err))
            rc, _, err = ferry("push", "--gateway", gw, "--job", "mtls", *auth, stdin=b"m 2\n")
            check(rc == 3, "%s: without a client certificate the handshake fails, exit 3 (got %d: %r)" % (name, rc, err))
            rc, _, err = ferry("push", "--gateway", gw, "--job", "mtls", *auth, "--cert-file", other_cert, "--key-file",
                               other_key, stdin=b"m 3\n")
            check(rc == 3, "%s: a certificate the gateway does not trust fails, exit 3 (got %d: %r)" % (name, rc, err))
            env = dict(ENV, FERRY_URL=gw, FERRY_JOB="mtls-env", FERRY_CA_FILE=ca, FERRY_CERT_FILE=cert,
                       FERRY_KEY_FILE=key, FERRY_USERNAME="alice", FERRY_PASSWORD="secret")
            rc, _, err = ferry("run", "--", "sh", "-c", "exit 6", env=env)
            g = [x for x in https_groups(port, cert, key, ca) if x["labels"] == {"job": "mtls-env"}]
            check(rc == 6 and err == "" and len(g) == 1 and value(g[0], "job_exit_code") == 6,
                  "%s: certificate and credentials from FERRY_* variables (got %d: %r)" % (name, rc, err))
            rc, _, err = ferry("run", "--", "true", env=dict(env, FERRY_PASSWORD="hunter2-wrong"))
            check(rc == 0 and "HTTP 401" in err and "hunter2" not in err,
                  "%s: a wrong $FERRY_PASSWORD: 401, the job's status kept, the password not printed (%d: %r)" %
                  (name, rc, err))
        finally:
            s.stop()


def gateway_suites(name, argv, port, is_ferry):
    s = pghttp.Server(argv, port, name, log_path=os.path.join(TMP, name + ".log"))
    with s:
        gw = "http://127.0.0.1:%d" % port
        push_suite(name, gw, port)
        run_suite(name, gw, port)
        start_suite(name, gw, port, is_ferry)
        timeout_suite(name, gw, port)
        lock_suite(name, gw, port)
        stderr_env_suite(name, gw, port)


def main():
    rc, _, err = ferry("--help")
    check("ferry push" in err and "ferry run" in err, "ferry --help mentions push and run")
    rc, out, _ = ferry("push", "--help")
    check(rc == 0 and "Exit status: 0 pushed, 1 usage error, 2 rejected" in out, "ferry push --help")
    rc, out, _ = ferry("run", "--help")
    check(rc == 0 and "FERRY_METRICS_FILE" in out, "ferry run --help")

    port = pghttp.free_port()
    # no grace: a hung job's push_alive turns 0 one interval after its start push
    gateway_suites("ferry", [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2",
                             "--push.interval-grace=0s"], port, True)
    if REFERENCE:
        port = pghttp.free_port()
        gateway_suites("pushgateway", [REFERENCE, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file="],
                       port, False)
    else:
        print("SKIP: no reference Pushgateway, ran against Ferry only")
    unreachable_suite()
    retry_suite()
    textfile_suite()
    tls_suite()
    client_cert_suite()
    return check.summary()


if __name__ == "__main__":
    t = time.time()
    rc = main()
    print("took %.1f s" % (time.time() - t))
    sys.exit(rc)

#!/usr/bin/env python3
"""test_abuse_wal.py: a dead write-ahead log is visible (issue 13, finding 6), end to end with build/ferry.

A 2 MiB tmpfs mounted by the test holds --persistence.file (durable mode) and a 512 KiB ballast file; pushes of
about 10 KB each (one new group per push) fill it. Asserted:
- every push before the disk fills gets 200; from the first refusal on, every change (push, DELETE) gets 500, never
  200 again;
- /-/ready and /-/healthy answer 503 with the reason: the failed write, the segment file, the errno text;
- /metrics: ferry_persistence_log_failed 1, ferry_persistence_log_errors_total = the 500s answered; scrapes work,
  and do not show the changes refused after the failure (refused before they reach the store);
- the server log has exactly one error line for the failure, naming the errno text and the segment file, and no
  line per refused change;
- SIGTERM with the disk still full exits 0 (the final snapshot cannot be written; logged) and keeps the log; a
  restart on the still-full disk replays it, cannot start a new segment and exits 1 (a supervisor retries; nothing
  acknowledged is touched);
- after the ballast is deleted (space freed) a restart is ready and healthy, ferry_persistence_log_failed is 0,
  every push acknowledged with 200 before the failure is there with its values, the refused DELETE did not happen
  and the changes refused after the failure are absent; a new push gets 200 and survives SIGKILL.
Bounded: at most 400 pushes, every wait has a deadline; about 5 s on the 2-core VM (10 s against the ASan build,
where a sanitizer report fails the SIGTERM checks).
Needs root for mount(8); if mount fails for lack of permission (EPERM), prints SKIP and exits 0.
Usage: test_abuse_wal.py path/to/ferry
"""
import errno
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
ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device", as strerror(3) prints it
SERIES = 700  # series per push: ~10 KB bodies, so 1.5 MiB of free space fills in ~150 pushes
MAX_PUSHES = 400


def body(i):
    return "".join('m{i="%d"} %d\n' % (k, i) for k in range(SERIES)).encode()


def mount_tmpfs(d):
    """Mounts a 2 MiB tmpfs on d. Returns None, or the reason to skip (no permission to mount)."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d], capture_output=True, text=True)
    if r.returncode == 0:
        return None
    msg = (r.stdout + r.stderr).strip()
    if os.geteuid() != 0 or re.search(r"permission denied|not permitted|must be superuser", msg, re.I):
        return msg or "mount: EPERM"
    raise RuntimeError("mount -t tmpfs failed: %s" % msg)


def ferry(path, logdir, n):
    port = pghttp.free_port()
    argv = [FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file=" + path,
            "--persistence.durable", "--persistence.interval=1h"]
    return pghttp.Server(argv, port, "ferry", log_path=os.path.join(logdir, "ferry-%d.log" % n), health="/-/ready")


def wait_exit(srv, timeout=15.0):
    """Starts srv without waiting for readiness; returns its exit status, or None if it is still running."""
    return srv.start(wait=False).wait_exit(timeout)


def metric(port, name):
    _, _, m = pghttp.request(port, "GET", "/metrics")
    for line in m.decode().split("\n"):
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return None


def log_text(srv):
    return srv.log()


def has_group(text, i):
    return ('m{i="0",instance="",job="g%d"} %d\n' % (i, i) in text
            and 'm{i="%d",instance="",job="g%d"} %d\n' % (SERIES - 1, i, i) in text)


def run(d, logdir):
    path = os.path.join(d, "pg.data")
    segment = os.path.join(path + ".wal", "0000000000000001.wal")
    with open(os.path.join(d, "ballast"), "wb") as f:  # what the operator will delete to free space
        f.write(b"\0" * (512 << 10))
    req = pghttp.request
    a = ferry(path, logdir, 1).start()
    try:
        p = a.port
        # 1. fill the disk
        codes = []
        t0 = time.time()
        for i in range(MAX_PUSHES):
            codes.append(req(p, "PUT", "/metrics/job/g%d" % i, body(i))[0])
            if codes[-1] != 200:
                break
        t_full = time.time() - t0
        first = len(codes) - 1
        check(codes[-1] == 500, "the disk filled within %d pushes and that push got 500 (got %s)" % (MAX_PUSHES,
                                                                                                    codes[-1]))
        check(first >= 10 and all(c == 200 for c in codes[:first]),
              "every push before the disk filled got 200 (%d of them)" % first)
        acked = list(range(first))
        after = [req(p, "PUT", "/metrics/job/g%d" % i, body(i))[0] for i in range(first + 1, first + 5)]
        st_del = req(p, "DELETE", "/metrics/job/g0")[0]
        check(after == [500] * 4 and st_del == 500, "once full, every change gets 500, never 200: %s, DELETE %d" %
              (after, st_del))
        refusals = 1 + len(after) + 1
        # 2. visible: readiness, liveness, metrics, one log line
        for probe in ("/-/ready", "/-/healthy"):
            st, _, b = req(p, "GET", probe)
            b = b.decode()
            check(st == 503 and b.startswith("write-ahead log failed: write %s: %s at " % (segment, ENOSPC_TEXT))
                  and "changes are refused until a restart; see docs/persistence.md" in b,
                  "%s answers 503 with the reason: %d %r" % (probe, st, b))
        check(metric(p, "ferry_persistence_log_failed") == 1, "ferry_persistence_log_failed 1")
        got = metric(p, "ferry_persistence_log_errors_total")
        check(got == refusals, "ferry_persistence_log_errors_total counts the %d refused changes (got %s)" %
              (refusals, got))
        st, _, m = req(p, "GET", "/metrics")
        m = m.decode()
        check(st == 200 and has_group(m, acked[-1]), "scrapes still work")
        late = [i for i in range(first + 1, first + 5) if 'job="g%d"' % i in m]
        check(not late and has_group(m, 0), "changes refused after the failure never touched the store (%s)" % late)
        log = log_text(a)
        lines = [ln for ln in log.split("\n") if 'msg="the write-ahead log failed' in ln]
        check(len(lines) == 1 and "level=error" in lines[0] and ENOSPC_TEXT in lines[0] and segment in lines[0],
              "logged once at error level with the errno text and the file: %s" % lines)
        check("could not persist a change before answering" not in log, "no log line per refused change")
        # 3. SIGTERM on the full disk: the final snapshot cannot be written, the log stays
        rc_term = a.stop()
        check(rc_term == 0 and "Sanitizer" not in log_text(a) and os.path.exists(segment),
              "SIGTERM on a full disk exits 0 (status %s) with no sanitizer report, log kept" % rc_term)
    finally:
        a.stop()
    # 4. a restart before space is freed: replays, cannot start a segment, exits 1 (the supervisor retries)
    b = ferry(path, logdir, 2)
    try:
        rc = wait_exit(b)
        log = log_text(b)
        check(rc == 1 and "could not open the write-ahead log" in log and ENOSPC_TEXT in log,
              "restart on the still-full disk exits 1 naming the cause (rc %s); log:\n%s" % (rc, log[-1500:]))
    finally:
        b.stop()
    # 5. free space and restart: everything acknowledged is there
    os.unlink(os.path.join(d, "ballast"))
    c = ferry(path, logdir, 3)
    t0 = time.time()
    c.start()
    t_recover = time.time() - t0
    try:
        p = c.port
        check(req(p, "GET", "/-/ready")[0] == 200 and req(p, "GET", "/-/healthy")[0] == 200,
              "after freeing space, a restart is ready and healthy")
        check(metric(p, "ferry_persistence_log_failed") == 0 and metric(p, "ferry_persistence_log_errors_total") == 0,
              "ferry_persistence_log_failed 0 after the restart")
        text = req(p, "GET", "/metrics")[2].decode()
        missing = [i for i in acked if not has_group(text, i)]
        check(not missing, "all %d pushes acknowledged before the failure are there with their values (missing %s)" %
              (len(acked), missing[:10]))
        check(has_group(text, 0), "the refused DELETE did not happen")
        late = [i for i in range(first + 1, first + 5) if 'job="g%d"' % i in text]
        check(not late, "the pushes refused after the failure are not there (%s)" % late)
        n = first + 10
        check(req(p, "PUT", "/metrics/job/g%d" % n, body(n))[0] == 200, "a new push gets 200")
        c.stop(sig=signal.SIGKILL)
    finally:
        c.stop()
    e = ferry(path, logdir, 4).start()
    try:
        text = pghttp.request(e.port, "GET", "/metrics")[2].decode()
        check(has_group(text, first + 10) and has_group(text, acked[-1]), "the new push survives SIGKILL")
    finally:
        rc = e.stop()
        check(rc == 0 and "Sanitizer" not in log_text(e), "the last server stops with SIGTERM, exit 0 (rc %s)" % rc)
    print("disk full after %d pushes (%.2f s); SIGTERM on the full disk: exit %s; restart after freeing space ready in "
          "%.2f s" % (first, t_full, rc_term, t_recover))


def main():
    d = tempfile.mkdtemp(prefix="ferry-wal-")
    logdir = tempfile.mkdtemp(prefix="ferry-wal-logs-")
    try:
        why = mount_tmpfs(d)
        if why is not None:
            print("SKIP: cannot mount a tmpfs for the persistence file (needs root / CAP_SYS_ADMIN): %s" % why)
            return 0
        try:
            run(d, logdir)
        finally:
            subprocess.run(["umount", d], check=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        if check.failed == 0:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print("server logs kept in %s" % logdir)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

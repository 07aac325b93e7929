#!/usr/bin/env python3
"""simulator.py: a batch job that pushes its progress to Ferry (or any Pushgateway). Python 3 standard library only.

It "processes" a few items per round, counts them in processed_items, and every PUSH_INTERVAL seconds PUTs the
counter to $PUSHGATEWAY_URL/metrics/job/$JOB_NAME, replacing the group's previous push. A failed push (gateway down,
4xx/5xx answer) is reported on stderr and retried at the next round; the job keeps running. SIGTERM or SIGINT stops
it after the current round.

Environment:
  PUSHGATEWAY_URL  base URL of the gateway            (default http://localhost:9091)
  JOB_NAME         the job label of the pushed group  (default processor)
  PUSH_INTERVAL    seconds between pushes             (default 5)
"""
import base64
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def group_path(job):
    """/metrics/job/<job>, with the job name base64-encoded when it contains a slash (the gateway's job@base64)."""
    if "/" in job:
        return "/metrics/job@base64/" + base64.urlsafe_b64encode(job.encode()).decode()
    return "/metrics/job/" + urllib.parse.quote(job, safe="")


def exposition(processed):
    return ("# HELP processed_items Items this batch job has processed since it started.\n"
            "# TYPE processed_items counter\n"
            "processed_items %d\n" % processed).encode()


def push(url, body):
    """One PUT. Returns None on success, else a one-line reason."""
    req = urllib.request.Request(url, data=body, method="PUT",
                                 headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        return None
    except urllib.error.HTTPError as e:
        return "HTTP %d: %s" % (e.code, e.read().decode("utf-8", "replace").strip())
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def main():
    base = os.environ.get("PUSHGATEWAY_URL", "http://localhost:9091").rstrip("/")
    job = os.environ.get("JOB_NAME", "processor")
    try:
        interval = float(os.environ.get("PUSH_INTERVAL", "5"))
    except ValueError:
        interval = -1
    if not interval > 0:
        print("simulator: PUSH_INTERVAL must be a positive number of seconds", file=sys.stderr)
        return 2
    if job == "":
        print("simulator: JOB_NAME must not be empty (the gateway needs a job label)", file=sys.stderr)
        return 2
    url = base + group_path(job)

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))

    print("simulator: pushing processed_items to %s every %gs" % (url, interval), flush=True)
    processed, failures = 0, 0
    while not stopping:
        processed += random.randint(1, 10)  # the work of one round
        err = push(url, exposition(processed))
        if err is None:
            if failures:
                print("simulator: push succeeded again after %d failure(s)" % failures, file=sys.stderr, flush=True)
            failures = 0
        else:
            failures += 1
            print("simulator: push %d failed, will retry: %s" % (failures, err), file=sys.stderr, flush=True)
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, interval))
    print("simulator: stopped after %d items" % processed, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

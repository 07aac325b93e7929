#!/usr/bin/env python3
"""catchup.py: one catch-up measurement for scripts/bench-cluster.sh.

Starts the replica given after "--" (an empty ferry whose peers hold the reference state), then polls its /-/ready
every 10 ms until 200, then fetches its /api/v1/metrics until the body is byte-identical to --ref (the peers' body,
taken before the start). Prints one JSON line: seconds from just before exec to the first 200 from /-/ready
(ready_s) and to the end of the first identical /api/v1/metrics (identical_s, with the duration of that fetch),
how many fetches differed, peak and final RSS of the replica (VmHWM, VmRSS), and the CPU seconds of the replica and
of its peers (--peers PIDS) from start to identical. Then kills the replica (SIGKILL) and waits for it."""
import argparse
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def get(port, path, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--run", type=int, default=1)
    ap.add_argument("--peers", default="")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--limit", type=float, default=60, help="seconds to wait for ready, then for identical")
    ap.add_argument("--label", default="")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    ref = open(a.ref, "rb").read()
    want = hashlib.sha256(ref).hexdigest()
    peers = [int(p) for p in a.peers.split(",") if p]
    p0 = {p: ticks(p) for p in peers}
    log = open(a.log, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(a.cmd, stdout=log, stderr=subprocess.STDOUT)
    res = {"run": a.run, "binary": a.label or a.cmd[0], "ready_s": None, "identical_s": None}
    polls = 0
    try:
        while time.monotonic() - t0 < a.limit:
            polls += 1
            try:
                st, _ = get(a.port, "/-/ready", timeout=5)
                if st == 200:
                    res["ready_s"] = round(time.monotonic() - t0, 3)
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"catchup: the replica exited with {proc.returncode}")
            time.sleep(0.01)
        res["ready_polls"] = polls
        res["ready_cpu_s"] = round(ticks(proc.pid) / HZ, 2)
        differ = 0
        while res["ready_s"] is not None and time.monotonic() - t0 < res["ready_s"] + a.limit:
            f0 = time.monotonic()
            st, body = get(a.port, "/api/v1/metrics")
            f1 = time.monotonic()
            if st == 200 and hashlib.sha256(body).hexdigest() == want:
                res["identical_s"] = round(f1 - t0, 3)
                res["identical_fetch_s"] = round(f1 - f0, 3)
                break
            differ += 1
            time.sleep(0.05)
        res["fetches_differing"] = differ
        res["hwm_kb"] = status_kb(proc.pid, "VmHWM")
        res["rss_kb"] = status_kb(proc.pid, "VmRSS")
        res["cpu_s"] = round(ticks(proc.pid) / HZ, 2)
        res["peers_cpu_s"] = [round((ticks(p) - p0[p]) / HZ, 2) for p in peers]
        res["peers_hwm_kb"] = [status_kb(p, "VmHWM") for p in peers]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    # what the replica's log (--log.level=info) says about the catch-up
    text = open(a.log, errors="replace").read()
    res["transfers_completed"] = text.count("state transfer from a peer complete")
    res["links_lost"] = text.count("lost the link to a peer")
    print(json.dumps(res), flush=True)
    return 0 if res["identical_s"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())

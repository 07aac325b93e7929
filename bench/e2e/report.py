#!/usr/bin/env python3
"""report.py: turns the raw rows of scripts/bench-e2e.sh (results.tsv) into the markdown table of medians.

Row: server, groups, run, the 'E2E k=v ...' line from push.lua's done(), server CPU ticks during the run, ticks per
second, VmRSS kB and VmHWM kB after the run, the share (%) of the server's CPU time used by its busiest thread, and
(newer rows) the wrk connection count, the run-queue wait of the server's threads and of wrk's threads in ns
(schedstat: runnable but not running). With more than one connection count the table gets a column for it and the
rows are ordered by size, server, connections."""
import statistics
import sys
from collections import defaultdict

LABELS = {
    "empty200": "empty 200 (wrk's ceiling)",
    "shared2": "Ferry, 2 threads, shared socket (`--no-web.reuseport`)",
    "reuseport2": "Ferry, 2 threads, `--web.reuseport` (default)",
    "before2": "Ferry before (FERRY_BEFORE), 2 threads, `--web.reuseport`",
    "shared1": "Ferry, `--web.threads=1`",
    "split": "Ferry, default flags, `taskset -c 0` (so 1 loop); wrk `taskset -c 1`",
    "pinned2": "Ferry, 2 threads, `--web.reuseport`, loop threads pinned to cores 0 and 1",
    "durable2": "Ferry, 2 threads, `--web.reuseport --persistence.durable`",
    "durable2_before": "Ferry before deferred answers (FERRY_BEFORE), same flags as durable2",
    "reference": "Pushgateway 1.5.1",
}
ORDER = list(LABELS)


def main(path):
    rows = defaultdict(list)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        name, groups, run, e2e, ticks, hz, rss, hwm, busiest = f[:9]
        conns, srv_wait, wrk_wait = (int(f[9]), int(f[10]), int(f[11])) if len(f) >= 12 else (0, -1, -1)
        kv = dict(f.split("=") for f in e2e.split()[1:])
        req = int(kv["requests"])
        secs = int(kv["duration_us"]) / 1e6
        rows[(int(groups), name, conns)].append({
            "srv_wait": srv_wait / 1e3 / req if req and srv_wait >= 0 else float("nan"),
            "wrk_wait": 100 * wrk_wait / 1e9 / secs if wrk_wait >= 0 else float("nan"),
            "rate": req / (int(kv["duration_us"]) / 1e6),
            "p50": int(kv["p50_us"]) / 1000,
            "p99": int(kv["p99_us"]) / 1000,
            "cpu": (int(ticks) / int(hz)) / req * 1000 if req else float("nan"),
            "bad": int(kv.get("status", 0)) + int(kv.get("timeout", 0)) + int(kv.get("read", 0)) + int(kv.get("write", 0))
            + int(kv.get("connect", 0)),
            "rss": int(rss or 0) / 1024,
            "hwm": int(hwm or 0) / 1024,
            "busiest": int(busiest or 0),
        })
    med = {}
    many = len({k[2] for k in rows}) > 1
    calib_rounds = len({k[0] for k in rows if k[1] == "empty200"})
    waits = any(x["srv_wait"] == x["srv_wait"] for r in rows.values() for x in r)
    head = "| stored series | server | " + ("conns | " if many else "") + "pushes/s | p50 ms | p99 ms | p99 range ms | " \
        "server CPU s / 1,000 pushes | busiest thread | " + \
        ("server run-queue wait us / push | wrk run-queue wait % of run | " if waits else "") + "RSS MB (peak) | errors |"
    print(head)
    print("|" + "|".join("---" if c.strip() == "server" else "---:" for c in head.split("|")[1:-1]) + "|")
    for groups, name, conns in sorted(rows, key=lambda k: (k[0], ORDER.index(k[1]), k[2])):
        r = rows[(groups, name, conns)]
        m = {k: statistics.median(x[k] for x in r) for k in ("rate", "p50", "p99", "cpu", "busiest", "srv_wait", "wrk_wait")}
        med[(groups, name, conns)] = m
        size = f"- ({groups * 10:,} round)" if name == "empty200" and calib_rounds > 1 else \
            "-" if name == "empty200" else f"{groups * 10:,}"
        lo, hi = min(x["p99"] for x in r), max(x["p99"] for x in r)
        print(f"| {size} | {LABELS[name]} | " + (f"{conns} | " if many else "") +
              f"{m['rate']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {lo:.2f}-{hi:.2f} | {m['cpu']:.4f} "
              f"| {m['busiest']:.0f}% | " + (f"{m['srv_wait']:.1f} | {m['wrk_wait']:.0f}% | " if waits else "") +
              f"{r[-1]['rss']:.0f} ({r[-1]['hwm']:.0f}) | {sum(x['bad'] for x in r)} |")
    print()
    for (groups, name, conns), m in sorted(med.items()):
        mem = med.get((groups, "reuseport2", conns))
        ref = med.get((groups, "reference", conns))
        if name.startswith("durable2") and mem:
            print(f"- {groups * 10:,} series: {name} / in-memory (reuseport2) = {100 * m['rate'] / mem['rate']:.0f}% "
                  f"of the push rate ({m['rate']:,.0f} vs {mem['rate']:,.0f}/s), p99 {m['p99']:.2f} vs {mem['p99']:.2f} ms")
        if name == "reuseport2" and ref:
            print(f"- {groups * 10:,} series: Ferry (default) / reference = {m['rate'] / ref['rate']:.1f}x pushes/s, "
                  f"{ref['cpu'] / m['cpu']:.1f}x less server CPU per push, p99 {m['p99']:.2f} vs {ref['p99']:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1])

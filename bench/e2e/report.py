#!/usr/bin/env python3
"""report.py: turns the raw rows of scripts/bench-e2e.sh (results.tsv) into the markdown table of medians.

Row: server, groups, run, the 'E2E k=v ...' line from push.lua's done(), server CPU ticks during the run, ticks per
second, VmRSS kB and VmHWM kB after the run, and the share (%) of the server's CPU time used by its busiest thread."""
import statistics
import sys
from collections import defaultdict

LABELS = {
    "empty200": "empty 200 (wrk's ceiling)",
    "shared2": "Ferry, 2 threads, shared socket (default)",
    "reuseport2": "Ferry, 2 threads, `--web.reuseport`",
    "shared1": "Ferry, `--web.threads=1`",
    "durable2": "Ferry, 2 threads, `--web.reuseport --persistence.durable`",
    "durable2_before": "Ferry before deferred answers (FERRY_BEFORE), same flags as durable2",
    "reference": "Pushgateway 1.5.1",
}
ORDER = list(LABELS)


def main(path):
    rows = defaultdict(list)
    for line in open(path):
        name, groups, run, e2e, ticks, hz, rss, hwm, busiest = line.rstrip("\n").split("\t")
        kv = dict(f.split("=") for f in e2e.split()[1:])
        req = int(kv["requests"])
        rows[(int(groups), name)].append({
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
    print("| stored series | server | pushes/s | p50 ms | p99 ms | server CPU s / 1,000 pushes | busiest thread | RSS MB (peak) | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for groups, name in sorted(rows, key=lambda k: (k[0], ORDER.index(k[1]))):
        r = rows[(groups, name)]
        m = {k: statistics.median(x[k] for x in r) for k in ("rate", "p50", "p99", "cpu", "busiest")}
        med[(groups, name)] = m
        size = "-" if name == "empty200" else f"{groups * 10:,}"
        print(f"| {size} | {LABELS[name]} | {m['rate']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu']:.4f} "
              f"| {m['busiest']:.0f}% | {r[-1]['rss']:.0f} ({r[-1]['hwm']:.0f}) | {sum(x['bad'] for x in r)} |")
    print()
    for (groups, name), m in sorted(med.items()):
        ref = med.get((groups, "reference"))
        mem = med.get((groups, "reuseport2"))
        if name.startswith("durable2") and mem:
            print(f"- {groups * 10:,} series: {name} / in-memory (reuseport2) = {100 * m['rate'] / mem['rate']:.0f}% "
                  f"of the push rate ({m['rate']:,.0f} vs {mem['rate']:,.0f}/s), p99 {m['p99']:.2f} vs {mem['p99']:.2f} ms")
        if name == "shared2" and ref:
            print(f"- {groups * 10:,} series: Ferry (default) / reference = {m['rate'] / ref['rate']:.1f}x pushes/s, "
                  f"{ref['cpu'] / m['cpu']:.1f}x less server CPU per push, p99 {m['p99']:.2f} vs {ref['p99']:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""report.py: the tables of scripts/bench-cluster.sh from its raw results (OUT/push.tsv, OUT/catchup.jsonl).

push.tsv row: set-up, run, wrk connections, the 'E2E k=v ...' line of push.lua / push-rr.lua, CPU ticks of every
ferry process of the set-up during the run, ticks per second, per-thread-kind ticks before and after
(loop=..,main=..,other=..), VmHWM kB of each process after the run. Acknowledged pushes = wrk's completed requests
minus non-2xx answers. Medians over runs; the ratios are taken run by run (set-ups of one run were measured one after
the other) and their median is printed with the range."""
import json
import os
import statistics
import sys
from collections import defaultdict

LABELS = {
    "before": "single node, FERRY_BEFORE (before replication)",
    "single": "single node, this build, no `--cluster` flags",
    "cl-one": "3 replicas (W=2), wrk to replica 1",
    "cl-rr": "3 replicas (W=2), one wrk thread per replica",
}
ORDER = list(LABELS)


def kinds(s):
    return {k: int(v) for k, v in (x.split("=") for x in s.split(","))}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def push(path):
    rows = defaultdict(dict)  # (conns class, mode) -> run -> row
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        mode, run, conns, e2e, ticks, hz, k0, k1 = f[:8]
        kv = dict(x.split("=") for x in e2e.split()[1:])
        req = int(kv["requests"])
        bad = sum(int(kv.get(k, 0)) for k in ("status", "timeout", "read", "write", "connect"))
        acked = req - int(kv.get("status", 0))
        secs = int(kv["duration_us"]) / 1e6
        hz = int(hz)
        a, b = kinds(k0), kinds(k1)
        us = lambda t: t / hz / acked * 1e6 if acked else float("nan")
        # rows are keyed by the requested connection count; cl-rr's wrk got it rounded up to a multiple of 3
        rows[(mode, int(conns))][int(run)] = {
            "wc": int(f[9]) if len(f) > 9 else int(conns),
            "rate": acked / secs, "p50": int(kv["p50_us"]) / 1000, "p99": int(kv["p99_us"]) / 1000,
            "cpu": us(int(ticks)), "loop": us(b["loop"] - a["loop"]), "other": us(b["other"] - a["other"]),
            "main": us(b["main"] - a["main"]), "bad": bad, "hwm": f[8] if len(f) > 8 else "",
        }
    conns_of = sorted({c for (m, c) in rows}, reverse=True)
    print("| wrk conns | set-up | acked pushes/s | p50 ms | p99 ms (range) | CPU us / acked push | of which HTTP loops "
          "| replication + other threads | errors | runs |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (mode, c) in sorted(rows, key=lambda k: (-k[1], ORDER.index(k[0]))):
        r = list(rows[(mode, c)].values())
        wc = r[0]["wc"]
        m = {k: med([x[k] for x in r]) for k in ("rate", "p50", "p99", "cpu", "loop", "other", "main")}
        lo, hi = min(x["p99"] for x in r), max(x["p99"] for x in r)
        print(f"| {wc} | {LABELS[mode]} | {m['rate']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} ({lo:.2f}-{hi:.2f}) | "
              f"{m['cpu']:.1f} | {m['loop']:.1f} | {m['other'] + m['main']:.1f} | {sum(x['bad'] for x in r)} | {len(r)} |")
    print()
    for c in conns_of:
        base = rows.get(("single", c), {})
        for mode in ("before", "cl-one", "cl-rr"):
            other = rows.get((mode, c))
            if not other:
                continue
            runs = sorted(set(base) & set(other))
            if mode == "before":
                rr = [base[k]["rate"] / other[k]["rate"] for k in runs]
                cr = [base[k]["cpu"] / other[k]["cpu"] for k in runs]
                pr = [base[k]["p99"] / other[k]["p99"] for k in runs]
                print(f"- {c} conns: this build / before, no `--cluster` flags: pushes/s {med(rr):.3f}x "
                      f"({min(rr):.3f}-{max(rr):.3f}), CPU per push {med(cr):.3f}x ({min(cr):.3f}-{max(cr):.3f}), "
                      f"p99 {med(pr):.2f}x ({min(pr):.2f}-{max(pr):.2f})")
            else:
                cr = [other[k]["cpu"] / base[k]["cpu"] for k in runs]
                rr = [other[k]["rate"] / base[k]["rate"] for k in runs]
                dp = [other[k]["p99"] - base[k]["p99"] for k in runs]
                d50 = [other[k]["p50"] - base[k]["p50"] for k in runs]
                cc = next(iter(other.values()))["wc"]
                print(f"- {c} conns: {LABELS[mode]} ({cc} conns) / single node: CPU per acked push **{med(cr):.2f}x** "
                      f"({min(cr):.2f}-{max(cr):.2f}; goal <= 1.6x), pushes/s {med(rr):.2f}x ({min(rr):.2f}-{max(rr):.2f}), "
                      f"p50 {med(d50):+.2f} ms, p99 {med(dp):+.2f} ms ({min(dp):+.2f} to {max(dp):+.2f})")
    print()


def catchup(path, fill):
    rs = [json.loads(l) for l in open(path) if l.strip()]
    if not rs:
        return
    if fill and os.path.exists(fill):
        f = json.load(open(fill))
        print(f"Catch-up: replicas 1 and 2 hold {f['groups']:,} groups ({f['groups'] * 10:,} series), filled over HTTP "
              f"through replica 1 in {f['fill_s']} s; /api/v1/metrics {f['ref_bytes'] / 1e6:.1f} MB; their RSS "
              f"{', '.join(f'{x / 1024:.0f}' for x in f['rss_kb'])} MB (peak {', '.join(f'{int(x) / 1024:.0f}' for x in f['hwm_kb'])} MB).")
        print()
    print("| new replica | run | to /-/ready 200, s | CPU s at ready | to identical /api/v1/metrics, s (that fetch) | "
          "fetches differing | peak RSS MB (final) | transfers completed, links lost | peers' CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in sorted(rs, key=lambda r: (r["binary"], r["run"])):
        ident = f"{r['identical_s']} ({r.get('identical_fetch_s')})" if r["identical_s"] is not None else "never"
        print(f"| {r['binary']} | {r['run']} | {r['ready_s']} | {r.get('ready_cpu_s')} | {ident} | {r.get('fetches_differing')} | "
              f"{r['hwm_kb'] / 1024:.0f} ({r['rss_kb'] / 1024:.0f}) | {r.get('transfers_completed')}, {r.get('links_lost')} | "
              f"{' + '.join(str(x) for x in r['peers_cpu_s'])} |")
    print()
    for b in sorted({r["binary"] for r in rs}):
        rb = [r for r in rs if r["binary"] == b and r["ready_s"] is not None]
        ok = [r["identical_s"] for r in rb if r["identical_s"] is not None]
        if not rb:
            continue
        ready = med([r["ready_s"] for r in rb])
        print(f"- {b}: ready median {ready:.2f} s (range {min(r['ready_s'] for r in rb)}-{max(r['ready_s'] for r in rb)} s; "
              f"goal <= 10 s: {'met' if ready <= 10 else 'NOT met'}), identical "
              + (f"median {med(ok):.2f} s ({len(ok)} of {len(rb)} runs)" if ok else f"in none of {len(rb)} runs")
              + f", peak RSS median {med([r['hwm_kb'] for r in rb]) / 1024:.0f} MB")


def main(out):
    if os.path.exists(os.path.join(out, "push.tsv")):
        push(os.path.join(out, "push.tsv"))
    if os.path.exists(os.path.join(out, "catchup.jsonl")):
        catchup(os.path.join(out, "catchup.jsonl"), os.path.join(out, "cu-fill.json"))


if __name__ == "__main__":
    main(sys.argv[1])

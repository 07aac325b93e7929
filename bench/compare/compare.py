#!/usr/bin/env python3
"""compare.py: Ferry and the reference Pushgateway 1.5.1 side by side (issue #6), driven by `make bench-compare`.

For each store size (SIZES, in series; 10-series groups of bench/payloads/push-646.txt at
/metrics/job/j<g/100>/instance/i<g%100>) it starts Ferry, then the reference, one after the other on 127.0.0.1,
fills the store and measures: push rate and latency under load (wrk with bench/e2e/push.lua, the same 1 thread and
CONNS connections for both), server CPU seconds per 1,000 pushes (utime+stime from /proc/PID/stat over the run),
the time and size of a full scrape plain and gzip (curl, median of 3), and resident memory per stored series (RSS
after the fill minus RSS of the same server empty). A calibration round runs push.lua against bench/e2e/empty200.c.
With the consistency check off the reference's push rate is measured too (NOCHECK=0 skips it).

The reference needs O(stored series) per push in its default mode (minutes at 1M), so it is filled with
--push.disable-consistency-check (pushes queue and are answered 202 before they apply), stopped with SIGTERM (it
drains the queue and writes its persistence file), and restarted in default mode from that file. Above REF_WRK_MAX
series its pushes are measured by a bounded serial loop (1 connection, new pushes until DURATION has passed, each
with a timeout) instead of wrk, so a run never hangs and queued pushes do not keep it busy after the run.

Outputs in OUT: results.csv (one row per server and size), runs.csv (one row per run), results.md (the tables for
docs/benchmarks.md), plot data and the gnuplot script; PNGs in IMG (push rate, scrape time and memory against store
size).
Environment knobs (defaults): SIZES=1000,10000,100000,1000000 RUNS=3 DURATION=10 CONNS=32 SCRAPES=3
REF_WRK_MAX=10000 REF_TIMEOUT=300 (s per serial push) NOCHECK=1 OUT=<temporary directory> IMG=<OUT>.
`compare.py --merge DIR... --out DIR` measures nothing: it reports the medians of earlier complete runs.
"""
import argparse
import csv
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BODY = os.path.join(ROOT, "bench", "payloads", "push-646.txt")
PUSH_LUA = os.path.join(ROOT, "bench", "e2e", "push.lua")
FILL_LUA = os.path.join(ROOT, "bench", "e2e", "fill.lua")
HZ = os.sysconf("SC_CLK_TCK")

LABELS = {
    "empty200": "empty 200 (wrk's ceiling)",
    "ferry": "Ferry (default flags)",
    "reference": "Pushgateway 1.5.1 (default mode)",
    "reference_nocheck": "Pushgateway 1.5.1, `--push.disable-consistency-check` (202 before applying)",
}


def log(msg):
    print(f"bench-compare {time.strftime('%H:%M:%S')}: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on 127.0.0.1:port; its output goes to a log file in OUT."""

    def __init__(self, name, argv, port, out, ready_timeout=60):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.logf = open(os.path.join(out, f"{name}-{port}.log"), "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode} while starting (see {self.logf.name})")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() - t0 > ready_timeout:
                    self.stop(sig=signal.SIGKILL)
                    raise RuntimeError(f"{name} did not listen on {port} within {ready_timeout} s")
                time.sleep(0.05)
        self.start_seconds = time.monotonic() - t0

    def _stat(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def cpu_ticks(self):
        s = self._stat()
        return int(s[11]) + int(s[12])  # utime, stime: fields 14 and 15, counted after "pid (comm)"

    def status_kb(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def wait_idle(self, limit=600):
        """Waits until the server used under 2% of a core over half a second (a push still applying, the Go GC)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            c0 = self.cpu_ticks()
            time.sleep(0.5)
            if (self.cpu_ticks() - c0) / HZ < 0.01:
                return
        log(f"{self.name} still busy after {limit} s")

    def stop(self, sig=signal.SIGTERM, limit=600):
        """Stops the server; returns the seconds it took to exit (SIGTERM: the reference writes its file then)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not exit within {limit} s of signal {sig}: SIGKILL")
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return time.monotonic() - t0


def group_path(g):
    return f"/metrics/job/j{g // 100}/instance/i{g % 100}"


def run_wrk(server, lua, args, duration, conns, out, tag, timeout=10):
    """One wrk run (1 thread); returns its output. Never waits longer than duration + 60 s."""
    f = os.path.join(out, f"wrk-{tag}.txt")
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout}s", "--latency", "-s", lua, server.url,
            "--"] + [str(a) for a in args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
        text = r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        text += "\nbench-compare: wrk killed after its deadline\n"
    with open(f, "w") as fh:
        fh.write(text)
    return text


def fill(server, groups, out, limit=900):
    """Creates groups 0..groups-1 with bench/e2e/fill.lua (32 connections: fill.lua counts on that), like
    scripts/bench-e2e.sh: wrk's main thread sleeps for all of -d, so the marker file says when the fill is done."""
    marker = os.path.join(out, f"fill-{server.name}-{groups}.done")
    if os.path.exists(marker):
        os.unlink(marker)
    t0 = time.monotonic()
    argv = ["wrk", "-t1", "-c32", f"-d{limit}s", "--timeout=60s", "-s", FILL_LUA, server.url, "--", str(groups), BODY,
            marker]
    with open(os.path.join(out, f"fill-{server.name}-{groups}.txt"), "w") as fh:
        w = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
        while not os.path.exists(marker) and w.poll() is None and time.monotonic() - t0 < limit:
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        if w.poll() is None:
            w.send_signal(signal.SIGINT)
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    if not os.path.exists(marker):
        raise RuntimeError(f"filling {server.name} with {groups} groups did not finish within {limit} s")
    return seconds


def count_groups(server):
    """Scrapes /metrics once and counts the groups (one push_time_seconds series each)."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=600) as r:
        body = r.read()
    return body.count(b"\npush_time_seconds{")


def scrape(server, gzip, runs=3):
    """Median seconds and the size in bytes (as sent) of a full GET /metrics, timed by curl."""
    times, size = [], 0
    for _ in range(runs):
        argv = ["curl", "-s", "-o", "/dev/null", "--max-time", "600", "-w", "%{http_code} %{time_total} %{size_download}"]
        if gzip:
            argv += ["-H", "Accept-Encoding: gzip"]
        r = subprocess.run(argv + [server.url + "/metrics"], capture_output=True, text=True, timeout=660)
        code, t, n = r.stdout.split()
        if code != "200":
            raise RuntimeError(f"scrape of {server.name} answered {code}")
        times.append(float(t))
        size = int(n)
    return statistics.median(times), size


def parse_e2e(text):
    m = re.search(r"^E2E (.*)$", text, re.M)
    if not m:
        return None
    return {k: int(v) for k, v in (f.split("=") for f in m.group(1).split())}


def push_runs_wrk(server, groups, args, out, tag):
    """RUNS wrk runs of DURATION s with push.lua; one dict per run."""
    runs = []
    for i in range(args.runs):
        c0 = server.cpu_ticks()
        text = run_wrk(server, PUSH_LUA, [groups, BODY, (i + 1) * 7919], args.duration, args.conns, out, f"{tag}-{i}")
        ticks = server.cpu_ticks() - c0
        e = parse_e2e(text)
        if e is None:
            raise RuntimeError(f"wrk against {server.name} printed no result (see {out}/wrk-{tag}-{i}.txt)")
        errors = sum(e.get(k, 0) for k in ("connect", "read", "write", "status", "timeout"))
        runs.append({"mode": f"wrk {args.conns} conns", "pushes": e["requests"], "seconds": e["duration_us"] / 1e6,
                     "p50_ms": e["p50_us"] / 1000, "p99_ms": e["p99_us"] / 1000, "cpu_s": ticks / HZ, "errors": errors})
        log(f"{tag} run {i + 1}: {e['requests'] / (e['duration_us'] / 1e6):,.0f} pushes/s, p99 {e['p99_us'] / 1000:.2f} ms, "
            f"{ticks / HZ:.2f} CPU s, {errors} errors")
    return runs


def push_runs_serial(server, groups, args, tag):
    """Bounded pushes for a server that takes seconds per push: RUNS runs on one connection, each starting new
    pushes until DURATION s have passed (at least one push per run), every push with a timeout of REF_TIMEOUT s."""
    with open(BODY, "rb") as f:
        body = f.read()
    hdrs = {"Content-Type": "text/plain; version=0.0.4"}
    runs = []
    for i in range(args.runs):
        g = ((i + 1) * 7919) % groups
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=args.ref_timeout)
        lat, errors, timed_out = [], 0, False
        c0 = server.cpu_ticks()
        t0 = time.monotonic()
        while not lat or time.monotonic() - t0 < args.duration:
            s = time.monotonic()
            try:
                conn.request("PUT", group_path(g), body=body, headers=hdrs)
                r = conn.getresponse()
                r.read()
                if r.status // 100 != 2:
                    errors += 1
            except (socket.timeout, TimeoutError):
                errors += 1
                timed_out = True
            lat.append(time.monotonic() - s)
            g = (g + 1) % groups
            if timed_out:
                break
        seconds = time.monotonic() - t0
        conn.close()
        if timed_out:
            server.wait_idle()
        ticks = server.cpu_ticks() - c0
        lat.sort()
        runs.append({"mode": "serial, 1 conn", "pushes": len(lat) - (1 if timed_out else 0), "seconds": seconds,
                     "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                     "cpu_s": ticks / HZ, "errors": errors, "lat": lat})
        log(f"{tag} run {i + 1}: {len(lat)} pushes in {seconds:.1f} s, slowest {1000 * lat[-1]:.0f} ms, "
            f"{ticks / HZ:.2f} CPU s, {errors} errors")
    return runs


def summarize(runs):
    """Medians over wrk runs; pooled figures over serial runs (a few pushes each, so per-run rates are coarse)."""
    if runs[0]["mode"].startswith("serial"):
        lat = sorted(x for r in runs for x in r["lat"])
        pushes = sum(r["pushes"] for r in runs)
        secs = sum(r["seconds"] for r in runs)
        cpu = sum(r["cpu_s"] for r in runs)
        return {"mode": runs[0]["mode"], "pushes_total": pushes, "push_seconds": secs, "pushes_s": pushes / secs,
                "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                "cpu_per_1k": cpu / pushes * 1000 if pushes else float("nan"), "errors": sum(r["errors"] for r in runs)}
    return {"mode": runs[0]["mode"], "pushes_total": sum(r["pushes"] for r in runs),
            "push_seconds": sum(r["seconds"] for r in runs),
            "pushes_s": statistics.median(r["pushes"] / r["seconds"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs), "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "cpu_per_1k": statistics.median(r["cpu_s"] / r["pushes"] * 1000 for r in runs if r["pushes"]),
            "errors": sum(r["errors"] for r in runs)}


def measure_store(server, series, rss_empty_kb, args):
    """Memory, then scrapes (plain, gzip) of a filled server; returns the row's fields."""
    server.wait_idle()
    rss = server.status_kb("VmRSS")
    row = {"rss_empty_kb": rss_empty_kb, "rss_kb": rss, "bytes_per_series": (rss - rss_empty_kb) * 1024 / series}
    row["scrape_plain_s"], row["scrape_plain_bytes"] = scrape(server, False, args.scrapes)
    row["scrape_gzip_s"], row["scrape_gzip_bytes"] = scrape(server, True, args.scrapes)
    log(f"{server.name} {series:,} series: RSS {rss / 1024:.0f} MB ({row['bytes_per_series']:.0f} B/series), scrape "
        f"{row['scrape_plain_s']:.3f} s / {row['scrape_plain_bytes']:,} B plain, {row['scrape_gzip_s']:.3f} s / "
        f"{row['scrape_gzip_bytes']:,} B gzip")
    return row


def bench_ferry(series, args, out, all_runs):
    groups = series // 10
    port = free_port()
    srv = Server("ferry", [args.ferry, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=",
                           "--log.level=warn"], port, out)
    try:
        time.sleep(0.5)
        rss_empty = srv.status_kb("VmRSS")
        fill_s = fill(srv, groups, out)
        n = count_groups(srv)
        if n != groups:
            raise RuntimeError(f"Ferry holds {n} groups after the fill, wanted {groups}")
        log(f"ferry: filled {series:,} series in {fill_s:.1f} s")
        row = {"server": "ferry", "series": series, "fill_s": fill_s, "load_s": 0.0}
        row.update(measure_store(srv, series, rss_empty, args))
        runs = push_runs_wrk(srv, groups, args, out, f"ferry-{series}")
        row.update(summarize(runs))
        row["hwm_kb"] = srv.status_kb("VmHWM")
        for r in runs:
            all_runs.append({"server": "ferry", "series": series, **{k: v for k, v in r.items() if k != "lat"}})
    finally:
        srv.stop()
    return [row]


def bench_reference(series, args, out, all_runs):
    groups = series // 10
    pfile = os.path.join(out, f"reference-{series}.data")
    if os.path.exists(pfile):
        os.unlink(pfile)
    rows = []
    # Fill with the consistency check off (fast, O(1) per push), then SIGTERM: the reference applies what is still
    # queued and writes pfile before it exits.
    port = free_port()
    srv = Server("reference_nocheck", [args.reference, f"--web.listen-address=127.0.0.1:{port}",
                                       f"--persistence.file={pfile}", "--persistence.interval=24h",
                                       "--push.disable-consistency-check", "--log.level=warn"], port, out)
    try:
        time.sleep(0.5)
        rss_empty = srv.status_kb("VmRSS")
        fill_s = fill(srv, groups, out)
        log(f"reference: {series:,} series accepted in {fill_s:.1f} s (consistency check off)")
        if args.nocheck:
            runs = push_runs_wrk(srv, groups, args, out, f"reference_nocheck-{series}")
            row = {"server": "reference_nocheck", "series": series, "fill_s": fill_s}
            row.update(summarize(runs))
            rows.append(row)
            for r in runs:
                all_runs.append({"server": "reference_nocheck", "series": series, **r})
    finally:
        persist_s = srv.stop(limit=900)
    log(f"reference: wrote {os.path.getsize(pfile):,} B of persistence file in {persist_s:.1f} s at shutdown")

    # Default mode from that file. --persistence.interval=24h only keeps it from rewriting the file during the runs.
    port = free_port()
    srv = Server("reference", [args.reference, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={pfile}",
                               "--persistence.interval=24h", "--log.level=warn"], port, out, ready_timeout=900)
    try:
        n = count_groups(srv)
        if n != groups:
            raise RuntimeError(f"the reference holds {n} groups after loading {pfile}, wanted {groups}")
        log(f"reference: loaded {series:,} series from its file in {srv.start_seconds:.1f} s")
        row = {"server": "reference", "series": series, "fill_s": fill_s + persist_s, "load_s": srv.start_seconds}
        row.update(measure_store(srv, series, rss_empty, args))
        if series <= args.ref_wrk_max:
            runs = push_runs_wrk(srv, groups, args, out, f"reference-{series}")
        else:
            runs = push_runs_serial(srv, groups, args, f"reference-{series}")
        row.update(summarize(runs))
        row["hwm_kb"] = srv.status_kb("VmHWM")
        rows.append(row)
        for r in runs:
            all_runs.append({"server": "reference", "series": series, **{k: v for k, v in r.items() if k != "lat"}})
    finally:
        srv.stop(sig=signal.SIGKILL)  # SIGTERM would make it write 1M series to a scratch file first
        os.unlink(pfile)
    return rows


def bench_calibration(args, out, all_runs):
    port = free_port()
    srv = Server("empty200", [args.empty200, str(port)], port, out)
    try:
        runs = push_runs_wrk(srv, 100, args, out, "empty200")
    finally:
        srv.stop()
    for r in runs:
        all_runs.append({"server": "empty200", "series": 0, **r})
    row = {"server": "empty200", "series": 0}
    row.update(summarize(runs))
    return [row]


FIELDS = ["server", "series", "mode", "pushes_total", "push_seconds", "pushes_s", "p50_ms", "p99_ms", "cpu_per_1k",
          "errors", "scrape_plain_s", "scrape_plain_bytes", "scrape_gzip_s", "scrape_gzip_bytes", "rss_empty_kb",
          "rss_kb", "hwm_kb", "bytes_per_series", "fill_s", "load_s"]
RUN_FIELDS = ["server", "series", "mode", "pushes", "seconds", "p50_ms", "p99_ms", "cpu_s", "errors"]


def ratio(a, b):
    if not a or not b:
        return "-"
    r = a / b
    if r >= 1:
        return f"{r:,.0f}" if r >= 10 else f"{r:.2f}"
    return f"1/{1 / r:,.0f}" if r <= 0.1 else f"{r:.2f}"  # 1/625 reads better than 0.0016


def report(rows, meta, runs_desc):
    """The markdown tables for docs/benchmarks.md."""
    out = [meta, "",
           "| stored series | server | pushes/s | p50 ms | p99 ms | server CPU s / 1,000 pushes | scrape s, plain / gzip "
           "| scrape MB, plain / gzip | RSS MB (peak) | bytes / series | push runs |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    order = list(LABELS)
    for r in sorted(rows, key=lambda r: (r["series"], order.index(r["server"]))):
        size = "-" if r["server"] == "empty200" else f"{r['series']:,}"
        scr = mb = rss = bps = "-"
        if "scrape_plain_s" in r:
            scr = f"{r['scrape_plain_s']:.3f} / {r['scrape_gzip_s']:.3f}"
            mb = f"{r['scrape_plain_bytes'] / 1e6:.2f} / {r['scrape_gzip_bytes'] / 1e6:.2f}"
            rss = f"{r['rss_kb'] / 1024:.0f} ({r['hwm_kb'] / 1024:.0f})"
            bps = f"{r['bytes_per_series']:.0f}"
        if r["mode"].startswith("serial"):
            how = f"{r['pushes_total']} pushes in {r['push_seconds']:.0f} s, serial, 1 conn"
        else:
            how = f"{r['mode']}, median of {runs_desc}"
        out.append(f"| {size} | {LABELS[r['server']]} | {r['pushes_s']:,.{0 if r['pushes_s'] >= 10 else 2}f} "
                   f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_per_1k']:.4f} | {scr} | {mb} | {rss} | {bps} "
                   f"| {how}{', ' + str(r['errors']) + ' errors' if r['errors'] else ''} |")
    out += ["", "Ferry / reference (default mode), measured in the same runs:", "",
            "| stored series | pushes/s | p50 | p99 | CPU / push | scrape time plain | scrape time gzip "
            "| scrape size plain | scrape size gzip | bytes / series |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by = {(r["server"], r["series"]): r for r in rows}
    for series in sorted({r["series"] for r in rows if r["server"] == "ferry"}):
        f, g = by.get(("ferry", series)), by.get(("reference", series))
        if not f or not g:
            continue
        out.append(f"| {series:,} | {ratio(f['pushes_s'], g['pushes_s'])} | {ratio(f['p50_ms'], g['p50_ms'])} "
                   f"| {ratio(f['p99_ms'], g['p99_ms'])} | {ratio(f['cpu_per_1k'], g['cpu_per_1k'])} "
                   f"| {ratio(f['scrape_plain_s'], g['scrape_plain_s'])} | {ratio(f['scrape_gzip_s'], g['scrape_gzip_s'])} "
                   f"| {ratio(f['scrape_plain_bytes'], g['scrape_plain_bytes'])} "
                   f"| {ratio(f['scrape_gzip_bytes'], g['scrape_gzip_bytes'])} "
                   f"| {ratio(f['bytes_per_series'], g['bytes_per_series'])} |")
    return "\n".join(out) + "\n"


GNUPLOT = """set terminal pngcairo size 800,560 font "sans,10"
set logscale xy
set autoscale xfix
set grid
set key below maxcols 2
set xlabel "stored series"
set format x "%.0s%c"
set format y "%g"
set output "{img}/compare-push-rate.png"
set title "Pushes per second vs store size (10-series PUTs, loopback, 2 shared cores)"
set ylabel "pushes/s"
plot "{dat}/push.dat" using 1:2 with linespoints lw 2 title "Ferry", \\
     "" using 1:3 with linespoints lw 2 title "Pushgateway 1.5.1", \\
     "" using 1:4 with linespoints dt 3 title "Pushgateway, consistency check off (202 before applying)", \\
     {ceiling} with lines dt 2 title "empty 200 (wrk's ceiling)"
set output "{img}/compare-scrape-time.png"
set title "Full scrape of /metrics vs store size"
set ylabel "seconds"
plot "{dat}/scrape.dat" using 1:2 with linespoints lw 2 title "Ferry, plain", \\
     "" using 1:3 with linespoints lw 2 title "Ferry, gzip", \\
     "" using 1:4 with linespoints lw 2 title "Pushgateway 1.5.1, plain", \\
     "" using 1:5 with linespoints lw 2 title "Pushgateway 1.5.1, gzip"
set output "{img}/compare-memory.png"
set title "Resident memory after the fill vs store size"
set ylabel "MB (VmRSS)"
plot "{dat}/memory.dat" using 1:2 with linespoints lw 2 title "Ferry", \\
     "" using 1:3 with linespoints lw 2 title "Pushgateway 1.5.1"
"""


def plots(rows, out, img):
    if not shutil.which("gnuplot"):
        log("gnuplot not installed (scripts/install-deps.sh bench): no plots")
        return
    by = {(r["server"], r["series"]): r for r in rows}
    sizes = sorted({r["series"] for r in rows if r["server"] == "ferry" and ("reference", r["series"]) in by})
    if len(sizes) < 2:
        log("fewer than two sizes with both servers: no plots")
        return
    with open(os.path.join(out, "push.dat"), "w") as f:
        for s in sizes:
            nc = by.get(("reference_nocheck", s), {}).get("pushes_s", "NaN")
            f.write(f"{s} {by[('ferry', s)]['pushes_s']} {by[('reference', s)]['pushes_s']} {nc}\n")
    with open(os.path.join(out, "scrape.dat"), "w") as f:
        for s in sizes:
            a, b = by[("ferry", s)], by[("reference", s)]
            f.write(f"{s} {a['scrape_plain_s']} {a['scrape_gzip_s']} {b['scrape_plain_s']} {b['scrape_gzip_s']}\n")
    with open(os.path.join(out, "memory.dat"), "w") as f:
        for s in sizes:
            f.write(f"{s} {by[('ferry', s)]['rss_kb'] / 1024} {by[('reference', s)]['rss_kb'] / 1024}\n")
    ceiling = by.get(("empty200", 0), {}).get("pushes_s", "NaN")
    script = os.path.join(out, "plots.gp")
    with open(script, "w") as f:
        f.write(GNUPLOT.format(img=img, dat=out, ceiling=ceiling))
    subprocess.run(["gnuplot", script], check=True, timeout=60)
    log(f"plots: {img}/compare-push-rate.png, compare-scrape-time.png, compare-memory.png")


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build dir with ferry and bench/compare/empty200")
    ap.add_argument("--ferry")
    ap.add_argument("--empty200")
    ap.add_argument("--reference", default="/usr/bin/prometheus-pushgateway")
    ap.add_argument("--sizes", default=env("SIZES", "1000,10000,100000,1000000"))
    ap.add_argument("--runs", type=int, default=int(env("RUNS", "3")))
    ap.add_argument("--duration", type=int, default=int(env("DURATION", "10")))
    ap.add_argument("--conns", type=int, default=int(env("CONNS", "32")))
    ap.add_argument("--scrapes", type=int, default=int(env("SCRAPES", "3")))
    ap.add_argument("--ref-wrk-max", type=int, default=int(env("REF_WRK_MAX", "10000")))
    ap.add_argument("--ref-timeout", type=int, default=int(env("REF_TIMEOUT", "300")))
    ap.add_argument("--no-nocheck", dest="nocheck", action="store_false", default=env("NOCHECK", "1") != "0",
                    help="skip the push runs against the reference with the consistency check off (NOCHECK=0)")
    ap.add_argument("--out", default=env("OUT"))
    ap.add_argument("--img", default=env("IMG"))
    ap.add_argument("--merge", nargs="+", metavar="DIR", help="no measurement: medians of earlier runs' OUT dirs")
    args = ap.parse_args()
    if args.merge:
        out = args.out or tempfile.mkdtemp(prefix="bench-compare.")
        return merge(args.merge, out, os.path.abspath(args.img or out))
    args.ferry = args.ferry or os.path.join(args.build, "ferry")
    args.empty200 = args.empty200 or os.path.join(args.build, "bench", "compare", "empty200")
    for tool in ("wrk", "curl"):
        if not shutil.which(tool):
            sys.exit(f"bench-compare: {tool} not installed (scripts/install-deps.sh bench)")
    for exe in (args.ferry, args.empty200, args.reference):
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench-compare: {exe} missing (make build; scripts/install-deps.sh bench)")
    out = args.out or tempfile.mkdtemp(prefix="bench-compare.")
    os.makedirs(out, exist_ok=True)
    img = os.path.abspath(args.img or out)
    os.makedirs(img, exist_ok=True)
    sizes = [int(s) for s in re.split(r"[,\s]+", args.sizes.strip()) if s]
    for s in sizes:
        if s < 10 or s % 10:
            sys.exit(f"bench-compare: size {s} is not a multiple of 10 series (10-series groups)")

    load0, t0 = open("/proc/loadavg").read().split()[:3], time.time()
    rows, all_runs = [], []
    rows += bench_calibration(args, out, all_runs)
    for series in sizes:
        rows += bench_ferry(series, args, out, all_runs)
        rows += bench_reference(series, args, out, all_runs)
    load1 = open("/proc/loadavg").read().split()[:3]

    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, RUN_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(all_runs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    meta = (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(t0))}-{time.strftime('%H:%M', time.gmtime())} UTC, "
            f"{os.cpu_count()} cores ({cpu}), load average before {' '.join(load0)}, after {' '.join(load1)}; "
            f"sizes {','.join(map(str, sizes))}; wrk -t1 -c{args.conns} -d{args.duration}s, {args.runs} runs; "
            f"scrapes: median of {args.scrapes}; raw results: {out}")
    with open(os.path.join(out, "meta.txt"), "w") as f:
        f.write(meta + "\n")
    md = report(rows, meta, f"{args.runs} runs of {args.duration} s")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    plots(rows, out, img)
    print(md)


def merge(dirs, out, img):
    """Medians, field by field, of the results.csv of several complete runs (push counts and errors: sums)."""
    groups = {}
    metas = []
    for d in dirs:
        metas.append(open(os.path.join(d, "meta.txt")).read().strip())
        for r in csv.DictReader(open(os.path.join(d, "results.csv"))):
            groups.setdefault((r["server"], int(r["series"])), []).append(r)
    rows = []
    for (server, series), rs in groups.items():
        row = {"server": server, "series": series, "mode": rs[0]["mode"]}
        for k in FIELDS[3:]:
            vals = [float(r[k]) for r in rs if r.get(k) not in (None, "")]
            if vals:
                row[k] = sum(vals) if k in ("pushes_total", "push_seconds", "errors") else statistics.median(vals)
        row["pushes_total"] = int(row["pushes_total"])
        row["errors"] = int(row["errors"])
        rows.append(row)
    os.makedirs(out, exist_ok=True)
    meta = f"Medians of {len(dirs)} complete runs:\n\n" + "\n".join(f"- {m}" for m in metas)
    md = report(rows, meta, f"{len(dirs)} complete runs")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    plots(rows, out, img)
    print(md)

if __name__ == "__main__":
    main()

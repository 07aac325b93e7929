#!/usr/bin/env python3
"""test_cluster_prometheus.py: a real Prometheus scrapes a 3-replica cluster during kill cycles (issue 15, tests 5;
ha-design T6 in small).

/usr/bin/prometheus (Debian 12: 2.42), scrape interval 1 s, two jobs, both honor_labels: true:
  ferry-lb        nginx in front of the replicas (target label via="lb"), keeping only the pushed counter;
  ferry-replicas  each replica (target label replica="rN"), the shape the issue was given.
A pusher PUTs a counter that only rises (+1 every 100 ms) through nginx, while 3 cycles kill -9 and restart (in
memory, so the restarted replica starts empty) replicas 0, 1, 2 in turn. Then, through Prometheus's HTTP API:
  - resets(cl_rising_total[..]) == 0 for the LB series and for every replica's series (a replica never serves an
    older value: until it has caught up it answers 503 and the scrape fails instead);
  - the LB series has no gap longer than one scrape interval (consecutive samples at most 1.5 s apart) and up == 1
    for every LB scrape;
  - Prometheus counted no out-of-order samples (prometheus_target_scrapes_sample_out_of_order_total == 0).
Skips (exit 0) when build/ferry has no --cluster.listen-address or /usr/bin/prometheus is absent.
Usage: test_cluster_prometheus.py path/to/ferry [path/to/prometheus]
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
PROMETHEUS = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "/usr/bin/prometheus"
check = pghttp.Checks()


def api(port, path):
    st, _, body = pghttp.request(port, "GET", path, timeout=10)
    if st != 200:
        raise RuntimeError("Prometheus %s: %d %r" % (path, st, body[:300]))
    return json.loads(body)["data"]


def query(port, expr):
    return api(port, "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]


def scrapes_seen(port, jobs, n, timeout):
    seen = {j: set() for j in jobs}
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            for t in api(port, "/api/v1/targets").get("activeTargets", []):
                j = t["labels"]["job"]
                if j in seen and t.get("lastScrape"):
                    seen[j].add((t["scrapeUrl"], t["lastScrape"]))
        except (OSError, RuntimeError, ValueError):
            pass
        if all(len(v) >= n for v in seen.values()):
            return True
        time.sleep(0.2)
    return False


def main():
    fc.skip_without_cluster(FERRY)
    if not os.path.exists(PROMETHEUS):
        print("SKIP: %s is absent" % PROMETHEUS)
        return 0
    tm = fc.Timer()
    tmp = tempfile.mkdtemp(prefix="ferry-cluster-prom-")
    prom = None
    stop = threading.Event()
    pushes = {"ok": 0, "err": 0, "v": 0, "samples": []}
    try:
        with fc.Cluster(FERRY, 3, name="prom") as cl, fc.Nginx(cl.web) as lb:
            pport = pghttp.free_port()
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
                        "  - job_name: ferry-lb\n    honor_labels: true\n    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n        labels: {via: lb}\n"
                        "    metric_relabel_configs:\n"
                        "      - {source_labels: [__name__], regex: 'cl_rising_total', action: keep}\n"
                        "  - job_name: ferry-replicas\n    honor_labels: true\n    static_configs:\n" % lb.port)
                for i, p in enumerate(cl.web):
                    f.write("      - targets: ['127.0.0.1:%d']\n        labels: {replica: r%d}\n" % (p, i))
            prom = pghttp.Server([PROMETHEUS, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                  "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                  "--web.listen-address=127.0.0.1:%d" % pport], pport, "prometheus",
                                 log_path=os.path.join(tmp, "prometheus.log"), health="/-/ready").start(timeout=30)
            tm.mark("cluster, nginx and Prometheus up")

            def pusher():
                while not stop.is_set():
                    pushes["v"] += 1
                    st, data = fc.push(lb.port, "PUT", "/metrics/job/rise",
                                       b"# TYPE cl_rising_total counter\ncl_rising_total %d\n" % pushes["v"])
                    if 200 <= st < 300:
                        pushes["ok"] += 1
                    else:
                        pushes["err"] += 1
                        if len(pushes["samples"]) < 5:
                            pushes["samples"].append((pushes["v"], st, data[:200]))
                    stop.wait(0.1)
            t = threading.Thread(target=pusher, daemon=True)
            t.start()
            t_start = time.time()
            check(scrapes_seen(pport, ["ferry-lb", "ferry-replicas"], 3, 20), "Prometheus scrapes both jobs")
            tm.mark("warm: scrapes seen")
            t_first_kill = time.time()
            for i in range(3):
                cl.kill9(i)
                time.sleep(0.3)
                cl.restart(i)
                ok = cl.wait_ready(i, 20)
                check(ok, "replica %d ready after its restart" % i)
                tm.mark("kill cycle %d: replica %d killed, restarted, ready" % (i, i))
                # nginx (ha-design 8.6: max_fails=1 fail_timeout=5s) keeps a failed upstream out for 5 s, also once
                # it is back: with kills closer than that, all three are out at once ("no live upstreams", 502 for
                # pushes and scrapes alike; seen with plain replicas). Space the cycles past fail_timeout.
                time.sleep(5.5)
            t_last_ready = time.time()
            time.sleep(1.5)
            stop.set()
            t.join(15)
            window = int(time.time() - t_start) + 2
            tm.mark("pusher stopped: %d acknowledged, %d errors %r" % (pushes["ok"], pushes["err"],
                                                                       pushes["samples"]))
            time.sleep(1.2)  # one more scrape

            res = query(pport, "resets(cl_rising_total[%ds])" % window)
            print("resets over %ds: %s" % (window, [(r["metric"].get("via") or r["metric"].get("replica"),
                                                      r["value"][1]) for r in res]))
            check(len(res) == 4, "4 series of the pushed counter (lb + 3 replicas): %d" % len(res))
            for r in res:
                who = r["metric"].get("via") or r["metric"].get("replica")
                check(r["value"][1] == "0", "resets() == 0 for %s: %s" % (who, r["value"][1]))
            raw = query(pport, 'cl_rising_total{via="lb"}[%ds]' % window)
            if raw:
                ts = [float(v[0]) for v in raw[0]["values"]]
                gaps = [b - a for a, b in zip(ts, ts[1:])]
                worst = max(gaps) if gaps else None
                print("LB series: %d samples, largest spacing %.3f s" % (len(ts), worst or 0))
                check(ts[0] <= t_first_kill and ts[-1] >= t_last_ready - 5.5,
                      "LB series covers the kill cycles: samples from %.1f s before the first kill to %.1f s after "
                      "the last restart" % (t_first_kill - ts[0], ts[-1] - (t_last_ready - 5.5)))
                check(worst is not None and worst <= 1.5,
                      "LB series: no gap longer than one scrape interval: %d samples, largest spacing %s" % (
                          len(ts), worst))
            else:
                check(False, "the LB series exists in Prometheus")
            up = query(pport, 'min_over_time(up{job="ferry-lb"}[%ds])' % window)
            check(up and up[0]["value"][1] == "1", "up == 1 for every LB scrape: %r" % up)
            for i in range(3):
                upr = query(pport, 'min_over_time(up{replica="r%d"}[%ds])' % (i, window))
                print("replica r%d: min(up) %s (a killed or catching-up replica's scrape fails, by design)" % (
                    i, upr[0]["value"][1] if upr else None))
            _, _, pm = pghttp.request(pport, "GET", "/metrics")
            ooo = [ln for ln in pm.decode().split("\n") if ln.startswith("prometheus_target_scrapes_sample_out_of_order")
                   or ln.startswith("prometheus_target_scrapes_sample_duplicate_timestamp")]
            print("Prometheus: %s" % ooo)
            check(all(ln.endswith(" 0") for ln in ooo) and ooo, "no out-of-order or duplicate samples: %s" % ooo)
    finally:
        stop.set()
        if prom is not None:
            prom.stop(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

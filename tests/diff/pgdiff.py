#!/usr/bin/env python3
"""pgdiff: differential tests of Ferry against the reference Pushgateway 1.5.1.

Starts both servers on 127.0.0.1 with the same flags, plays every scenario (tests/diff/scenarios.py) against both,
and compares status codes, bodies, the headers that matter, and after each scenario the pushed part of /metrics and
the whole of /api/v1/metrics. Only what the Pushgateway spec (section 13.1) calls nondeterministic is normalised:
timestamps, group order in JSON, the order of multi-error lines, protobuf metric dumps inside error messages, the
gateway's own go_*/process_*/pushgateway_* families. Scenarios that exercise a documented divergence
(docs/compatibility.md) carry `divergence=` and are checked against Ferry's own documented behaviour instead.

Usage: pgdiff.py --ferry build/ferry [--reference /usr/bin/prometheus-pushgateway] [-k substring] [-v]
       pgdiff.py --self-test   (reference against a second reference: proves the normalisation is sound)
       pgdiff.py --ferry build/ferry --cluster 3 [--via replica|nginx|haproxy] [--write-quorum W]
           (issue 15: the Ferry side is replica 0 of a 3-replica cluster (tests/cluster/ferrycluster.py), or the load
           balancer in front of all three; after each scenario's wipe every replica must be empty. Through a balancer
           the write quorum defaults to "all", so that a read right after an acknowledged change, which round robin
           sends to another replica, sees it (ha-design 8.5, item 2); --write-quorum majority shows that window.
           --cluster 0 --via nginx puts the balancer in front of one plain ferry. Prints SKIP and exits 0 when
           the binary has no --cluster.listen-address.)
Exit status 0 iff every comparison passed; the last line is "N passed, N failed".
"""
import argparse
import gzip
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pghttp  # noqa: E402
import scenarios  # noqa: E402

OWN_PREFIXES = ("go_", "process_", "pushgateway_", "promhttp_", "ferry_")
COMPARED_HEADERS = ("content-type", "location", "allow", "x-content-type-options", "content-encoding",
                    "www-authenticate", "access-control-allow-headers", "access-control-allow-methods",
                    "access-control-allow-origin", "access-control-expose-headers", "cache-control")


def norm_scrape(body, headers):
    """The pushed families of a text scrape, with push time values masked."""
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    out = []
    for line in body.decode("utf-8", "replace").split("\n"):
        name = line
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line[7:]
        if name.startswith(OWN_PREFIXES):
            continue
        m = re.match(r"^(push_time_seconds|push_failure_time_seconds)(\{.*\}) (\S+)$", line)
        if m:
            line = "%s%s %s" % (m.group(1), m.group(2), "0" if m.group(3) == "0" else "<ts>")
        out.append(line)
    return "\n".join(out)


def norm_api(body):
    doc = json.loads(body)
    groups = doc.get("data") or []
    for g in groups:
        for k, fam in list(g.items()):
            if isinstance(fam, dict) and "time_stamp" in fam:
                fam["time_stamp"] = "<ts>"
                if k in ("push_time_seconds", "push_failure_time_seconds"):
                    for m in fam.get("metrics", []):
                        if m.get("value") not in (None, "0"):
                            m["value"] = "<ts>"
    groups.sort(key=lambda g: json.dumps(g.get("labels"), sort_keys=True))
    doc["data"] = groups
    return json.dumps(doc, sort_keys=True, indent=1)


def norm_error_body(body):
    """Consistency-check messages: keep what is deterministic (spec 13.1)."""
    text = body.decode("utf-8", "replace")
    # Which side of a suffix collision between two pushed families is named is random in the reference.
    text = re.sub(r'collected (?:metric|histogram or summary|histogram|summary) named "([^"]*)" collides with '
                  r'previously collected (?:metric|summary|histogram) named "([^"]*)"',
                  lambda m: "suffix collision between %s" % " and ".join(sorted((m.group(1), m.group(2)))), text)
    lines = text.split("\n")
    cut = []
    for ln in lines:
        i = ln.find(" { ")
        cut.append(ln[:i] if i >= 0 else ln)
    if len(cut) > 2 and "error(s) occurred" in cut[0]:
        cut = [cut[0]] + sorted(c for c in cut[1:] if c) + [""]
    return "\n".join(cut)


class Result:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, label, a, b):
        if a == b:
            self.passed += 1
            return True
        self.failed += 1
        self.failures.append((label, a, b))
        return False


def compare_response(res, label, ra, rb, step):
    sa, ha, ba = ra
    sb, hb, bb = rb
    ok = res.check(label + " status", sa, sb)
    if step.get("compare") == "status":
        return ok
    for h in COMPARED_HEADERS:
        if h in step.get("ignore_headers", ()):
            continue
        ok &= res.check(label + " header " + h, ha.get(h), hb.get(h))
    if "content-length" in ha and "content-length" in hb and step.get("compare", "full") == "full":
        ok &= res.check(label + " content-length", ha["content-length"], hb["content-length"])
    if step.get("compare") == "error":
        ok &= res.check(label + " body", norm_error_body(ba), norm_error_body(bb))
    elif step.get("compare") == "scrape":
        ok &= res.check(label + " body", norm_scrape(ba, ha), norm_scrape(bb, hb))
    elif step.get("compare") == "json":
        ok &= res.check(label + " body", norm_api(ba), norm_api(bb))
    elif step.get("compare") == "headers":
        pass
    else:
        ok &= res.check(label + " body", ba, bb)
    return ok


def wipe(port, async_wipe, prefix=""):
    pghttp.request(port, "PUT", prefix + "/api/v1/admin/wipe")
    deadline = time.time() + 5
    while time.time() < deadline:
        st, _, body = pghttp.request(port, "GET", prefix + "/api/v1/metrics")
        if st == 200 and json.loads(body).get("data") == []:
            return
        if not async_wipe:
            break
        time.sleep(0.02)
    raise RuntimeError("wipe did not empty the store on port %d" % port)


class ClusterTarget:
    """The Ferry side in cluster mode: replica 0 of a cluster, or a load balancer in front of the replicas (or of one
    plain ferry with --cluster 0). Has .port like pghttp.Server; a context manager."""

    def __init__(self, args, ferry_argv, flags, prefix):
        self.args, self.ferry_argv, self.flags, self.prefix = args, ferry_argv, flags, prefix
        self.cluster = self.single = self.lb = None

    def __enter__(self):
        import ferrycluster as fc
        a = self.args
        try:
            if a.cluster:
                quorum = a.write_quorum or ("all" if a.via != "replica" else None)
                extra = ["--cluster.write-quorum=" + quorum] if quorum else []
                self.cluster = fc.Cluster(a.ferry, a.cluster, flags=self.flags + extra, admin=False, name="pgdiff",
                                          prefix=self.prefix).start()
                ports = self.cluster.web
            else:
                port = pghttp.free_port()
                self.single = pghttp.Server(self.ferry_argv(port) + self.flags, port, "ferry",
                                            health=self.prefix + "/-/healthy").start()
                ports = [port]
            if a.via == "replica":
                self.port = ports[0]
            else:
                self.lb = (fc.Nginx(ports) if a.via == "nginx" else fc.HAProxy(ports, check=self.prefix + "/-/ready"))
                self.lb.start()
                if a.via == "haproxy":
                    self.lb.wait_servers_up()
                self.port = self.lb.port
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def replica_ports(self):
        return self.cluster.web if self.cluster else [self.single.port]

    def __exit__(self, *exc):
        if self.lb is not None:
            self.lb.__exit__(*exc)
        if self.cluster is not None:
            self.cluster.__exit__(*exc)
        if self.single is not None:
            self.single.stop()


def all_empty(target, prefix, res, label):
    """After a wipe through the target: every replica empty within 2 s (a check of its own)."""
    deadline = time.time() + 2
    left = []
    while True:
        left = []
        for p in target.replica_ports():
            st, _, body = pghttp.request(p, "GET", prefix + "/api/v1/metrics")
            if st != 200 or json.loads(body).get("data") != []:
                left.append((p, st, body[:200]))
        if not left or time.time() > deadline:
            break
        time.sleep(0.02)
    res.check(label + " every replica empty within 2 s of the wipe", [], left)


def run_config(cfg, ferry_argv, ref_argv, args, res):
    flags = cfg["flags"]
    pa, pb = pghttp.free_port(), pghttp.free_port()
    prefix = cfg.get("prefix", "")
    health = prefix + "/-/healthy"
    a = pghttp.Server(ref_argv(pa) + flags, pa, "reference", health=health)
    if args.cluster or args.via != "replica":
        b = ClusterTarget(args, ferry_argv, flags, prefix)
    else:
        b = pghttp.Server(ferry_argv(pb) + flags, pb, "ferry" if not args.self_test else "reference2", health=health)
    with a, b:
        pb = b.port
        for sc in cfg["scenarios"]:
            name = sc["name"]
            if args.k and args.k not in name:
                continue
            if sc.get("divergence"):
                if not args.self_test:
                    run_divergence(sc, b, res, args)
                continue
            label = "%s/%s" % (cfg["name"], name)
            for i, step in enumerate(sc["steps"]):
                path = step["path"]
                ra = pghttp.request(pa, step.get("method", "GET"), path, step.get("body"), step.get("headers"))
                rb = pghttp.request(pb, step.get("method", "GET"), path, step.get("body"), step.get("headers"))
                ok = compare_response(res, "%s step %d (%s %s)" % (label, i, step.get("method", "GET"), path),
                                      ra, rb, step)
                if args.v and not ok:
                    print("  ref  :", ra)
                    print("  other:", rb)
                if step.get("sleep"):
                    time.sleep(step["sleep"])
            if sc.get("check_state", True) and cfg.get("admin", True):
                time.sleep(0.01)
                ra = pghttp.request(pa, "GET", prefix + cfg.get("telemetry", "/metrics"))
                rb = pghttp.request(pb, "GET", prefix + cfg.get("telemetry", "/metrics"))
                compare_response(res, label + " /metrics", ra, rb, {"compare": "scrape"})
                ra = pghttp.request(pa, "GET", prefix + "/api/v1/metrics")
                rb = pghttp.request(pb, "GET", prefix + "/api/v1/metrics")
                compare_response(res, label + " /api/v1/metrics", ra, rb, {"compare": "json"})
            if cfg.get("admin", True):
                wipe(pa, True, prefix)
                wipe(pb, True, prefix)
                if isinstance(b, ClusterTarget):
                    all_empty(b, prefix, res, label)


def run_divergence(sc, server, res, args):
    """Ferry-only checks for a documented divergence: each step states Ferry's expected status (and body)."""
    label = "divergence/" + sc["name"]
    for i, step in enumerate(sc["steps"]):
        st, h, body = pghttp.request(server.port, step.get("method", "GET"), step["path"], step.get("body"),
                                     step.get("headers"))
        exp = step.get("ferry")
        if exp is None:
            continue
        res.check("%s step %d status" % (label, i), st, exp[0])
        if len(exp) > 1:
            res.check("%s step %d body" % (label, i), body, exp[1])
    if sc.get("ferry_scrape") is not None:
        st, h, body = pghttp.request(server.port, "GET", "/metrics")
        res.check(label + " /metrics", norm_scrape(body, h), sc["ferry_scrape"])
    pghttp.request(server.port, "PUT", "/api/v1/admin/wipe")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="build/ferry")
    ap.add_argument("--reference", default="/usr/bin/prometheus-pushgateway")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("-k", help="only scenarios whose name contains this")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--cluster", type=int, default=0, help="replicas of a cluster on the Ferry side (issue 15)")
    ap.add_argument("--via", choices=("replica", "nginx", "haproxy"), default="replica")
    ap.add_argument("--write-quorum", help="--cluster.write-quorum for the replicas")
    args = ap.parse_args()
    if args.cluster or args.via != "replica":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
        import ferrycluster
        if args.cluster:
            ferrycluster.skip_without_cluster(args.ferry)

    def ref_argv(port):
        return [args.reference, "--web.listen-address=127.0.0.1:%d" % port, "--persistence.file="]

    def ferry_argv(port):
        if args.self_test:
            return ref_argv(port)
        return [args.ferry, "--web.listen-address=127.0.0.1:%d" % port, "--web.threads=2"]

    res = Result()
    n_scen = 0
    for cfg in scenarios.CONFIGS:
        n_scen += len(cfg["scenarios"])
        run_config(cfg, ferry_argv, ref_argv, args, res)
    for label, a, b in res.failures:
        print("FAIL %s\n  reference: %r\n  other    : %r" % (label, a, b))
    print("pgdiff: %d scenarios" % n_scen)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

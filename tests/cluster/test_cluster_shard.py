#!/usr/bin/env python3
"""test_cluster_shard.py: jobs sharded over several Ferry replica sets by a real nginx and a real HAProxy (issue 16,
"past one replica set"; docs/operations.md, "Sharding").

The load balancers run the configurations of deploy/sharding/ with only addresses made local: the job rules, the hash
and the front server are taken from those files as they are (nginx: the map block, the hash upstream's directives and
the front server block; HAProxy: the frontend and the hash backend), and each set's own listener is the file's set a
with another name, port and servers. Sets: A is a 3-replica cluster (replication and sharding together), B, C and D
are single Ferry processes; D is added later. Both balancers are run against the same sets, one after the other (the
sets are wiped in between). For each:

  1. 200 jobs are PUT through the front: every job is held by exactly one set, the one its X-Ferry-Set header names;
     a second round (POST) and a DELETE of 20 jobs go to the same set as the first push.
  2. Spellings: job@base64 with and without padding land where each other do (both balancers); the plain and the
     base64 spelling of one job land together behind HAProxy, which decodes base64 (nginx cannot: documented).
  3. Set D is added and the balancer reloaded (nginx SIGHUP, HAProxy master-worker SIGUSR2): after 180 of the jobs
     push again, the share that moved is below 2/(N+1) with N=3 (about 1/(N+1) expected), every moved job went to D,
     none moved between the old sets. The figures are printed.
  4. deploy/sharding/remove-stale-copies.py: with a set it cannot read it exits 2 and deletes nothing; --dry-run
     deletes nothing; then the stale copies (the moved jobs' old groups) are gone, every job is held by exactly one
     set with its latest values, and the 20 jobs that did not push after the reload keep their only copy (no group
     lost); --lb lists those that sit on another set than their job's.
  5. (HAProxy pass, when /usr/bin/prometheus exists) Prometheus with deploy/prometheus/prometheus-sharded.yml's
     ferry-sets job (one target per set, honor_labels; targets made local) sees every set up and each job's
     push_time_seconds once, equal to the one its set holds.

Everything runs on 127.0.0.1 with free ports and is stopped by PID. Skips when build/ferry has no cluster mode.
Usage: test_cluster_shard.py path/to/ferry [path/to/prometheus]
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
NGINX_CONF = os.path.join(DEPLOY, "sharding", "nginx-shards.conf")
HAPROXY_CONF = os.path.join(DEPLOY, "sharding", "haproxy-shards.cfg")
STALE_SCRIPT = os.path.join(DEPLOY, "sharding", "remove-stale-copies.py")
PROM_CONF = os.path.join(DEPLOY, "prometheus", "prometheus-sharded.yml")

FERRY = os.path.abspath(sys.argv[1])
PROMETHEUS = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "/usr/bin/prometheus"
JOBS = ["shard-%03d" % k for k in range(200)]
check = pghttp.Checks()


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode()


# --- configurations: deploy/sharding/* with local addresses --------------------------------------------------------


def nginx_blocks(text):
    """[(header, whole block text)] of the top-level blocks (a line at column 0 ending in '{'), braces matched."""
    out = []
    for m in re.finditer(r"^([a-z_]+[^\n{]*)\{", text, re.M):
        depth, i = 0, m.end() - 1
        while True:
            c = text[i]
            if c == "#":
                i = text.index("\n", i)
                continue
            if c == '"':
                i = text.index('"', i + 1)
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out.append((m.group(1).strip(), text[m.start():i + 1]))
    return out


def render_nginx(tmp, front, sets, generation):
    """An nginx main configuration around deploy/sharding/nginx-shards.conf's blocks. sets: [(name, listen port,
    [replica web ports])]; the hash upstream gets one server per set, in this order."""
    blocks = nginx_blocks(open(NGINX_CONF).read())
    by_header = {h: b for h, b in blocks}
    mapb = next(b for h, b in blocks if h.startswith("map "))
    shards = by_header["upstream ferry_shards"]
    frontb = next(b for h, b in blocks if h == "server" and "location /metrics/job" in b)
    set_up = by_header["upstream ferry_set_a"]
    set_srv = next(b for h, b in blocks if h == "server" and "proxy_pass http://ferry_set_a;" in b)
    conf = [mapb]
    lines = [ln for ln in shards.split("\n") if not ln.strip().startswith("server ")]
    lines[1:1] = ["    server 127.0.0.1:%d;  # set %s" % (port, name) for name, port, _ in sets]
    conf.append("\n".join(lines))
    frontb = re.sub(r"listen 9091;", "listen 127.0.0.1:%d;" % front, frontb)
    frontb = frontb.replace("    location / {", "    location = /shard-test-generation {\n        return 200 \"%d\";\n"
                            "    }\n    location / {" % generation, 1)
    conf.append(frontb)
    for name, port, replicas in sets:
        up = [ln for ln in set_up.replace("ferry_set_a", "ferry_set_" + name).split("\n")
              if not ln.strip().startswith("server ")]
        up[1:1] = ["    server 127.0.0.1:%d max_fails=1 fail_timeout=5s;" % p for p in replicas]
        conf.append("\n".join(up))
        srv = set_srv.replace("ferry_set_a", "ferry_set_" + name).replace("X-Ferry-Set a ", "X-Ferry-Set %s " % name)
        conf.append(re.sub(r"listen 9101;", "listen 127.0.0.1:%d;" % port, srv))
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("""daemon off;
master_process on;
worker_processes 1;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
%(conf)s
}
""" % {"t": tmp, "conf": "\n".join(conf)})
    return os.path.join(tmp, "nginx.conf")


def haproxy_sections(text):
    """[(header line, [lines])] of an HAProxy configuration: a section starts at a line at column 0."""
    out = []
    for line in text.split("\n"):
        if line and not line[0].isspace() and not line.startswith("#"):
            out.append((line.strip(), []))
        elif out:
            out[-1][1].append(line)
    return out


def render_haproxy(tmp, front, sets, generation):
    """deploy/sharding/haproxy-shards.cfg with local addresses; sets as for render_nginx (ids 1, 2, ... in order)."""
    secs = dict(haproxy_sections(open(HAPROXY_CONF).read()))
    out = ["global", "    pidfile %s/haproxy.pid" % tmp] + secs["global"]
    out += ["defaults"] + secs["defaults"]
    fe = []
    for line in secs["frontend ferry-shards"]:
        if line.strip() == "bind :9091":
            fe.append("    bind 127.0.0.1:%d" % front)
            fe.append("    http-request return status 200 content-type text/plain string \"%d\" "
                      "if { path /shard-test-generation }" % generation)
        else:
            fe.append(line)
    out += ["frontend ferry-shards"] + fe
    be = [ln for ln in secs["backend ferry-shards"] if not ln.strip().startswith("server ")]
    be += ["    server %s 127.0.0.1:%d id %d weight 100" % (name, port, i + 1)
           for i, (name, port, _) in enumerate(sets)]
    out += ["backend ferry-shards"] + be
    for name, port, replicas in sets:
        out += ["frontend ferry-set-" + name]
        out += [re.sub(r"bind :9101", "bind 127.0.0.1:%d" % port, ln).replace("ferry-set-a", "ferry-set-" + name)
                for ln in secs["frontend ferry-set-a"]]
        out += ["backend ferry-set-" + name]
        out += [ln for ln in secs["backend ferry-set-a"] if not ln.strip().startswith("server ")]
        out += ["    server %s%d 127.0.0.1:%d check" % (name, k, p) for k, p in enumerate(replicas)]
    path = os.path.join(tmp, "haproxy.cfg")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


class Balancer(pghttp.Server):
    """nginx (master + 1 worker, foreground) or HAProxy (master-worker, foreground) on a rendered configuration;
    reload() re-renders it and signals the master (nginx SIGHUP, HAProxy SIGUSR2), then waits until the front answers
    the new generation several times in a row (the old workers have stopped accepting)."""

    def __init__(self, kind, sets):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="ferry-shard-%s-" % kind)
        self.front = pghttp.free_port()
        self.generation = 1
        conf = self.render(sets)
        if kind == "nginx":
            argv = ["/usr/sbin/nginx", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")]
        else:
            argv = ["/usr/sbin/haproxy", "-W", "-db", "-f", conf]
        super().__init__(argv, self.front, kind, log_path=os.path.join(self.tmp, "stdout.log"),
                         ready_check=lambda s: s.answers_generation())

    def render(self, sets):
        fn = render_nginx if self.kind == "nginx" else render_haproxy
        conf = fn(self.tmp, self.front, sets, self.generation)
        if self.kind == "nginx":
            cmd = ["/usr/sbin/nginx", "-t", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")]
        else:
            cmd = ["/usr/sbin/haproxy", "-c", "-f", conf]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError("%s rejected its configuration: %s%s" % (self.kind, r.stdout, r.stderr))
        return conf

    def answers_generation(self):
        try:
            st, _, body = pghttp.request(self.front, "GET", "/shard-test-generation", timeout=1.0)
        except OSError:
            return False
        return st == 200 and body.strip() == str(self.generation).encode()

    def reload(self, sets, timeout=15.0):
        self.generation += 1
        self.render(sets)
        self.send_signal(signal.SIGHUP if self.kind == "nginx" else signal.SIGUSR2)
        deadline, in_a_row = time.time() + timeout, 0
        while time.time() < deadline and in_a_row < 10:
            in_a_row = in_a_row + 1 if self.answers_generation() else 0
            time.sleep(0.05)
        if in_a_row < 10:
            raise RuntimeError("%s did not take generation %d within %.0fs; log:\n%s" % (
                self.kind, self.generation, timeout, self.logs()))

    def logs(self):
        text = ""
        for f in ("error.log", "stdout.log"):
            try:
                with open(os.path.join(self.tmp, f), errors="replace") as fh:
                    text += fh.read()[-3000:]
            except OSError:
                pass
        return text

    def close(self):
        self.stop(signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM, timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the sets ------------------------------------------------------------------------------------------------------


class Sets:
    """Set A: a 3-replica cluster; B, C, D: single Ferry processes. Each set's listener port is opened by the
    balancer (its per-set server); reads go to the set directly (A: replica 0 once the three are identical)."""

    def __init__(self):
        self.cluster = fc.Cluster(FERRY, 3, name="shard-a")
        self.singles = {}
        self.listen = {n: pghttp.free_port() for n in "abcd"}

    def start(self):
        self.cluster.start()
        for n in "bcd":
            port = pghttp.free_port()
            s = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-admin-api",
                               "--persistence.file=", "--web.threads=1"], port, "shard-" + n,
                              log_path=os.path.join(self.cluster.tmp, "ferry-%s.log" % n))
            s.start()
            self.singles[n] = s
        return self

    def replicas(self, n):
        return list(self.cluster.web) if n == "a" else [self.singles[n].port]

    def spec(self, names):
        return [(n, self.listen[n], self.replicas(n)) for n in names]

    def direct_port(self, n):
        return self.cluster.web[0] if n == "a" else self.singles[n].port

    def groups(self, n):
        """{job: group JSON} of set n (A: once its replicas are identical)."""
        if n == "a":
            took, _ = self.cluster.wait_converged(timeout=5.0)
            if took is None:
                raise RuntimeError("set a's replicas did not converge within 5 s")
        st, _, body = pghttp.request(self.direct_port(n), "GET", "/api/v1/metrics")
        if st != 200:
            raise RuntimeError("set %s: /api/v1/metrics %d" % (n, st))
        out = {}
        for g in json.loads(body)["data"]:
            out.setdefault(g["labels"]["job"], []).append(g)
        return out

    def placement(self, names):
        """{job: [set names holding a group of it]}."""
        where = {}
        for n in names:
            for job in self.groups(n):
                where.setdefault(job, []).append(n)
        return where

    def wipe(self, names):
        for n in names:
            st, _, body = pghttp.request(self.direct_port(n), "PUT", "/api/v1/admin/wipe", body=b"")
            if st not in (200, 202):
                raise RuntimeError("wipe of set %s: %d %r" % (n, st, body))

    def close(self):
        # Ferry takes about 1.5 s to stop on SIGTERM: signal every process first, then wait for each
        for p in self.singles.values():
            p.send_signal(signal.SIGTERM)
        self.cluster.close()
        for s in self.singles.values():
            s.stop(sig=None)


def value(group, family):
    return float(group[family]["metrics"][0]["value"])


def push_all(lb, jobs, method, family, base):
    """One push per job through the front; {job: X-Ferry-Set}. Every push must be answered 200."""
    sets, bad = {}, []
    for job in jobs:
        body = b"# TYPE %s gauge\n%s %d\n" % (family.encode(), family.encode(), base + JOBS.index(job))
        st, h, data = pghttp.request(lb.front, method, "/metrics/job/%s/instance/h1" % job, body=body)
        if st != 200:
            bad.append((job, st, data[:120]))
        sets[job] = h.get("x-ferry-set")
    check(not bad, "%s %s through %s: every push answered 200 (%d not: %s)" % (method, family, lb.kind, len(bad),
                                                                              bad[:3]))
    return sets


def run_balancer(kind, sets, prometheus):
    print("=== %s ===" % kind)
    old, new = ["a", "b", "c"], ["a", "b", "c", "d"]
    t0 = time.time()
    lb = Balancer(kind, sets.spec(old))
    lb.start(timeout=15)
    try:
        # 1. placement, repeated pushes, deletes
        first = push_all(lb, JOBS, "PUT", "shard_round", 1000)
        where = sets.placement(new)
        check(all(len(where.get(j, [])) == 1 for j in JOBS),
              "%s: every job held by exactly one set (%d jobs on none or several)" % (
                  kind, sum(1 for j in JOBS if len(where.get(j, [])) != 1)))
        check(all(where.get(j) == [first[j]] for j in JOBS),
              "%s: every job on the set its X-Ferry-Set header named" % kind)
        check(not any("d" in where.get(j, []) for j in JOBS), "%s: set d, not yet in the balancer, holds nothing"
              % kind)
        counts = {n: sum(1 for j in JOBS if where.get(j) == [n]) for n in old}
        print("%s: 200 jobs over 3 sets: %s" % (kind, counts))
        check(all(c > 0 for c in counts.values()), "%s: every set holds some jobs (%s)" % (kind, counts))
        second = push_all(lb, JOBS, "POST", "shard_more", 2000)
        check(second == first, "%s: the second round (POST) went to the same sets" % kind)
        both = {}
        for n in old:
            for job, gs in sets.groups(n).items():
                both[job] = all("shard_round" in g and "shard_more" in g for g in gs)
        check(all(both.get(j) for j in JOBS), "%s: each job's group holds both rounds' families on its set" % kind)
        gone = JOBS[:20]
        bad = []
        for job in gone:
            st, h, _ = pghttp.request(lb.front, "DELETE", "/metrics/job/%s/instance/h1" % job)
            if st != 202 or h.get("x-ferry-set") != first[job]:
                bad.append((job, st, h.get("x-ferry-set"), first[job]))
        check(not bad, "%s: DELETE of 20 jobs answered 202 by their own set (%s)" % (kind, bad[:3]))
        where = sets.placement(new)
        check(all(j not in where for j in gone) and all(where.get(j) == [first[j]] for j in JOBS[20:]),
              "%s: the 20 deleted jobs are gone from every set, the other 180 stay where they were" % kind)
        push_all(lb, gone, "PUT", "shard_round", 1000)

        # 2. spellings of one job
        spelled = []
        for k in range(10):
            name = "spell-%d-%s" % (k, "x" * (k % 3))  # lengths with 0, 1 and 2 padding characters
            enc = b64(name)
            paths = ["/metrics/job@base64/%s/instance/h1" % enc, "/metrics/job@base64/%s/instance/h1" % enc.rstrip("=")]
            if kind == "haproxy":
                paths.append("/metrics/job/%s/instance/h1" % name)
            got = []
            for i, p in enumerate(paths):
                st, h, _ = pghttp.request(lb.front, "POST", p, body=b"spell_%d 1\n" % i)
                got.append((st, h.get("x-ferry-set")))
            spelled.append((name, got))
        check(all(len(set(g)) == 1 and g[0][0] == 200 for _, g in spelled),
              "%s: job@base64 with and without padding%s land on one set (%s)" % (
                  kind, " and the plain spelling" if kind == "haproxy" else "",
                  [s for s in spelled if len(set(s[1])) != 1][:2]))
        where = sets.placement(new)
        check(all(len(where.get(name, [])) == 1 and len(sets.groups(where[name][0])[name]) == 1 for name, _ in spelled),
              "%s: each spelled job is one group on one set" % kind)
        for name, _ in spelled:
            pghttp.request(lb.front, "DELETE", "/metrics/job@base64/%s/instance/h1" % b64(name))
        if kind == "nginx":
            split = 0
            for k in range(10):
                name = "spell-%d-%s" % (k, "x" * (k % 3))
                _, h, _ = pghttp.request(lb.front, "POST", "/metrics/job/%s/instance/h2" % name, body=b"spell_p 1\n")
                split += h.get("x-ferry-set") != dict(spelled)[name][0][1]
            print("nginx: the plain spelling of 10 base64-pushed jobs went to another set for %d of them "
                  "(nginx cannot decode base64: clients spell a job one way)" % split)
            for k in range(10):
                name = "spell-%d-%s" % (k, "x" * (k % 3))
                pghttp.request(lb.front, "DELETE", "/metrics/job/%s/instance/h2" % name)

        # 3. a fourth set
        before = {j: first[j] for j in JOBS}
        lb.reload(sets.spec(new))
        pushed_again = JOBS[20:]  # the first 20 do not push after the reload: their copies must survive
        after = push_all(lb, pushed_again, "PUT", "shard_round", 3000)
        moved = [j for j in pushed_again if after[j] != before[j]]
        between_old = [j for j in moved if after[j] != "d"]
        share = len(moved) / len(pushed_again)
        print("%s: adding set d to 3 sets moved %d of %d jobs (%.1f%%; 1/(N+1) = 25%%), all to d: %s" % (
            kind, len(moved), len(pushed_again), 100 * share, not between_old))
        check(0 < share < 2 / 4,
              "%s: the share of jobs moved by a fourth set is in (0, 2/(N+1)) (%.3f)" % (kind, share))
        check(not between_old, "%s: no job moved between the old sets (%s)" % (kind, between_old[:5]))
        where = sets.placement(new)
        check(all(sorted(where.get(j, [])) == sorted({before[j], after[j]}) for j in pushed_again),
              "%s: a moved job is now on its old and its new set, the others on their set alone" % kind)

        # 4. the stale copies
        urls = ["%s=http://127.0.0.1:%d" % (n, sets.listen[n]) for n in new]
        down = subprocess.run([sys.executable, STALE_SCRIPT] + urls + ["z=http://127.0.0.1:%d" % pghttp.free_port()],
                              capture_output=True, text=True, timeout=120)
        check(down.returncode == 2 and "nothing deleted" in down.stderr and sets.placement(new) == where,
              "%s: with a set it cannot read, the script exits 2 and deletes nothing (exit %d, %r)" % (
                  kind, down.returncode, down.stderr[-200:]))
        dry = subprocess.run([sys.executable, STALE_SCRIPT, "--dry-run"] + urls, capture_output=True, text=True,
                             timeout=120)
        listed = sum(1 for ln in dry.stdout.split("\n") if ln.startswith("would delete "))
        check(dry.returncode == 0 and listed == len(moved),
              "%s: --dry-run lists the %d stale copies (exit %d, %d listed; stderr %r)" % (
                  kind, len(moved), dry.returncode, listed, dry.stderr[-300:]))
        check(sets.placement(new) == where, "%s: --dry-run deleted nothing" % kind)
        run = subprocess.run([sys.executable, STALE_SCRIPT, "--lb", "http://127.0.0.1:%d" % lb.front] + urls,
                             capture_output=True, text=True, timeout=120)
        print(run.stdout.strip().split("\n")[-1])
        deleted = sum(1 for ln in run.stdout.split("\n") if ln.startswith("deleted "))
        check(run.returncode == 0 and deleted == len(moved),
              "%s: the script deleted the %d stale copies (exit %d; stderr %r)" % (kind, len(moved), run.returncode,
                                                                                 run.stderr[-300:]))
        where = sets.placement(new)
        check(all(where.get(j) == [after[j]] for j in pushed_again),
              "%s: every job that pushed after the reload is on its new set alone" % kind)
        check(all(where.get(j) == [before[j]] for j in JOBS[:20]),
              "%s: the 20 jobs that did not push again keep their only copy (no group lost)" % kind)
        values_ok = True
        for n in new:
            for job, gs in sets.groups(n).items():
                if job in pushed_again:
                    values_ok &= value(gs[0], "shard_round") == 3000 + JOBS.index(job)
        check(values_ok, "%s: the copies kept hold the latest push" % kind)
        # --lb: the 20 that did not push again and whose job now goes elsewhere are listed, not deleted
        expect = 0
        for j in JOBS[:20]:
            _, h, _ = pghttp.request(lb.front, "GET", "/metrics/job/%s" % j)
            expect += h.get("x-ferry-set") != before[j]
        listed = sum(1 for ln in run.stdout.split("\n") if ln.startswith("misplaced "))
        check(listed == expect, "%s: --lb lists the %d single copies whose job now goes to another set (%d listed)" % (
            kind, expect, listed))

        if prometheus:
            scrape_check(sets, new)
    finally:
        lb.close()
    print("%s pass: %.1f s" % (kind, time.time() - t0))


# --- Prometheus, one target per set ----------------------------------------------------------------------------------


def scrape_check(sets, names):
    tmp = tempfile.mkdtemp(prefix="ferry-shard-prom-")
    text = open(PROM_CONF).read()
    targets = "[%s]" % ", ".join("'127.0.0.1:%d'" % sets.listen[n] for n in names)
    text = text.replace("['ferry-lb:9101', 'ferry-lb:9102']", targets, 1)
    text = re.sub(r"scrape_interval: 15s", "scrape_interval: 1s\n  scrape_timeout: 1s", text, 1)
    text = re.sub(r"(?s)\n  - job_name: ferry-replicas.*", "\n", text)  # the replicas' job is the cluster suites'
    text = re.sub(r"(?m)^  - (ferry-[a-z]+\.yml)$", lambda m: "  - " + os.path.join(DEPLOY, "prometheus", m.group(1)),
                  text)
    conf = os.path.join(tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write(text)
    port = pghttp.free_port()
    prom = pghttp.Server([PROMETHEUS, "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port], port, "prometheus",
                         log_path=os.path.join(tmp, "prometheus.log"), health="/-/ready", ready_status=(200,))
    try:
        prom.start(timeout=30)

        def query(expr):
            st, _, body = pghttp.request(port, "GET", "/api/v1/query?query=" + urllib.parse.quote(expr))
            return json.loads(body)["data"]["result"] if st == 200 else None

        deadline = time.time() + 20
        ups = series = None
        while time.time() < deadline:
            ups = query('up{job="ferry-sets"}')
            series = query('push_time_seconds{job=~"shard-.*"}')
            if ups and len(ups) == len(names) and all(u["value"][1] == "1" for u in ups) and series and \
                    len(series) == len(JOBS):
                break
            time.sleep(0.5)
        check(ups is not None and len(ups) == len(names) and all(u["value"][1] == "1" for u in ups),
              "Prometheus: the %d set targets are up (%s)" % (len(names), ups))
        check(series is not None and len(series) == len(JOBS),
              "Prometheus: push_time_seconds of each of the 200 jobs once (%s series)" % (
                  len(series) if series is not None else None))
        held = {}
        for n in names:
            for job, gs in sets.groups(n).items():
                held[job] = value(gs[0], "push_time_seconds")
        same = [s for s in (series or []) if abs(float(s["value"][1]) - held.get(s["metric"]["job"], -1)) < 1e-3]
        check(series is not None and len(same) == len(series),
              "Prometheus: each job's push_time_seconds is the one its set holds (%d of %d)" % (
                  len(same), len(series or [])))
    finally:
        prom.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def check_deploy_files():
    """nginx -t and haproxy -c on deploy/sharding/'s files as they are, with only the replicas' names made loopback
    addresses (both resolve server names when they load a configuration; neither binds its ports for a check)."""
    tmp = tempfile.mkdtemp(prefix="ferry-shard-check-")
    try:
        text = re.sub(r"ferry-[ab]-[0-2]:9091", "127.0.0.1:9091", open(NGINX_CONF).read())
        with open(os.path.join(tmp, "shards.conf"), "w") as f:
            f.write(text)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  include %s/shards.conf;\n}\n"
                    % (tmp, tmp, tmp))
        r = subprocess.run(["/usr/sbin/nginx", "-t", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"), "-e",
                            os.path.join(tmp, "error.log")], capture_output=True, text=True, timeout=20)
        check(r.returncode == 0, "nginx -t accepts deploy/sharding/nginx-shards.conf: %s" % r.stderr.strip()[-400:])
        text = re.sub(r"ferry-[ab]-[0-2]:9091", "127.0.0.1:9091", open(HAPROXY_CONF).read())
        with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
            f.write(text)
        r = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", os.path.join(tmp, "haproxy.cfg")], capture_output=True,
                           text=True, timeout=20)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and "WARNING" not in out,
              "haproxy -c accepts deploy/sharding/haproxy-shards.cfg without a warning: %s" % out[-400:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # docs/operations.md shows these files: every line of its nginx and haproxy blocks and of its scrape
    # configuration (comments aside) must be a line of the file it quotes
    doc = open(os.path.join(ROOT, "docs", "operations.md")).read()
    quoted = [(b, NGINX_CONF) for b in re.findall(r"```nginx\n(.*?)```", doc, re.S)]
    quoted += [(b, HAPROXY_CONF) for b in re.findall(r"```haproxy\n(.*?)```", doc, re.S)]
    quoted += [(b, PROM_CONF) for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "scrape_configs:" in b]
    check(len(quoted) == 3,
          "docs/operations.md quotes the nginx, HAProxy and Prometheus files (%d blocks)" % len(quoted))
    for block, path in quoted:
        lines = {ln.strip() for ln in open(path)}
        stray = [ln.strip() for ln in block.split("\n") if ln.strip() and not ln.strip().startswith("#")
                 and ln.strip() not in lines]
        check(not stray,
              "docs/operations.md quotes %s as it is (lines not in it: %s)" % (os.path.basename(path), stray))


def main():
    fc.skip_without_cluster(FERRY)
    for tool in ("/usr/sbin/nginx", "/usr/sbin/haproxy"):
        check(os.path.exists(tool), "%s is installed (scripts/install-deps.sh test)" % tool)
    if check.failed:
        return check.summary()
    check_deploy_files()
    prometheus = os.path.exists(PROMETHEUS)
    if not prometheus:
        print("no %s: the Prometheus check is skipped" % PROMETHEUS)
    t0 = time.time()
    sets = Sets()
    try:
        sets.start()
        run_balancer("nginx", sets, False)
        sets.wipe(["a", "b", "c", "d"])
        run_balancer("haproxy", sets, prometheus)
    except BaseException:
        sets.cluster.dump_logs()
        raise
    finally:
        sets.close()
    print("total %.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""run_clients: pushes to a gateway with real client libraries and checks what the gateway then serves.

Clients: Debian's python3-prometheus-client (text format), client_golang's push package from Debian (protobuf),
npm's prom-client (text, chunked, no Content-Type), and promtool's linter over the resulting /metrics. Each client
gets its own gateway on a free 127.0.0.1 port, behind a small recording TCP proxy so the suite can also assert what
the client put on the wire (method, path, Content-Type, framing): those are the requests a replacement must handle.

Usage: run_clients.py [--gateway-cmd "CMD ARGS"] [--only python|go|node|promtool] [--cache-dir DIR]
The gateway command gets --web.listen-address=127.0.0.1:PORT --persistence.file= appended. The last line printed
is "N passed, N failed"; the exit status is non-zero if anything failed. A missing tool is a failure that names the
package to install (scripts/install-client-deps.sh), never a skip.
"""
import argparse
import fcntl
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "diff"))
import pghttp  # noqa: E402  (tests/diff/pghttp.py: Server, request, free_port)

SYS_PYTHON = "/usr/bin/python3"  # Debian's prometheus_client lives in its dist-packages, not in a pyenv Python
GOPATH = "/usr/share/gocode"  # where golang-*-dev packages put their sources
INSTALL_HINT = "run scripts/install-client-deps.sh"
TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"


class ToolMissing(Exception):
    pass


# --- recording proxy ------------------------------------------------------------------------------------------------

class RecordingProxy:
    """Forwards TCP connections unchanged to the gateway and keeps every byte the client sent, so requests can be
    parsed afterwards exactly as they went over the wire (chunked bodies stay chunked)."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.streams = []  # one bytearray per client connection, in accept order
        self.threads = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)
            buf = bytearray()
            with self.lock:
                self.streams.append(buf)
            for src, dst, rec in ((c, u, buf), (u, c, None)):
                t = threading.Thread(target=self._pump, args=(src, dst, rec), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, rec):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if rec is not None:
                    with self.lock:
                        rec.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (dst, src):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self):
        """Parses and forgets everything recorded so far: [(method, path, {lower-case header: value}, body, chunked)]."""
        with self.lock:
            streams, self.streams = self.streams, []
            raw = [bytes(s) for s in streams]
            for s in streams:
                s.clear()
        out = []
        for data in raw:
            out.extend(parse_requests(data))
        return out

    def close(self):
        self.lsock.close()


def parse_requests(data):
    reqs, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            raise ValueError("incomplete request head in %r" % data[pos:pos + 200])
        lines = data[pos:end].decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        pos = end + 4
        body, chunked = b"", headers.get("transfer-encoding", "").lower() == "chunked"
        if chunked:
            while True:
                eol = data.index(b"\r\n", pos)
                size = int(data[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    pos = data.index(b"\r\n", pos) + 2  # no trailers are expected
                    break
                body += data[pos:pos + size]
                pos += size + 2
        else:
            n = int(headers.get("content-length", "0"))
            body, pos = data[pos:pos + n], pos + n
        reqs.append((method, path, headers, body, chunked))
    return reqs


# --- text exposition parsing ----------------------------------------------------------------------------------------

def parse_labels(s, i):
    """s[i] is just after '{'. Returns ({name: value}, index after '}')."""
    labels = {}
    while True:
        while s[i] in " ,":
            i += 1
        if s[i] == "}":
            return labels, i + 1
        eq = s.index("=", i)
        name = s[i:eq].strip()
        i = eq + 1
        assert s[i] == '"', s
        i += 1
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                val.append({"n": "\n", "\\": "\\", '"': '"'}[s[i + 1]])
                i += 2
            else:
                val.append(s[i])
                i += 1
        labels[name] = "".join(val)
        i += 1


def parse_metrics(text):
    """Returns (samples {(name, frozenset(labels.items())): float}, types {family: type}, helps {family: help})."""
    samples, types, helps = {}, {}, {}
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            helps[parts[2]] = parts[3].replace("\\n", "\n").replace("\\\\", "\\") if len(parts) > 3 else ""
            continue
        if line.startswith("#"):
            continue
        brace, space = line.find("{"), line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, i = parse_labels(line, brace + 1)
            rest = line[i:].split()
        else:
            name, labels, rest = line[:space], {}, line[space + 1:].split()
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ValueError("duplicate series %s%s" % (name, labels))
        samples[key] = float(rest[0])
    return samples, types, helps


def canon(labels):
    """le and quantile are numbers the gateway re-renders (Python's "1.0" comes back as "1"): compare them as numbers."""
    out = {}
    for k, v in labels.items():
        out[k] = repr(float(v)) if k in ("le", "quantile") else v
    return frozenset(out.items())


def fmt_series(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels)))


# --- expectations ---------------------------------------------------------------------------------------------------

class Family:
    def __init__(self, name, typ, help, samples, timestamps=()):
        """samples: [(series name, {labels}, value)]; timestamps: series names whose value is a creation time."""
        self.name, self.typ, self.help, self.samples, self.timestamps = name, typ, help, samples, set(timestamps)


def hist_sum(values):
    s = 0.0
    for v in values:
        s += v
    return s


def common_families(p, counter_name, with_quantile, created):
    """The families every client's "push" step sends; p is the metric prefix. `created`: Python's _created gauges."""
    obs = [0.05, 0.5, 0.5, 5, 50]
    hist = [(str(ub), sum(1 for o in obs if o <= ub)) for ub in (0.1, 1, 10, math.inf)]
    fams = [
        Family(counter_name, "counter", "Requests seen.",
               [(counter_name, {"code": "200"}, 7), (counter_name, {"code": "500"}, 2)]),
        Family(p + "_temperature_celsius", "gauge", "Temperature.", [(p + "_temperature_celsius", {}, -3.5)]),
        Family(p + "_latency_seconds", "histogram", "Latency.",
               [(p + "_latency_seconds_bucket", {"le": "+Inf" if ub == "inf" else ub}, n) for ub, n in hist] +
               [(p + "_latency_seconds_sum", {}, hist_sum(obs)), (p + "_latency_seconds_count", {}, len(obs))]),
        Family(p + "_size_bytes", "summary", "Sizes.",
               ([(p + "_size_bytes", {"quantile": "0.5"}, 2)] if with_quantile else []) +
               [(p + "_size_bytes_sum", {}, 6), (p + "_size_bytes_count", {}, 3)]),
    ]
    if created:
        base = counter_name[:-len("_total")]
        fams += [
            Family(base + "_created", "gauge", "Requests seen.",
                   [(base + "_created", {"code": "200"}, None), (base + "_created", {"code": "500"}, None)],
                   [base + "_created"]),
            Family(p + "_latency_seconds_created", "gauge", "Latency.",
                   [(p + "_latency_seconds_created", {}, None)], [p + "_latency_seconds_created"]),
            Family(p + "_size_bytes_created", "gauge", "Sizes.",
                   [(p + "_size_bytes_created", {}, None)], [p + "_size_bytes_created"]),
        ]
    return fams


def gauge(name, help, value):
    return Family(name, "gauge", help, [(name, {}, value)])


class Client:
    """One client library: how to run a step, its metric prefix, its groups and what it sends on the wire."""

    def __init__(self, name, prefix, job, group, counter_name, with_quantile, created):
        self.name, self.prefix, self.job = name, prefix, job
        self.group = dict(group, job=job, instance="")  # labels the gateway puts on every series of the group
        self.replace_group = {"job": job, "env": "prod", "instance": ""}
        self.pushed = common_families(prefix, counter_name, with_quantile, created)

    def expected(self, step):
        """{frozenset(group labels): [Family]} that must be on the gateway after `step` (steps run in order)."""
        g, r = frozenset(self.group.items()), frozenset(self.replace_group.items())
        added = gauge(self.prefix + "_added", "Added by POST.", 42)
        replacement = gauge(self.prefix + "_replacement", "The second PUT.", 2)
        return {
            "push": {g: self.pushed},
            "add": {g: self.pushed + [added]},
            "replace": {g: self.pushed + [added], r: [replacement]},
            "delete": {r: [replacement]},
        }[step]


# Python and Go escape plain values with QueryEscape/quote_plus, so the space in "gö x" arrives as "+", which the
# gateway keeps verbatim (it only percent-decodes the path): the stored value is "gö+x". prom-client uses
# encodeURIComponent ("%20") and gets "gö x".
PY = Client("python", "py", "py_job", {"path": "a/b/c", "env": "", "lang": "gö+x"}, "py_requests_total", False, True)
GO = Client("go", "gocl", "go_job", {"path": "a/b/c", "env": "", "lang": "gö+x"}, "gocl_requests_total", True, False)
NODE = Client("node", "node", "node_job", {"lang": "gö x", "env": ""}, "node_requests_total", True, False)


# --- checks ---------------------------------------------------------------------------------------------------------

class Result:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   - %s" % name)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (name, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return ok


def get_metrics(port):
    st, h, body = pghttp.request(port, "GET", "/metrics")
    if st != 200:
        raise RuntimeError("GET /metrics gave %d: %r" % (st, body[:200]))
    return body.decode("utf-8")


def check_state(res, label, port, groups, t0, t1):
    """The job-labelled series on /metrics are exactly the expected groups' series plus each group's push_time_seconds
    (within [t0, t1]) and push_failure_time_seconds 0; TYPE and HELP match what was pushed."""
    samples, types, helps = parse_metrics(get_metrics(port))
    got = {(n, canon(dict(ls))): v for (n, ls), v in samples.items() if any(k == "job" for k, _ in ls)}
    want, ranged, fams = {}, set(), {}
    for glabels, families in groups.items():
        g = dict(glabels)
        for f in families:
            fams[f.name] = f
            for sname, ls, v in f.samples:
                key = (sname, canon(dict(ls, **g)))
                want[key] = v
                if sname in f.timestamps:
                    ranged.add(key)
        ranged.add(("push_time_seconds", canon(g)))
        want[("push_time_seconds", canon(g))] = None
        want[("push_failure_time_seconds", canon(g))] = 0
    problems = []
    for k in sorted(set(want) | set(got), key=fmt_series):
        if k not in got:
            problems.append("missing " + fmt_series(k))
        elif k not in want:
            problems.append("unexpected %s %r" % (fmt_series(k), got[k]))
        elif k in ranged:
            if not (t0 - 1 <= got[k] <= t1 + 1):
                problems.append("%s = %r, not a time within the step [%.3f, %.3f]" % (fmt_series(k), got[k], t0, t1))
        elif got[k] != want[k]:
            problems.append("%s = %r, want %r" % (fmt_series(k), got[k], want[k]))
    for f in fams.values():
        if types.get(f.name) != f.typ or helps.get(f.name) != f.help:
            problems.append("family %s: TYPE %r HELP %r, want %r %r" %
                            (f.name, types.get(f.name), helps.get(f.name), f.typ, f.help))
    res.check("%s: /metrics holds exactly the pushed series" % label, not problems, "; ".join(problems[:8]))
    return samples


def check_api(res, label, port, groups):
    """/api/v1/metrics lists exactly the expected groups, each with its labels and families (type, values)."""
    st, _, body = pghttp.request(port, "GET", "/api/v1/metrics")
    problems = []
    if st != 200:
        problems.append("status %d" % st)
    else:
        doc = json.loads(body)
        if doc.get("status") != "success":
            problems.append("status field %r" % doc.get("status"))
        seen = {}
        for g in doc.get("data", []):
            labels = dict(g["labels"])
            seen[frozenset(labels.items())] = g
        want_keys = {frozenset((k, v) for k, v in gl if not (k == "instance" and v == "")) for gl in groups}
        # The API lists the grouping key itself; instance="" is only added to the series.
        if set(seen) != want_keys:
            problems.append("groups %s, want %s" % (sorted(map(sorted, seen)), sorted(map(sorted, want_keys))))
        for glabels, families in groups.items():
            key = frozenset((k, v) for k, v in glabels if not (k == "instance" and v == ""))
            g = seen.get(key)
            if g is None:
                continue
            if g.get("last_push_successful") is not True:
                problems.append("%s: last_push_successful %r" % (sorted(key), g.get("last_push_successful")))
            names = {k for k in g if k not in ("labels", "last_push_successful")}
            want_names = {f.name for f in families} | {"push_time_seconds", "push_failure_time_seconds"}
            if names != want_names:
                problems.append("%s: families %s, want %s" % (sorted(key), sorted(names), sorted(want_names)))
            for f in families:
                fam = g.get(f.name)
                if fam is None:
                    continue
                if fam.get("type") != f.typ.upper() or fam.get("help") != f.help:
                    problems.append("%s: type %r help %r" % (f.name, fam.get("type"), fam.get("help")))
                if f.typ in ("counter", "gauge") and not f.timestamps:
                    got = sorted((sorted((k, v) for k, v in m["labels"].items()
                                         if k not in dict(glabels)), float(m["value"])) for m in fam["metrics"])
                    want = sorted((sorted(ls.items()), float(v)) for _, ls, v in f.samples)
                    if got != want:
                        problems.append("%s: values %s, want %s" % (f.name, got, want))
    res.check("%s: /api/v1/metrics lists the same groups and families" % label, not problems, "; ".join(problems[:8]))


def run_step(res, argv, label, timeout=60):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        res.check(label, False, "client did not finish within %ds" % timeout)
        return None
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    if not res.check(label, p.returncode == 0, "exit %d: %s" % (p.returncode, out.strip()[-500:])):
        return None
    return p.stdout.decode("utf-8", "replace").strip()


def check_wire(res, label, reqs, want):
    """want: [(method, path or set of path components, Content-Type or None (absent), chunked)]."""
    got, problems = [], []
    for i, (method, path, h, body, chunked) in enumerate(reqs):
        if i < len(want) and isinstance(want[i][1], frozenset):
            comps = path.split("/")[2:]  # the pairs after "/metrics/"
            path = frozenset(zip(comps[0::2], comps[1::2]))
        got.append((method, path, h.get("content-type"), chunked))
    if got != want:
        problems.append("got %r, want %r" % (got, want))
    res.check("%s: requests on the wire" % label, not problems, "; ".join(problems))


# --- tools ----------------------------------------------------------------------------------------------------------

def need_python():
    if not os.access(SYS_PYTHON, os.X_OK):
        raise ToolMissing("%s not found (Debian package python3; %s)" % (SYS_PYTHON, INSTALL_HINT))
    p = subprocess.run([SYS_PYTHON, "-c", "import prometheus_client"], capture_output=True)
    if p.returncode != 0:
        raise ToolMissing("%s cannot import prometheus_client (Debian package python3-prometheus-client; %s)"
                          % (SYS_PYTHON, INSTALL_HINT))
    return [SYS_PYTHON, os.path.join(HERE, "python", "pushclient.py")]


def need_go(cache_dir):
    go = shutil.which("go")
    if go is None:
        raise ToolMissing("go not found (Debian package golang-go; %s)" % INSTALL_HINT)
    if not os.path.isdir(os.path.join(GOPATH, "src/github.com/prometheus/client_golang/prometheus/push")):
        raise ToolMissing("client_golang sources missing under %s (Debian package "
                          "golang-github-prometheus-client-golang-dev; %s)" % (GOPATH, INSTALL_HINT))
    os.makedirs(cache_dir, exist_ok=True)
    exe = os.path.join(cache_dir, "pushclient")
    src = os.path.join(HERE, "go", "main.go")
    # ctest may run the go and promtool tests at once: one build at a time, the second one reuses the binary.
    with open(os.path.join(cache_dir, "build.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            # GOPATH mode over Debian's packaged sources: no module download, no network (GOPROXY=off).
            env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOPROXY="off", GOFLAGS="",
                       GOCACHE=os.path.join(cache_dir, "gocache"), CGO_ENABLED="0")
            t = time.time()
            p = subprocess.run([go, "build", "-o", exe + ".tmp", "."], cwd=os.path.join(HERE, "go"), env=env,
                               capture_output=True, timeout=300)
            if p.returncode != 0:
                raise ToolMissing("go build of tests/clients/go failed: %s" % p.stderr.decode()[-1500:])
            os.replace(exe + ".tmp", exe)
            print("# built %s in %.1fs" % (exe, time.time() - t))
    return [exe]


def need_node():
    node = shutil.which("node")
    if node is None:
        raise ToolMissing("node not found (Debian package nodejs; %s)" % INSTALL_HINT)
    if not os.path.isdir(os.path.join(HERE, "node", "node_modules", "prom-client")):
        raise ToolMissing("tests/clients/node/node_modules/prom-client missing (npm ci; %s)" % INSTALL_HINT)
    return [node, os.path.join(HERE, "node", "pushclient.js")]


def need_promtool():
    pt = shutil.which("promtool")
    if pt is None:
        raise ToolMissing("promtool not found (Debian package prometheus; %s)" % INSTALL_HINT)
    return pt


# --- suites ---------------------------------------------------------------------------------------------------------

def start_gateway(args, name):
    port = pghttp.free_port()
    argv = shlex.split(args.gateway_cmd) + ["--web.listen-address=127.0.0.1:%d" % port, "--persistence.file="]
    if not os.access(argv[0], os.X_OK) and shutil.which(argv[0]) is None:
        raise ToolMissing("gateway binary %s not found or not executable" % argv[0])
    log = os.path.join(args.cache_dir, "gateway-%s-%d.log" % (name, port))
    return pghttp.Server(argv, port, "gateway-" + name, log_path=log).start()


def wire_expectations(client, step):
    """What each client library sends for a step (asserted so that a server knows what it must accept)."""
    if client is PY:
        path = "/metrics/job/py_job/env@base64/=/lang/g%C3%B6+x/path@base64/YS9iL2M="  # sorted keys, padded base64
        method = {"push": ["PUT"], "add": ["POST"], "replace": ["PUT", "PUT"], "delete": ["DELETE"]}[step]
        if step == "replace":
            path = "/metrics/job/py_job/env/prod"
        return [(m, path, TEXT_CT, False) for m in method]
    if client is GO:
        # Grouping is a Go map: component order varies, so the path is compared as a set of (name, value).
        comps = frozenset({("job", "go_job"), ("path@base64", "YS9iL2M"), ("env@base64", "="),
                           ("lang", "g%C3%B6+x")})  # base64 without padding, "=" for the empty value
        if step == "replace":
            comps = frozenset({("job", "go_job"), ("env", "prod")})
        ct = pghttp.PB_CONTENT_TYPE
        return {"push": [("PUT", comps, ct, False)], "add": [("POST", comps, ct, False)],
                "replace": [("PUT", comps, ct, False)] * 2, "delete": [("DELETE", comps, None, False)]}[step]
    path = "/metrics/job/node_job/lang/g%C3%B6%20x/env/"  # encodeURIComponent; empty value = trailing slash
    if step == "replace":
        path = "/metrics/job/node_job/env/prod"
    # prom-client sets no Content-Type and streams the body chunked; DELETE has neither body nor framing.
    return {"push": [("PUT", path, None, True)], "add": [("POST", path, None, True)],
            "replace": [("PUT", path, None, True)] * 2, "delete": [("DELETE", path, None, False)]}[step]


def run_client(args, res, client, argv):
    gw = start_gateway(args, client.name)
    proxy = RecordingProxy(gw.port)
    url = "http://127.0.0.1:%d" % proxy.port
    try:
        for step in ("push", "add", "replace", "delete"):
            label = "%s %s" % (client.name, step)
            t0 = time.time()
            if run_step(res, argv + [url, step], label + ": client exits 0") is None:
                return
            t1 = time.time()
            check_wire(res, label, proxy.take(), wire_expectations(client, step))
            groups = client.expected(step)
            check_state(res, label, gw.port, groups, t0, t1)
            check_api(res, label, gw.port, groups)
        if client is NODE:
            run_node_edges(res, argv, url, gw.port, proxy)
    finally:
        proxy.close()
        gw.stop()


def run_node_edges(res, argv, url, port, proxy):
    """Two prom-client behaviours a server must reproduce: a '/' in a grouping value arrives as %2F, which the
    gateway decodes into path separators and rejects (400); an empty value before another pair gives '//', which the
    gateway answers with a 301 that prom-client resolves as success without storing anything."""
    before = get_metrics(port)
    out = run_step(res, argv + [url, "slash"], "node slash: push is rejected")
    if out is not None:
        want = 'push failed with status 400, odd number of components in label string "/path/a/b"'
        res.check("node slash: error text", out == want, "got %r, want %r" % (out, want))
    reqs = proxy.take()
    res.check("node slash: sent as %2F", [r[1] for r in reqs] == ["/metrics/job/node_job/path/a%2Fb"],
              repr([r[1] for r in reqs]))
    out = run_step(res, argv + [url, "midempty"], "node midempty: client exits 0")
    if out is not None:
        res.check("node midempty: resolved with the redirect status", out == "301", "got %r" % out)
    reqs = proxy.take()
    res.check("node midempty: sent with //", [r[1] for r in reqs] == ["/metrics/job/node_job/env//lang/x"],
              repr([r[1] for r in reqs]))
    strip = lambda t: [ln for ln in t.split("\n") if "job=" in ln]  # noqa: E731
    res.check("node edges: nothing was stored", strip(get_metrics(port)) == strip(before))


def run_promtool(args, res, clients):
    pt = need_promtool()
    gw = start_gateway(args, "promtool")
    try:
        url = "http://127.0.0.1:%d" % gw.port
        for client, argv in clients:
            for step in ("push", "add", "replace"):
                if run_step(res, argv + [url, step], "promtool: %s %s" % (client.name, step)) is None:
                    return
        text = get_metrics(gw.port)
        samples, _, _ = parse_metrics(text)
        jobs = {v for (_, ls) in samples for k, v in ls if k == "job"}
        res.check("promtool: all clients' groups are on /metrics", jobs == {c.job for c, _ in clients}, repr(jobs))
        p = subprocess.run([pt, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        res.check("promtool check metrics: exit 0, no problem reported", p.returncode == 0 and out == "",
                  "exit %d: %s" % (p.returncode, out[:1500]))
    finally:
        gw.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway-cmd", default="/usr/bin/prometheus-pushgateway",
                    help="gateway command; --web.listen-address and --persistence.file= are appended")
    ap.add_argument("--only", choices=["python", "go", "node", "promtool"], action="append",
                    help="run only these clients (repeatable); default all")
    ap.add_argument("--cache-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ferry-clients"),
                    help="where the Go program is built once and gateway logs go")
    args = ap.parse_args()
    os.makedirs(args.cache_dir, exist_ok=True)
    only = args.only or ["python", "go", "node", "promtool"]
    res = Result()
    makers = {"python": (PY, need_python), "go": (GO, lambda: need_go(args.cache_dir)), "node": (NODE, need_node)}
    for name in only:
        t = time.time()
        try:
            if name == "promtool":
                run_promtool(args, res, [(makers[n][0], makers[n][1]()) for n in ("python", "go", "node")])
            else:
                client, need = makers[name]
                run_client(args, res, client, need())
        except ToolMissing as e:
            res.check("%s: required tool" % name, False, str(e))
        except Exception as e:  # a crashed gateway or an unparsable answer is a failure of this client, not a skip
            res.check("%s: ran to the end" % name, False, "%s: %s" % (type(e).__name__, e))
        print("# %s took %.1fs" % (name, time.time() - t))
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed or res.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

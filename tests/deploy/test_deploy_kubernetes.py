#!/usr/bin/env python3
"""test_deploy_kubernetes.py: the Kubernetes manifests of deploy/kubernetes/ render, hang together, and their
arguments run (issue 16).

Offline, without a cluster: `kubectl kustomize` renders deploy/kubernetes/base (one replica set) and
deploy/kubernetes/sharded (two sets and HAProxy), and the rendering is read with PyYAML (Debian's python3-yaml, hence
/usr/bin/python3). Checked:
  - the kinds and names (StatefulSet, headless Service with publishNotReadyAddresses, Service per set, the HAProxy
    Deployment, Service and its generated ConfigMap, referenced by its hashed name);
  - each StatefulSet: serviceName is its headless Service, podManagementPolicy Parallel, --cluster.peer lists exactly
    its own pods (<statefulset>-<i>.<headless service>:9095 for i < replicas), --cluster.advertise-address is
    $(POD_NAME) in that Service with POD_NAME from metadata.name, --cluster.replicas is its replica count, the
    ports named in the probes exist; the sets' --cluster.label differ; every Service selects the pods of exactly one
    set, and each set's Services select its pods;
  - HAProxy's configuration from the ConfigMap: its job rules and hash lines are those of
    deploy/sharding/haproxy-shards.cfg, its servers are the sets' Services on their port, and haproxy -c accepts it
    (the Service names made 127.0.0.1, since HAProxy resolves them when it loads);
  - the arguments run: each StatefulSet's container arguments, with only the addresses made local (listen addresses
    on free 127.0.0.1 ports, each pod name mapped to its replica's local peer port, $(POD_NAME) expanded), start three
    build/ferry replicas that all become ready (/-/ready 200): the base's set, then both sets of the sharded overlay
    with HAProxy on the ConfigMap's configuration in front (Service names made local): 20 jobs pushed through it are
    each held by exactly one set, the one its X-Ferry-Set header names.

Usage: /usr/bin/python3 test_deploy_kubernetes.py path/to/ferry [path/to/kubectl]
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
KUBECTL = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "kubectl"
K8S = os.path.join(ROOT, "deploy", "kubernetes")
SHARDING_CFG = os.path.join(ROOT, "deploy", "sharding", "haproxy-shards.cfg")
check = pghttp.Checks()


def render(overlay):
    try:
        r = subprocess.run([KUBECTL, "kustomize", os.path.join(K8S, overlay)], capture_output=True, text=True,
                           timeout=120)
    except FileNotFoundError:
        check(False, "kubectl is installed (Debian package kubernetes-client, scripts/install-deps.sh test)")
        return []
    check(r.returncode == 0, "kubectl kustomize deploy/kubernetes/%s: %s" % (overlay, r.stderr.strip()[-600:]))
    import yaml
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flag(args, name):
    return [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]


def check_statefulset(where, sts, services):
    """The checks of the module doc for one StatefulSet; returns (container args, {pod host:port: pod name}, pod
    labels)."""
    name, spec = sts["metadata"]["name"], sts["spec"]
    headless = services.get(spec.get("serviceName"))
    check(headless is not None and headless["spec"].get("clusterIP") == "None"
          and headless["spec"].get("publishNotReadyAddresses") is True,
          "%s: StatefulSet %s's serviceName %r is a headless Service publishing not-ready addresses" % (
              where, name, spec.get("serviceName")))
    check(spec.get("podManagementPolicy") == "Parallel", "%s: %s starts its pods in parallel" % (where, name))
    pod_labels = spec["template"]["metadata"]["labels"]
    check(selects(spec["selector"]["matchLabels"], pod_labels), "%s: %s's selector matches its pods" % (where, name))
    c = spec["template"]["spec"]["containers"][0]
    args, n = c["args"], spec["replicas"]
    svc = spec.get("serviceName")
    hosts = {"%s-%d.%s:9095" % (name, i, svc): "%s-%d" % (name, i) for i in range(n)}
    check(sorted(flag(args, "--cluster.peer")) == sorted(hosts),
          "%s: %s's --cluster.peer lists exactly its own %d pods %s (got %s)" % (
              where, name, n, sorted(hosts), flag(args, "--cluster.peer")))
    check(flag(args, "--cluster.advertise-address") == ["$(POD_NAME).%s:9095" % svc],
          "%s: %s advertises $(POD_NAME).%s:9095" % (where, name, svc))
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
          "%s: %s's POD_NAME is the pod's name" % (where, name))
    check(flag(args, "--cluster.replicas") == [str(n)], "%s: %s's --cluster.replicas is %d" % (where, name, n))
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("http") == 9091 and ports.get("peer") == 9095 and flag(args, "--web.listen-address") == [":9091"]
          and flag(args, "--cluster.listen-address") == [":9095"],
          "%s: %s's ports http 9091 and peer 9095 are the ones it listens on" % (where, name))
    for probe in ("readinessProbe", "livenessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("port") in ports and get.get("path") in ("/-/ready", "/-/healthy"),
              "%s: %s's %s probes %s on a named port" % (where, name, probe, get.get("path")))
    check(c["readinessProbe"]["httpGet"]["path"] == "/-/ready", "%s: %s is ready when /-/ready is" % (where, name))
    return args, hosts, pod_labels


def local_args(args, hosts, pod, web, peer_ports):
    """The container's arguments with only the addresses made local: listen addresses on this replica's ports, every
    pod host:port on that pod's local peer port, $(POD_NAME) expanded. Unknown hosts are left as they are (and the
    replica would then fail to reach them)."""
    out = []
    for a in args:
        a = a.replace("$(POD_NAME)", pod)
        if a == "--web.listen-address=:9091":
            a = "--web.listen-address=127.0.0.1:%d" % web
        elif a == "--cluster.listen-address=:9095":
            a = "--cluster.listen-address=127.0.0.1:%d" % peer_ports[pod]
        else:
            for host, p in hosts.items():
                a = a.replace("=" + host, "=127.0.0.1:%d" % peer_ports[p])
        out.append(a)
    return out + ["--persistence.file="]


def run_set(where, args, hosts, tmp):
    """Starts one replica per pod with local addresses; returns the servers once all answer /-/ready 200."""
    pods = sorted(hosts.values())
    peer_ports = {p: pghttp.free_port() for p in pods}
    servers = []
    for p in pods:
        web = pghttp.free_port()
        argv = [FERRY] + local_args(args, hosts, p, web, peer_ports)
        s = pghttp.Server(argv, web, p, log_path=os.path.join(tmp, p + ".log"), health="/-/ready", ready_status=(200,))
        s.start(wait=False)
        servers.append(s)
    ready = [s.wait_ready(30) for s in servers]
    check(all(ready), "%s: the 3 replicas started with the StatefulSet's arguments are ready (%s)" % (where, ready))
    if not all(ready):
        for s in servers:
            print("--- %s: %s\n%s" % (s.name, s.argv, s.log()[-1500:]))
    return servers


def stop_all(servers):
    for s in servers:
        s.send_signal(signal.SIGTERM)  # each takes 1.5 s to exit: signal all first
    for s in servers:
        s.stop(sig=None)


def job_rules(cfg_text):
    """The lines that decide where a job goes, in the sections frontend ferry-shards and backend ferry-shards: the
    http-request rules, balance, hash-type and the X-Ferry-Set header."""
    out, section = [], None
    for ln in cfg_text.split("\n"):
        if ln and not ln[0].isspace():
            section = ln.strip()
        elif section in ("frontend ferry-shards", "backend ferry-shards") and re.match(
                r"\s+(http-request |http-response |balance |hash-type )", ln):
            out.append(ln.strip())
    return out


def main():
    try:
        import yaml  # noqa: F401
    except ImportError:
        check(False, "PyYAML is importable from %s (Debian package python3-yaml, scripts/install-deps.sh test)"
              % sys.executable)
        return check.summary()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="ferry-deploy-k8s-")
    running = []
    try:
        # --- the base: one replica set ---
        base = render("base")
        if check.failed:
            return check.summary()
        sts, svc = by_kind(base, "StatefulSet"), by_kind(base, "Service")
        check(sorted(sts) == ["ferry"] and sorted(svc) == ["ferry", "ferry-peers"],
              "base: StatefulSet ferry, Services ferry and ferry-peers (%s, %s)" % (sorted(sts), sorted(svc)))
        args, hosts, _ = check_statefulset("base", sts["ferry"], svc)
        running = run_set("base", args, hosts, tmp)
        stop_all(running)
        running = []

        # --- the sharded overlay ---
        docs = render("sharded")
        sts, svc = by_kind(docs, "StatefulSet"), by_kind(docs, "Service")
        deps, cms = by_kind(docs, "Deployment"), by_kind(docs, "ConfigMap")
        check(sorted(sts) == ["ferry-a", "ferry-b"], "sharded: StatefulSets ferry-a and ferry-b (%s)" % sorted(sts))
        check(sorted(svc) == ["ferry-a", "ferry-b", "ferry-peers-a", "ferry-peers-b", "ferry-push"],
              "sharded: a Service and a headless one per set, and ferry-push (%s)" % sorted(svc))
        check(sorted(deps) == ["ferry-shards"], "sharded: the HAProxy Deployment ferry-shards (%s)" % sorted(deps))
        sets = {}
        for name in sorted(sts):
            sets[name] = check_statefulset("sharded", sts[name], svc)
        labels = [flag(a, "--cluster.label") for a, _, _ in sets.values()]
        check(len({tuple(x) for x in labels}) == len(sets) and all(len(x) == 1 for x in labels),
              "sharded: each set has its own --cluster.label (%s)" % labels)
        pod_labels = {name: pl for name, (_, _, pl) in sets.items()}
        for sname, s in svc.items():
            chosen = [n for n, pl in pod_labels.items() if selects(s["spec"].get("selector"), pl)]
            if sname == "ferry-push":
                lb_pods = deps["ferry-shards"]["spec"]["template"]["metadata"]["labels"]
                check(not chosen and selects(s["spec"]["selector"], lb_pods),
                      "sharded: ferry-push selects HAProxy only")
            else:
                check(chosen == ["ferry-" + sname[-1]],
                      "sharded: Service %s selects the pods of its own set only (%s)" % (sname, chosen))
        for name in sets:
            check(sts[name]["spec"]["serviceName"] == "ferry-peers-" + name[-1] and name in svc,
                  "sharded: set %s has its Service %s and its headless Service %s" % (name, name,
                                                                                     sts[name]["spec"]["serviceName"]))
        dep = deps["ferry-shards"]["spec"]["template"]["spec"]
        cm_names = [v["configMap"]["name"] for v in dep.get("volumes", []) if "configMap" in v]
        check(len(cm_names) == 1 and cm_names[0] in cms and cm_names[0].startswith("ferry-shards-haproxy-"),
              "sharded: HAProxy mounts the generated ConfigMap by its hashed name (%s; %s)" % (cm_names, sorted(cms)))
        cfg = cms[cm_names[0]]["data"]["haproxy.cfg"] if cm_names and cm_names[0] in cms else ""
        mount = dep["containers"][0]["volumeMounts"][0]["mountPath"]
        check(dep["containers"][0]["args"] == ["-f", mount + "/haproxy.cfg"],
              "sharded: HAProxy reads the ConfigMap's haproxy.cfg (%s)" % dep["containers"][0]["args"])
        want = job_rules(open(SHARDING_CFG).read())
        check(len(want) == 6 and job_rules(cfg) == want,
              "sharded: haproxy.cfg's job rules and hash are deploy/sharding/haproxy-shards.cfg's:\n  %s\n  %s" % (
                  job_rules(cfg), want))
        servers = re.findall(r"(?m)^\s+server (\S+) (\S+):(\d+) ", cfg)
        check(sorted((h, int(p)) for _, h, p in servers) == [("ferry-a", 9091), ("ferry-b", 9091)]
              and all(svc[h]["spec"]["ports"][0]["port"] == int(p) for _, h, p in servers),
              "sharded: HAProxy's servers are the sets' Services on their port (%s)" % servers)
        check(re.search(r"(?m)^\s+bind :9091$", cfg) is not None and any(
            p.get("containerPort") == 9091 for p in dep["containers"][0]["ports"]),
            "sharded: HAProxy binds the port its container declares")

        # the sets' arguments with HAProxy in front
        for name in sorted(sets):
            args, hosts, _ = sets[name]
            running += run_set("sharded " + name, args, hosts, tmp)
        front = pghttp.free_port()
        local = cfg.replace("bind :9091", "bind 127.0.0.1:%d" % front)
        first = {name: running[3 * i].port for i, name in enumerate(sorted(sets))}
        for name, port in first.items():
            local = local.replace(" %s:9091 " % name, " 127.0.0.1:%d " % port)
        conf = os.path.join(tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(local)
        r = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", conf], capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "WARNING" not in r.stdout + r.stderr,
              "sharded: haproxy -c accepts the ConfigMap's haproxy.cfg: %s" % (r.stdout + r.stderr).strip()[-500:])
        lb = pghttp.Server(["/usr/sbin/haproxy", "-db", "-f", conf], front, "haproxy",
                           log_path=os.path.join(tmp, "haproxy.log"), ready_check=pghttp.Server.listening)
        lb.start(timeout=15)
        try:
            answered = {}
            for k in range(20):
                st, h, _ = pghttp.request(front, "PUT", "/metrics/job/k8s-%02d" % k, body=b"k8s_job %d\n" % k)
                answered["k8s-%02d" % k] = (st, h.get("x-ferry-set"))
        finally:
            lb.stop(signal.SIGUSR1)
        check(all(st == 200 for st, _ in answered.values()), "sharded: 20 pushes through HAProxy answered 200 (%s)"
              % sorted({st for st, _ in answered.values()}))
        held = {}
        for i, name in enumerate(sorted(sets)):
            deadline = time.time() + 5
            while True:  # a 200 means 2 of 3 replicas hold it: read once the set's replicas agree
                bodies = [pghttp.request(s.port, "GET", "/api/v1/metrics")[2] for s in running[3 * i:3 * i + 3]]
                if all(b == bodies[0] for b in bodies) or time.time() > deadline:
                    break
                time.sleep(0.05)
            for g in json.loads(bodies[0])["data"]:
                held.setdefault(g["labels"]["job"], []).append(name[-1])
        check(all(held.get(j) == [s] for j, (_, s) in answered.items()),
              "sharded: each job is held by exactly the set its X-Ferry-Set header names (%s)" % held)
        check(len({s for _, s in answered.values()}) == 2, "sharded: both sets received jobs (%s)" % (
            sorted({s for _, s in answered.values()})))
    finally:
        stop_all(running)
        subprocess.run(["rm", "-rf", tmp])
    print("kubernetes manifests checked in %.1f s" % (time.time() - t0))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

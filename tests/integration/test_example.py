#!/usr/bin/env python3
"""test_example.py: the batch-job example of docs/example/ end to end (issue 6).

- docs/example/run.sh itself is run, with free loopback ports, a 0.5 s push interval and a 1 s scrape interval; it
  configures Prometheus from the committed docs/example/prometheus.yml. Through Prometheus's HTTP API
  (/api/v1/query) the test waits until processed_items{job="processor"} has been seen with two increasing values,
  and checks that up{job="ferry"} is 1 (Ferry's own target, honor_labels keeping the pushed job label apart).
- SIGTERM to run.sh stops Ferry, Prometheus and the simulator (PIDs from its output): none is left running and the
  ports are closed again.
- The simulator alone, pointed at a port where nothing listens: it reports each failed push on stderr and keeps
  running; once a gateway appears there, its next push succeeds and it says so.
Usage: test_example.py path/to/ferry [path/to/prometheus]
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
PROMETHEUS = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/prometheus"
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLE = os.path.join(ROOT, "docs", "example")
check = pghttp.Checks()


class Output:
    """Collects a process's output lines on a thread, so that waiting for a line has a deadline."""

    def __init__(self, stream):
        self.lines, self.cond = [], threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for raw in stream:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pattern, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not running
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def query(port, expr):
    """The instant vector of expr as [(labels, float value)], or None when Prometheus did not answer."""
    try:
        st, _, body = pghttp.request(port, "GET", "/api/v1/query?query=" + urllib.parse.quote(expr), timeout=5)
    except OSError:
        return None
    if st != 200:
        return None
    doc = json.loads(body)
    if doc.get("status") != "success":
        return None
    return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]


def example_end_to_end():
    ferry_port, prom_port = pghttp.free_port(), pghttp.free_port()
    while prom_port == ferry_port:
        prom_port = pghttp.free_port()
    env = dict(os.environ, FERRY=FERRY, PROMETHEUS=PROMETHEUS, FERRY_PORT=str(ferry_port), PROMETHEUS_PORT=str(prom_port),
               PUSH_INTERVAL="0.5", SCRAPE_INTERVAL="1s", PYTHON=sys.executable)
    env.pop("WORK_DIR", None)
    t0 = time.time()
    run = subprocess.Popen(["bash", os.path.join(EXAMPLE, "run.sh")], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Output(run.stdout)
    pids = {}
    try:
        ready = out.wait_for(r"^run\.sh: running", 40)
        check(ready is not None, "run.sh reports that everything runs; its output:\n" + out.text())
        if ready is None:
            return
        for name in ("Ferry", "Prometheus", "Simulator"):
            m = re.search(r"^%s .*\(pid (\d+)" % name, out.text(), re.M)
            check(m is not None, "run.sh prints the PID of " + name)
            if m:
                pids[name] = int(m.group(1))
        text = out.text()
        check("http://127.0.0.1:%d/" % ferry_port in text, "run.sh prints Ferry's URL")
        check("http://127.0.0.1:%d/graph" % prom_port in text, "run.sh prints Prometheus's graph URL")
        print("example started in %.1fs" % (time.time() - t0))

        # processed_items arrives through Prometheus, and increases
        seen, deadline = [], time.time() + 30
        while time.time() < deadline and not (len(seen) >= 2 and seen[-1] > seen[0]):
            res = query(prom_port, 'processed_items{job="processor"}')
            if res:
                check(len(res) == 1, "one processed_items series: %r" % (res,))
                labels, v = res[0]
                check(labels.get("job") == "processor" and "exported_job" not in labels,
                      "honor_labels keeps the pushed job label: %r" % labels)
                if not seen or v != seen[-1]:
                    seen.append(v)
            time.sleep(0.3)
        check(len(seen) >= 2 and seen[-1] > seen[0] and seen == sorted(seen),
              "processed_items{job=\"processor\"} seen at least twice, increasing: %r" % seen)
        print("processed_items values seen: %r after %.1fs" % (seen, time.time() - t0))

        up = query(prom_port, 'up{job="ferry"}')
        check(up is not None and len(up) == 1 and up[0][1] == 1.0, "up{job=\"ferry\"} == 1: %r" % (up,))
        check(up is not None and len(up) == 1 and up[0][0].get("instance") == "127.0.0.1:%d" % ferry_port,
              "the ferry target is the example's Ferry: %r" % (up,))
    finally:
        rc = pghttp.stop_process(run, timeout=20)
        # anything run.sh failed to stop is a failure, and is stopped here by its PID
        for name, pid in pids.items():
            left = alive(pid)
            check(not left, "%s (pid %d) stopped with run.sh" % (name, pid))
            if left:
                os.kill(pid, signal.SIGKILL)
    check(rc == 143, "run.sh exits 143 on SIGTERM (got %s)" % rc)
    check(out.wait_for(r"^run\.sh: stopped", 5) is not None, "run.sh says it stopped everything")
    for port in (ferry_port, prom_port):
        try:
            pghttp.request(port, "GET", "/-/ready", timeout=1)
            closed = False
        except OSError:
            closed = True
        check(closed, "port %d is closed after run.sh stopped" % port)
    print("example stopped after %.1fs" % (time.time() - t0))


def simulator_survives_failures():
    port = pghttp.free_port()
    env = dict(os.environ, PUSHGATEWAY_URL="http://127.0.0.1:%d" % port, JOB_NAME="sim/test", PUSH_INTERVAL="0.2")
    sim = subprocess.Popen([sys.executable, "-u", os.path.join(EXAMPLE, "simulator.py")], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Output(sim.stdout)
    try:
        check(out.wait_for(r"push 3 failed, will retry", 10) is not None,
              "the simulator reports failed pushes and retries:\n" + out.text())
        check(sim.poll() is None, "the simulator keeps running while the gateway is down")
        with pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port], port, "ferry-example"):
            check(out.wait_for(r"push succeeded again", 10) is not None,
                  "the simulator's push succeeds once the gateway is up:\n" + out.text())
            # a job name with a slash goes through job@base64
            _, _, body = pghttp.request(port, "GET", "/metrics")
            check(re.search(rb'^processed_items\{instance="",job="sim/test"\} \d+$', body, re.M) is not None,
                  "processed_items of job sim/test is on the gateway")
    finally:
        rc = pghttp.stop_process(sim)
    check(rc == 0, "the simulator exits 0 on SIGTERM (got %s)" % rc)
    check(out.wait_for(r"simulator: stopped after \d+ items", 5) is not None, "the simulator says it stopped")


if __name__ == "__main__":
    if not os.access(PROMETHEUS, os.X_OK):
        print("FAIL: no Prometheus at %s (Debian package prometheus; scripts/install-deps.sh test)" % PROMETHEUS)
        sys.exit(1)
    simulator_survives_failures()
    example_end_to_end()
    sys.exit(check.summary())

"""ferrycluster: real-process harness for Ferry's replication (issue 15; ha-design sections 8 and 10, T3-T6).

Everything a cluster suite starts goes through pghttp.Server (tests/diff/pghttp.py, the one process harness): free
127.0.0.1 ports, bounded waits, stops by PID. On top of it:

  Cluster(ferry, n=3, flags=..., durable=False)
      n build/ferry replicas, each with --web.listen-address, --cluster.listen-address and --cluster.peer entries that
      point at a FaultProxy in front of every other replica's peer port (plus, with include_self, its own peer port
      directly: the peer list may include the replica itself). Data directories under one temp dir. kill9(i),
      restart(i, empty=False), stop(i)/cont(i) (SIGSTOP/SIGCONT), isolate(i)/heal(), wait_ready(i, timeout),
      metrics_json(i), wait_converged(timeout), close(): all by PID, every loop bounded.
  ProxyHub / FaultProxy
      one asyncio loop in a daemon thread; one listening proxy per directed peer link i->j (replica i's connections to
      replica j's peer port). Modes: pass, blackhole (accept and read, forward nothing, not even a FIN; connections
      that were blackholed are reset when the link heals, since their dropped bytes cannot be replayed), delay N ms
      (each chunk forwarded N ms after it was read, order kept), refuse (the listening socket is closed: connect()
      gets ECONNREFUSED; reopened on the same port by the next mode change), reset() (RST every open connection).
  Nginx(port, upstream_ports), HAProxy(port, upstream_ports)
      the load balancers of ha-design 8.6, run in the foreground under our control (nginx -p <tmp> with daemon off;
      haproxy -db), configs, pid files and logs in a temp dir; their logs are printed when they fail.
  has_cluster(ferry): whether the binary knows --cluster.listen-address (the suites skip without it).
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

OWN_PREFIXES = ("go_", "process_", "pushgateway_", "promhttp_", "ferry_")


def has_cluster(ferry):
    """True iff `ferry --help` lists --cluster.listen-address."""
    try:
        out = subprocess.run([ferry, "--help"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--cluster.listen-address" in out.stdout + out.stderr


# FERRY_CLUSTER_FAKE=1: run the suites against n independent single-node replicas (no --cluster.* flags). For
# checking the suites themselves: they must then fail on divergence, never pass or crash.
FAKE = bool(os.environ.get("FERRY_CLUSTER_FAKE"))


def skip_without_cluster(ferry):
    """Exits 0 with a SKIP line when the binary has no cluster mode (the suites stay green before the code lands)."""
    if FAKE:
        print("FERRY_CLUSTER_FAKE: independent single-node replicas, no replication (checks are expected to fail)")
        return
    if not has_cluster(ferry):
        print("SKIP: %s has no --cluster.listen-address (replication not built in yet)" % ferry)
        sys.exit(0)


# --- the fault-injecting TCP proxy --------------------------------------------------------------------------------


def _rst(writer):
    """Closes a stream with an RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except (OSError, AttributeError, RuntimeError):
        pass


class _Conn:
    def __init__(self, proxy):
        self.proxy = proxy
        self.writers = []  # client side first, upstream second (when connected)
        self.tasks = []
        self.blackholed = False  # saw blackhole: reset when the link heals
        self.eofs = 0

    def kill(self):
        for w in self.writers:
            _rst(w)
        for t in self.tasks:
            t.cancel()


class FaultProxy:
    """One directed link: listens on 127.0.0.1:port, forwards to 127.0.0.1:target. Controlled from any thread."""

    def __init__(self, hub, target, name, port=None):
        self.hub, self.target, self.name = hub, target, name
        self.port = port or pghttp.free_port()
        self.mode, self.delay_ms = "pass", 0
        self.conns = set()
        self.server = None
        self.accepted = 0
        self.bytes = 0

    # --- control (any thread) ---
    def set_pass(self):
        self._set("pass")

    def blackhole(self):
        self._set("blackhole")

    def delay(self, ms):
        self._set("delay", ms)

    def refuse(self):
        self._set("refuse")

    def reset(self):
        """RST every open connection (new ones are accepted as the mode says)."""
        self.hub.call(self._reset_all)

    def _set(self, mode, ms=0):
        self.hub.call(self._apply, mode, ms)

    # --- loop thread ---
    async def _apply(self, mode, ms):
        old = self.mode
        self.mode, self.delay_ms = mode, ms
        if mode == "blackhole":
            for c in self.conns:
                c.blackholed = True
        if old == "blackhole" and mode != "blackhole":
            for c in [c for c in self.conns if c.blackholed]:
                c.kill()
                self.conns.discard(c)
        if mode == "refuse":
            await self._close_listener()
        elif self.server is None:
            await self._listen()

    async def _reset_all(self):
        for c in list(self.conns):
            c.kill()
        self.conns.clear()

    async def _listen(self):
        deadline = time.time() + 5
        while True:
            try:
                self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
                return
            except OSError:
                if time.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _close_listener(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _accept(self, reader, writer):
        self.accepted += 1
        c = _Conn(self)
        c.writers.append(writer)
        self.conns.add(c)
        if self.mode == "blackhole":
            c.blackholed = True
            c.tasks.append(asyncio.ensure_future(self._drain_only(reader)))
            return
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target), 2.0)
        except (OSError, asyncio.TimeoutError):
            _rst(writer)  # the target is down: the client sees its connection reset
            self.conns.discard(c)
            return
        c.writers.append(uw)
        c.tasks.append(asyncio.ensure_future(self._pump(c, reader, uw)))
        c.tasks.append(asyncio.ensure_future(self._pump(c, ur, writer)))

    async def _drain_only(self, reader):
        try:
            while await reader.read(65536):
                pass
        except (OSError, asyncio.CancelledError):
            pass

    async def _pump(self, c, reader, writer):
        """Copies one direction; in blackhole reads and drops; in delay mode hands chunks to a timed writer. An EOF
        is forwarded as a half-close (unless blackholed); a read error resets both sides."""
        queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(c, queue, writer))
        c.tasks.append(sender)
        try:
            while True:
                data = await reader.read(65536)
                if c.blackholed:
                    if not data:
                        return  # a FIN is not forwarded either
                    continue
                due = time.monotonic() + (self.delay_ms / 1000.0 if self.mode == "delay" else 0)
                await queue.put((due, data))
                if not data:
                    return
        except asyncio.CancelledError:
            pass
        except OSError:
            c.kill()
            self.conns.discard(c)

    async def _send(self, c, queue, writer):
        try:
            while True:
                due, data = await queue.get()
                if c.blackholed:
                    continue
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if c.blackholed:
                    continue
                if not data:
                    try:
                        writer.write_eof()
                    except (OSError, RuntimeError):
                        pass
                    c.eofs += 1
                    if c.eofs == 2:  # both directions closed: a normal close
                        for w in c.writers:
                            w.close()
                        self.conns.discard(c)
                    return
                self.bytes += len(data)
                writer.write(data)
                await writer.drain()
        except asyncio.CancelledError:
            pass
        except (OSError, RuntimeError):
            c.kill()
            self.conns.discard(c)


class ProxyHub:
    """The asyncio loop (a daemon thread) that runs every FaultProxy of a test."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxyhub", daemon=True)
        self.thread.start()
        self.proxies = []

    def call(self, coro_fn, *args, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro_fn(*args), self.loop).result(timeout)

    def add(self, target, name, port=None):
        p = FaultProxy(self, target, name, port)
        self.call(p._listen)
        self.proxies.append(p)
        return p

    def close(self):
        async def shut():
            for p in self.proxies:
                await p._reset_all()
                await p._close_listener()
        try:
            self.call(shut)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --- the replicas -------------------------------------------------------------------------------------------------


class Replica(pghttp.Server):
    def __init__(self, argv, port, name, log_path, env=None, prefix=""):
        super().__init__(argv, port, name, log_path=log_path, health=prefix + "/-/ready", ready_status=(200,),
                         poll=0.02, env=env)
        self.paused = False


class Cluster:
    """n replicas of build/ferry with a FaultProxy on every directed peer link. Use as a context manager."""

    def __init__(self, ferry, n=3, flags=(), durable=False, include_self=True, name="cluster", web_threads=2,
                 peer_timeout="2s", admin=True, tmp=None, verbose=True, prefix="", replica_flags=None):
        self.ferry, self.n, self.flags, self.durable = os.path.abspath(ferry), n, list(flags), durable
        # replica_flags: {i: [flag, ...]}, replica i's own extra flags (after flags); may be changed before a restart
        self.replica_flags = dict(replica_flags or {})
        self.include_self, self.name, self.web_threads, self.admin = include_self, name, web_threads, admin
        self.peer_timeout = peer_timeout
        self.verbose, self.prefix = verbose, prefix
        self.tmp = tmp or tempfile.mkdtemp(prefix="ferry-%s-" % name)
        self.web = [pghttp.free_port() for _ in range(n)]
        self.peer = [pghttp.free_port() for _ in range(n)]
        self.hub = ProxyHub()
        self.links = {}  # (i, j): the proxy replica i uses to reach replica j
        for i in range(n):
            for j in range(n):
                if i != j:
                    self.links[(i, j)] = self.hub.add(self.peer[j], "%d->%d" % (i, j))
        self.replicas = [None] * n
        self.starts = [0] * n
        self.closed = False

    # --- process control ---
    def argv(self, i):
        a = [self.ferry, "--web.listen-address=127.0.0.1:%d" % self.web[i],
             "--cluster.listen-address=127.0.0.1:%d" % self.peer[i]]
        if self.web_threads:
            a.append("--web.threads=%d" % self.web_threads)
        if self.admin:
            a.append("--web.enable-admin-api")
        if self.peer_timeout:
            a.append("--cluster.peer-timeout=" + self.peer_timeout)
        for j in range(self.n):
            if j == i:
                if self.include_self:
                    a.append("--cluster.peer=127.0.0.1:%d" % self.peer[i])
            else:
                a.append("--cluster.peer=127.0.0.1:%d" % self.links[(i, j)].port)
        if self.durable:
            a += ["--persistence.file=" + os.path.join(self.datadir(i), "ferry.db"), "--persistence.durable"]
        else:
            a.append("--persistence.file=")
        a += self.flags
        a += list(self.replica_flags.get(i, ()))
        if FAKE:
            a = [x for x in a if not x.startswith("--cluster.")]
        return a

    def datadir(self, i):
        d = os.path.join(self.tmp, "r%d" % i)
        os.makedirs(d, exist_ok=True)
        return d

    def start(self, timeout=30.0, wait=True):
        for i in range(self.n):
            self._spawn(i)
        if wait:
            self.wait_all_ready(timeout)
        return self

    def _spawn(self, i):
        self.starts[i] += 1
        log = os.path.join(self.datadir(i), "ferry.log.%d" % self.starts[i])
        env = dict(os.environ)
        r = Replica(self.argv(i), self.web[i], "%s-r%d" % (self.name, i), log, env=env, prefix=self.prefix)
        r.start(wait=False)
        self.replicas[i] = r

    def alive(self, i):
        r = self.replicas[i]
        return r is not None and r.proc is not None and r.proc.poll() is None

    def kill9(self, i):
        """SIGKILL by PID, reaped (bounded)."""
        r = self.replicas[i]
        if r.paused:
            self.cont(i)
        r.stop(sig=signal.SIGKILL, timeout=10)

    def terminate(self, i):
        r = self.replicas[i]
        if r.paused:
            self.cont(i)
        return r.stop(timeout=15)

    def restart(self, i, empty=False, wait=False, timeout=30.0):
        """Starts replica i again on the same ports (after kill9/terminate; kills it first if it still runs).
        empty: its data directory is removed first (a replica restarted without its persistence file)."""
        if self.alive(i):
            self.kill9(i)
        if empty:
            for f in os.listdir(self.datadir(i)):
                if not f.startswith("ferry.log."):
                    p = os.path.join(self.datadir(i), f)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        self._spawn(i)
        if wait and not self.wait_ready(i, timeout):
            raise RuntimeError("replica %d not ready %.0fs after restart; log tail:\n%s" % (i, timeout, self.log_tail(i)))

    def stop(self, i):
        """SIGSTOP: the process is frozen, its sockets stay open (silent to its peers). Returns once every thread has
        stopped (a loaded machine runs a thread on for a while after the signal)."""
        self.replicas[i].send_signal(signal.SIGSTOP)
        self.replicas[i].paused = True
        if not pghttp.wait_stopped(self.replicas[i].proc.pid):
            raise RuntimeError("replica %d still running 10 s after SIGSTOP" % i)

    def cont(self, i):
        self.replicas[i].send_signal(signal.SIGCONT)
        self.replicas[i].paused = False

    def isolate(self, i):
        """Blackholes every link to and from replica i (a silent partition of i from the others)."""
        for (a, b), p in self.links.items():
            if i in (a, b):
                p.blackhole()

    def heal(self):
        """Every link back to pass (blackholed connections are reset, as a long partition's would time out)."""
        for p in self.links.values():
            p.set_pass()

    def close(self):
        if self.closed:
            return
        self.closed = True
        # A replica takes 1.5 s to exit on SIGTERM (its loops finish in-flight requests): signal all, then wait for
        # each (stop() signals again: the second SIGTERM stays blocked and pending, harmless)
        for i, r in enumerate(self.replicas):
            if r is not None:
                if r.paused:
                    self.cont(i)
                r.send_signal(signal.SIGTERM)
        for r in self.replicas:
            if r is not None:
                r.stop(timeout=10)
        self.hub.close()
        if os.environ.get("FERRY_CLUSTER_KEEP"):
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.dump_logs()
            self.close()
            raise

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.dump_logs()
        self.close()

    # --- observation ---
    def is_ready(self, i):
        return self.alive(i) and self.replicas[i].is_ready()

    def wait_ready(self, i, timeout=30.0):
        return self.replicas[i].wait_ready(timeout)

    def wait_all_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        for i in range(self.n):
            if not self.wait_ready(i, max(0.1, deadline - time.time())):
                self.dump_logs()
                raise RuntimeError("replica %d not ready within %.0fs (alive: %s)" % (i, timeout, self.alive(i)))

    def get(self, i, path, timeout=5.0):
        """GET prefix + path on replica i (prefix: the replicas' --web.route-prefix, if any)."""
        return pghttp.request(self.web[i], "GET", self.prefix + path, timeout=timeout)

    def metrics_json(self, i, timeout=5.0):
        """The raw body of GET /api/v1/metrics on replica i, or None unless 200."""
        try:
            st, _, body = self.get(i, "/api/v1/metrics", timeout)
        except OSError:
            return None
        return body if st == 200 else None

    def self_metrics(self, i, prefix="ferry_cluster_"):
        """{sample line's name+labels: value} of replica i's /metrics lines starting with prefix. A replica that is not
        serving reads (catching up, or on the minority side of a partition: /metrics answers 503) still reports its
        cluster figures in /api/v1/status: those come back as ferry_cluster_status_<key>."""
        out = {}
        try:
            st, _, body = self.get(i, "/metrics")
        except OSError:
            return out
        if st != 200:
            try:
                st, _, sbody = self.get(i, "/api/v1/status")
                cl = json.loads(sbody)["data"].get("cluster", {}) if st == 200 else {}
            except (OSError, ValueError, KeyError):
                cl = {}
            for k, v in cl.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out["ferry_cluster_status_" + k] = float(v)
            return out
        for line in body.decode("utf-8", "replace").split("\n"):
            if line.startswith(prefix):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def pushed_scrape(self, i):
        st, _, body = self.get(i, "/metrics")
        return pushed_lines(body) if st == 200 else None

    def snapshot(self):
        return [self.metrics_json(i) for i in range(self.n)]

    def wait_converged(self, timeout=2.0, replicas=None, poll=0.02):
        """Polls until /api/v1/metrics is 200 and byte-identical on every replica. Returns (seconds taken, bodies)
        with seconds None on timeout (the bodies are then the last ones seen)."""
        idx = list(range(self.n)) if replicas is None else list(replicas)
        t0 = time.time()
        bodies = None
        while True:
            bodies = [self.metrics_json(i) for i in idx]
            if bodies[0] is not None and all(b == bodies[0] for b in bodies):
                return time.time() - t0, bodies
            if time.time() - t0 > timeout:
                return None, bodies
            time.sleep(poll)

    def log_tail(self, i, n=3000):
        r = self.replicas[i]
        try:
            return r.log()[-n:]
        except OSError:
            return "(no log)"

    def dump_logs(self, n=2500):
        for i in range(self.n):
            if self.replicas[i] is not None:
                print("--- replica %d (%s, pid %s) log tail:\n%s" % (
                    i, "alive" if self.alive(i) else "exited %s" % self.replicas[i].proc.returncode,
                    self.replicas[i].proc.pid, self.log_tail(i, n)))


def pushed_lines(body):
    """The pushed families of a text scrape (the replica's own families removed)."""
    out = []
    for line in body.decode("utf-8", "replace").split("\n"):
        name = line[7:] if line.startswith(("# HELP ", "# TYPE ")) else line
        if not name.startswith(OWN_PREFIXES):
            out.append(line)
    return "\n".join(out)


def explain_difference(bodies, names=None):
    """A short account of how /api/v1/metrics bodies differ: which replica, group order only or content. names: what
    to call each body (default "replica <index>")."""
    names = names or ["replica %d" % i for i in range(len(bodies))]
    lines = []
    base = bodies[0]
    for i, b in enumerate(bodies):
        if b is None:
            lines.append("%s: no 200 answer" % names[i])
    try:
        docs = [json.loads(b)["data"] if b is not None else None for b in bodies]
    except (ValueError, KeyError, TypeError):
        return "\n".join(lines + ["bodies are not JSON"])

    def key(g):
        return json.dumps(g.get("labels"), sort_keys=True)
    if docs[0] is None:
        return "\n".join(lines)
    ref = {key(g): g for g in docs[0]}
    for i, d in enumerate(docs[1:], 1):
        if d is None or bodies[i] == base:
            continue
        other = {key(g): g for g in d}
        if other == ref:
            lines.append("%s: same groups and content as %s, different order or spelling" % (names[i], names[0]))
            continue
        only0 = sorted(set(ref) - set(other))
        only_i = sorted(set(other) - set(ref))
        diff = [k for k in set(ref) & set(other) if ref[k] != other[k]]
        lines.append("%s vs %s: %d groups only on the latter %s, %d only on the former %s, %d differ %s" % (
            names[i], names[0], len(only0), only0[:3], len(only_i), only_i[:3], len(diff), sorted(diff)[:3]))
        for k in sorted(diff)[:2]:
            a, b = ref[k], other[k]
            for fam in sorted(set(a) | set(b)):
                if a.get(fam) != b.get(fam):
                    lines.append("  group %s family %s:\n    %s: %s\n    %s: %s" % (
                        k, fam, names[0], json.dumps(a.get(fam))[:400], names[i], json.dumps(b.get(fam))[:400]))
    return "\n".join(lines)


def group_values(body, family):
    """{grouping labels (sorted tuple): value of the first sample of family} from an /api/v1/metrics body."""
    out = {}
    for g in json.loads(body)["data"]:
        fam = g.get(family)
        if fam and fam.get("metrics"):
            out[tuple(sorted(g["labels"].items()))] = float(fam["metrics"][0]["value"])
    return out


# --- load balancers -----------------------------------------------------------------------------------------------


class Nginx(pghttp.Server):
    """nginx-light round robin over the replicas, as in ha-design 8.6 (passive checks, retry on error, timeout, 503,
    for POST too). Runs in the foreground: nginx -p <tmp> -c <conf> with daemon off, pid and logs in <tmp>."""

    def __init__(self, upstream_ports, port=None, binary="/usr/sbin/nginx", tries=3, read_timeout="10s",
                 max_fails=1, fail_timeout="5s"):
        port = port or pghttp.free_port()
        self.tmp = tempfile.mkdtemp(prefix="ferry-nginx-")
        conf = os.path.join(self.tmp, "nginx.conf")
        servers = "".join("    server 127.0.0.1:%d max_fails=%d fail_timeout=%s;\n" % (p, max_fails, fail_timeout)
                          for p in upstream_ports)
        with open(conf, "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes 1;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log %(t)s/access.log;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  upstream ferry {
%(servers)s    keepalive 64;
  }
  server {
    listen 127.0.0.1:%(port)d;
    large_client_header_buffers 4 64k;  # request lines up to --web.max-header-bytes (the default 8k refuses
                                        # an 8 KiB grouping key with 414 before Ferry sees it)
    location / {
      proxy_pass http://ferry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_503 non_idempotent;
      proxy_next_upstream_tries %(tries)d;
      proxy_connect_timeout 2s;
      proxy_read_timeout %(rt)s;
      client_max_body_size 16m;
    }
  }
}
""" % {"t": self.tmp, "servers": servers, "port": port, "tries": tries, "rt": read_timeout})
        self.conf = conf
        check = subprocess.run([binary, "-t", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")],
                               capture_output=True, text=True, timeout=20)
        if check.returncode != 0:
            raise RuntimeError("nginx -t failed: %s" % check.stderr)
        super().__init__([binary, "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")], port,
                         "nginx", log_path=os.path.join(self.tmp, "stdout.log"), ready_check=pghttp.Server.listening)

    def error_log(self):
        try:
            with open(os.path.join(self.tmp, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.stop(signal.SIGQUIT, timeout=10)  # graceful shutdown of master and worker
        if self.forced or (self.proc and self.proc.returncode not in (0, None)):
            print("nginx stopped with %s; error log:\n%s" % (self.proc.returncode, self.error_log()[-3000:]))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        if exc[0] is not None:
            print("nginx error log:\n" + self.error_log()[-3000:])
        self.close()


class HAProxy(pghttp.Server):
    """HAProxy round robin with active checks on /-/ready and L7 retries, as in ha-design 8.6 (haproxy -f conf -db)."""

    def __init__(self, upstream_ports, port=None, binary="/usr/sbin/haproxy", inter="1s", fall=2, rise=2,
                 retries=3, server_timeout="10s", check="/-/ready"):
        port = port or pghttp.free_port()
        self.tmp = tempfile.mkdtemp(prefix="ferry-haproxy-")
        conf = os.path.join(self.tmp, "haproxy.cfg")
        servers = "".join("    server f%d 127.0.0.1:%d check\n" % (i, p) for i, p in enumerate(upstream_ports))
        with open(conf, "w") as f:
            f.write("""global
    maxconn 4096
    pidfile %(t)s/haproxy.pid
    log stderr format short local0 notice
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 30s
    timeout server %(st)s
    timeout http-request 10s
frontend fe
    bind 127.0.0.1:%(port)d
    default_backend ferry
backend ferry
    balance roundrobin
    option httpchk GET %(check)s
    http-check expect status 200
    default-server inter %(inter)s fall %(fall)d rise %(rise)d
    option http-buffer-request
    retry-on conn-failure empty-response junk-response 503
    retries %(retries)d
    option redispatch 1
%(servers)s""" % {"t": self.tmp, "port": port, "st": server_timeout, "inter": inter, "fall": fall, "rise": rise,
                  "retries": retries, "servers": servers, "check": check})
        self.conf = conf
        check = subprocess.run([binary, "-c", "-f", conf], capture_output=True, text=True, timeout=20)
        if check.returncode != 0:
            raise RuntimeError("haproxy -c failed: %s%s" % (check.stdout, check.stderr))
        super().__init__([binary, "-f", conf, "-db"], port, "haproxy", log_path=os.path.join(self.tmp, "haproxy.log"),
                         ready_check=pghttp.Server.listening)

    def wait_servers_up(self, timeout=10.0):
        """Waits until HAProxy's checks have marked every server UP (the log names each transition); best effort:
        without a stats socket we wait for rise * inter after start."""
        time.sleep(min(timeout, 2.2))

    def close(self):
        self.stop(signal.SIGUSR1, timeout=10)  # soft stop
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        if exc[0] is not None:
            try:
                print("haproxy log:\n" + self.log()[-3000:])
            except OSError:
                pass
        self.close()


# --- small clients ------------------------------------------------------------------------------------------------


def push(port, method, path, body=b"", timeout=10.0, headers=None):
    """(status, body) of one request on a fresh connection; status 0 and the exception text on a connection error."""
    try:
        st, _, data = pghttp.request(port, method, path, body=body if method != "DELETE" else None, headers=headers,
                                     timeout=timeout)
        return st, data
    except (OSError, http_exceptions()) as e:
        return 0, repr(e).encode()


def http_exceptions():
    import http.client
    return http.client.HTTPException


class Timer:
    """Prints and keeps the wall time of named phases."""

    def __init__(self):
        self.t0 = time.time()
        self.marks = []

    def mark(self, what):
        now = time.time()
        self.marks.append((what, now - self.t0))
        print("[%6.1fs] %s" % (now - self.t0, what))
        sys.stdout.flush()


class CounterWriter:
    """Threads that PUT strictly increasing values of one counter to their own groups through one port (an LB), on
    fresh connections, recording per group the last value acknowledged with a 2xx (acked) and the highest value sent
    (sent): after the faults every replica must show, per group, a value in [acked, sent] (a later push whose answer
    was lost or was a 503 after a timeout is indeterminate and may have won). Errors are counted by kind."""

    def __init__(self, port, groups=50, threads=4, job="faults", family="cl_rising_total", pause=0.0, timeout=10.0):
        self.port, self.job, self.family, self.pause, self.timeout = port, job, family, pause, timeout
        self.groups = ["g%03d" % k for k in range(groups)]
        self.acked = {g: 0 for g in self.groups}
        self.sent = {g: 0 for g in self.groups}
        self.ok = 0
        self.errors = {}
        self.error_samples = []
        self.latencies = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(self.groups[t::threads],), daemon=True)
                        for t in range(threads)]

    def path(self, g):
        return "/metrics/job/%s/group/%s" % (self.job, g)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, mine):
        k = 0
        while not self.stopping.is_set():
            g = mine[k % len(mine)]
            k += 1
            v = self.sent[g] + 1
            self.sent[g] = v
            body = b"# TYPE %s counter\n%s %d\n" % (self.family.encode(), self.family.encode(), v)
            t0 = time.time()
            st, data = push(self.port, "PUT", self.path(g), body, timeout=self.timeout)
            with self.lock:
                self.latencies.append(time.time() - t0)
                if 200 <= st < 300:
                    self.ok += 1
                    self.acked[g] = v
                else:
                    kind = "%d" % st if st else "connection error"
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                    if len(self.error_samples) < 8:
                        self.error_samples.append((round(t0, 3), g, v, st, data[:200]))
            if self.pause:
                time.sleep(self.pause)

    def stop(self, timeout=15.0):
        """Stops the threads (each finishes the push it is in: up to the client timeout)."""
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)

    def total(self):
        return self.ok + sum(self.errors.values())

    def summary(self):
        lat = sorted(self.latencies) or [0]
        return "%d pushes, %d acknowledged, errors %s, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
            self.total(), self.ok, self.errors or "none", 1000 * lat[len(lat) // 2],
            1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1000 * lat[-1])

    def verify(self, body):
        """[(group, value on the replica or None, acked, sent)] of the groups outside [acked, sent]."""
        vals = group_values(body, self.family)
        bad = []
        for g in self.groups:
            v = vals.get(tuple(sorted((("group", g), ("job", self.job)))))
            if self.acked[g] == 0 and v is None:
                continue
            if v is None or v < self.acked[g] or v > self.sent[g]:
                bad.append((g, v, self.acked[g], self.sent[g]))
        return bad

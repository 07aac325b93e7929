#!/usr/bin/env python3
"""test_container.py: the container image's contract (Dockerfile, docs/operations.md "Containers"), without Docker.

1. The Dockerfile, read statically: its last stage is FROM scratch filled by scripts/container-rootfs.sh, USER
   65534:65534, EXPOSE 9091, VOLUME /data handed to 65534, WORKDIR /data, ENTRYPOINT /usr/bin/ferry and CMD = the
   Helm chart's arguments this test runs with (CHART_ARGS), so the two cannot drift apart.
2. The image's runtime, reproduced: scripts/container-rootfs.sh builds the same root file system from build/ferry
   (the binary and its ldd closure), which is mounted read-only with only /data writable, in new mount, network and
   PID namespaces (unshare), and Ferry runs there by chroot as uid/gid 65534 and PID 1, as a container runtime runs
   the ENTRYPOINT, with CHART_ARGS. The chart's probes (GET /-/healthy and /-/ready on port 9091) are sent inside
   the container's network namespace (nsenter + curl). Then: a push and a scrape; writes as uid 65534 outside /data
   fail (EROFS) and inside it succeed; SIGTERM to PID 1 (docker stop) exits 0 and writes the persistence file; a
   second run on the same /data serves the group again; the root file system is unchanged.
Needs root (chroot, mounts, uid 65534). Without namespaces (or with FERRY_CONTAINER_NO_NAMESPACES=1) it falls back to
a plain chroot on the host's network (a free port instead of 9091; the read-only bind mounts are made in the host's
mount namespace and undone); it prints SKIP and exits 0 only when neither works. About 4 s.
Usage: test_container.py path/to/ferry path/to/source-root
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY, SRC = os.path.abspath(sys.argv[1]), sys.argv[2]
check = pghttp.Checks()

# prometheus-community/helm-charts, charts/prometheus-pushgateway/values.yaml: the extraArgs its comment gives for
# persistence (the volume is mounted at persistentVolume.mountPath, /data); the container listens on 9091 (no
# --web.listen-address: the default); securityContext runAsUser/fsGroup 65534, runAsNonRoot; containerSecurityContext
# readOnlyRootFilesystem; liveness and readiness probes are HTTP GETs on port 9091.
CHART_ARGS = ["--persistence.file=/data/pushgateway.data", "--persistence.interval=5m"]
CHART_PROBES = [("liveness", "/-/healthy"), ("readiness", "/-/ready")]
PORT = 9091
UID = GID = 65534
PUSH_PATH = "/metrics/job/container_job/instance/box"
PUSHED = b'container_metric{instance="box",job="container_job"} 7\n'


# --- 1. the Dockerfile, statically -----------------------------------------------------------------------------

def dockerfile_stages(path):
    """[(FROM argument, [(INSTRUCTION, argument)])], continuation lines joined, comments dropped."""
    stages, logical, cont = [], [], ""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not cont and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cont += line[:-1] + " "
                continue
            logical.append(cont + line)
            cont = ""
    for line in logical:
        word, _, arg = line.strip().partition(" ")
        word, arg = word.upper(), arg.strip()
        if word == "FROM":
            stages.append((arg, []))
        elif stages:
            stages[-1][1].append((word, arg))
    return stages


def check_dockerfile():
    stages = dockerfile_stages(os.path.join(SRC, "Dockerfile"))
    check(len(stages) == 2, "Dockerfile: two stages, build and runtime (got %d)" % len(stages))
    if len(stages) < 2:
        return
    build_from, build = stages[0]
    check(build_from.startswith("debian:12 "), "Dockerfile: the build stage is Debian 12 (%r)" % build_from)
    runs = " ".join(a for w, a in build if w == "RUN")
    check("scripts/install-deps.sh build" in runs, "Dockerfile: the build stage installs with scripts/install-deps.sh")
    check("scripts/container-rootfs.sh" in runs, "Dockerfile: the build stage makes the root with container-rootfs.sh")
    final_from, final = stages[-1]
    check(final_from == "scratch", "Dockerfile: the image is FROM scratch, only the closure (%r)" % final_from)
    want = {
        "USER": "%d:%d" % (UID, GID),
        "EXPOSE": str(PORT),
        "WORKDIR": "/data",
        "VOLUME": ["/data"],
        "ENTRYPOINT": ["/usr/bin/ferry"],
        "CMD": CHART_ARGS,
    }
    got = {}
    for word, arg in final:
        if word in ("VOLUME", "ENTRYPOINT", "CMD"):
            try:
                arg = json.loads(arg)  # the exec (JSON) form: no shell in the image to run the other form
            except ValueError:
                arg = "not JSON: " + arg
        got.setdefault(word, arg)
    for word, value in want.items():
        check(got.get(word) == value, "Dockerfile: %s %r (got %r)" % (word, value, got.get(word)))
    copies = [a for w, a in final if w == "COPY"]
    check(copies == ["--from=build /rootfs /", "--from=build --chown=%d:%d /data /data" % (UID, GID)],
          "Dockerfile: the image is the root file system, /data owned by %d (got %r)" % (UID, copies))
    check(not [w for w, _ in final if w == "RUN"], "Dockerfile: nothing runs in the image's stage (no shell there)")


# --- 2. the runtime, reproduced --------------------------------------------------------------------------------

def tree(root, skip=("data", "proc")):
    """Every path under root but skip, with its type, mode, size and mtime: what a write would change."""
    out = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel.split(os.sep)[0] in skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            st = os.lstat(os.path.join(d, name))
            out[os.path.join(rel, name)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def namespaces_work():
    if os.environ.get("FERRY_CONTAINER_NO_NAMESPACES"):  # to exercise the fallback on a machine that has them
        return False, "FERRY_CONTAINER_NO_NAMESPACES is set"
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--", "true"], capture_output=True,
                           timeout=10)
        return r.returncode == 0, r.stderr.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)


class Container:
    """Ferry in the reproduced image: a read-only root with a writable /data, uid/gid 65534, PID 1 of its own PID
    namespace with its own network (namespaced=True), or a plain chroot on the host (namespaced=False)."""

    def __init__(self, root, data, namespaced, log_path):
        self.root, self.data, self.namespaced = root, data, namespaced
        self.port = PORT if namespaced else pghttp.free_port()
        args = CHART_ARGS + ([] if namespaced else ["--web.listen-address=127.0.0.1:%d" % self.port])
        q = lambda s: "'" + s.replace("'", "'\\''") + "'"  # noqa: E731
        mounts = ["mount --bind %s %s" % (q(root), q(root)), "mount -o remount,bind,ro %s" % q(root),
                  "mount --bind %s %s/data" % (q(data), q(root)), "mount -t proc proc %s/proc" % q(root)]
        run = "exec chroot --userspec=%d:%d %s /usr/bin/ferry %s" % (UID, GID, q(root), " ".join(map(q, args)))
        if namespaced:
            script = "set -e; ip link set lo up; " + "; ".join(mounts) + "; " + run
            argv = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", script]
        else:
            # the host's mount namespace: mounts are undone by stop(); without permission to mount, the root's
            # ownership (root, 0755) is what keeps uid 65534 from writing
            self.mounted = [m for m in mounts if subprocess.run(["/bin/sh", "-c", m], capture_output=True).returncode == 0]
            argv = ["/bin/sh", "-c", run]
        self.srv = pghttp.Server(argv, self.port, "ferry-container", log_path=log_path,
                                 ready_check=lambda s: self.get("/-/healthy")[0] == 200)

    def ferry_pid(self):
        """The host PID of Ferry: the child of unshare (namespaced), else the process itself (sh exec'd chroot)."""
        if not self.namespaced:
            return self.srv.proc.pid
        for task in os.listdir("/proc/%d/task" % self.srv.proc.pid):
            with open("/proc/%d/task/%s/children" % (self.srv.proc.pid, task)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        return None

    def http(self, method, path, body=None):
        """(status, body) of one request to the container's port, sent inside its network namespace."""
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if not self.namespaced:
            try:
                st, _, b = pghttp.request(self.port, method, path, body=body, timeout=5)
                return st, b
            except OSError:
                return 0, b""
        pid = self.ferry_pid()
        if pid is None:
            return 0, b""
        cmd = ["nsenter", "-t", str(pid), "-n", "--", "curl", "-sS", "--max-time", "5", "-X", method, "-o", "-",
               "-w", "\n%{http_code}", url]
        if body is not None:
            cmd[-1:-1] = ["--data-binary", "@-"]
        r = subprocess.run(cmd, input=body, capture_output=True, timeout=10)
        out, _, code = r.stdout.rpartition(b"\n")
        return (int(code) if code.isdigit() else 0), out

    def get(self, path):
        return self.http("GET", path)

    def start(self):
        self.srv.start(timeout=15)
        return self

    def stop(self, sig=signal.SIGTERM):
        """docker stop: sig to PID 1 (Ferry), a bounded wait, then SIGKILL. Ferry's exit status."""
        pid = self.ferry_pid()
        if pid is not None and self.namespaced:
            os.kill(pid, sig)
            rc = self.srv.wait_exit(timeout=10)  # unshare returns its child's status
            if rc is None:
                os.kill(pid, signal.SIGKILL)
            rc = self.srv.stop(sig=None, timeout=10) if rc is None else rc
        else:
            rc = self.srv.stop(sig=sig, timeout=10)
        if not self.namespaced:
            for m in reversed(self.mounted):
                target = m.split()[-1].strip("'")
                subprocess.run(["umount", "-l", target], capture_output=True)
        return rc


def write_as_nobody(path):
    """Creates and removes path as uid/gid 65534 in a child process: 0, or the errno it failed with."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(GID)
            os.setuid(UID)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(path)
            os._exit(0)
        except OSError as e:
            os._exit(min(e.errno or 1, 200))
        except BaseException:
            os._exit(255)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split()[1:]
    return []


def wait_for(fn, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return False


def run_container(root, data, namespaced, tmp, first):
    c = Container(root, data, namespaced, os.path.join(tmp, "ferry-%s.log" % ("first" if first else "second")))
    try:
        c.start()
    except RuntimeError as e:
        check(False, "the container starts: %s" % e)
        print(open(c.srv.log_path, errors="replace").read()[-3000:])
        return
    try:
        pid = c.ferry_pid()
        for probe, path in CHART_PROBES:  # readiness waits for the persistence file to load
            check(wait_for(lambda: c.get(path)[0] == 200), "%s probe GET %s on :%d answers 200" % (probe, path, c.port))
        check(status_field(pid, "Uid") == [str(UID)] * 4 and status_field(pid, "Gid") == [str(GID)] * 4,
              "Ferry runs as %d:%d (Uid %s, Gid %s)" % (UID, GID, status_field(pid, "Uid"), status_field(pid, "Gid")))
        if namespaced:
            check(status_field(pid, "NSpid")[-1:] == ["1"], "Ferry is PID 1 of its PID namespace, as an ENTRYPOINT")
        proot = "/proc/%d/root" % pid  # the container's root as its processes see it (its mount namespace)
        if first:
            st, body = c.http("PUT", PUSH_PATH, b"container_metric 7\n")
            check(st == 200, "push into the container (got %d %r)" % (st, body))
            for path, want, note in (("/data/probe", 0, "/data is writable"),
                                     ("/probe", errno.EROFS if namespaced else None, "the root is read-only"),
                                     ("/usr/bin/probe", errno.EROFS if namespaced else None, "the binary's directory"),
                                     ("/etc/probe", errno.EROFS if namespaced else None, "/etc"),
                                     ("/tmp/probe", errno.ENOENT, "there is no /tmp")):
                got = write_as_nobody(proot + path)
                ok = got == 0 if want == 0 else (got != 0 if want is None else got == want)
                check(ok, "write %s as uid %d: %s (got %s)" % (path, UID, note, errno.errorcode.get(got, got)))
        st, body = c.get("/metrics")
        check(st == 200 and PUSHED in body, "scrape shows the group (%s run)" % ("first" if first else "second"))
    finally:
        rc = c.stop()
    check(rc == 0, "SIGTERM to PID 1 (docker stop): exit 0 (got %s)" % rc)
    log = open(c.srv.log_path, errors="replace").read()
    check("received SIGINT/SIGTERM; exiting gracefully" in log, "graceful stop logged")
    if first:
        st = os.stat(os.path.join(data, "pushgateway.data"))
        check(st.st_uid == UID and st.st_size > 0, "the persistence file is in /data, owned by %d" % UID)


def main():
    t0 = time.time()
    check_dockerfile()
    if os.geteuid() != 0:
        print("SKIP: the container run needs root (chroot, mounts, running as uid %d); the Dockerfile checks ran" % UID)
        return check.summary()
    namespaced, why = namespaces_work()
    if not namespaced:
        r = subprocess.run(["chroot", "/", "true"], capture_output=True)
        if r.returncode != 0:
            print("SKIP: neither namespaces (%s) nor chroot (%s) are allowed here; the Dockerfile checks ran"
                  % (why, r.stderr.decode(errors="replace").strip()))
            return check.summary()
        print("no namespaces here (%s): a plain chroot on the host's network, port from --web.listen-address" % why)
    for tool, package in (("curl", "curl"), ("nsenter", "util-linux"), ("ip", "iproute2")):
        if namespaced and shutil.which(tool) is None:
            check(False, "%s is missing (Debian package %s; scripts/install-deps.sh test installs it)" % (tool, package))
            return check.summary()

    tmp = tempfile.mkdtemp(prefix="ferry-container-")
    root, data = os.path.join(tmp, "root"), os.path.join(tmp, "data")
    r = subprocess.run([os.path.join(SRC, "scripts", "container-rootfs.sh"), FERRY, root], capture_output=True, text=True)
    check(r.returncode == 0, "scripts/container-rootfs.sh builds the root (%s)" % r.stderr.strip())
    os.mkdir(os.path.join(root, "data"))  # the image's /data (the Dockerfile's second COPY), a volume's mount point
    os.mkdir(data)  # the volume mounted there
    os.chown(data, UID, GID)  # the Dockerfile's COPY --chown; a Kubernetes volume gets fsGroup 65534
    os.chmod(tmp, 0o755)      # uid 65534 walks through it to its root
    before = tree(root)
    top = set(os.listdir(root))
    check({"usr", "etc", "data", "proc"} <= top <= {"usr", "etc", "data", "proc", "lib", "lib64"},
          "the root holds the binary, its libraries, /etc, /data and /proc only (%s)" % sorted(top))
    run_container(root, data, namespaced, tmp, first=True)
    run_container(root, data, namespaced, tmp, first=False)  # the persisted group comes back
    check(tree(root) == before, "nothing outside /data was written")
    check(sorted(os.listdir(data)) == ["pushgateway.data"], "/data holds the persistence file only (%s)"
          % sorted(os.listdir(data)))
    if check.failed:
        print("kept %s (the servers' logs are there)" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%.1f s (%s)" % (time.time() - t0, "namespaces" if namespaced else "chroot"))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_package.py: the Debian package, built, linted, installed, run as the service runs, upgraded and purged.

Steps, each with its checks (issue 16, docs/operations.md "Installing"):
 1. build   scripts/deb.sh packages the build tree (FERRY_PREBUILT: the binary under test, no second build);
            the package's version is CMake's project version.
 2. lint    lintian on the .changes (both packages): no error and no warning.
 3. install dpkg -i: the binary, ferry.1 equal to the installed binary's --help-man, a system user ferry (group
            ferry, home /var/lib/ferry, no login shell), /var/lib/ferry owned by it with mode 0750, /etc/default/ferry a
            conffile with ARGS, the unit installed and enabled; `systemd-analyze verify` says nothing;
            `systemd-analyze security --offline=yes` rates the unit's exposure at most 2.0.
 4. upgrade /etc/default/ferry edited (listen on a free 127.0.0.1 port), then a package with a higher version (the
            same package repacked) installed over it: the edit is kept byte for byte, no .dpkg-dist beside it.
 5. run     the unit's ExecStart, with the variables of its EnvironmentFile expanded as systemd expands them, run
            as its User and Group with no capabilities and no new privileges (setpriv), in its WorkingDirectory
            with its UMask: it serves a push, as uid ferry.
 6. reload  the unit's ExecReload (kill -HUP $MAINPID), as the unit's user: the same PID still runs and still serves
            the group pushed before (SIGHUP re-reads --web.config.file and keeps the store; branch ops-reload).
 7. stop    SIGTERM (systemd's stop): exit 0, the persistence file written in /var/lib/ferry, owned by ferry, not
            readable by others; a second start serves the group again from it.
 8. remove  dpkg --remove: the binary goes, /etc/default/ferry and /var/lib/ferry stay.
 9. purge   dpkg --purge: the conffile, /var/lib/ferry, the unit and its enablement link are gone, dpkg knows no
            ferry; the user is kept (as Debian packages do; the test removes it).
systemd is not PID 1 here, so the unit's own sandbox is checked by systemd-analyze, not by running under systemd.
Leaves the machine as it found it, also on failure: every server it started is stopped by PID, the package purged,
the user removed if the test created it, a policy-rc.d it wrote removed. Refuses (FAIL, changes nothing) when a
ferry package is already installed; needs root (exit 77, which ctest reports as skipped, otherwise). One test at a
time per machine (a lock file). About 20 s on 2 cores.
Usage: test_package.py path/to/build/ferry PROJECT_VERSION
"""
import fcntl
import grp
import gzip
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
VERSION = sys.argv[2]
BUILD = os.path.dirname(FERRY)
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UPGRADE_VERSION = VERSION + "+pkgtest1"  # sorts after VERSION: dpkg treats it as an upgrade
UNIT = "/lib/systemd/system/ferry.service"
DEFAULT = "/etc/default/ferry"
STATE = "/var/lib/ferry"
WANTS = "/etc/systemd/system/multi-user.target.wants/ferry.service"
LOCK = "/run/lock/ferry-package-test.lock"
MAX_EXPOSURE = 2.0
SKIP = 77
check = pghttp.Checks()
timings = []

# tool -> the Debian package that has it (scripts/install-deps.sh test installs them all)
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian", "systemd-analyze": "systemd",
         "setpriv": "util-linux", "man": "man-db", "adduser": "adduser", "dpkg-deb": "dpkg"}


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def dpkg(*args, timeout=120):
    """dpkg with a bounded wait for its lock (another apt or dpkg on this shared machine)."""
    deadline = time.time() + 120
    while True:
        r = run(["dpkg"] + list(args), timeout=timeout, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if r.returncode == 0 or "lock" not in r.stderr or time.time() > deadline:
            return r
        time.sleep(1)


def status():
    """dpkg's status of ferry ("install ok installed", "deinstall ok config-files", ...) and version; None if unknown."""
    r = run(["dpkg-query", "-W", "-f=${Status}\t${Version}", "ferry"])
    if r.returncode != 0 or r.stdout.startswith("unknown ok not-installed"):
        return None
    st, _, ver = r.stdout.partition("\t")
    return st, ver


def step(name, t0):
    timings.append((name, time.time() - t0))


def parse_unit(path):
    """A systemd unit file: {section: {key: [values]}} (no line continuations in ours)."""
    out, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                sec = out.setdefault(line.strip("[]"), {})
                continue
            k, _, v = line.partition("=")
            sec.setdefault(k.strip(), []).append(v.strip())
    return out


def parse_env_file(path):
    """An EnvironmentFile as systemd reads it: KEY=VALUE lines, '#'/';' comments, one pair of quotes removed."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            k, _, v = line.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
                if line.split("=", 1)[1].strip()[0] == '"':
                    v = re.sub(r'\\(["\\$`])', r"\1", v)
            env[k.strip()] = v
    return env


def expand(cmdline, env):
    """systemd's expansion of an Exec line: a word that is exactly $VAR becomes the variable's words (split at
    whitespace), ${VAR} is replaced in place as one word; an unset variable is empty."""
    argv = []
    for word in cmdline.split():
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda x: env.get(x.group(1), ""), word))
    return argv


class Service:
    """The unit's command line run as systemd would run it (minus the sandbox): User, Group, no capabilities, no new
    privileges, WorkingDirectory, UMask, the EnvironmentFile's variables and the ones systemd sets."""

    def __init__(self, unit, port, logdir):
        svc = unit["Service"]
        self.svc, self.port, self.logdir, self.n = svc, port, logdir, 0
        self.user, self.group = svc["User"][0], svc["Group"][0]
        pw = pwd.getpwnam(self.user)
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "USER": self.user,
                    "LOGNAME": self.user, "HOME": pw.pw_dir, "SHELL": pw.pw_shell,
                    "STATE_DIRECTORY": "/var/lib/" + svc["StateDirectory"][0]}
        for f in svc.get("EnvironmentFile", []):
            optional = f.startswith("-")
            f = f.lstrip("-")
            if os.path.exists(f) or not optional:
                self.env.update(parse_env_file(f))
        self.argv = expand(svc["ExecStart"][-1], self.env)
        self.umask = int(svc.get("UMask", ["0022"])[0], 8)
        self.server = None

    def as_user(self, argv):
        return ["setpriv", "--reuid=" + self.user, "--regid=" + self.group, "--init-groups", "--no-new-privs",
                "--bounding-set=-all", "--inh-caps=-all", "--"] + argv

    def start(self):
        self.n += 1
        umask = self.umask
        self.server = pghttp.Server(self.as_user(self.argv), self.port, "ferry-pkg",
                                    log_path=os.path.join(self.logdir, "ferry-%d.log" % self.n), health="/-/ready",
                                    env=self.env, preexec_fn=lambda: os.umask(umask),
                                    popen_kwargs={"cwd": self.svc["WorkingDirectory"][0]})
        return self.server.start(timeout=20)

    def reload(self):
        """ExecReload with $MAINPID, run as the unit's user (systemd runs every Exec line as User=)."""
        argv = expand(self.svc["ExecReload"][0], dict(self.env, MAINPID=str(self.server.proc.pid)))
        return run(self.as_user(argv), timeout=10)

    def stop(self):
        return self.server.stop() if self.server is not None else None


def pushed(port):
    _, _, body = pghttp.request(port, "GET", "/metrics")
    return 'pkg_test_metric{instance="a",job="pkgtest"} 42' in body.decode()


def preflight():
    """None to go on, or (exit code, message)."""
    if os.geteuid() != 0:
        return SKIP, "SKIP: installing a package needs root (it is root in CI)"
    missing = ["%s (package %s)" % (t, p) for t, p in TOOLS.items() if shutil.which(t) is None]
    if missing:
        return 1, "FAIL: missing %s: run scripts/install-deps.sh test" % ", ".join(missing)
    st = status()
    if st is not None:
        return 1, ("FAIL: a ferry package is on this machine (%s, version %s): this test installs and purges its own; "
                   "remove it first (dpkg --purge ferry) or run the test elsewhere" % st)
    return None


def build_and_lint(out):
    t0 = time.time()
    r = run([os.path.join(SRC, "scripts", "deb.sh"), BUILD, out], timeout=300)
    check(r.returncode == 0, "scripts/deb.sh exits 0: %s" % r.stderr[-2000:])
    debs = [f for f in os.listdir(out) if re.fullmatch(r"ferry_.*\.deb", f)] if r.returncode == 0 else []
    check(debs == ["ferry_%s_%s.deb" % (VERSION, run(["dpkg", "--print-architecture"]).stdout.strip())],
          "one package, ferry_<CMake's version>_<arch>.deb: %s" % debs)
    step("build (deb.sh)", t0)
    if not debs:
        return None
    t0 = time.time()
    changes = [f for f in os.listdir(out) if f.endswith(".changes")]
    r = run(["lintian", "--fail-on", "error,warning", "--display-info", os.path.join(out, changes[0])], timeout=300)
    tags = [line for line in r.stdout.splitlines() if re.match(r"[EWIPX]: ", line)]
    bad = [t for t in tags if t[0] in "EW"]
    check(r.returncode == 0 and not bad, "lintian: no error, no warning (exit %d): %s" % (r.returncode, bad))
    print("lintian: %d errors, %d warnings, %d info tags%s" % (
        sum(t[0] == "E" for t in tags), sum(t[0] == "W" for t in tags), sum(t[0] == "I" for t in tags),
        "".join("\n  " + t for t in tags)))
    step("lintian", t0)
    return os.path.join(out, debs[0])


def repack(deb, version, out):
    """The same package with another version in its control file: an upgrade, without a second build."""
    d = os.path.join(out, "repack")
    r1 = run(["dpkg-deb", "-R", deb, d])
    ctl = os.path.join(d, "DEBIAN", "control")
    with open(ctl) as f:
        text = re.sub(r"(?m)^Version: .*$", "Version: " + version, f.read())
    with open(ctl, "w") as f:
        f.write(text)
    new = os.path.join(out, "ferry_%s.deb" % version)
    r2 = run(["dpkg-deb", "-Zgzip", "-b", d, new])
    check(r1.returncode == 0 and r2.returncode == 0, "repacked as %s: %s %s" % (version, r1.stderr, r2.stderr))
    return new


def check_installed():
    st = status()
    check(st == ("install ok installed", VERSION), "dpkg: ferry %s installed (%s)" % (VERSION, st))
    r = run(["/usr/bin/ferry", "--version"])
    check(r.stderr.startswith("ferry, version %s " % VERSION), "/usr/bin/ferry --version: %r" % r.stderr[:80])
    man = "/usr/share/man/man1/ferry.1.gz"
    page = None
    if os.path.exists(man):
        with gzip.open(man, "rt") as f:
            page = f.read()
    check(page == run(["/usr/bin/ferry", "--help-man"]).stdout, "%s is the installed ferry's --help-man" % man)
    try:
        pw, gr = pwd.getpwnam("ferry"), grp.getgrnam("ferry")
        check(pw.pw_uid < 1000 and pw.pw_gid == gr.gr_gid and pw.pw_dir == STATE and pw.pw_shell.endswith("nologin"),
              "user ferry: system uid, group ferry, home %s, no login (%s)" % (STATE, pw))
    except KeyError as e:
        check(False, "user and group ferry exist: %s" % e)
        return
    s = os.stat(STATE)
    check(stat.S_ISDIR(s.st_mode) and s.st_uid == pw.pw_uid and s.st_gid == gr.gr_gid and
          stat.S_IMODE(s.st_mode) == 0o750, "%s: a directory ferry:ferry 0750 (uid %d gid %d mode %o)" %
          (STATE, s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)))
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "ferry"]).stdout
    check(re.search(r"^ %s [0-9a-f]{32}$" % DEFAULT, conffiles, re.M) is not None,
          "%s is a conffile (%r)" % (DEFAULT, conffiles))
    check("ARGS" in parse_env_file(DEFAULT), "%s sets ARGS" % DEFAULT)
    check(os.path.islink(WANTS) and os.readlink(WANTS) == UNIT, "the unit is enabled: %s -> %s" % (WANTS, UNIT))
    r = run(["systemd-analyze", "verify", UNIT])
    check(r.returncode == 0 and (r.stdout + r.stderr).strip() == "",
          "systemd-analyze verify: exit 0, nothing said (exit %d: %s)" % (r.returncode, (r.stdout + r.stderr).strip()))
    r = run(["systemd-analyze", "security", "--offline=yes", UNIT])
    m = re.search(r"Overall exposure level for ferry.service: ([0-9.]+)", r.stdout)
    exposure = float(m.group(1)) if m else None
    check(exposure is not None and exposure <= MAX_EXPOSURE, "systemd-analyze security --offline=yes: exposure %s, "
          "at most %.1f (exit %d %s)" % (exposure, MAX_EXPOSURE, r.returncode, r.stderr.strip()))
    print("systemd-analyze security --offline=yes: exposure %s" % exposure)
    unit = parse_unit(UNIT)["Service"]
    check(unit.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "ExecReload sends SIGHUP: %s" % unit.get("ExecReload"))


def run_service(port, logdir):
    """Steps 5 to 7."""
    svc = Service(parse_unit(UNIT), port, logdir)
    check(svc.argv[0] == "/usr/bin/ferry" and "--web.listen-address=127.0.0.1:%d" % port in svc.argv,
          "ExecStart with the edited ARGS: %s" % svc.argv)
    t0 = time.time()
    try:
        srv = svc.start()
    except RuntimeError as e:
        check(False, "the packaged command line starts as user ferry: %s" % e)
        return
    try:
        step("start", t0)
        pid = srv.proc.pid
        with open("/proc/%d/status" % pid) as f:
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", f.read(), re.M)
        check(uids is not None and int(uids.group(1)) == pwd.getpwnam("ferry").pw_uid == int(uids.group(2)),
              "the server runs as uid ferry (%s)" % ((uids.groups() if uids else None),))
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            check(f.read().split(b"\0")[:-1] == [a.encode() for a in svc.argv], "its command line is ExecStart's")
        body = b'pkg_test_metric 42\n'
        st = pghttp.request(port, "PUT", "/metrics/job/pkgtest/instance/a", body)[0]
        check(st == 200 and pushed(port), "a push is served (PUT %d)" % st)

        # 6. reload: ExecReload, then the same process must still run and serve what was pushed
        t0 = time.time()
        r = svc.reload()
        check(r.returncode == 0, "ExecReload exits 0 (%d %s)" % (r.returncode, r.stderr.strip()))
        deadline = time.time() + 2.0
        while time.time() < deadline and srv.proc.poll() is None:
            time.sleep(0.1)
        rc = srv.proc.poll()
        check(rc is None, "after ExecReload (SIGHUP) the same process (PID %d) still runs (it exited: %s%s)" %
              (pid, rc, ", killed by SIGHUP: SIGHUP handling is branch ops-reload's" if rc == -signal.SIGHUP else ""))
        if rc is None:
            check(pushed(port) and pghttp.request(port, "GET", "/-/ready")[0] == 200,
                  "after ExecReload the group pushed before is still served")
        else:  # go on with the other steps on a new process
            srv = svc.start()
            check(pghttp.request(port, "PUT", "/metrics/job/pkgtest/instance/a", body)[0] == 200,
                  "(after the failed reload) a new process takes the push again")
        step("reload", t0)

        # 7. stop: SIGTERM as systemctl stop sends it; the state is written to the state directory
        t0 = time.time()
        rc = svc.stop()
        check(rc == 0 and not srv.forced, "SIGTERM: exit 0 (%s%s)" % (rc, ", had to SIGKILL" if srv.forced else ""))
        data = [a.split("=", 1)[1] for a in svc.argv if a.startswith("--persistence.file=")]
        check(len(data) == 1 and data[0].startswith(STATE + "/"), "the persistence file is in %s: %s" % (STATE, data))
        if data and os.path.exists(data[0]):
            s = os.stat(data[0])
            check(s.st_uid == pwd.getpwnam("ferry").pw_uid and stat.S_IMODE(s.st_mode) & 0o077 == 0,
                  "%s: owned by ferry, nothing for group and others (UMask=0077; mode %o)" %
                  (data[0], stat.S_IMODE(s.st_mode)))
        else:
            check(False, "the final snapshot was written: %s" % data)
        srv = svc.start()
        check(pushed(port), "a second start serves the group again, from the persistence file")
        rc = svc.stop()
        check(rc == 0, "the second start stops with exit 0 (%s)" % rc)
        step("stop, restart, stop", t0)
    finally:
        svc.stop()
        if check.failed:
            for n in range(1, svc.n + 1):
                with open(os.path.join(logdir, "ferry-%d.log" % n), errors="replace") as f:
                    print("--- server log %d ---\n%s" % (n, f.read()[-3000:]))


def main():
    pre = preflight()
    if pre is not None:
        print(pre[1])
        return pre[0]
    lockf = open(LOCK, "w")
    deadline = time.time() + 240
    while True:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                print("FAIL: another package test has held %s for 240 s" % LOCK)
                return 1
            time.sleep(1)
    pre = preflight()  # again, under the lock
    if pre is not None:
        print(pre[1])
        return pre[0]
    had_user = True
    try:
        pwd.getpwnam("ferry")
    except KeyError:
        had_user = False
    policy = "/usr/sbin/policy-rc.d"
    made_policy = False
    if not os.path.exists(policy):  # with systemd running, the postinst would start the service on :9091
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# test_package.py: no service starts during its installs\nexit 101\n")
        os.chmod(policy, 0o755)
        made_policy = True
    tmp = tempfile.mkdtemp(prefix="ferry-pkg-test-")
    t_all = time.time()
    try:
        deb = build_and_lint(os.path.join(tmp, "out"))
        if deb is None:
            return check.summary()
        newer = repack(deb, UPGRADE_VERSION, tmp)

        t0 = time.time()
        r = dpkg("-i", deb)
        check(r.returncode == 0, "dpkg -i %s: %s" % (os.path.basename(deb), (r.stdout + r.stderr)[-1500:]))
        step("install", t0)
        check_installed()

        # 4. edit the conffile, upgrade, the edit stays
        port = pghttp.free_port()
        args = parse_env_file(DEFAULT)["ARGS"]
        with open(DEFAULT, "a") as f:
            f.write('ARGS="%s --web.listen-address=127.0.0.1:%d"\n' % (args, port))
        with open(DEFAULT, "rb") as f:
            edited = f.read()
        t0 = time.time()
        r = dpkg("-i", newer)
        check(r.returncode == 0, "upgrade to %s: %s" % (UPGRADE_VERSION, (r.stdout + r.stderr)[-1500:]))
        step("upgrade", t0)
        check(status() == ("install ok installed", UPGRADE_VERSION), "dpkg: %s installed" % UPGRADE_VERSION)
        with open(DEFAULT, "rb") as f:
            check(f.read() == edited, "the edited %s is kept on upgrade, byte for byte" % DEFAULT)
        left = [p for p in (DEFAULT + ".dpkg-dist", DEFAULT + ".dpkg-new", DEFAULT + ".dpkg-old") if os.path.exists(p)]
        check(not left, "no conffile prompt leftovers: %s" % left)

        run_service(port, tmp)

        # 8. remove keeps configuration and state; 9. purge takes them
        t0 = time.time()
        r = dpkg("--remove", "ferry")
        check(r.returncode == 0 and not os.path.exists("/usr/bin/ferry"), "dpkg --remove: the binary is gone")
        check(os.path.exists(DEFAULT) and os.path.isdir(STATE) and os.listdir(STATE),
              "after remove, %s and %s (with the data) are kept" % (DEFAULT, STATE))
        r = dpkg("--purge", "ferry")
        check(r.returncode == 0 and status() is None, "dpkg --purge: dpkg knows no ferry (%s)" % (status(),))
        gone = [p for p in (DEFAULT, STATE, UNIT, WANTS) if os.path.lexists(p)]
        check(not gone, "after purge none of these is left: %s" % gone)
        check(had_user or run(["getent", "passwd", "ferry"]).returncode == 0,
              "the user ferry is kept by purge (Debian practice; removed by this test)")
        step("remove, purge", t0)
    finally:
        if status() is not None:
            r = dpkg("--purge", "ferry")
            if r.returncode != 0:
                print("cleanup: dpkg --purge ferry failed: %s" % r.stderr)
        if not had_user and run(["getent", "passwd", "ferry"]).returncode == 0:
            run(["userdel", "ferry"])
        if not had_user and run(["getent", "group", "ferry"]).returncode == 0:
            run(["groupdel", "ferry"])
        if made_policy:
            os.unlink(policy)
        shutil.rmtree(tmp, ignore_errors=True)
        lockf.close()
    check(had_user or run(["getent", "passwd", "ferry"]).returncode != 0, "cleanup: the user ferry is removed")
    print("; ".join("%s %.1f s" % t for t in timings) + "; total %.1f s" % (time.time() - t_all))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_dist.py: `make dist` (scripts/dist.sh) and the one version every artefact carries.

Runs scripts/dist.sh on the build tree into a temporary directory, twice, and checks:
- the name: ferry-<CMake project version>.linux-<Go arch of this machine>.tar.gz, and the tarball's bytes are the same
  both times (reproducible: sorted members, owner 0, fixed modes, mtime from SOURCE_DATE_EPOCH or HEAD's commit time);
- the members, exactly: the directory of that name with ferry (0755, stripped), ferry.1, LICENSE, README.md, every
  file of docs/ and sha256sums.txt; every hash in the inner sha256sums.txt and the outer one (the tarball's) is right;
- the tarball's ferry prints every --version field; its ferry.1 is the build's `ferry --help-man`; LICENSE and
  README.md are the source's;
- one version everywhere: CMake's project version = --version = the tarball name = the man page's .TH =
  debian/changelog's newest entry (when debian/ exists);
- bad input: a missing build tree, and a sanitizer build, are refused with a message that names them.
About 1 s. Usage: test_dist.py path/to/build/ferry PROJECT_VERSION
"""
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
VERSION = sys.argv[2]
BUILD = os.path.dirname(FERRY)
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DIST = os.path.join(SRC, "scripts", "dist.sh")
check = pghttp.Checks()

# uname -m -> Go's GOARCH, the names Prometheus release tarballs use
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}

# --version, line by line: (pattern, note)
VERSION_LINES = [
    (r"ferry, version (\S+) \(branch: \S+, revision: ([0-9a-f]{12}|unknown)\)$", "program, version, branch, revision"),
    (r"  build user:       \S+$", "user@host, or FY_BUILD_USER"),
    (r"  build date:       \d{8}-\d\d:\d\d:\d\d$", "Prometheus's date format, UTC"),
    (r"  compiler:         (gcc|.*[Cc]lang) \d+\.\d+", "the C compiler in place of Go's version"),
    (r"  platform:         linux/[a-z0-9]+$", "GOOS/GOARCH"),
    (r"  tags:             [a-z,]+$", "build options, 'none' without any"),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_dist(build, out):
    return subprocess.run([DIST, build, out], capture_output=True, text=True, timeout=120)


def changelog_version():
    """The version of debian/changelog's newest entry, or None without debian/."""
    path = os.path.join(SRC, "debian", "changelog")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = re.match(r"ferry \(([^)]+)\)", f.readline())
    return m.group(1) if m else "(unparsable first line)"


def check_version_text(text, where):
    lines = text.rstrip("\n").split("\n")
    check(len(lines) == len(VERSION_LINES), "%s: --version has %d lines, want %d: %r" %
          (where, len(lines), len(VERSION_LINES), text))
    for line, (pat, note) in zip(lines, VERSION_LINES):
        check(re.match(pat, line) is not None, "%s: --version line %r does not match %r (%s)" % (where, line, pat, note))
    m = re.match(r"ferry, version (\S+) ", lines[0])
    return m.group(1) if m else None


def main():
    tmp = tempfile.mkdtemp(prefix="ferry-dist-test-")
    try:
        arch = GOARCH.get(platform.machine(), platform.machine())
        name = "ferry-%s.linux-%s" % (VERSION, arch)
        out1, out2 = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        r1, r2 = run_dist(BUILD, out1), run_dist(BUILD, out2)
        check(r1.returncode == 0 and r2.returncode == 0, "dist.sh exits 0 (%s %s)" % (r1.stderr, r2.stderr))
        tgz = os.path.join(out1, name + ".tar.gz")
        check(r1.stdout.strip() == tgz and os.path.exists(tgz), "the tarball is %s (dist.sh printed %r)" %
              (tgz, r1.stdout.strip()))
        if not os.path.exists(tgz):
            return check.summary()
        check(sha256(tgz) == sha256(os.path.join(out2, name + ".tar.gz")), "two runs give the same bytes")
        with open(os.path.join(out1, "sha256sums.txt")) as f:
            outer = f.read()
        check(outer == "%s  %s.tar.gz\n" % (sha256(tgz), name), "outer sha256sums.txt: %r" % outer)

        docs = []
        for root, _, files in os.walk(os.path.join(SRC, "docs")):
            docs += [os.path.relpath(os.path.join(root, f), SRC) for f in files]
        want = {"ferry", "ferry.1", "LICENSE", "README.md", "sha256sums.txt"} | set(docs)
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or
                    subprocess.run(["git", "-C", SRC, "log", "-1", "--format=%ct"], capture_output=True,
                                   text=True).stdout.strip() or 0)
        x = os.path.join(tmp, "x")
        with tarfile.open(tgz) as t:
            members = t.getmembers()
            files = {m.name[len(name) + 1:]: m for m in members if m.isfile()}
            check(all(m.name == name or m.name.startswith(name + "/") for m in members),
                  "every member is under %s/" % name)
            check(set(files) == want, "members: missing %s, extra %s" %
                  (sorted(want - set(files)), sorted(set(files) - want)))
            check(all(m.uid == 0 and m.gid == 0 and m.mtime == epoch for m in members),
                  "owner 0:0 and mtime %d (SOURCE_DATE_EPOCH or HEAD's commit time) on every member" % epoch)
            bad_modes = ["%s %o" % (n, m.mode) for n, m in files.items() if m.mode != (0o755 if n == "ferry" else 0o644)]
            check(not bad_modes, "modes: ferry 0755, the rest 0644 (%s)" % bad_modes)
            t.extractall(x)
        d = os.path.join(x, name)
        with open(os.path.join(d, "sha256sums.txt")) as f:
            inner = [line.split("  ", 1) for line in f.read().splitlines()]
        listed = {p: h for h, p in inner}
        check(set(listed) == want - {"sha256sums.txt"}, "inner sha256sums.txt lists every file but itself")
        wrong = [p for p, h in listed.items() if not os.path.exists(os.path.join(d, p)) or sha256(os.path.join(d, p)) != h]
        check(not wrong, "inner sha256sums.txt: every hash is right (wrong: %s)" % wrong)
        for f in ("LICENSE", "README.md"):
            check(sha256(os.path.join(d, f)) == sha256(os.path.join(SRC, f)), "%s is the source's" % f)

        p = subprocess.run([os.path.join(d, "ferry"), "--version"], capture_output=True, text=True, timeout=10)
        v_tar = check_version_text(p.stderr, "the tarball's ferry")
        p = subprocess.run([FERRY, "--version"], capture_output=True, text=True, timeout=10)
        v_build = check_version_text(p.stderr, "build/ferry")
        man = subprocess.run([FERRY, "--help-man"], capture_output=True, timeout=10).stdout
        with open(os.path.join(d, "ferry.1"), "rb") as f:
            check(f.read() == man, "ferry.1 is the build's `ferry --help-man` output")
        m = re.search(rb'^\.TH ferry 1 "[^"]*" "ferry (\S+)"', man, re.M)
        v_man = m.group(1).decode() if m else None
        elf = subprocess.run(["readelf", "-S", os.path.join(d, "ferry")], capture_output=True, text=True).stdout
        check(".symtab" not in elf and ".debug_info" not in elf, "the tarball's ferry is stripped")

        # one version: CMake's project() is the source; everything else must say the same
        versions = [("CMake project()", VERSION), ("build/ferry --version", v_build),
                    ("the tarball's ferry --version", v_tar), ("the tarball's name", name.split("-")[1].rsplit(".linux", 1)[0]),
                    ("the man page's .TH", v_man)]
        cl = changelog_version()
        if cl is not None:
            versions.append(("debian/changelog", cl))
        for where, v in versions:
            check(v == VERSION, "%s says version %r, CMake's project() %r" % (where, v, VERSION))

        # bad input
        r = run_dist(os.path.join(tmp, "no-such-build"), os.path.join(tmp, "c"))
        check(r.returncode == 1 and "no-such-build/ferry is missing" in r.stderr,
              "a missing build tree: exit 1 naming the binary (%d %r)" % (r.returncode, r.stderr))
        fake = os.path.join(tmp, "asan")
        os.makedirs(fake)
        with open(os.path.join(fake, "ferry"), "w") as f:
            f.write("#!/bin/sh\nprintf 'ferry, version %s (branch: x, revision: unknown)\\n  platform:         "
                    "linux/amd64\\n  tags:             asan,ubsan\\n' %s >&2\n" % ("%s", VERSION))
        os.chmod(os.path.join(fake, "ferry"), 0o755)
        r = run_dist(fake, os.path.join(tmp, "d"))
        check(r.returncode == 1 and "sanitizer build (tags: asan,ubsan)" in r.stderr,
              "a sanitizer build is refused, naming its tags (%d %r)" % (r.returncode, r.stderr))
        print("%s: %d files, %d bytes, sha256 %s" % (os.path.basename(tgz), len(files), os.path.getsize(tgz),
                                                    sha256(tgz)[:16]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

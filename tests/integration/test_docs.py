#!/usr/bin/env python3
"""test_docs.py: the shell commands of README.md and docs/quickstart.md are run, so the documentation cannot rot
(docs/example/README.md, docs/migrating.md and docs/when-to-use.md are held to the same rules).

The convention these documents follow (docs/quickstart.md says it to the reader):
- Every fenced block whose info string is `sh` is run. Other shell-like info strings (bash, shell, console, ...)
  are errors here, so no command block escapes the test by its spelling.
- A `sh` block is not run only when the line right before its fence is `<!-- doc-test: skip: REASON -->`, with a
  reason; the skipped blocks and their reasons are printed. In a skipped block, `build/ferry <flags>` lines are still
  checked (the flags are given to the built binary with --help, which reports a bad flag before the help text),
  `make <target>` lines must name a target of the Makefile, and relative program paths must exist.
- Lines starting with `#>` are the exact output (stdout) of the commands since the previous `#>` lines; commands
  without `#>` lines only have to succeed.

For each document the test starts build/ferry on a free 127.0.0.1 port, rewrites localhost:9091 and 127.0.0.1:9091
to that port and build/ferry to the built binary, and runs the document's blocks in order in one `bash -e` (state
such as variables carries over, as in a reader's terminal) in a scratch directory. Each document gets a new Ferry,
so documents do not see each other's groups.
Usage: test_docs.py path/to/ferry
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# document -> whether it must have commands that run (the others only have blocks that cannot run here, such as
# docs/example/run.sh, which test_example.py runs; their skipped blocks are checked like any other)
DOCUMENTS = {"README.md": True, "docs/quickstart.md": True, "docs/example/README.md": False, "docs/migrating.md": False,
             "docs/when-to-use.md": False}
SHELL_INFOS = {"bash", "shell", "console", "shell-session", "zsh", "terminal", "sh-session"}
SKIP = re.compile(r"^<!-- doc-test: skip: (.*\S)\s*-->$")
check = pghttp.Checks()


def blocks(path):
    """[(line number of the fence, info string, [lines], skip reason or None)] of the document's fenced blocks."""
    out, lines = [], open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        start, info, body = i, m.group(1), []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        check(i < len(lines), "%s:%d: the fenced block is closed" % (path, start + 1))
        prev = lines[start - 1].strip() if start > 0 else ""
        skip = SKIP.match(prev)
        check(not prev.startswith("<!-- doc-test") or skip is not None,
              "%s:%d: marker %r reads <!-- doc-test: skip: REASON -->" % (path, start, prev))
        out.append((start + 1, info, body, skip.group(1) if skip else None))
        i += 1
    return out


def steps(body):
    """Splits a block into [(command lines, expected output lines or None)]."""
    out, cmd, exp = [], [], None
    for line in body:
        if line == "#>" or line.startswith("#> "):
            exp = (exp or []) + [line[3:]]
            continue
        if exp is not None:
            out.append((cmd, exp))
            cmd, exp = [], None
        cmd.append(line)
    if any(c.strip() for c in cmd) or exp is not None:
        out.append((cmd, exp))
    return out


def rewrite(text, port):
    text = text.replace("localhost:9091", "127.0.0.1:%d" % port).replace("127.0.0.1:9091", "127.0.0.1:%d" % port)
    return re.sub(r"(?<![\w/.])(\./)?build/ferry\b", FERRY, text)


def check_skipped(path, line, body):
    """What can be checked of a block that cannot run: flags, make targets, program paths."""
    makefile = open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read()
    for text in body:
        cmd = text.split("#")[0].strip().rstrip("&").strip()
        if not cmd:
            continue
        words = cmd.split()
        where = "%s:%d: %s" % (path, line, cmd)
        if words[0] in ("build/ferry", "./build/ferry") and all(w.startswith("--") for w in words[1:]):
            r = subprocess.run([FERRY] + words[1:] + ["--help"], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=10)
            check(r.returncode == 0, "%s: the flags are valid (%s)" % (where, r.stderr.decode().strip()[:200]))
        elif words[0] == "make":
            for target in words[1:]:
                check(re.search(r"^%s:" % re.escape(target), makefile, re.M) is not None,
                      "%s: the Makefile has a target %s" % (where, target))
        elif "/" in words[0] and not words[0].startswith("/"):
            prog = FERRY if words[0] in ("build/ferry", "./build/ferry") else os.path.join(ROOT, words[0])
            check(os.access(prog, os.X_OK), "%s: %s exists and is executable" % (where, words[0]))


def run_document(path, must_run):
    full = os.path.join(ROOT, path)
    plan = []  # (line, command text, expected lines or None)
    for line, info, body, reason in blocks(full):
        if info in SHELL_INFOS:
            check(False, "%s:%d: shell block spelled ```%s; use ```sh so it is run (or skipped with a reason)"
                  % (path, line, info))
            continue
        if info != "sh":
            check(reason is None, "%s:%d: a skip marker before a ```%s block, which is never run" % (path, line, info))
            continue
        if reason is not None:
            print("%s:%d: skipped: %s" % (path, line, reason))
            check_skipped(path, line, body)
            continue
        for cmd, exp in steps(body):
            plan.append((line, "\n".join(cmd), exp))
    check(len(plan) > 0 or not must_run, "%s has commands to run" % path)
    if not plan:
        return

    port = pghttp.free_port()
    work = tempfile.mkdtemp(prefix="ferry-doctest.")
    try:
        with pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port], port, "ferry-doctest",
                           log_path=os.path.join(work, "ferry.log")):
            script = ["cd %s" % work]
            for i, (line, cmd, _) in enumerate(plan):
                script.append("echo %d > %s/.step" % (i, work))
                script.append("{\n%s\n} >%s/.out.%d 2>%s/.err.%d" % (rewrite(cmd, port), work, i, work, i))
            script.append("echo done > %s/.step" % work)
            t0 = time.time()
            r = subprocess.run(["bash", "-e", "-c", "\n".join(script)], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60)
            took = time.time() - t0
        state = open(os.path.join(work, ".step")).read().strip()
        ran = len(plan) if state == "done" else int(state) + 1
        for i, (line, cmd, exp) in enumerate(plan[:ran]):
            out = open(os.path.join(work, ".out.%d" % i), encoding="utf-8", errors="replace").read()
            err = open(os.path.join(work, ".err.%d" % i), encoding="utf-8", errors="replace").read()
            where = "%s (block at line %d):\n%s\n" % (path, line, cmd)
            if i == ran - 1 and state != "done":
                check(False, "%sfailed with exit status %d; stderr:\n%s" % (where, r.returncode, err))
                break
            if exp is not None:
                got = out.rstrip("\n").split("\n") if out.rstrip("\n") else [""]
                check(got == exp, "%sprints:\n%s\nexpected:\n%s" % (where, "\n".join(got), "\n".join(exp)))
            else:
                check(True, where)
        check(r.returncode == 0, "%s: bash -e exits 0 (got %d; %s)" % (path, r.returncode, r.stderr.decode()[-500:]))
        print("%s: %d steps run in %.2fs" % (path, ran, took))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    for doc, must_run in DOCUMENTS.items():
        run_document(doc, must_run)
    sys.exit(check.summary())

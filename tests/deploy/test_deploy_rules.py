#!/usr/bin/env python3
"""test_deploy_rules.py: the Prometheus files of deploy/prometheus/ are valid, and every alert is tested both ways
(issue 16).

- `promtool check rules` on ferry-rules.yml and ferry-thresholds.yml, `promtool check config` on
  prometheus-sharded.yml (which loads both), each exiting 0 without a warning;
- `promtool test rules ferry-rules.test.yml`: the input series of a stale job, a refused push, a failed `ferry run`,
  a job that stopped pushing, a replica down, unreachable or behind, quorum failures, clock offsets, a failed
  write-ahead log and limit refusals, with the alerts each must raise;
- every alert of ferry-rules.yml has, in ferry-rules.test.yml, at least one evaluation where it fires and one where
  it must not (exp_alerts: []), and the test file names no alert the rules lack.

The files are read as text (no YAML library needed). Usage: test_deploy_rules.py [path/to/promtool]
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "diff"))
import pghttp  # noqa: E402

PROMTOOL = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "/usr/bin/promtool"
DIR = os.path.join(ROOT, "deploy", "prometheus")
check = pghttp.Checks()


def promtool(*args):
    r = subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, timeout=120, cwd=DIR)
    return r.returncode, r.stdout + r.stderr


def main():
    if not os.path.exists(PROMTOOL):
        check(False, "%s is installed (package prometheus, scripts/install-deps.sh test)" % PROMTOOL)
        return check.summary()
    rc, out = promtool("check", "rules", "ferry-rules.yml", "ferry-thresholds.yml")
    check(rc == 0 and "WARNING" not in out, "promtool check rules: %s" % out.strip())
    rc, out = promtool("check", "config", "prometheus-sharded.yml")
    check(rc == 0 and "WARNING" not in out, "promtool check config prometheus-sharded.yml: %s" % out.strip())
    rc, out = promtool("test", "rules", "ferry-rules.test.yml")
    check(rc == 0 and "SUCCESS" in out, "promtool test rules ferry-rules.test.yml:\n%s" % out.strip())

    alerts = re.findall(r"(?m)^\s*- alert:\s*(\S+)\s*$", open(os.path.join(DIR, "ferry-rules.yml")).read())
    check(len(alerts) >= 10, "ferry-rules.yml has its alerts (%d)" % len(alerts))
    fires, silent = {}, {}
    name = None
    for line in open(os.path.join(DIR, "ferry-rules.test.yml")).read().split("\n"):
        m = re.match(r"^\s*alertname:\s*(\S+)", line)
        if m:
            name = m.group(1)
            continue
        m = re.match(r"^\s*exp_alerts:\s*(\[\])?", line)
        if m and name:
            counts = silent if m.group(1) else fires
            counts[name] = counts.get(name, 0) + 1
            name = None
    for a in alerts:
        check(a in fires, "%s has a case where it fires" % a)
        check(a in silent, "%s has a case where it must not fire" % a)
    unknown = sorted((set(fires) | set(silent)) - set(alerts))
    check(not unknown, "the test file names only alerts of the rules (%s)" % unknown)
    print("%d alerts, each with a firing and a silent case: %s" % (len(alerts), " ".join(alerts)))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())

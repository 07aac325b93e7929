#!/usr/bin/env python3
"""remove-stale-copies.py: after resharding, deletes the copies of groups that a job left on its old replica set.

When a set is added to (or removed from) a sharded deployment, the load balancer sends some jobs to another set. A
moved job's next push creates its group on the new set, and the group it pushed before stays on the old one, where
Prometheus still scrapes it: two targets then expose the same series (with honor_labels nothing tells them apart), and
the old copy's values and push_time_seconds come back on every other scrape. This script finds every group that is
held by more than one set and deletes all its copies but the one with the latest push (the later of
push_time_seconds and push_failure_time_seconds), with one DELETE of exactly that grouping key sent to the set that
holds the stale copy. A group held by one set only is never deleted, so no group is lost: a job that has not pushed
since the resharding keeps its single copy on its old set until its next push makes that copy stale, so run this
again after the longest push interval (or from cron).

Usage:
  remove-stale-copies.py [--dry-run] [--lb URL] NAME=URL NAME=URL ...
  remove-stale-copies.py --help

  NAME=URL  one replica set: a name, and the base URL of the set itself (its own load balancer or Service, or any
            one of its replicas; with --web.route-prefix, include the prefix), never the sharding load balancer.
            Credentials for basic auth may be given in the URL (http://user:password@host:9101).
  --dry-run print what would be deleted, delete nothing
  --lb URL  also ask the sharding load balancer where each job that is held by a single set now goes (the
            X-Ferry-Set response header of deploy/sharding/*: the set's NAME; the job spelled as `ferry push`
            spells it), and list the groups that sit on
            another set than their job's (they move at the job's next push; a DELETE through the load balancer does
            not reach them meanwhile). Only listed, never deleted.

Output: one line per stale copy ("deleted" or "would delete"), one per misplaced group with --lb, then a summary.
Exit status: 0 when done; 1 when a DELETE failed; 2 when a set's /api/v1/metrics could not be read (nothing is
deleted then: deciding needs every set's groups). Python 3 standard library only. docs/operations.md, "Sharding",
has the procedure; tests/cluster/test_cluster_shard.py runs this script.
"""
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 30.0


def usage(msg):
    sys.stderr.write("remove-stale-copies.py: %s\nusage: remove-stale-copies.py [--dry-run] [--lb URL] NAME=URL ...\n"
                     % msg)
    sys.exit(2)


def split_url(url):
    """(URL without credentials, Authorization header or None)."""
    p = urllib.parse.urlsplit(url)
    if p.username is None:
        return url.rstrip("/"), None
    netloc = p.hostname + (":%d" % p.port if p.port else "")
    token = base64.b64encode(("%s:%s" % (urllib.parse.unquote(p.username),
                                          urllib.parse.unquote(p.password or ""))).encode()).decode()
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, "")).rstrip("/"), "Basic " + token


def call(method, url, auth):
    """(status, headers, body) of one request; HTTP errors are answers too, connection errors raise OSError."""
    req = urllib.request.Request(url, method=method)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def b64(value):
    """Ferry's (and the Pushgateway's) URL-safe base64 of a grouping value; '=' stands for the empty value."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=") or "="


def group_path(labels):
    """The grouping key's URL path, every value in base64 so that any byte survives (docs/cli.md)."""
    path = "/metrics/job@base64/" + b64(labels["job"])
    for name in sorted(labels):
        if name != "job":
            path += "/%s@base64/%s" % (name, b64(labels[name]))
    return path


def job_path(job):
    """The job's path as `ferry push` spells it (docs/cli.md): as is when every byte is URL-safe, else base64. The
    nginx configuration hashes the spelling, so --lb asks with the one clients use."""
    safe = all(c.isascii() and (c.isalnum() or c in "-._~") for c in job) and job not in (".", "..")
    return "/metrics/job/" + job if safe else "/metrics/job@base64/" + b64(job)


def describe(labels):
    return "{" + ",".join('%s="%s"' % (k, labels[k].replace("\\", "\\\\").replace('"', '\\"'))
                          for k in sorted(labels)) + "}"


def family_value(group, name):
    fam = group.get(name) or {}
    metrics = fam.get("metrics") or []
    try:
        return float(metrics[0]["value"]) if metrics else 0.0
    except (KeyError, TypeError, ValueError):
        return 0.0


def last_activity(group):
    return max(family_value(group, "push_time_seconds"), family_value(group, "push_failure_time_seconds"))


def read_set(name, url, auth):
    try:
        st, _, body = call("GET", url + "/api/v1/metrics", auth)
    except OSError as e:
        raise RuntimeError("set %s (%s): %s" % (name, url, e))
    if st != 200:
        raise RuntimeError("set %s (%s): GET /api/v1/metrics answered %d: %s" % (name, url, st, body[:200]))
    try:
        return json.loads(body)["data"]
    except (ValueError, KeyError) as e:
        raise RuntimeError("set %s (%s): /api/v1/metrics is not the JSON expected (%s)" % (name, url, e))


def main(argv):
    dry_run, lb, sets = False, None, []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if a == "--dry-run":
            dry_run = True
        elif a == "--lb" or a.startswith("--lb="):
            lb = a[5:] if a.startswith("--lb=") else (args.pop(0) if args else usage("--lb needs a URL"))
        elif a.startswith("-"):
            usage("unknown flag %s" % a)
        elif "=" in a and a.split("=", 1)[0]:
            name, url = a.split("=", 1)
            if any(name == s[0] for s in sets):
                usage("set %s given twice" % name)
            sets.append((name,) + split_url(url))
        else:
            usage("expected NAME=URL, got %r" % a)
    if len(sets) < 2:
        usage("give at least two sets")

    copies = {}  # grouping key -> [(last activity, set name, labels)]
    try:
        for name, url, auth in sets:
            for g in read_set(name, url, auth):
                labels = g.get("labels") or {}
                key = tuple(sorted(labels.items()))
                copies.setdefault(key, []).append((last_activity(g), name, labels))
    except RuntimeError as e:
        sys.stderr.write("remove-stale-copies.py: %s; nothing deleted\n" % e)
        return 2

    where = {name: (url, auth) for name, url, auth in sets}
    stale = kept_ties = failed = 0
    for key in sorted(copies):
        held = sorted(copies[key], key=lambda c: c[0], reverse=True)
        if len(held) < 2:
            continue
        if held[0][0] == held[1][0]:
            kept_ties += 1  # the same push time on two sets: no way to tell which is current
            print("kept %s on sets %s: the same push time on more than one set" % (
                describe(held[0][2]), ",".join(c[1] for c in held)))
            continue
        for t, name, labels in held[1:]:
            stale += 1
            what = "%s on set %s (last push %.3f; set %s has one of %.3f)" % (describe(labels), name, t, held[0][1],
                                                                            held[0][0])
            if dry_run:
                print("would delete " + what)
                continue
            url, auth = where[name]
            try:
                st, _, body = call("DELETE", url + group_path(labels), auth)
            except OSError as e:
                st, body = 0, str(e).encode()
            if 200 <= st < 300:
                print("deleted " + what)
            else:
                failed += 1
                print("FAILED to delete %s: %s %s" % (what, st, body[:200].decode("utf-8", "replace")))

    misplaced = 0
    if lb is not None:
        lb_url, lb_auth = split_url(lb)
        owner = {}
        for key in sorted(copies):
            if len(copies[key]) != 1:
                continue
            _, name, labels = copies[key][0]
            job = labels.get("job", "")
            if job not in owner:
                try:
                    _, headers, _ = call("GET", lb_url + job_path(job), lb_auth)
                    owner[job] = headers.get("X-Ferry-Set")
                except OSError as e:
                    owner[job] = None
                    sys.stderr.write("remove-stale-copies.py: asking %s about job %r: %s\n" % (lb, job, e))
            if owner[job] and owner[job] != name:
                misplaced += 1
                print("misplaced %s: only on set %s, its job now goes to set %s" % (describe(labels), name, owner[job]))

    groups = len(copies)
    print("%d groups on %d sets: %d stale copies %s, %d failed, %d kept (same push time)%s" % (
        groups, len(sets), stale, "to delete (dry run)" if dry_run else "deleted", failed, kept_ties,
        ", %d misplaced single copies" % misplaced if lb is not None else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

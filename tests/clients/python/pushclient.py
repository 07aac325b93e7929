"""Pushes to a Pushgateway with Debian's prometheus_client (0.16) so that Ferry's client-library suite can check the
result on the gateway. Runs under /usr/bin/python3 (where Debian installs the library), one step per call; the driver
(tests/clients/run_clients.py) knows what each step must leave on the gateway. Any error exits non-zero.

Usage: pushclient.py http://127.0.0.1:PORT push|add|replace|delete
  push     PUT    job "py_job", grouping {path="a/b/c", env="", lang="gö x"}: counter, gauge, histogram, summary
  add      POST   same group: one more gauge; the families pushed before stay
  replace  PUT    job "py_job", grouping {env="prod"} twice with different families: only the second stays
  delete   DELETE the "push" group
"""
import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import delete_from_gateway, push_to_gateway, pushadd_to_gateway

JOB = "py_job"
GROUP = {"path": "a/b/c", "env": "", "lang": "gö x"}


def step_push(url):
    reg = CollectorRegistry()
    c = Counter("py_requests", "Requests seen.", ["code"], registry=reg)
    c.labels("200").inc(7)
    c.labels("500").inc(2)
    Gauge("py_temperature_celsius", "Temperature.", registry=reg).set(-3.5)
    h = Histogram("py_latency_seconds", "Latency.", buckets=(0.1, 1, 10), registry=reg)
    for v in (0.05, 0.5, 0.5, 5, 50):
        h.observe(v)
    s = Summary("py_size_bytes", "Sizes.", registry=reg)
    for v in (1, 2, 3):
        s.observe(v)
    push_to_gateway(url, job=JOB, registry=reg, grouping_key=GROUP, timeout=10)


def step_add(url):
    reg = CollectorRegistry()
    Gauge("py_added", "Added by POST.", registry=reg).set(42)
    pushadd_to_gateway(url, job=JOB, registry=reg, grouping_key=GROUP, timeout=10)


def step_replace(url):
    reg = CollectorRegistry()
    Gauge("py_replaced", "Replaced by the second PUT.", registry=reg).set(1)
    push_to_gateway(url, job=JOB, registry=reg, grouping_key={"env": "prod"}, timeout=10)
    reg = CollectorRegistry()
    Gauge("py_replacement", "The second PUT.", registry=reg).set(2)
    push_to_gateway(url, job=JOB, registry=reg, grouping_key={"env": "prod"}, timeout=10)


def step_delete(url):
    delete_from_gateway(url, job=JOB, grouping_key=GROUP, timeout=10)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pushclient.py URL push|add|replace|delete")
    steps = {"push": step_push, "add": step_add, "replace": step_replace, "delete": step_delete}
    if sys.argv[2] not in steps:
        sys.exit("unknown step %r" % sys.argv[2])
    steps[sys.argv[2]](sys.argv[1])


if __name__ == "__main__":
    main()

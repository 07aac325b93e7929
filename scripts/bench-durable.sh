#!/usr/bin/env bash
# Durable mode against in-memory mode, in the same run (issue 5's goal: durable keeps >= 50% of the push rate).
# For each wrk connection count in CONNS_LIST, scripts/bench-e2e.sh measures round-robin, with the same wrk
# set-up: in-memory (reuseport2), durable (durable2, log on the disk of OUT), and, if FERRY_BEFORE names another
# ferry binary (e.g. a build of the commit before deferred answers), that one in durable mode (durable2_before).
# Prints one table per connection count (medians of RUNS runs) with the durable / in-memory ratio under it.
# Usage: scripts/bench-durable.sh [BUILD_DIR]
# Knobs: CONNS_LIST="32 64 256" RUNS=3 DURATION=5 SIZES=1000 FERRY_BEFORE=<binary> OUT=<dir> (one subdirectory per
#   connection count; default: a temporary directory).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$(mktemp -d /tmp/bench-durable.XXXXXX)}
mkdir -p "$out"
modes="reuseport2 durable2"
[ -n "${FERRY_BEFORE:-}" ] && modes="$modes durable2_before"
for c in ${CONNS_LIST:-32 64 256}; do
    echo "### $c wrk connections"
    echo
    CONNS=$c RUNS=${RUNS:-3} DURATION=${DURATION:-5} SIZES=${SIZES:-1000} REF_SIZES= FERRY_MODES="$modes" \
        OUT="$out/c$c" "$root/scripts/bench-e2e.sh" "${1:-$root/build}" 2>"$out/c$c.stderr"
    echo
done

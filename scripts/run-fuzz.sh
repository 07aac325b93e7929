#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, seeded from tests/fixtures/<target>/ (the target's name
# without the fuzz_ prefix). The working corpus lives in fuzz-corpus/ (ignored by git). Exits non-zero on a crash,
# leak or timeout, and prints the executions each target ran.
set -euo pipefail
build=${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}
build=$(cd "$build" && pwd)  # the fuzzers run from inside it
secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
total=0
status=0
shopt -s nullglob
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    kind=${name#fuzz_}
    corpus="$root/fuzz-corpus/$kind"
    mkdir -p "$corpus"
    seeds=()
    [ -d "$root/tests/fixtures/$kind" ] && seeds+=("$root/tests/fixtures/$kind")
    log=$(mktemp)
    echo "fuzz: $name for ${secs}s"
    if ! (cd "$build" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$root/fuzz-corpus/$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1); then
        echo "fuzz: $name FAILED; last lines:"
        tail -n 40 "$log"
        status=1
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    runs=${runs:-0}
    echo "fuzz: $name executed $runs inputs"
    total=$((total + runs))
    rm -f "$log"
done
echo "fuzz: $total executions in total"
exit $status

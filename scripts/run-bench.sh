#!/usr/bin/env bash
# Runs every micro-benchmark binary in BUILD_DIR/bench with repetitions and prints medians.
# Extra arguments go to Google Benchmark (e.g. --benchmark_filter=Text).
set -euo pipefail
build=${1:?usage: run-bench.sh BUILD_DIR [benchmark args]}
shift
reps=${BENCH_REPS:-5}
shopt -s nullglob
for bin in "$build"/bench/bench_*; do
    [ -x "$bin" ] || continue
    echo "== $(basename "$bin")"
    "$bin" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
        --benchmark_display_aggregates_only=true "$@"
done
